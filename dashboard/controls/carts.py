"""The Carts page's controls and charts, declared once, and what each does to the filters.

Outside ``dashboard/pages`` so that the rules import (and are tested) without a Dash app:
pages register themselves with Dash when imported.
"""
from __future__ import annotations

from dataclasses import replace

from dashboard.bins import Bins
from dashboard.crossfilter import Ids, Rules, select_range, toggle_range
from dashboard.filters import (CART_CUBE_RANGES, CART_RANGE_COLUMNS, CartFilters, Range, parse_range,
                               parse_segments, parse_yes_no)
from dashboard import terms
from dashboard.language import _

IDS = Ids("carts")

# The page's controls and charts, declared once: component ids, callback inputs and the
# cross-filter rules all come from these names.
CONTROLS = ("segment", "details", *(f"range-{c}" for c in CART_CUBE_RANGES))
CLICK_CHARTS = ("by-segment", "by-details", *(f"dist-{c}" for c in CART_RANGE_COLUMNS))
SELECT_CHARTS = tuple(f"dist-{c}" for c in CART_RANGE_COLUMNS)
CLEAR_KEYS = frozenset(("segment", "details", *CART_RANGE_COLUMNS))


def slider_value(filters: CartFilters, column: str, bins: Bins) -> list[int]:
    """Slider positions are bucket indices, evenly spaced whatever the bucket widths."""
    rng = filters.range(column)
    return [0, bins.last] if rng is None else list(bins.indices(rng))


def _slider_range(value, column: str, bins: Bins, problems: list[str]) -> Range | None:
    rng = parse_range(value, terms.label(column, _), problems)
    if rng is None:
        return None
    first = max(0, min(bins.last, int(rng.lo or 0)))
    last = bins.last if rng.hi is None else max(first, min(bins.last, int(rng.hi)))
    if first == 0 and last == bins.last:
        return None
    return Range(None if first == 0 else float(bins.edges[first]),
                 None if last == bins.last else float(bins.bounds(last)[1]))


def _first_point(points: list[list]) -> list:
    return [p[0] for p in points[:1]]


def _segment_click(filters: CartFilters, points: list[list], problems: list[str]) -> CartFilters:
    """A click on a customer type filters by it; a click on the one already chosen clears it."""
    chosen = parse_segments(_first_point(points), problems)
    return replace(filters, segments=() if chosen == filters.segments else chosen)


def _details_click(filters: CartFilters, points: list[list], problems: list[str]) -> CartFilters:
    picked = _first_point(points)
    chosen = parse_yes_no(picked[0] if picked else None, "details", problems)
    return replace(filters, details=None if chosen == filters.details else chosen)


def rules(bins: dict[str, Bins]) -> Rules[CartFilters]:
    """What each control and chart of the page does to the filters (``bins``: the release's
    cart bins, which the sliders' bucket positions and the bucket clicks are read against)."""
    def slider(column: str):
        return lambda f, value, problems: f.with_range(column, _slider_range(value, column, bins[column], problems))

    def snapped_equal(column: str):
        return lambda a, b: bins[column].snapped(a) == bins[column].snapped(b)

    return Rules(
        empty=CartFilters(),
        panel={"segment": lambda f, value, problems: replace(f, segments=parse_segments(value, problems)),
               "details": lambda f, value, problems: replace(f, details=parse_yes_no(value, "details", problems)),
               **{f"range-{c}": slider(c) for c in CART_CUBE_RANGES}},
        click={"by-segment": _segment_click, "by-details": _details_click,
               **{f"dist-{c}": toggle_range(c, snapped_equal(c), none_changes_nothing=False)
                  for c in CART_RANGE_COLUMNS}},
        select={f"dist-{c}": select_range(c) for c in CART_RANGE_COLUMNS},
        clear_keys=CLEAR_KEYS,
    )
