"""`python -m etl run`: read → validate → clean → publish, for both subjects.

The raw folder is never written to. Every input row ends up either in ``sessions`` /
``customers`` or in ``rejected_rows`` with the reason, and the run record says how many.
"""
from __future__ import annotations

import hashlib
import logging
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pandera.pandas as pandera
import pyarrow as pa
import pyarrow.compute as pc

from etl import carts, customers, kpi_snapshot
from etl.discovery import discover
from etl.errors import ETLError
from etl.raw_specs import CARTS, FILE_SPECS, MARKET_FILE, MARKET_MONEY, MARKET_TIME, MONEY, FileSpec
from etl.readers import RawSource, open_raw_csv
from etl.schema import CUSTOMERS, ETL_RUNS, REJECTED_ROWS, SESSIONS, SOURCE_FILES
from etl.typed_rows import release_freed_memory, typed_frame
from etl.validate import parse_file
from etl.warehouse import staged, write_table

log = logging.getLogger(__name__)

# Bumped when cleaning rules change, so the data version changes even if the files did not.
CLEANING_VERSION = "1"

# Guards against our own bugs: what we publish must meet the contract. (Session ids are
# made unique by carts.drop_duplicate_sessions; checking 10 M strings twice is not worth it.)
_CUSTOMERS_CHECK = pandera.DataFrameSchema({"customer_id": pandera.Column("int64", unique=True),
                                            "promo_share": pandera.Column(float, pandera.Check.in_range(0, 1))})


def read_subject_file(raw_dir: Path, spec: FileSpec, paths: list[Path],
                      ) -> tuple[list[RawSource], pd.DataFrame, pd.DataFrame]:
    """Read and type every file of ``spec``; returns the sources, valid rows and rejections.

    The valid rows of all files are joined once, column by column (no concat of whole frames).
    """
    sources, parts, rejected = [], [], []
    for path in paths:
        started = time.perf_counter()
        source = open_raw_csv(path, path.relative_to(raw_dir).as_posix())
        valid, bad = parse_file(source, spec)
        log.info("%s: %d rows read, %d with invalid cells (%.1f s)",
                 source.name, source.rows_read, bad["source_row"].nunique(), time.perf_counter() - started)
        sources.append(source); parts.extend(valid); rejected.append(bad)
    return sources, typed_frame(parts, spec), pd.concat(rejected, ignore_index=True)


def collapse_rejections(rejected: pd.DataFrame, sources: dict[str, RawSource], subject: str,
                        run_id: str) -> pd.DataFrame:
    """One record per rejected source row, all its reasons joined, with the raw cells.

    Rows rejected while parsing already carry their raw cells; rows rejected by a cleaning
    rule get them from their file again (only the blocks holding those lines are re-read).
    """
    if rejected.empty:
        return pd.DataFrame(columns=["run_id", "subject", "source_file", "source_row",
                                     "column_name", "rule", "reason", "raw_values"])
    rejected = rejected.astype({"source_file": str}).sort_values(["source_file", "source_row"], kind="stable")
    key = ["source_file", "source_row"]
    grouped = rejected.drop_duplicates(key).set_index(key)
    repeated = rejected[rejected.duplicated(key, keep=False)]
    if not repeated.empty:  # a row that broke several rules: say all of them (rare, so Python is fine)
        joined = repeated.groupby(key)["reason"].agg(lambda r: "; ".join(dict.fromkeys(r)))
        grouped.loc[joined.index, "reason"] = joined
    grouped = grouped.reset_index()
    raw_values, index = [], []
    for name, rows in grouped.groupby("source_file", sort=False):
        known = pa.array(rows["raw_values"], type=pa.string())           # null: not fetched yet
        missing = known.is_null().to_numpy(zero_copy_only=False)
        if missing.all():                      # the usual case: rejected by cleaning rules
            raw_values += sources[name].read_lines(rows["source_row"].to_numpy()).chunks
        else:
            if missing.any():
                fetched = sources[name].read_lines(rows["source_row"].to_numpy()[missing]).combine_chunks()
                known = pc.replace_with_mask(known, pa.array(missing), fetched)
            raw_values.append(known)
        index.append(rows.index.to_numpy())
    grouped["raw_values"] = pd.Series(pa.chunked_array(raw_values, pa.string()), index=np.concatenate(index),
                                      dtype="str")
    return grouped.assign(run_id=run_id, subject=subject)


def data_version(sources: list[RawSource]) -> str:
    digest = hashlib.sha256(CLEANING_VERSION.encode())
    for source in sorted(sources, key=lambda r: r.name):
        digest.update(f"{source.name}:{source.sha256}".encode())
    return digest.hexdigest()[:16]


def run_pipeline(raw_dir: Path | str, warehouse_url: str) -> dict:
    """Build a new warehouse from ``raw_dir`` and publish it atomically; returns a summary."""
    raw_dir = Path(raw_dir)
    if not raw_dir.is_dir():
        raise ETLError(str(raw_dir), rule="raw folder present",
                       message="is not a folder; set RAW_DIR or run `python -m etl sample --out DIR`")
    started_at = datetime.now(timezone.utc).replace(tzinfo=None)
    run_id = started_at.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]

    files, typed, parse_rejections = {}, {}, {}
    paths = discover(raw_dir, FILE_SPECS)
    for spec in FILE_SPECS:
        files[spec.pattern], typed[spec.pattern], parse_rejections[spec.pattern] = read_subject_file(
            raw_dir, spec, paths[spec.pattern])
    raws = {source.name: source for spec_sources in files.values() for source in spec_sources}
    release_freed_memory()

    log.info("cleaning carts")
    # popped, not looked up: the 10 M-row typed frame is released as soon as cleaning is done with it
    sessions, cart_rules = carts.clean_sessions(typed.pop(CARTS.pattern))
    log.info("cleaning customers")
    customer_frame, customer_rules = customers.clean_customers(
        *(typed.pop(spec.pattern) for spec in (MARKET_FILE, MARKET_MONEY, MARKET_TIME, MONEY)))
    _CUSTOMERS_CHECK.validate(customer_frame)
    release_freed_memory()

    log.info("collecting rejected rows")
    rejected = pd.concat([
        collapse_rejections(pd.concat([parse_rejections[CARTS.pattern], cart_rules]), raws, "carts", run_id),
        collapse_rejections(pd.concat([parse_rejections[s.pattern] for s in (MARKET_FILE, MARKET_MONEY, MARKET_TIME, MONEY)]
                                      + [customer_rules]), raws, "customers", run_id),
    ], ignore_index=True)
    per_file = rejected.groupby("source_file").size()
    sources = pd.DataFrame([{
        "run_id": run_id, "subject": spec.subject, "source_file": raw.name,
        "rows_read": raw.rows_read, "rows_rejected": int(per_file.get(raw.name, 0)),
        "encoding": raw.encoding, "separator": raw.separator,
        "decimal": raw.decimal,
        "sha256": raw.sha256,
    } for spec in FILE_SPECS for raw in files[spec.pattern]])

    version = data_version(list(raws.values()))
    rows_in = int(sources["rows_read"].sum())
    run = pd.DataFrame([{
        "run_id": run_id, "data_version": version, "started_at": started_at,
        "finished_at": datetime.now(timezone.utc).replace(tzinfo=None), "raw_dir": str(raw_dir),
        "rows_in": rows_in, "rows_out": len(sessions) + len(customer_frame),
        "rows_rejected": len(rejected), "sessions": len(sessions), "customers": len(customer_frame),
    }])
    release_freed_memory()
    log.info("publishing warehouse")
    with staged(warehouse_url, start_from_current=False) as con:
        for name, frame in ((SESSIONS, sessions), (CUSTOMERS, customer_frame),
                            (REJECTED_ROWS, rejected), (SOURCE_FILES, sources), (ETL_RUNS, run)):
            write_table(con, name, frame)
        built = kpi_snapshot.of_build(con, warehouse_url)
    kpi_snapshot.record_publish(warehouse_url, built=built)   # KPI history (issue 11); only warns on failure
    return {
        "run_id": run_id, "data_version": version, "rows_in": rows_in,
        "tables": {SESSIONS: len(sessions), CUSTOMERS: len(customer_frame), REJECTED_ROWS: len(rejected)},
        "abandoned": int(sessions["abandoned"].sum()),
        "declined": int(customer_frame["activity_declined"].sum()),
        "rejected_by_rule": rejected.groupby(["subject", "rule"]).size().to_dict(),
    }
