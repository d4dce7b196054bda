"""Where the warehouse lives, and how it is replaced without ever being half-written.

``WAREHOUSE_URL`` is ``duckdb:///abs/path.duckdb``, ``duckdb://relative/path.duckdb`` or a plain
path (relative paths are relative to the project). Readers connect through Ibis, so another
Ibis backend URL (``postgres://…``) works for reading; publishing is implemented for DuckDB,
the embedded default.

Publishing writes a complete new database file next to the old one and renames it over the
old one (``os.replace`` is atomic on POSIX): a failed run leaves the previous warehouse byte for
byte as it was, and a reader never sees a mix of two runs.
"""
from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import pandas as pd
import pyarrow as pa

from etl.errors import ETLError
from etl.settings import PROJECT_ROOT
from etl.schema import TABLES

WAREHOUSE_ALIAS = "warehouse"   # the name a read-only connection attaches the DuckDB file under

if TYPE_CHECKING:  # Ibis takes ~0.7 s to import; only readers need it, not `python -m etl run`
    import ibis


def duckdb_path(url: str) -> Path | None:
    """The database file of a DuckDB URL or plain path; None for other backends."""
    if url.startswith("duckdb://"):
        rest = url[len("duckdb://"):]
        path = Path(rest)
    elif "://" in url:
        return None
    else:
        path = Path(url).expanduser()
    return path if path.is_absolute() else PROJECT_ROOT / path


def connect(url: str) -> ibis.BaseBackend:
    """A read-only Ibis connection; a missing DuckDB file is an error, never silently created."""
    import ibis

    path = duckdb_path(url)
    if path is None:
        return ibis.connect(url)
    if not path.is_file():
        raise ETLError(str(path), rule="warehouse present",
                       message="does not exist; run `python -m etl run` first")
    # Attached to a private in-memory database, not opened by path: DuckDB hands every
    # connect() of a path already open in the process the same database instance, which
    # after a publish (a new file renamed over the old) would still be the old file.
    con = ibis.duckdb.connect()
    quoted = str(path).replace("'", "''")
    con.raw_sql(f"ATTACH '{quoted}' AS {WAREHOUSE_ALIAS} (READ_ONLY)")
    con.raw_sql(f"USE {WAREHOUSE_ALIAS}")
    return con


def require_tables(con: ibis.BaseBackend, url: str, tables: list[str]) -> None:
    """Stop with a clear message when the warehouse lacks a table or a contract column."""
    present = set(con.list_tables())
    for table in tables:
        if table not in present:
            raise ETLError(url, rule="warehouse contract", column=None,
                           message=f"has no table {table!r}; run `python -m etl run` (and train)")
        missing = [c for c in TABLES[table] if c not in con.table(table).columns]
        if missing:
            raise ETLError(url, rule="warehouse contract", column=missing[0],
                           message=f"table {table!r} lacks column {missing[0]!r}")


def write_table(con: duckdb.DuckDBPyConnection, name: str, frame: pd.DataFrame) -> None:
    """Create ``name`` with the contract's column types from ``frame``."""
    columns = TABLES[name]
    # Arrow is DuckDB's zero-copy path; scanning pandas object columns is several times slower.
    con.register("_incoming", pa.Table.from_pandas(frame[list(columns)], preserve_index=False))
    select = ", ".join(f'CAST("{c}" AS {t}) AS "{c}"' for c, t in columns.items())
    con.execute(f'CREATE OR REPLACE TABLE "{name}" AS SELECT {select} FROM _incoming')
    con.unregister("_incoming")


@contextmanager
def staged(url: str, *, start_from_current: bool) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection to a private copy of the warehouse, swapped in only if the block succeeds.

    ``start_from_current=False`` starts from an empty database (the ETL rebuilds everything);
    ``True`` starts from a copy of the published one (training adds its tables to it).
    """
    target = duckdb_path(url)
    if target is None:
        raise ETLError(url, rule="warehouse backend",
                       message="publishing is implemented for DuckDB; point WAREHOUSE_URL at a .duckdb file")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f"{target.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        if start_from_current:
            if not target.is_file():
                raise ETLError(str(target), rule="warehouse present",
                               message="does not exist; run `python -m etl run` first")
            shutil.copyfile(target, tmp)
        con = duckdb.connect(str(tmp))
        try:
            yield con
            con.execute("CHECKPOINT")
        finally:
            con.close()
        os.replace(tmp, target)
    finally:
        for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):
            leftover.unlink(missing_ok=True)
