"""Carts page questions, answered from the pre-aggregated cube (dashboard/cart_cube.py).

A filter change slices the cube's numpy columns (milliseconds); a range on a behaviour outside
the cube's dimensions builds the same shapes from the sessions table instead (seconds on 10 M).
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from dashboard.bins import Bins, cart_bins, label_buckets
from dashboard.cache import memoized
from dashboard.cart_cube import OTHER_BEHAVIOURS, Cube, build, cube
from dashboard.filters import CART_CUBE_RANGES, CartFilters
from dashboard.queries.answers import ratio
from dashboard.source import table
from etl.schema import SESSIONS

FUNNEL_STAGES = (("n", "Sessions"), ("added", "Added to cart"), ("cart_viewed", "Viewed cart"),
                 ("initiated", "Checkout initiated"), ("confirmed", "Checkout confirmed"))


def _cart_cube(filters: CartFilters) -> Cube:
    """The cube, or — when a range is set on a behaviour that is not one of its dimensions —
    the same shapes aggregated from the sessions under those ranges."""
    extra = tuple((c, r) for c, r in filters.ranges if c not in CART_CUBE_RANGES)
    return _direct_cube(CartFilters(ranges=extra)) if extra else cube()


@memoized()
def _direct_cube(extra: CartFilters) -> Cube:
    t, bins = table(SESSIONS), cart_bins()
    preds = {}
    for column, rng in extra.ranges:
        snapped = bins[column].snapped(rng)
        pred = t[column] >= int(snapped.lo or 0)
        preds[column] = pred if snapped.hi is None else pred & (t[column] <= int(snapped.hi))
    return build(t, preds)


def _mask(columns: dict[str, np.ndarray], filters: CartFilters, skip: str | None = None,
          bins: dict[str, Bins] | None = None) -> np.ndarray:
    """Rows of a cube table inside the cube-dimension filters, except ``skip``."""
    bins = bins or cart_bins()
    keep = np.ones(len(columns["n"]), dtype=bool)
    if filters.segments and skip != "segment":
        keep &= np.isin(columns["customer_segment"], filters.segments)
    if filters.details is not None and skip != "details":
        keep &= columns["product_details_viewed"] == filters.details
    for column in CART_CUBE_RANGES:
        rng = filters.range(column)
        if rng is not None and skip != column:
            lo, hi = bins[column].indices(rng)
            bucket = columns[f"{column}_bucket"]
            keep &= (bucket >= lo) & (bucket <= hi)
    return keep


def effective_cart_filters(filters: CartFilters, bins: dict[str, Bins] | None = None) -> CartFilters:
    """The filters as applied: ranges widened to whole buckets (shown on the chips)."""
    bins = bins or cart_bins()
    out = filters
    for column, rng in filters.ranges:
        out = out.with_range(column, bins[column].snapped(rng))
    return out


SUMMARY_MEASURES = ("n", "added", "cart_viewed", "initiated", "confirmed", "items_sum")


def _cart_summary(filters: CartFilters, data: Cube | None = None,
                  bins: dict[str, Bins] | None = None) -> pd.DataFrame:
    """Sums by customer type × details viewed × outcome (≤ 12 rows) under the range filters:
    outcomes, the segment chart and the details chart are all read off this one aggregate
    (``data``: the cube for ``filters``, when the caller already has it)."""
    cells = (data or _cart_cube(filters)).cells
    keep = _mask(cells, replace(filters, segments=(), details=None), bins=bins)
    segment = cells["customer_segment"][keep].astype(np.int64)
    details = cells["product_details_viewed"][keep].astype(np.int64)
    abandoned = cells["abandoned"][keep].astype(np.int64)
    key = (segment * 2 + details) * 2 + abandoned
    size = int(key.max()) + 1 if key.size else 0
    sums = {m: np.bincount(key, weights=cells[m][keep], minlength=size) for m in SUMMARY_MEASURES}
    present = np.flatnonzero(sums["n"]) if size else np.array([], dtype=np.int64)
    return pd.DataFrame({"customer_segment": present // 4, "product_details_viewed": (present // 2 % 2).astype(bool),
                         "abandoned": (present % 2).astype(bool),
                         **{m: sums[m][present].astype(np.int64) for m in SUMMARY_MEASURES}})


def _summary_rows(filters: CartFilters, skip: str | None = None,
                  summary: pd.DataFrame | None = None) -> pd.DataFrame:
    rows = _cart_summary(filters) if summary is None else summary
    if filters.segments and skip != "segment":
        rows = rows[rows.customer_segment.isin(filters.segments)]
    if filters.details is not None and skip != "details":
        rows = rows[rows.product_details_viewed == filters.details]
    return rows


def cart_outcomes(filters: CartFilters, summary: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per outcome: sessions and the funnel counts (columns of FUNNEL_STAGES), items.
    ``summary``: :func:`_cart_summary` of ``filters``, when the caller already has it."""
    sums = _summary_rows(filters, summary=summary).groupby("abandoned")[list(SUMMARY_MEASURES)].sum()
    # both outcomes always present, so figures and KPIs need no special case
    full = sums.reindex([False, True], fill_value=0).fillna(0).astype("int64")
    return full.rename_axis("abandoned").reset_index()


def cart_kpis(outcomes: pd.DataFrame) -> dict:
    """Headline numbers from :func:`cart_outcomes` (no query)."""
    total = outcomes.sum(numeric_only=True)
    abandoned = int(outcomes.loc[outcomes.abandoned, "n"].sum())
    sessions = int(total["n"])
    return {
        "sessions": sessions,
        "abandonment_rate": ratio(abandoned, sessions),
        "conversion_rate": ratio(sessions - abandoned, sessions),
        "items_per_cart": ratio(total["items_sum"], sessions),
        "checkout_completion": ratio(total["confirmed"], total["initiated"]),
    }


def cart_by_segment(filters: CartFilters, summary: pd.DataFrame | None = None) -> pd.DataFrame:
    """Sessions per customer type and outcome (every other filter applied)."""
    rows = _summary_rows(filters, skip="segment", summary=summary)
    return (rows.groupby(["customer_segment", "abandoned"], as_index=False)["n"].sum()
            .sort_values(["customer_segment", "abandoned"]).reset_index(drop=True))


def cart_by_details(filters: CartFilters, summary: pd.DataFrame | None = None) -> pd.DataFrame:
    rows = _summary_rows(filters, skip="details", summary=summary)
    return (rows.groupby(["product_details_viewed", "abandoned"], as_index=False)["n"].sum()
            .sort_values(["product_details_viewed", "abandoned"]).reset_index(drop=True))


def _histogram(bucket: np.ndarray, abandoned: np.ndarray, n: np.ndarray, behaviour: str) -> pd.DataFrame:
    key = bucket.astype(np.int64) * 2 + abandoned.astype(np.int64)
    counts = np.bincount(key, weights=n, minlength=0) if key.size else np.zeros(0)
    present = np.flatnonzero(counts)
    return pd.DataFrame({"behaviour": behaviour, "bucket": present // 2, "abandoned": (present % 2).astype(bool),
                         "n": counts[present].astype(np.int64)})


def cart_distributions(filters: CartFilters, data: Cube | None = None,
                       bins: dict[str, Bins] | None = None) -> pd.DataFrame:
    """behaviour, bucket, lo, hi, label, abandoned, n — one histogram per behaviour.

    A behaviour's own range is left out of its histogram, so its chart still shows what
    lies outside the selection (the selected buckets are highlighted instead).
    """
    data, bins = data or _cart_cube(filters), bins or cart_bins()
    parts = []
    for column in CART_CUBE_RANGES:
        keep = _mask(data.cells, filters, skip=column, bins=bins)
        parts.append(_histogram(data.cells[f"{column}_bucket"][keep], data.cells["abandoned"][keep],
                                data.cells["n"][keep], column))
    keep = _mask(data.hist, filters, bins=bins)
    for index, behaviour in enumerate(OTHER_BEHAVIOURS):
        mine = keep & (data.hist["behaviour"] == index)
        parts.append(_histogram(data.hist["bucket"][mine], data.hist["abandoned"][mine], data.hist["n"][mine],
                                behaviour))
    return label_buckets(pd.concat(parts, ignore_index=True), bins)


def cart_page(filters: CartFilters) -> dict:
    """Everything the Carts page asks for ``filters``, with the bins, the cube and the summary
    each computed once: effective filters, outcomes, the unfiltered outcomes (baseline),
    by segment, by details, distributions."""
    bins = cart_bins()
    data = _cart_cube(filters)
    summary = _cart_summary(filters, data, bins)
    base = CartFilters()
    return {
        "bins": bins,
        "effective": effective_cart_filters(filters, bins),
        "outcomes": cart_outcomes(filters, summary),
        "base_outcomes": cart_outcomes(base, summary if filters == base else _cart_summary(base, cube(), bins)),
        "by_segment": cart_by_segment(filters, summary),
        "by_details": cart_by_details(filters, summary),
        "distributions": cart_distributions(filters, data, bins),
    }

