"""The whole ETL on real and generated data, and every class of bad input."""
from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from etl.cli import main
from etl.pipeline import run_pipeline

PROJECT = Path(__file__).resolve().parents[1]


def query(path: Path, sql: str):
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


@pytest.mark.slow
def test_real_data_gives_the_seed_numbers(real_data, tmp_path):
    wh = tmp_path / "wh.duckdb"
    summary = run_pipeline(real_data, str(wh))
    assert summary["tables"] == {"sessions": 4158, "customers": 1296, "rejected_rows": 130}
    assert summary["abandoned"] == 3668 and summary["declined"] == 494
    assert summary["rows_in"] == 4284 + 1300 + 3900 + 2600 + 1300
    assert query(wh, "SELECT subject, rule, count(*) FROM rejected_rows GROUP BY ALL ORDER BY ALL") == [
        ("carts", "purchase without items", 126),
        ("customers", "active three months", 3),
        ("customers", "revenue outlier", 1),
    ]
    # the outlier row carries its raw cells and the line it came from
    (row, values), = query(wh, "SELECT source_row, raw_values FROM rejected_rows WHERE rule = 'revenue outlier'")
    assert json.loads(values)["id"] == "215380" and row == 2 + 32   # 215380 is the 33rd customer
    # cleaning rules applied
    assert query(wh, "SELECT min(pages_viewed), count(*) FILTER (WHERE NOT abandoned AND items_added = 0) FROM sessions") == [(1, 0)]
    assert query(wh, "SELECT DISTINCT service_tier FROM customers ORDER BY 1") == [("premium",), ("standard",)]
    assert query(wh, "SELECT count(DISTINCT top_category) FROM customers") == [(6,)]
    assert query(wh, "SELECT decimal, separator FROM source_files WHERE source_file = 'customers/money.csv'") == [(",", ";")]
    (kept,), = query(wh, "SELECT sessions + customers FROM etl_runs")
    assert kept == 4158 + 1296


@pytest.mark.slow
def test_generated_data_loads(generated_raw, tmp_path):
    summary = run_pipeline(generated_raw, str(tmp_path / "wh.duckdb"))
    assert summary["tables"]["sessions"] > 2500 and summary["tables"]["customers"] > 550
    assert 0.75 < summary["abandoned"] / summary["tables"]["sessions"] < 0.95
    assert summary["rejected_by_rule"].get(("carts", "purchase without items"), 0) > 0


def test_data_version_follows_the_content(raw_copy, tmp_path):
    first = run_pipeline(raw_copy, str(tmp_path / "a.duckdb"))["data_version"]
    again = run_pipeline(raw_copy, str(tmp_path / "b.duckdb"))["data_version"]
    money = raw_copy / "customers" / "money.csv"
    money.write_bytes(money.read_bytes().replace(b"0,98", b"0,99", 1))
    changed = run_pipeline(raw_copy, str(tmp_path / "c.duckdb"))["data_version"]
    assert first == again != changed


@pytest.fixture
def published(raw_copy, tmp_path):
    """A published warehouse and its bytes, to prove a failed run leaves it alone."""
    wh = tmp_path / "wh.duckdb"
    assert main(["-q", "run", "--raw", str(raw_copy), "--warehouse", str(wh)]) == 0
    return wh, wh.read_bytes()


def rewrite(path: Path, transform) -> None:
    text = path.read_text(encoding="utf-8")
    path.write_text(transform(text), encoding="utf-8", newline="")


def first_data_line_cell(text: str, col: int, value: str) -> str:
    lines = text.split("\n")
    cells = lines[1].split(",")
    cells[col] = value
    lines[1] = ",".join(cells)
    return "\n".join(lines)


BAD_INPUTS = {
    "missing file": (lambda raw: (raw / "customers" / "money.csv").unlink(),
                     ["money.csv", "no file matches", "file present"]),
    "missing column": (lambda raw: rewrite(raw / "customers" / "market_time.csv",
                                           lambda t: t.replace("минут", "minutes", 1)),
                       ["market_time.csv", "column 'минут'", "required column"]),
    "empty file": (lambda raw: (raw / "customers" / "market_money.csv").write_bytes(b""),
                   ["market_money.csv", "is empty", "not empty"]),
    "header only": (lambda raw: rewrite(raw / "customers" / "money.csv", lambda t: t.split("\n")[0] + "\n"),
                    ["money.csv", "no data rows"]),
    "not a table": (lambda raw: (raw / "carts" / "data_cart_abandonment.csv").write_bytes(b"\x00\xff\xfe" * 50),
                    ["data_cart_abandonment.csv"]),
    "every row bad": (lambda raw: rewrite(raw / "customers" / "money.csv",
                                          lambda t: "\n".join([t.split("\n")[0]] + ["x;y"] * 3) + "\n"),
                      ["money.csv", "row 2", "no usable row"]),
}


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_unusable_input_stops_and_keeps_the_old_warehouse(case, published, raw_copy, capsys):
    wh, before = published
    breaker, fragments = BAD_INPUTS[case]
    breaker(raw_copy)
    capsys.readouterr()
    assert main(["-q", "run", "--raw", str(raw_copy), "--warehouse", str(wh)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: file ") and "Traceback" not in err
    for fragment in fragments:
        assert fragment in err
    assert wh.read_bytes() == before
    assert [p.name for p in wh.parent.iterdir() if ".tmp-" in p.name] == []


def test_bad_cells_are_quarantined_not_dropped(raw_copy, tmp_path):
    carts_file = next((raw_copy / "carts").glob("*.csv"))
    rewrite(carts_file, lambda t: first_data_line_cell(t, 2, "many"))                # word in a number
    rewrite(raw_copy / "customers" / "market_file.csv",
            lambda t: first_data_line_cell(t, 1, "Исчезла"))                       # unknown target label
    wh = tmp_path / "wh.duckdb"
    summary = run_pipeline(raw_copy, str(wh))
    rows = dict((r[0], r[1:]) for r in query(
        wh, "SELECT rule, source_file, source_row, column_name, reason FROM rejected_rows "
            "WHERE rule IN ('number', 'allowed labels')"))
    assert rows["number"][:3] == (carts_file.relative_to(raw_copy).as_posix(), 2, "Session_Activity_Count")
    assert "'many' is not a whole number" in rows["number"][3]
    assert rows["allowed labels"][:3] == ("customers/market_file.csv", 2, "Покупательская активность")
    # every input row is either published or rejected
    (read, rejected), = query(wh, "SELECT sum(rows_read), sum(rows_rejected) FROM source_files")
    assert summary["rows_in"] == read
    assert rejected == summary["tables"]["rejected_rows"]


def test_cli_exit_code_and_message_without_traceback(tmp_path):
    result = subprocess.run([sys.executable, "-m", "etl", "run", "--raw", str(tmp_path / "nowhere"),
                             "--warehouse", str(tmp_path / "wh.duckdb")],
                            cwd=PROJECT, capture_output=True, text=True)
    assert result.returncode == 2
    assert "nowhere" in result.stderr and "is not a folder" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "wh.duckdb").exists()


def warehouse_rows(path: Path) -> dict[str, list]:
    return {"sessions": query(path, "SELECT * FROM sessions"),                  # in file order
            "customers": query(path, "SELECT * FROM customers ORDER BY ALL"),
            "rejected_rows": query(path, "SELECT * EXCLUDE (run_id) FROM rejected_rows ORDER BY ALL")}


@pytest.mark.slow
def test_block_size_does_not_change_the_warehouse(raw_copy, tmp_path, monkeypatch):
    carts_file = next((raw_copy / "carts").glob("*.csv"))
    rewrite(carts_file, lambda t: first_data_line_cell(t, 2, "many").replace("\n", "\n\n", 1))
    run_pipeline(raw_copy, str(tmp_path / "default.duckdb"))
    from etl import readers, validate
    monkeypatch.setattr(readers, "BLOCK_BYTES", 4096)         # hundreds of blocks, halved down to 1 KB
    monkeypatch.setattr(validate, "SMALL_BLOCK_BYTES", 1024)
    run_pipeline(raw_copy, str(tmp_path / "small.duckdb"))
    assert warehouse_rows(tmp_path / "small.duckdb") == warehouse_rows(tmp_path / "default.duckdb")


@pytest.mark.parametrize("block_bytes", [None, 2048])
def test_rows_rejected_by_cleaning_carry_the_cells_of_their_line(raw_copy, tmp_path, monkeypatch, block_bytes):
    if block_bytes:
        from etl import readers
        monkeypatch.setattr(readers, "BLOCK_BYTES", block_bytes)
    wh = tmp_path / "wh.duckdb"
    run_pipeline(raw_copy, str(wh))
    rows = query(wh, "SELECT source_file, source_row, raw_values FROM rejected_rows")
    assert rows
    for source_file, row, values in rows:
        path = raw_copy / source_file
        delimiter = ";" if path.name == "money.csv" else ","
        lines = path.read_text(encoding="utf-8-sig").splitlines()
        header = [c.strip().casefold() for c in next(csv.reader([lines[0]], delimiter=delimiter))]
        assert json.loads(values) == dict(zip(header, next(csv.reader([lines[row - 1]], delimiter=delimiter))))


def test_nan_or_inf_in_a_count_is_a_rejected_cell_not_a_crash(raw_copy, tmp_path):
    carts_file = next((raw_copy / "carts").glob("*.csv"))
    rewrite(carts_file, lambda t: first_data_line_cell(t, 4, "nan"))
    wh = tmp_path / "wh.duckdb"
    run_pipeline(raw_copy, str(wh))
    assert query(wh, "SELECT source_row, column_name, rule, reason FROM rejected_rows WHERE rule = 'number'") == [
        (2, "No_Items_Removed_FromCart", "number", "'nan' is not a whole number")]
