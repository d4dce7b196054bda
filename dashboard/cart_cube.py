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
selecting in its chart) cannot be answered from the cube; dashboard/queries/carts.py then builds
the same shapes from the sessions themselves: with numpy over the session columns held per
release and host (:mod:`dashboard.held_sessions`, :func:`build_held`: ~0.5 ms at 4,158 sessions),
else in the warehouse (:func:`build` with ``ranges``: exact, slower on big data: building and
compiling the Ibis expressions alone costs ~60 ms per change).

The cube is shared by the gunicorn workers through the query cache and kept in each worker's
memory for its data version: it is derived data, never per-user state. So it (and the held
sessions) is built from every session (``table(SESSIONS, scoped=False)``), and a user limited
to some customer types is answered from it by the queries of dashboard/queries/carts.py, which
mask every slice to those types (:func:`dashboard.auth.scoping.cart_segments`).
"""
from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import ibis
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dashboard.bins import Bins, cart_bins
from dashboard.cache import build_lock, memoized
from dashboard.filters import CART_CUBE_RANGES
from dashboard.held_sessions import FLAGS, OTHER_BEHAVIOURS, HeldSessions
from dashboard.release import pinned
from dashboard.source import table
from etl.schema import SESSIONS


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
    it, except that a behaviour's own histogram ignores its own range.

    With ranges, each histogram is its own filtered group-by. Measured slower on 10 M synthetic
    sessions (2 shared, loaded cores; this way: 2.4 s): one UNION ALL over a subquery that
    computes the range flags once (3.6 s), the same with GROUPING SETS (3.6–5.5 s), and that
    subquery materialised as a temporary table first (3.6–3.9 s)."""
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


def build_held(held: HeldSessions, ranges: dict[str, tuple[int, int | None]]) -> Cube:
    """:func:`build` with ``ranges`` (behaviour of OTHER_BEHAVIOURS -> inclusive bounds, open
    top when None) over held sessions: the same rows, columns and dtypes, in another order.

    Rows are picked by index (``take``), each distinct selection computed once: on 10 M
    sessions a boolean-mask gather took ~42 ms, finding the indices 5 ms and a take 3 ms. The
    sessions and the four funnel counts per cell come from one count per (cell, stages reached),
    and the arithmetic stays in the keys' 32 bits when the key space allows: fewer passes over
    the rows, and half the temporary memory."""
    inside = {c: (held.values[c] >= lo) & (True if hi is None else held.values[c] <= hi)
              for c, (lo, hi) in ranges.items()}
    rows, key = _picked(held, inside)
    space, combos = math.prod(held.sizes), 1 << len(FLAGS)
    found, counts = _tally(_widened(key, space * combos) * combos + held.stages.take(rows), space * combos)
    present, cell = np.unique(found // combos, return_inverse=True)   # found is sorted: cells ascend
    cells = _decode(present, held.sizes, CELL_NAMES)
    cells["n"] = np.bincount(cell, weights=counts, minlength=present.size).astype(np.int64)
    cells["items_sum"] = np.bincount(key, weights=held.items.take(rows))[present].astype(np.int64)
    for bit, measure in enumerate(FLAGS):
        reached = (found % combos) >> bit & 1
        cells[measure] = np.bincount(cell, weights=counts * reached, minlength=present.size).astype(np.int64)
    parts = []
    for index, behaviour in enumerate(OTHER_BEHAVIOURS):
        # a behaviour's histogram ignores its own range; the others share the rows of the cells
        mine = (rows, key) if behaviour not in inside else _picked(held, inside, behaviour)
        width = held.widths[behaviour]
        found, counts = _tally(_widened(mine[1], space * width) * width + held.buckets[behaviour].take(mine[0]),
                               space * width)
        part = _decode(found // width, held.sizes, CELL_NAMES)
        part.update(bucket=(found % width).astype(np.int32), n=counts.astype(np.int64),
                    behaviour=np.full(found.size, index, dtype=np.int32))
        parts.append(part)
    hist = {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}
    return Cube(cells, hist)


def _widened(key: np.ndarray, space: int) -> np.ndarray:
    """``key`` in a dtype that holds values up to ``space``: its own 32 bits when they do."""
    return key if space < 2**31 and key.dtype.itemsize >= 4 else key.astype(np.int64)


def _picked(held: HeldSessions, inside: dict[str, np.ndarray],
            skip: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Indices and cell keys of the sessions inside every range (but ``skip``'s)."""
    rows = np.flatnonzero(_all((m for c, m in inside.items() if c != skip), held.key.size))
    return rows, held.key.take(rows)


CELL_NAMES = ("customer_segment", "product_details_viewed", *(f"{c}_bucket" for c in CART_CUBE_RANGES), "abandoned")


def _tally(values: np.ndarray, space: int) -> tuple[np.ndarray, np.ndarray]:
    """The distinct non-negative ``values`` (all below ``space``) ascending, and how often each
    occurs. A bincount over the whole space when it is small against the rows; a sort when it
    is not: per behaviour the space is cells x buckets (~470,000 on the real data) against a
    few thousand sessions, and scanning it took most of an off-cube filter change."""
    if space <= 16 * values.size:
        counts = np.bincount(values)
        found = np.flatnonzero(counts)
        return found, counts[found]
    return np.unique(values, return_counts=True)


def _all(masks: Iterable[np.ndarray], size: int) -> np.ndarray:
    keep = np.ones(size, dtype=bool)
    for mask in masks:
        keep &= mask
    return keep


def _decode(key: np.ndarray, sizes: tuple[int, ...], names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Split cell keys back into the cube's dimension columns, with the dtypes Arrow gives them."""
    out = {}
    for name, size in zip(reversed(names), reversed(sizes)):
        digit = key % size
        out[name] = digit.astype(bool) if name in ("product_details_viewed", "abandoned") else digit.astype(np.int32)
        key = key // size
    return {name: out[name] for name in names}


@memoized(shared=True)
def _shared_cube() -> Cube:  # one worker builds it, the others read it from the query cache
    return build(table(SESSIONS, scoped=False))   # every session: shared, masked per scope by the queries


def cube() -> Cube:
    """This process's copy of the cube of the pinned release (one worker of the host builds
    it, the others wait and read it from the query cache)."""
    def shared() -> Cube:
        with build_lock("cart-cube"):
            return _shared_cube()

    return pinned().derived("cart-cube", shared)
