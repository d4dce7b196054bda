"""Where the warehouse lives, and the contract its tables keep.

``WAREHOUSE_URL`` names the backend (:mod:`etl.backends`): a DuckDB file (the embedded
default; a plain path is relative to the project), a PostgreSQL database or a Spark warehouse
folder. The ETL and training write into a private DuckDB build (:func:`staged`) that the
backend publishes all or nothing: a failed run leaves the published warehouse untouched, and a
reader never sees a mix of two runs.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import duckdb
import pandas as pd
import pyarrow as pa

from etl.backends import backend, redact, staged
from etl.backends.duckdb_file import WAREHOUSE_ALIAS, duckdb_path
from etl.errors import ETLError
from etl.schema import TABLES

__all__ = ["WAREHOUSE_ALIAS", "connect", "duckdb_path", "require_tables", "staged", "write_table"]

if TYPE_CHECKING:  # Ibis takes ~0.7 s to import; only readers need it, not `python -m etl run`
    import ibis


def connect(url: str) -> ibis.BaseBackend:
    """A read-only Ibis connection to the release published now; a missing warehouse is an
    error, never silently created."""
    found = backend(url)
    try:
        return found.connect()
    finally:
        found.close()


def require_tables(con: ibis.BaseBackend, url: str, tables: list[str]) -> None:
    """Stop with a clear message when the warehouse lacks a table or a contract column."""
    present = set(con.list_tables())
    for table in tables:
        if table not in present:
            raise ETLError(redact(url), rule="warehouse contract", column=None,
                           message=f"has no table {table!r}; run `python -m etl run` (and train)")
        missing = [c for c in TABLES[table] if c not in con.table(table).columns]
        if missing:
            raise ETLError(redact(url), rule="warehouse contract", column=missing[0],
                           message=f"table {table!r} lacks column {missing[0]!r}")


def write_table(con: duckdb.DuckDBPyConnection, name: str, frame: pd.DataFrame) -> None:
    """Create ``name`` with the contract's column types from ``frame``."""
    columns = TABLES[name]
    # Arrow is DuckDB's zero-copy path; scanning pandas object columns is several times slower.
    con.register("_incoming", pa.Table.from_pandas(frame[list(columns)], preserve_index=False))
    select = ", ".join(f'CAST("{c}" AS {t}) AS "{c}"' for c, t in columns.items())
    con.execute(f'CREATE OR REPLACE TABLE "{name}" AS SELECT {select} FROM _incoming')
    con.unregister("_incoming")
