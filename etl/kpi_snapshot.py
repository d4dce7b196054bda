"""The headline KPIs of a DuckDB warehouse, in plain SQL, for the KPI history.

Every ETL publish and every report appends one snapshot to the history
(:mod:`dashboard.reports.history`), so the dashboard can show each KPI's trend across rebuilds.
Plain SQL on a DuckDB connection, not the dashboard's query layer: the ETL must not import the
web app to record what it published, and the numbers are defined once here for both callers.

The snapshot is always of the whole warehouse (no user scope): the history is the shop's,
whoever a report was built for.
"""
from __future__ import annotations

import logging
from pathlib import Path

import duckdb

from etl.schema import CUSTOMER_SCORES, CUSTOMERS, ETL_RUNS, SESSIONS

log = logging.getLogger(__name__)

# KPI name -> what it is (names shared with the dashboard's KPI cards and the report headline)
KPIS = {
    "sessions": "cart sessions",
    "abandonment_rate": "share of sessions whose cart was abandoned",
    "conversion_rate": "share of sessions that ended in a purchase",
    "items_per_cart": "items added to the cart per session",
    "customers": "regular customers",
    "declined_share": "share of customers whose purchasing activity declined",
    "profit_at_risk": "Σ P(decline) × average monthly profit (None before a model scored the data)",
    "rows_read": "raw rows read by the ETL run",
    "rows_rejected": "raw rows the ETL run rejected",
}


def _tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    # the current schema only: an attached read-only file is `USE`d by the dashboard's connection
    return {row[0] for row in con.execute("SELECT table_name FROM information_schema.tables "
                                          "WHERE table_catalog = current_database() "
                                          "AND table_schema = current_schema()").fetchall()}


def snapshot(con: duckdb.DuckDBPyConnection) -> tuple[str, dict[str, float | None]]:
    """(data version, KPIs) of the warehouse ``con`` reads."""
    tables = _tables(con)
    version, rows_read, rows_rejected = con.execute(
        f"SELECT data_version, rows_in, rows_rejected FROM {ETL_RUNS} ORDER BY finished_at DESC LIMIT 1").fetchone()
    sessions, abandoned, items = con.execute(
        f"SELECT count(*), count(*) FILTER (WHERE abandoned), coalesce(sum(items_added), 0) FROM {SESSIONS}").fetchone()
    customers, declined = con.execute(
        f"SELECT count(*), count(*) FILTER (WHERE activity_declined) FROM {CUSTOMERS}").fetchone()
    at_risk = None
    if CUSTOMER_SCORES in tables:
        at_risk = con.execute(f"""SELECT coalesce(sum(s.p_decline * c.profit), 0) FROM {CUSTOMER_SCORES} s
                                  JOIN {CUSTOMERS} c USING (customer_id)""").fetchone()[0]
    kpis = {
        "sessions": sessions,
        "abandonment_rate": abandoned / sessions if sessions else None,
        "conversion_rate": (sessions - abandoned) / sessions if sessions else None,
        "items_per_cart": items / sessions if sessions else None,
        "customers": customers,
        "declined_share": declined / customers if customers else None,
        "profit_at_risk": None if at_risk is None else float(at_risk),
        "rows_read": rows_read,
        "rows_rejected": rows_rejected,
    }
    return str(version), {k: (None if v is None else float(v) if isinstance(v, float) else int(v))
                          for k, v in kpis.items()}


def snapshot_file(path: Path | str) -> tuple[str, dict[str, float | None]]:
    """(data version, KPIs) of the DuckDB file at ``path``, opened read-only."""
    with duckdb.connect(str(path), read_only=True) as con:
        return snapshot(con)


def record_publish(warehouse_url: str, source: str = "etl") -> None:
    """Append the snapshot of the warehouse just published at ``warehouse_url`` to the KPI
    history. Never raises: the publish has happened, and a history that cannot be written
    (a read-only state folder, a full disk) must not turn it into a failed run.

    Only the warehouse the dashboard serves (``WAREHOUSE_URL``) is recorded: the history belongs
    to that installation, so a build into another file (a test, a benchmark, the staging copy
    ``etl refresh`` trains on before it renames it into place) is not mixed into its trend.
    """
    try:
        from etl.settings import get_settings
        from etl.warehouse import duckdb_path

        path, served = duckdb_path(warehouse_url), duckdb_path(get_settings().warehouse_url)
        if path is None or served is None or path.resolve() != served.resolve():
            return
        from dashboard.reports import history

        version, kpis = snapshot_file(path)
        history.append(source=source, data_version=version, kpis=kpis)
    except Exception as exc:  # noqa: BLE001 - see the docstring
        log.warning("KPI history not updated: %s", exc)
