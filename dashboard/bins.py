"""The buckets every histogram, slider and range filter of the dashboard is cut into.

Two kinds, one place: :class:`Bins` for cart behaviours (counts with a long tail: unit buckets
at the low end, then log-like edges, the last open above) and :class:`CustomerBins` for
customer features (unit steps for small integer scales, else equal "nice" widths). Both answer
``bounds``, ``label`` and ``range_text`` per bucket index, so :func:`label_buckets` labels any
histogram. Edges depend on the data (maxima, minima), so both sets are computed per release,
over every row (``table(name, scoped=False)``): the buckets are shared by every user, so a
user limited to a scope sees the same buckets, with only the counts inside the scope.

Labels are written in the reader's number format (``1 250``), so they are made per request:
a cached (memoized) answer holds buckets, never their labels.
"""
from __future__ import annotations

import bisect
import functools
import math
from dataclasses import dataclass

import ibis
import pandas as pd

from dashboard.cache import memoized
from dashboard.filters import CART_RANGE_COLUMNS, CUSTOMER_RANGE_COLUMNS, Range
from dashboard import i18n
from dashboard.language import current_lang
from dashboard.release import pinned
from dashboard.source import table
from etl.schema import CUSTOMERS, CUSTOMERS_COLUMNS, SESSIONS

# Bucket edges for counts: one bucket per value up to 6 (0 vs 1 item matters most), then
# roughly logarithmic, so a long tail does not flatten the informative low end.
CANDIDATE_EDGES = (0, 1, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30, 50, 100, 200, 500, 1000, 2000, 5000, 10000)
CUSTOMER_BUCKETS = 20


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
            return f"≥{number(lo)}"
        return number(lo) if lo == hi else f"{number(lo)}–{number(hi)}"

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


@dataclass(frozen=True)
class CustomerBins:
    """Buckets of a customer feature: unit steps for small integer scales, else equal widths."""

    start: float
    width: float
    count: int
    integer: bool
    low: float    # observed minimum and maximum, for sliders
    high: float

    def expr(self, column: ibis.Value) -> ibis.Value:
        return ((column - self.start) / self.width).floor().clip(lower=0, upper=self.count - 1).cast("int32")

    def bounds(self, index: int) -> tuple[float, float]:
        lo = self.start + index * self.width
        return lo, lo + self.width - (1 if self.integer and self.width >= 1 else 0)

    @property
    def digits(self) -> int:
        return 0 if self.width >= 1 else -math.floor(math.log10(self.width))

    def label(self, index: int) -> str:
        """Short axis label: the bucket's lower edge (integers: the whole range)."""
        lo, hi = self.bounds(index)
        if self.integer and self.width >= 1:
            return number(lo, 0) if lo == hi else f"{number(lo, 0)}–{number(hi, 0)}"
        return number(lo, self.digits)

    def range_text(self, index: int) -> str:
        lo, hi = self.bounds(index)
        if self.integer and self.width >= 1:
            return self.label(index)
        return f"{number(lo, self.digits)}–{number(hi, self.digits)}"


@functools.lru_cache(maxsize=8192)
def _formatted(lang: str, value: float, digits: int | None) -> str:
    return i18n.format_number(value, lang, digits)


def number(value: float, digits: int | None = None) -> str:
    """``value`` in the reader's format; cached, as a page labels a few thousand buckets with a
    few hundred distinct edges (Babel takes ~20 µs a number)."""
    return _formatted(current_lang(), value, digits)


def cart_bins() -> dict[str, Bins]:
    """Bucket edges per behaviour up to its maximum (a maximum is instant from column
    statistics, a percentile takes seconds on 10 M rows); the log-like edges keep the tail to
    a few buckets.

    Held with the release, like the cube (a filter change asks for them about ten times; a
    query each would cost more than the rest of the change): a refreshed warehouse is a new
    release, so its bins are recomputed, never served stale or mixed with another's cube."""
    return pinned().derived("cart-bins", _shared_cart_bins)


@memoized(shared=True)
def _shared_cart_bins() -> dict[str, Bins]:  # computed once, shared through the query cache
    t = table(SESSIONS, scoped=False)        # release-level: the same buckets for every user
    stats = _row(t.aggregate(**{c: t[c].max() for c in CART_RANGE_COLUMNS}))
    return {column: Bins(tuple(e for e in CANDIDATE_EDGES if e <= max(1, int(stats[column] or 0))))
            for column in CART_RANGE_COLUMNS}


@memoized(shared=True)
def customer_bins() -> dict[str, CustomerBins]:
    t = table(CUSTOMERS, scoped=False)       # release-level: the same buckets for every user
    stats = _row(t.aggregate(**{f"{c}__min": t[c].min() for c in CUSTOMER_RANGE_COLUMNS},
                             **{f"{c}__max": t[c].max() for c in CUSTOMER_RANGE_COLUMNS}))
    bins = {}
    for column in CUSTOMER_RANGE_COLUMNS:
        lo, hi = float(stats[f"{column}__min"] or 0), float(stats[f"{column}__max"] or 0)
        integer = CUSTOMERS_COLUMNS[column] in ("INTEGER", "BIGINT")
        if integer and hi - lo < 2 * CUSTOMER_BUCKETS:
            width = 1.0 if hi - lo < CUSTOMER_BUCKETS else 2.0
        else:
            width = _nice((hi - lo) / CUSTOMER_BUCKETS) if hi > lo else 1.0
            lo = math.floor(lo / width) * width
        count = max(1, int(math.floor((hi - lo) / width)) + 1)
        bins[column] = CustomerBins(start=lo, width=width, count=count, integer=integer,
                                    low=float(stats[f"{column}__min"] or 0), high=hi)
    return bins


def _nice(step: float) -> float:
    """Round a bin width up to 1, 2, 2.5 or 5 × a power of ten, for readable edges."""
    power = 10 ** math.floor(math.log10(step))
    return next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= step)


def _row(expr: ibis.Table) -> dict:
    return expr.to_pyarrow().to_pylist()[0]


def label_buckets(frame: pd.DataFrame, bins: dict[str, Bins] | dict[str, CustomerBins],
                  outcome: str = "abandoned") -> pd.DataFrame:
    """Add each bucket's bounds, short label and full range text to a histogram frame
    (columns behaviour, bucket, ``outcome``, n)."""
    frame = frame.sort_values(["behaviour", "bucket", outcome]).reset_index(drop=True)
    bounds = [bins[b].bounds(int(i)) for b, i in zip(frame.behaviour, frame.bucket)]
    frame["lo"] = [lo for lo, _ in bounds]
    frame["hi"] = [hi for _, hi in bounds]
    frame["label"] = [bins[b].label(int(i)) for b, i in zip(frame.behaviour, frame.bucket)]
    frame["range_text"] = [bins[b].range_text(int(i)) for b, i in zip(frame.behaviour, frame.bucket)]
    return frame

