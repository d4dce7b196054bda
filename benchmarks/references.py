"""The carts page's aggregates computed two other ways, on the same filters, as references.

What the carts page shows after a filter change (dashboard/pages/carts.py ``render``):

* ``outcomes``: per outcome (abandoned or not) the sessions, the funnel counts (items added > 0,
  cart viewed > 0, checkout initiated > 0, confirmed > 0) and the items added, under every
  filter; ``base``: the same without filters (the KPI deltas);
* ``segment`` / ``details``: sessions per customer type / per "product details viewed" and
  outcome, under every filter except that one;
* ``hist:<behaviour>``: for each of the eight behaviours, sessions per bucket and outcome,
  under every filter except that behaviour's own range.

:func:`sql_query` writes them as hand-written DuckDB SQL over the ``sessions`` table (one
statement, ``UNION ALL`` of the group-bys: one round trip; the floor), :func:`pandas_aggregates`
computes them with pandas on a DataFrame of the sessions held in memory (the naive peer). Both
return the same canonical form — ``{(part, key, abandoned): (n, ...)}`` without empty groups — so
they can be checked against each other and against the dashboard's own query functions
(:func:`dashboard_aggregates`).

The filters are read from the page's canonical query string (its url-state store after the
callback: ``segment=0,2&details=yes&items_added=1-3&pages_viewed=2-``), which holds ranges
already widened to whole buckets, so a range on values equals the dashboard's range on buckets.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qs

import numpy as np
import pandas as pd

RANGE_COLUMNS = ("session_activity_count", "items_added", "items_removed", "cart_views",
                 "checkout_initiated", "cart_item_views", "customer_logins", "pages_viewed")
MEASURES = ("n", "added", "cart_viewed", "initiated", "confirmed", "items_sum")
FRAME_COLUMNS = ("product_details_viewed", "customer_segment", "abandoned", "checkout_confirmed", *RANGE_COLUMNS)
TABLE = "sessions"


@dataclass(frozen=True)
class Spec:
    segments: tuple[int, ...] = ()
    details: bool | None = None
    ranges: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)

    @classmethod
    def from_query(cls, text: str | None) -> Spec:
        query = {k: v[-1] for k, v in parse_qs((text or "").lstrip("?")).items()}
        segments = tuple(sorted(int(s) for s in query.get("segment", "").split(",") if s.strip().isdigit()))
        details = {"yes": True, "no": False}.get(query.get("details", ""))
        ranges = {}
        for column in RANGE_COLUMNS:
            if column in query:
                lo, _, hi = query[column].partition("-")
                ranges[column] = (float(lo) if lo else None, float(hi) if hi else None)
        return cls(segments, details, ranges)

    def key(self) -> tuple:
        return self.segments, self.details, tuple(sorted(self.ranges.items()))


# --- DuckDB SQL -----------------------------------------------------------------------------


def _where(spec: Spec, skip: str | None) -> str:
    conds = []
    if spec.segments and skip != "segment":
        conds.append(f"customer_segment IN ({', '.join(str(s) for s in spec.segments)})")
    if spec.details is not None and skip != "details":
        conds.append(f"product_details_viewed = {'true' if spec.details else 'false'}")
    for column, (lo, hi) in spec.ranges.items():
        if column == skip:
            continue
        if lo is not None:
            conds.append(f"{column} >= {lo:g}")
        if hi is not None:
            conds.append(f"{column} <= {hi:g}")
    return " AND ".join(conds) if conds else "true"


def _bucket_sql(column: str, edges: tuple[int, ...]) -> str:
    whens = " ".join(f"WHEN {column} < {edge} THEN {i}" for i, edge in enumerate(edges[1:]))
    return f"CASE {whens} ELSE {len(edges) - 1} END" if whens else "0"


_FUNNEL = ("count(*) AS n, count(*) FILTER (WHERE items_added > 0) AS added, "
           "count(*) FILTER (WHERE cart_views > 0) AS cart_viewed, "
           "count(*) FILTER (WHERE checkout_initiated > 0) AS initiated, "
           "count(*) FILTER (WHERE checkout_confirmed > 0) AS confirmed, "
           "CAST(sum(items_added) AS BIGINT) AS items_sum")
_COUNT = "count(*) AS n, NULL, NULL, NULL, NULL, NULL"


def sql_query(spec: Spec, edges: dict[str, tuple[int, ...]]) -> str:
    parts = [
        f"SELECT 'outcomes' AS part, -1 AS k, abandoned, {_FUNNEL} FROM {TABLE} WHERE {_where(spec, None)} GROUP BY abandoned",
        f"SELECT 'base', -1, abandoned, {_FUNNEL} FROM {TABLE} GROUP BY abandoned",
        f"SELECT 'segment', customer_segment, abandoned, {_COUNT} FROM {TABLE} WHERE {_where(spec, 'segment')} GROUP BY 2, 3",
        f"SELECT 'details', CAST(product_details_viewed AS INTEGER), abandoned, {_COUNT} FROM {TABLE} "
        f"WHERE {_where(spec, 'details')} GROUP BY 2, 3",
    ]
    for column in RANGE_COLUMNS:
        parts.append(f"SELECT 'hist:{column}', {_bucket_sql(column, edges[column])}, abandoned, {_COUNT} "
                     f"FROM {TABLE} WHERE {_where(spec, column)} GROUP BY 2, 3")
    return "\nUNION ALL\n".join(parts)


def sql_aggregates(con, spec: Spec, edges: dict[str, tuple[int, ...]]) -> dict:
    rows = con.execute(sql_query(spec, edges)).fetchall()
    return {(part, int(k), bool(ab)): tuple(int(v) for v in values if v is not None)
            for part, k, ab, *values in rows if values[0]}


# --- pandas ---------------------------------------------------------------------------------


def load_frame(con) -> pd.DataFrame:
    """The sessions table's columns the page uses (not the text id), as numpy-backed pandas."""
    return con.execute(f"SELECT {', '.join(FRAME_COLUMNS)} FROM {TABLE}").df()


def pandas_aggregates(df: pd.DataFrame, spec: Spec, edges: dict[str, tuple[int, ...]]) -> dict:
    masks: dict[str, pd.Series] = {}
    if spec.segments:
        masks["segment"] = df["customer_segment"].isin(spec.segments)
    if spec.details is not None:
        masks["details"] = df["product_details_viewed"] == spec.details
    for column, (lo, hi) in spec.ranges.items():
        m = pd.Series(True, index=df.index)
        if lo is not None:
            m &= df[column] >= lo
        if hi is not None:
            m &= df[column] <= hi
        masks[column] = m

    def rows(skip: str | None) -> pd.DataFrame:
        chosen = [m for key, m in masks.items() if key != skip]
        if not chosen:
            return df
        mask = chosen[0]
        for m in chosen[1:]:
            mask = mask & m
        return df[mask]

    def funnel(sub: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({"abandoned": sub["abandoned"], "n": 1, "added": sub["items_added"] > 0,
                             "cart_viewed": sub["cart_views"] > 0, "initiated": sub["checkout_initiated"] > 0,
                             "confirmed": sub["checkout_confirmed"] > 0,
                             "items_sum": sub["items_added"].astype("int64")}).groupby("abandoned").sum()

    out = {}
    for part, sub in (("outcomes", rows(None)), ("base", df)):
        for ab, values in funnel(sub).iterrows():
            out[(part, -1, bool(ab))] = tuple(int(values[m]) for m in MEASURES)
    for part, column, skip in (("segment", "customer_segment", "segment"),
                               ("details", "product_details_viewed", "details")):
        sub = rows(skip)
        for (k, ab), n in sub.groupby([sub[column].astype("int64"), "abandoned"]).size().items():
            out[(part, int(k), bool(ab))] = (int(n),)
    for column in RANGE_COLUMNS:
        sub = rows(column)
        e = np.asarray(edges[column])
        bucket = np.clip(np.searchsorted(e, sub[column].to_numpy(), side="right") - 1, 0, len(e) - 1)
        for (k, ab), n in sub.groupby([bucket, sub["abandoned"].to_numpy()]).size().items():
            out[(f"hist:{column}", int(k), bool(ab))] = (int(n),)
    return {k: v for k, v in out.items() if v[0]}


# --- the dashboard's own answer ------------------------------------------------------------


def dashboard_aggregates(state: str) -> dict:
    """The same aggregates from the dashboard's query functions (for the consistency check)."""
    from dashboard.filters import CartFilters, parse_cart_filters, query_dict
    from dashboard.queries import cart_by_details, cart_by_segment, cart_distributions, cart_outcomes

    filters, _ = parse_cart_filters(query_dict(state))
    out = {}
    for part, frame in (("outcomes", cart_outcomes(filters)), ("base", cart_outcomes(CartFilters()))):
        for row in frame.itertuples(index=False):
            out[(part, -1, bool(row.abandoned))] = tuple(int(getattr(row, m)) for m in MEASURES)
    for row in cart_by_segment(filters).itertuples(index=False):
        out[("segment", int(row.customer_segment), bool(row.abandoned))] = (int(row.n),)
    for row in cart_by_details(filters).itertuples(index=False):
        out[("details", int(row.product_details_viewed), bool(row.abandoned))] = (int(row.n),)
    for row in cart_distributions(filters).itertuples(index=False):
        out[(f"hist:{row.behaviour}", int(row.bucket), bool(row.abandoned))] = (int(row.n),)
    return {k: v for k, v in out.items() if v[0]}


def differences(a: dict, b: dict, limit: int = 5) -> list[str]:
    keys = sorted(set(a) | set(b), key=str)
    return [f"{k}: {a.get(k)} vs {b.get(k)}" for k in keys if a.get(k) != b.get(k)][:limit]
