"""Carts page questions, answered from the pre-aggregated cube (dashboard/cart_cube.py).

A filter change slices the cube's numpy columns (milliseconds); a range on a behaviour outside
the cube's dimensions builds the same shapes from the sessions instead: from the columns held in
this process when the table is small (milliseconds), else in the warehouse (seconds on 10 M).

The cube and the held sessions hold every session (they are shared by all users); a user
limited to some customer types is answered through :func:`_mask` and :func:`_summary_keep`,
which keep only those types in every slice, whatever filter (or crafted request) asks for
others — even the charts that leave the user's own customer-type filter out. A user whose
scope hides cart sessions gets :class:`~dashboard.auth.scoping.Forbidden` from the same place.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from dashboard.auth.scoping import cart_segments, clamp_cart_filters
from dashboard.bins import Bins, cart_bins, label_buckets
from dashboard.cache import memoized
from dashboard.cart_cube import Cube, build, build_held, cube
from dashboard.held_sessions import OTHER_BEHAVIOURS, held_sessions
from dashboard.filters import CART_CUBE_RANGES, CartFilters
from dashboard.language import N_
from dashboard.queries.answers import ratio
from dashboard.source import table
from etl.schema import SESSIONS

# stage names translated where shown (figures.funnel)
FUNNEL_STAGES = (("n", N_("Sessions")), ("added", N_("Added to cart")), ("cart_viewed", N_("Viewed cart")),
                 ("initiated", N_("Checkout initiated")), ("confirmed", N_("Checkout confirmed")))


def _cart_cube(filters: CartFilters) -> Cube:
    """The cube, or — when a range is set on a behaviour that is not one of its dimensions —
    the same shapes aggregated from the sessions under those ranges."""
    extra = tuple((c, r) for c, r in filters.ranges if c not in CART_CUBE_RANGES)
    if not extra:
        return cube()
    held = held_sessions()
    if held is None:
        return _direct_cube(CartFilters(ranges=extra))
    # not memoized: ~3 ms of numpy, less than a round trip through the shared cache
    return build_held(held, _bounds(extra))


def _bounds(ranges: tuple) -> dict[str, tuple[int, int | None]]:
    """Each range snapped to whole buckets, as the inclusive integer bounds both paths filter by."""
    bins, out = cart_bins(), {}
    for column, rng in ranges:
        snapped = bins[column].snapped(rng)
        out[column] = (int(snapped.lo or 0), None if snapped.hi is None else int(snapped.hi))
    return out


@memoized(shared=True)
def _direct_cube(extra: CartFilters) -> Cube:
    # every session, like the cube: one answer per range for all users, masked per scope
    t, preds = table(SESSIONS, scoped=False), {}
    for column, (lo, hi) in _bounds(extra.ranges).items():
        preds[column] = t[column] >= lo if hi is None else (t[column] >= lo) & (t[column] <= hi)
    return build(t, preds)


def _in_scope(segment: np.ndarray) -> np.ndarray:
    """Rows of the customer types the current user may see: never skipped, whatever the
    chart (Forbidden when the user's scope hides cart sessions)."""
    allowed = cart_segments()
    if allowed is None:
        return np.ones(len(segment), dtype=bool)
    return np.isin(segment, allowed)


def _mask(columns: dict[str, np.ndarray], filters: CartFilters, skip: str | None = None,
          bins: dict[str, Bins] | None = None) -> np.ndarray:
    """Rows of a cube table inside the cube-dimension filters, except ``skip``."""
    bins = bins or cart_bins()
    keep = _in_scope(columns["customer_segment"])
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


def _summary_keep(rows: pd.DataFrame, filters: CartFilters, skip: str | None = None) -> np.ndarray:
    """Rows of :func:`_cart_summary` inside the segment and details filters, except ``skip``
    (a numpy mask: boolean-indexing the frame cost more than the sums read off it)."""
    keep = _in_scope(rows["customer_segment"].to_numpy())
    if filters.segments and skip != "segment":
        keep &= np.isin(rows["customer_segment"].to_numpy(), filters.segments)
    if filters.details is not None and skip != "details":
        keep &= rows["product_details_viewed"].to_numpy() == filters.details
    return keep


def cart_outcomes(filters: CartFilters, summary: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per outcome: sessions and the funnel counts (columns of FUNNEL_STAGES), items.
    ``summary``: :func:`_cart_summary` of ``filters``, when the caller already has it."""
    rows = _cart_summary(filters) if summary is None else summary
    keep = _summary_keep(rows, filters)
    bad = rows["abandoned"].to_numpy()[keep]
    # both outcomes always present, so figures and KPIs need no special case
    sums = {m: np.array([(v := rows[m].to_numpy()[keep])[~bad].sum(), v[bad].sum()], dtype=np.int64)
            for m in SUMMARY_MEASURES}
    return pd.DataFrame({"abandoned": np.array([False, True]), **sums})


def cart_kpis(outcomes: pd.DataFrame) -> dict:
    """Headline numbers from :func:`cart_outcomes` (no query; numpy sums: pandas' cost more
    than the rest of the function on these two rows)."""
    total = {m: outcomes[m].to_numpy().sum() for m in ("n", "items_sum", "confirmed", "initiated")}
    abandoned = int(outcomes["n"].to_numpy()[outcomes["abandoned"].to_numpy().astype(bool)].sum())
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
    return _by(filters, summary, "customer_segment", skip="segment")


def cart_by_details(filters: CartFilters, summary: pd.DataFrame | None = None) -> pd.DataFrame:
    return _by(filters, summary, "product_details_viewed", skip="details")


def _by(filters: CartFilters, summary: pd.DataFrame | None, category: str, skip: str) -> pd.DataFrame:
    """Sessions per ``category`` and outcome, sorted by both: the group-by of the summary's
    ≤ 12 rows done with numpy (a pandas group-by cost ~1 ms here)."""
    rows = _cart_summary(filters) if summary is None else summary
    keep = _summary_keep(rows, filters, skip=skip)
    values = rows[category].to_numpy()[keep]
    key = values.astype(np.int64) * 2 + rows["abandoned"].to_numpy()[keep]
    found, group = np.unique(key, return_inverse=True)
    n = np.bincount(group, weights=rows["n"].to_numpy()[keep], minlength=found.size).astype(np.int64)
    return pd.DataFrame({category: (found // 2).astype(values.dtype), "abandoned": (found % 2).astype(bool), "n": n})


def _histogram(bucket: np.ndarray, abandoned: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Non-empty (bucket × 2 + outcome) keys, ascending, and their counts."""
    key = bucket.astype(np.int64) * 2 + abandoned.astype(np.int64)
    counts = np.bincount(key, weights=n, minlength=0) if key.size else np.zeros(0)
    present = np.flatnonzero(counts)
    return present, counts[present].astype(np.int64)


def cart_distributions(filters: CartFilters, data: Cube | None = None,
                       bins: dict[str, Bins] | None = None) -> pd.DataFrame:
    """behaviour, bucket, lo, hi, label, abandoned, n — one histogram per behaviour.

    A behaviour's own range is left out of its histogram, so its chart still shows what
    lies outside the selection (the selected buckets are highlighted instead).
    """
    data, bins = data or _cart_cube(filters), bins or cart_bins()
    parts = {}
    for column in CART_CUBE_RANGES:
        keep = _mask(data.cells, filters, skip=column, bins=bins)
        parts[column] = _histogram(data.cells[f"{column}_bucket"][keep], data.cells["abandoned"][keep],
                                   data.cells["n"][keep])
    keep = _mask(data.hist, filters, bins=bins)
    for index, behaviour in enumerate(OTHER_BEHAVIOURS):
        mine = keep & (data.hist["behaviour"] == index)
        parts[behaviour] = _histogram(data.hist["bucket"][mine], data.hist["abandoned"][mine], data.hist["n"][mine])
    if not any(key.size for key, _ in parts.values()):   # nothing selected: the generic labelling path
        # (a scalar behaviour, as the per-behaviour frames had: pandas infers the same dtype)
        return label_buckets(pd.DataFrame({"behaviour": "", "bucket": np.zeros(0, np.int64),
                                           "abandoned": np.zeros(0, bool), "n": np.zeros(0, np.int64)}), bins)
    # what label_buckets(pd.concat(...)) gives, without the frames per behaviour, the sort and
    # the per-row Series iteration: behaviours by name (label_buckets' sort order), each
    # histogram already ascending by bucket and outcome
    order = sorted(parts)
    key = np.concatenate([parts[b][0] for b in order])
    names = [b for b in order for _ in range(parts[b][0].size)]
    buckets = (key // 2).tolist()
    bounds = [bins[b].bounds(i) for b, i in zip(names, buckets)]
    labels = [bins[b].label(i) for b, i in zip(names, buckets)]
    return pd.DataFrame({"behaviour": names, "bucket": key // 2, "abandoned": (key % 2).astype(bool),
                         "n": np.concatenate([parts[b][1] for b in order]),
                         "lo": [lo for lo, _ in bounds], "hi": [hi for _, hi in bounds], "label": labels,
                         "range_text": labels})   # a cart bucket's range text is its label (Bins.range_text)


def cart_page(filters: CartFilters) -> dict:
    """Everything the Carts page asks for ``filters``, with the bins, the cube and the summary
    each computed once: effective filters, outcomes, the unfiltered outcomes (baseline),
    by segment, by details, distributions."""
    bins = cart_bins()
    filters = clamp_cart_filters(filters, [])   # the page has said what it dropped; idempotent
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

