"""The rows behind a page's charts: cart sessions (Carts) and customers (Customers) under the
same filters as the page, for the "Show rows" drill-through and its CSV export.

Row-level data: analysts and admins only, refused (:func:`~dashboard.auth.scoping.require_rows`)
before anything is read, whatever the caller. The scope applies through
:func:`dashboard.source.table` like every other query, and the filters are first clamped to it
as the charts clamp them, so the rows are exactly those the page's KPI counts: cart ranges are
widened to whole buckets (the cube's rule, :func:`effective_cart_filters`). Not memoized: an
export may be the whole table, and each request is one scan.
"""
from __future__ import annotations

import ibis
import pandas as pd

from dashboard.auth.scoping import clamp_cart_filters, clamp_customer_filters, require_rows
from dashboard.filters import CartFilters, CustomerFilters
from dashboard.language import N_
from dashboard.queries.answers import first_row, to_frame, where_all
from dashboard.queries.carts import effective_cart_filters
from dashboard.queries.customers import customer_filter
from dashboard.source import table
from etl.schema import CUSTOMERS, CUSTOMERS_COLUMNS, SESSIONS, SESSIONS_COLUMNS

SESSION_ROW_COLUMNS = tuple(SESSIONS_COLUMNS)
CUSTOMER_ROW_COLUMNS = tuple(CUSTOMERS_COLUMNS)
SESSION_ROWS_NOTE = N_("Session-level rows need the analyst role.")


def _sessions(filters: CartFilters) -> ibis.Table:
    filters = effective_cart_filters(clamp_cart_filters(filters, []))
    t = table(SESSIONS)
    preds = []
    if filters.segments:
        preds.append(t.customer_segment.isin(list(filters.segments)))
    if filters.details is not None:
        preds.append(t.product_details_viewed == filters.details)
    for column, rng in filters.ranges:
        if rng.lo is not None:
            preds.append(t[column] >= rng.lo)
        if rng.hi is not None:
            preds.append(t[column] <= rng.hi)
    return where_all(t, preds)


def _customers(filters: CustomerFilters) -> ibis.Table:
    return customer_filter(table(CUSTOMERS), clamp_customer_filters(filters, []))


def _rows(t: ibis.Table, columns: tuple[str, ...], order: str, limit: int | None) -> pd.DataFrame:
    ranked = t.select(*columns).order_by(order)
    return to_frame(ranked.limit(limit) if limit else ranked)


def cart_rows(filters: CartFilters, limit: int | None = None) -> pd.DataFrame:
    """The sessions under ``filters``, by session id (``limit=None``: all)."""
    require_rows(SESSION_ROWS_NOTE)
    return _rows(_sessions(filters), SESSION_ROW_COLUMNS, "session_id", limit)


def cart_row_count(filters: CartFilters) -> int:
    require_rows(SESSION_ROWS_NOTE)
    t = _sessions(filters)
    return int(first_row(t.aggregate(n=t.count()))["n"])


def customer_rows(filters: CustomerFilters, limit: int | None = None) -> pd.DataFrame:
    """The customers under ``filters``, by customer id (``limit=None``: all)."""
    require_rows()
    return _rows(_customers(filters), CUSTOMER_ROW_COLUMNS, "customer_id", limit)


def customer_row_count(filters: CustomerFilters) -> int:
    require_rows()
    t = _customers(filters)
    return int(first_row(t.aggregate(n=t.count()))["n"])
