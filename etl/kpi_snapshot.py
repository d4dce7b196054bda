"""The headline KPIs of a warehouse, as Ibis expressions, for the KPI history.

Every ETL publish and every report appends one snapshot to the history
(:mod:`dashboard.reports.history`), so the dashboard can show each KPI's trend across rebuilds.
Its own expressions, not the dashboard's query layer: the ETL must not import the web app to
record what it published, and the numbers are defined once here for both callers. Ibis, so the
same definitions run on every backend (DuckDB, PostgreSQL, Spark).

The snapshot is always of the whole warehouse (no user scope): the history is the shop's,
whoever a report was built for.
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from etl.schema import CUSTOMER_SCORES, CUSTOMERS, ETL_RUNS, SESSIONS

if TYPE_CHECKING:
    import duckdb
    import ibis

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


def snapshot(con: ibis.BaseBackend) -> tuple[str, dict[str, float | None]]:
    """(data version, KPIs) of the warehouse ``con`` reads."""
    import ibis

    tables = set(con.list_tables())
    run = (con.table(ETL_RUNS).order_by(ibis.desc("finished_at")).limit(1)
           .select("data_version", "rows_in", "rows_rejected").to_pyarrow().to_pylist()[0])
    version, rows_read, rows_rejected = run["data_version"], run["rows_in"], run["rows_rejected"]
    s = con.table(SESSIONS)
    carts = s.aggregate(n=s.count(), abandoned=s.count(where=s.abandoned),
                        items=s.items_added.sum().fill_null(0)).to_pyarrow().to_pylist()[0]
    sessions, abandoned, items = carts["n"], carts["abandoned"], carts["items"]
    c = con.table(CUSTOMERS)
    people = c.aggregate(n=c.count(), declined=c.count(where=c.activity_declined)).to_pyarrow().to_pylist()[0]
    customers, declined = people["n"], people["declined"]
    at_risk = None
    if CUSTOMER_SCORES in tables:
        joined = con.table(CUSTOMER_SCORES).join(c, "customer_id")
        at_risk = joined.aggregate(v=(joined.p_decline * joined.profit).sum().fill_null(0)).to_pyarrow()["v"][0].as_py()
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


def of_build(con: duckdb.DuckDBPyConnection, warehouse_url: str) -> tuple[str, dict[str, float | None]] | None:
    """The snapshot of a DuckDB build about to be published at ``warehouse_url``, read from the
    build itself (on a server backend, reading it back after the publish would cost a round
    trip, and on Spark a JVM start); None when that is not the served warehouse (see
    :func:`record_publish`) or the snapshot fails (it only warns)."""
    try:
        from etl.settings import get_settings

        if not same_warehouse(warehouse_url, get_settings().warehouse_url):
            return None
        import ibis

        return snapshot(ibis.duckdb.from_connection(con))
    except Exception as exc:  # noqa: BLE001 - see record_publish
        log.warning("KPI history not updated: %s", exc)
        return None


def record_publish(warehouse_url: str, source: str = "etl",
                   built: tuple[str, dict[str, float | None]] | None = None) -> None:
    """Append the snapshot of the warehouse just published at ``warehouse_url`` to the KPI
    history: ``built`` (:func:`of_build`, taken from the build before it was published), else
    read from the warehouse. Never raises: the publish has happened, and a history that cannot
    be written (a read-only state folder, a full disk) must not turn it into a failed run.

    Only the warehouse the dashboard serves (``WAREHOUSE_URL``) is recorded: the history belongs
    to that installation, so a build into another file (a test, a benchmark, the staging copy
    ``etl refresh`` trains on before it renames it into place) is not mixed into its trend.
    """
    try:
        from etl.settings import get_settings
        from etl.warehouse import connect

        if not same_warehouse(warehouse_url, get_settings().warehouse_url):
            return
        from dashboard.reports import history

        if built is None:
            con = connect(warehouse_url)
            try:
                built = snapshot(con)
            finally:
                con.disconnect()
        version, kpis = built
        history.append(source=source, data_version=version, kpis=kpis)
    except Exception as exc:  # noqa: BLE001 - see the docstring
        log.warning("KPI history not updated: %s", exc)


def same_warehouse(url: str, other: str) -> bool:
    """Whether two WAREHOUSE_URLs name the same warehouse (DuckDB paths compared resolved)."""
    from etl.warehouse import duckdb_path

    path, other_path = duckdb_path(url), duckdb_path(other)
    if path is None or other_path is None:
        return url == other
    return path.resolve() == other_path.resolve()
