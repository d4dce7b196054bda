"""Where the dashboard reads from: the tables of the release this request is pinned to.

See :mod:`dashboard.release`: a request reads one warehouse file (and the models it names)
from its first query to its last, whatever is published meanwhile. The version of that file
keys every cached answer.
"""
from __future__ import annotations

import ibis

from dashboard.release import RUN_ETL, RUN_TRAIN, Unavailable, WarehouseVersion, pinned
from etl.schema import CUSTOMERS, ETL_RUNS, REJECTED_ROWS, SESSIONS, SOURCE_FILES, TABLES

__all__ = ["RUN_ETL", "RUN_TRAIN", "Unavailable", "WarehouseVersion", "connection", "data_version", "table"]

ETL_TABLES = (SESSIONS, CUSTOMERS, REJECTED_ROWS, SOURCE_FILES, ETL_RUNS)  # the others come from training


def connection() -> tuple[ibis.BaseBackend, WarehouseVersion]:
    """This thread's connection to the pinned release, and its version."""
    release = pinned()
    return release.connection(), release.version


def data_version() -> WarehouseVersion:
    """Cheap: a stat() of the DuckDB file on the first call of a request, then pinned."""
    return pinned().version


def table(name: str) -> ibis.Table:
    """A contract table; a missing one says which command creates it."""
    release = pinned()
    if name not in release.tables:
        command = RUN_ETL if name in ETL_TABLES else RUN_TRAIN
        raise Unavailable(f"The warehouse has no table {name!r}.", command)
    found = release.connection().table(name)
    missing = [c for c in TABLES[name] if c not in found.columns]
    if missing:
        raise Unavailable(f"Table {name!r} lacks column {missing[0]!r} (an older warehouse).", RUN_ETL)
    return found
