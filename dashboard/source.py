"""Where the dashboard reads from, and the data version that keys every cached answer.

One read-only Ibis connection per thread, re-opened when the warehouse file is replaced (the
ETL and training publish by renaming a new file over the old one, so a changed mtime/size
means new data). The connection is a per-process resource, not per-user state.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass

import ibis

from etl.errors import ETLError
from etl.schema import CUSTOMERS, ETL_RUNS, REJECTED_ROWS, SESSIONS, SOURCE_FILES, TABLES
from etl.settings import get_settings
from etl.warehouse import connect, duckdb_path

RUN_ETL = "python -m etl run"
RUN_TRAIN = "python -m etl train"

ETL_TABLES = (SESSIONS, CUSTOMERS, REJECTED_ROWS, SOURCE_FILES, ETL_RUNS)  # the others come from training

_local = threading.local()


class Unavailable(Exception):
    """Data or a model the page needs is missing; ``command`` is what to run to get it."""

    def __init__(self, message: str, command: str) -> None:
        super().__init__(message)
        self.message, self.command = message, command


@dataclass(frozen=True)
class WarehouseVersion:
    url: str
    stamp: str  # file mtime+size for DuckDB, latest ETL run for other backends

    def __str__(self) -> str:
        return f"{self.url}@{self.stamp}"


def warehouse_url() -> str:
    return get_settings().warehouse_url


def _file_stamp(url: str) -> str | None:
    path = duckdb_path(url)
    if path is None:
        return None
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise Unavailable(f"No warehouse at {path}.", RUN_ETL) from None
    return f"{stat.st_mtime_ns:x}-{stat.st_size:x}"


def _open(url: str) -> ibis.BaseBackend:
    try:
        return connect(url)
    except ETLError as exc:
        raise Unavailable(str(exc), RUN_ETL) from None
    except Exception as exc:  # noqa: BLE001 - a corrupt file or unreachable server
        raise Unavailable(f"Cannot open the warehouse {url}: {exc}", RUN_ETL) from None


def connection() -> tuple[ibis.BaseBackend, WarehouseVersion]:
    """This thread's connection and the version of the data it sees."""
    url = warehouse_url()
    stamp = _file_stamp(url)
    held = getattr(_local, "held", None)
    if held is not None and held[0].url == url and stamp is not None and held[0].stamp == stamp:
        return held[1], held[0]
    if held is not None:
        _local.held = None
        held[1].disconnect()
    con = _open(url)
    if stamp is None:  # a server backend: the latest ETL run identifies the data
        stamp = _server_stamp(con)
    elif _file_stamp(url) != stamp:  # replaced while we opened it: the next call re-opens
        stamp = "changing"
    version = WarehouseVersion(url, stamp)
    _local.held = (version, con, set(con.list_tables()))
    return con, version


def _server_stamp(con: ibis.BaseBackend) -> str:
    runs = con.table("etl_runs")
    latest = runs.order_by(ibis.desc("finished_at")).limit(1).select("run_id", "data_version").to_pyarrow()
    if latest.num_rows == 0:
        raise Unavailable("The warehouse has no ETL run.", RUN_ETL)
    return f"{latest['run_id'][0]}:{latest['data_version'][0]}"


def data_version() -> WarehouseVersion:
    """Cheap: a stat() of the DuckDB file (plus a tiny query on server backends)."""
    return connection()[1]


def table(name: str) -> ibis.Table:
    """A contract table; a missing one says which command creates it."""
    con, _ = connection()
    if name not in _local.held[2]:
        command = RUN_ETL if name in ETL_TABLES else RUN_TRAIN
        raise Unavailable(f"The warehouse has no table {name!r}.", command)
    found = con.table(name)
    missing = [c for c in TABLES[name] if c not in found.columns]
    if missing:
        raise Unavailable(f"Table {name!r} lacks column {missing[0]!r} (an older warehouse).", RUN_ETL)
    return found
