"""The cart sessions, pre-aggregated once per data version so a filter change stays fast.

Why: on 10 M sessions one filtered group-by takes 50–200 ms on two cores, and the Carts page
needs about ten of them (KPIs, funnel, one distribution per behaviour). So the warehouse
aggregates the sessions once per data version (an Ibis group-by, run where the data lives)
over the dimensions the filter panel offers — customer type, product details viewed, and
buckets of items added, pages viewed and session activity — plus outcome:

* ``cells``: one row per combination, with session counts and the sums the KPIs need;
* ``hist``: the same combinations × the bucket of each other behaviour, with counts.

These hold tens of thousands to a few hundred thousand rows whatever the size of the
warehouse. A filter change then slices them with numpy in a few milliseconds (a round trip
through Ibis costs ~20 ms of compiling per question, and the page asks several).
Ranges on the cube's dimensions snap to whole buckets. A range on another behaviour (chosen by
selecting in its chart) cannot be answered from the cube; queries.py then builds the same
shapes from the sessions table directly (exact, slower on big data).

The cube is shared by the gunicorn workers through the query cache and kept in each worker's
memory for its data version: it is derived data, never per-user state.
"""
from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

import ibis
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dashboard.cache import build_lock, memoized
from dashboard.filters import CART_CUBE_RANGES, CART_RANGE_COLUMNS, Range
from dashboard.release import pinned
from dashboard.source import table
from etl.schema import SESSIONS

OTHER_BEHAVIOURS = tuple(c for c in CART_RANGE_COLUMNS if c not in CART_CUBE_RANGES)
# Bucket edges for counts: one bucket per value up to 6 (0 vs 1 item matters most), then
# roughly logarithmic, so a long tail does not flatten the informative low end.
CANDIDATE_EDGES = (0, 1, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30, 50, 100, 200, 500, 1000, 2000, 5000, 10000)


@dataclass(frozen=True)
class Bins:
    """Buckets of a count: bucket i holds edges[i] .. edges[i+1]-1; the last is open above."""

    edges: tuple[int, ...]

    @property
    def last(self) -> int:
        return len(self.edges) - 1

    def expr(self, column: ibis.Value) -> ibis.Value:
        # a CASE chain: small values (the common case) stop at the first branches
        branches = [(column < edge, i) for i, edge in enumerate(self.edges[1:])]
        return ibis.cases(*branches, else_=self.last).cast("int32")

    def bounds(self, index: int) -> tuple[int, int | None]:
        lo = self.edges[index]
        return lo, None if index >= self.last else self.edges[index + 1] - 1

    def label(self, index: int) -> str:
        lo, hi = self.bounds(index)
        if hi is None:
            return f"≥{lo}"
        return str(lo) if lo == hi else f"{lo}–{hi}"

    def range_text(self, index: int) -> str:
        return self.label(index)

    def index_of(self, value: float) -> int:
        return max(0, bisect.bisect_right(self.edges, value) - 1)

    def indices(self, rng: Range) -> tuple[int, int]:
        """Bucket indices covering ``rng`` (snapped outwards to whole buckets)."""
        lo = 0 if rng.lo is None else self.index_of(rng.lo)
        hi = self.last if rng.hi is None else self.index_of(math.floor(rng.hi))
        return lo, max(lo, hi)

    def snapped(self, rng: Range) -> Range:
        lo, hi = self.indices(rng)
        top = self.bounds(hi)[1]
        return Range(float(self.edges[lo]), None if top is None else float(top))


def cart_bins() -> dict[str, Bins]:
    """Bucket edges per behaviour up to its maximum (a maximum is instant from column
    statistics, a percentile takes seconds on 10 M rows); the log-like edges keep the tail to
    a few buckets.

    Held with the release, like the cube (a filter change asks for them about ten times; a
    query each would cost more than the rest of the change): a refreshed warehouse is a new
    release, so its bins are recomputed, never served stale or mixed with another's cube."""
    return pinned().derived("cart-bins", _shared_cart_bins)


@memoized()
def _shared_cart_bins() -> dict[str, Bins]:  # computed once, shared through the query cache
    t = table(SESSIONS)
    stats = _row(t.aggregate(**{c: t[c].max() for c in CART_RANGE_COLUMNS}))
    return {column: Bins(tuple(e for e in CANDIDATE_EDGES if e <= max(1, int(stats[column] or 0))))
            for column in CART_RANGE_COLUMNS}


def _row(expr: ibis.Table) -> dict:
    return expr.to_pyarrow().to_pylist()[0]


def dimensions(t: ibis.Table, bins: dict[str, Bins]) -> dict[str, ibis.Value]:
    return {"customer_segment": t.customer_segment, "product_details_viewed": t.product_details_viewed,
            **{f"{c}_bucket": bins[c].expr(t[c]) for c in CART_CUBE_RANGES}, "abandoned": t.abandoned}


def cells_expr(t: ibis.Table, bins: dict[str, Bins]) -> ibis.Table:
    """Sessions of ``t`` grouped by the cube's dimensions, with what the KPIs and funnel need."""
    return t.group_by(**dimensions(t, bins)).aggregate(
        n=t.count(), items_sum=t.items_added.sum().cast("int64"),
        added=t.count(where=t.items_added > 0), cart_viewed=t.count(where=t.cart_views > 0),
        initiated=t.count(where=t.checkout_initiated > 0), confirmed=t.count(where=t.checkout_confirmed > 0),
    )


@dataclass(frozen=True)
class Cube:
    """Columns of ``cells`` and ``hist`` as numpy arrays (hist's behaviour as an index into
    OTHER_BEHAVIOURS), ready for vectorised slicing."""

    cells: dict[str, np.ndarray]
    hist: dict[str, np.ndarray]

    @classmethod
    def from_arrow(cls, cells: pa.Table, hist: pa.Table) -> Cube:
        hist_columns = {name: hist[name].to_numpy() for name in hist.column_names if name != "behaviour"}
        hist_columns["behaviour"] = pc.index_in(hist["behaviour"], value_set=pa.array(OTHER_BEHAVIOURS)).to_numpy()
        return cls({name: cells[name].to_numpy() for name in cells.column_names}, hist_columns)


def build(t: ibis.Table, ranges: dict[str, ibis.Value] | None = None) -> Cube:
    """The cube of the sessions in ``t``; ``ranges`` (behaviour -> predicate on ``t``) filter
    it, except that a behaviour's own histogram ignores its own range."""
    bins, ranges = cart_bins(), ranges or {}
    dims = dimensions(t, bins)
    cells = cells_expr(t.filter(*ranges.values()) if ranges else t, bins).to_pyarrow()
    if ranges:
        parts = []
        for b in OTHER_BEHAVIOURS:
            others = [pred for column, pred in ranges.items() if column != b]
            part = t.filter(*others) if others else t
            parts.append(part.group_by(**dimensions(part, bins), bucket=bins[b].expr(part[b]))
                         .aggregate(n=part.count()).mutate(behaviour=ibis.literal(b)))
    else:
        # every bucket computed once in a shared subquery that the five group-bys read (DuckDB
        # materialises it): one scan of the sessions instead of five, ~3x faster on 10 M rows
        base = t.select(**dims, **{f"{b}__bucket": bins[b].expr(t[b]) for b in OTHER_BEHAVIOURS})
        parts = [base.group_by(*dims, bucket=base[f"{b}__bucket"]).aggregate(n=base.count())
                 .mutate(behaviour=ibis.literal(b)) for b in OTHER_BEHAVIOURS]
    return Cube.from_arrow(cells, ibis.union(*parts).to_pyarrow())


@memoized()
def _shared_cube() -> Cube:  # one worker builds it, the others read it from the query cache
    return build(table(SESSIONS))


def cube() -> Cube:
    """This process's copy of the cube of the pinned release (one worker of the host builds
    it, the others wait and read it from the query cache)."""
    def shared() -> Cube:
        with build_lock("cart-cube"):
            return _shared_cube()

    return pinned().derived("cart-cube", shared)
