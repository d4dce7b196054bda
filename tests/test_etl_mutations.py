"""Every malformed-file class of :mod:`tests.etl_mutations` through ``python -m etl run``.

For each: exit code 2 with one line naming file, rule and row, and the published warehouse
byte for byte as it was; or exit code 0 with every input row accounted for (kept or in
``rejected_rows``, the broken lines by their line number and rule) and every kept value
equal to the clean build's.
"""
from __future__ import annotations

import hashlib
import shutil
import zlib

import duckdb
import numpy as np
import pandas as pd
import pytest

from etl.cli import main
from tests.etl_mutations import CARTS, CASES, MARKET, Clean, Expect

pytestmark = pytest.mark.slow


def tables(path) -> dict[str, pd.DataFrame]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return {name: con.execute(f"SELECT * FROM {name}").df()
                for name in ("sessions", "customers", "rejected_rows", "source_files")}
    finally:
        con.close()


@pytest.fixture(scope="module")
def clean_build(tmp_path_factory, dashboard_raw):
    """The clean raw folder (real data when present), its warehouse and what it holds."""
    root = tmp_path_factory.mktemp("mutations")
    raw = root / "raw"
    shutil.copytree(dashboard_raw, raw, ignore=shutil.ignore_patterns("README.md"))
    for path in raw.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    warehouse = root / "clean.duckdb"
    assert main(["-q", "run", "--raw", str(raw), "--warehouse", str(warehouse)]) == 0
    held = tables(warehouse)
    clean = Clean(sessions=set(held["sessions"]["session_id"]), customers=set(held["customers"]["customer_id"]))
    return raw, warehouse, held, clean


def by_file(frame: pd.DataFrame) -> dict[str, int]:
    return frame.groupby("source_file").size().to_dict()


@pytest.mark.parametrize("case", list(CASES))
def test_malformed_file(case, clean_build, tmp_path, capsys):
    raw_clean, clean_wh, clean, kept = clean_build
    raw = tmp_path / "raw"
    shutil.copytree(raw_clean, raw)
    rng = np.random.default_rng(zlib.crc32(case.encode()))     # fixed per case, independent of order
    expect: Expect = CASES[case](raw, rng, kept)
    published = tmp_path / "published.duckdb"
    shutil.copyfile(clean_wh, published)
    before = hashlib.sha256(published.read_bytes()).hexdigest()
    capsys.readouterr()

    code = main(["-q", "run", "--raw", str(raw), "--warehouse", str(published)])
    err = capsys.readouterr().err

    if expect.error:
        rule, name, row = expect.error
        assert code == 2, err
        lines = [line for line in err.splitlines() if line.startswith("error:")]
        assert len(lines) == 1 and "Traceback" not in err, err
        message = lines[0]
        assert name in message and f"(rule: {rule})" in message, message
        if row is not None:
            assert f"row {row}" in message, message
        assert hashlib.sha256(published.read_bytes()).hexdigest() == before
        return

    assert code == 0, err
    assert "Traceback" not in err
    got = tables(published)
    # every kept value is the clean build's; exactly the broken rows are missing
    sessions = clean["sessions"][~clean["sessions"]["session_id"].isin(expect.lost_sessions)]
    pd.testing.assert_frame_equal(got["sessions"].sort_values("session_id", ignore_index=True),
                                  sessions.sort_values("session_id", ignore_index=True))
    customers = clean["customers"][~clean["customers"]["customer_id"].isin(expect.lost_customers)]
    pd.testing.assert_frame_equal(got["customers"].sort_values("customer_id", ignore_index=True),
                                  customers.sort_values("customer_id", ignore_index=True))
    # every input row is accounted for: kept or rejected
    files, rejected = got["source_files"], got["rejected_rows"]
    read = files.groupby("subject")["rows_read"].sum()
    assert read["carts"] == len(got["sessions"]) + (rejected["subject"] == "carts").sum()
    market_read = files.loc[files["source_file"] == MARKET, "rows_read"].sum()
    assert market_read == len(got["customers"]) + (rejected["source_file"] == MARKET).sum()
    # the broken lines, by line number and rule; nothing else rejected beyond knock-on rules
    for name, lines in expect.rejected.items():
        mine = rejected[rejected["source_file"] == name].set_index("source_row")
        for line, rule in lines.items():
            assert line in mine.index, f"{name} line {line} not rejected"
            assert rule in mine.loc[[line], "rule"].str.split("; ").sum(), mine.loc[[line]].to_dict("records")
    clean_counts, counts = by_file(clean["rejected_rows"]), by_file(rejected)
    clean_read = clean["source_files"].set_index("source_file")["rows_read"]
    if expect.renamed:
        assert (rejected["subject"] == "carts").sum() == (clean["rejected_rows"]["subject"] == "carts").sum()
        assert read["carts"] == clean_read[CARTS]
        return
    for name, count in counts.items() | clean_counts.items():
        wanted = clean_counts.get(name, 0) + len(expect.rejected.get(name, {})) + expect.also_rejected.get(name, 0)
        assert counts.get(name, 0) == wanted, (name, counts.get(name, 0), wanted)
    for name, rows in files.set_index("source_file")["rows_read"].items():
        assert rows == clean_read[name] + expect.added_lines.get(name, 0), name


def test_there_are_enough_cases():
    assert len(CASES) >= 40
