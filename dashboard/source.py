"""Where the dashboard reads from: the tables of the release this request is pinned to, as
the current user may read them.

See :mod:`dashboard.release`: a request reads one warehouse file (and the models it names)
from its first query to its last, whatever is published meanwhile. The version of that file
keys every cached answer.

Row-level security lives here: :func:`table` returns each table already restricted to the
current identity's scope (:mod:`dashboard.auth.scoping`), so every query a user causes reads
only rows inside it. Code that must read everything on purpose — values derived once per
release and shared by every user of a process (the cart cube, the held sessions, the bins) —
asks for ``table(name, scoped=False)`` and says why.
"""
from __future__ import annotations

import ibis

from dashboard.auth import scoping
from dashboard.auth.session import current
from dashboard.language import _
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


def table(name: str, scoped: bool = True) -> ibis.Table:
    """A contract table, restricted to the current user's scope unless ``scoped`` is False;
    a missing one says which command creates it, a hidden subject raises
    :class:`~dashboard.auth.scoping.Forbidden`."""
    found = _contract_table(name)
    if not scoped:
        return found
    scope = current().scope
    if scope.unrestricted:      # the common case costs one attribute read
        return found
    return scoping.restrict(name, found, scope, _contract_table)


def _contract_table(name: str) -> ibis.Table:
    release = pinned()
    if name not in release.tables:
        command = RUN_ETL if name in ETL_TABLES else RUN_TRAIN
        raise Unavailable(_("The warehouse has no table {name}.").format(name=name), command)
    found = release.connection().table(name)
    missing = [c for c in TABLES[name] if c not in found.columns]
    if missing:
        raise Unavailable(_("Table {name} lacks column {column} (an older warehouse).").format(
            name=name, column=missing[0]), RUN_ETL)
    return found
