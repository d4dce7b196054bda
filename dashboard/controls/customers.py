"""The Customers page's controls and charts, declared once, and what each does to the filters.

Outside ``dashboard/pages`` so that the rules import (and are tested) without a Dash app:
pages register themselves with Dash when imported.
"""
from __future__ import annotations

import math
from dataclasses import replace

from dashboard.bins import CustomerBins
from dashboard.crossfilter import Ids, Rules, select_range, toggle_range
from dashboard.filters import (CATEGORY_SLUGS, CUSTOMER_RANGE_COLUMNS, TIER_KEYS, CustomerFilters, Range,
                               parse_choices, parse_range, parse_yes_no)
from dashboard import terms
from dashboard.language import _

IDS = Ids("cust")
SLIDERS = ("promo_share", "tenure_days", "profit")

# The page's controls and charts, declared once: component ids, callback inputs and the
# cross-filter rules all come from these names.
CONTROLS = ("tier", "consent", "category", *(f"range-{c}" for c in SLIDERS))
CATEGORY_CHARTS = ("by-tier", "by-consent", "by-category")
CLICK_CHARTS = (*CATEGORY_CHARTS, *(f"dist-{c}" for c in CUSTOMER_RANGE_COLUMNS))
SELECT_CHARTS = tuple(f"dist-{c}" for c in CUSTOMER_RANGE_COLUMNS)
CLEAR_KEYS = frozenset(("tier", "consent", "category", *CUSTOMER_RANGE_COLUMNS))


def slider_bounds(bins: CustomerBins) -> tuple[float, float, float]:
    step = 1.0 if bins.integer else (0.01 if bins.high - bins.low <= 10 else 0.1)
    return math.floor(bins.low / step) * step, math.ceil(bins.high / step) * step, step


def slider_value(filters: CustomerFilters, column: str, bins: CustomerBins) -> list[float]:
    low, high, _step = slider_bounds(bins)
    rng = filters.range(column)
    if rng is None:
        return [low, high]
    return [low if rng.lo is None else max(low, rng.lo), high if rng.hi is None else min(high, rng.hi)]


def _slider_range(value, column: str, bins: CustomerBins, problems: list[str]) -> Range | None:
    low, high, _step = slider_bounds(bins)
    rng = parse_range(value, terms.label(column, _), problems)
    if rng is None:
        return None
    lo = None if rng.lo is None or rng.lo <= low else rng.lo
    hi = None if rng.hi is None or rng.hi >= high else rng.hi
    return None if lo is None and hi is None else Range(lo, hi)


def _toggle(current: tuple, picked) -> tuple:
    return () if current == (picked,) else (picked,)


def _picked(points: list[list]) -> list:
    return [p[0] for p in points[:1]]


def _tier_click(filters: CustomerFilters, points: list[list], problems: list[str]) -> CustomerFilters:
    chosen = parse_choices(_picked(points), "tier", TIER_KEYS, problems)
    return replace(filters, tiers=_toggle(filters.tiers, chosen[0]) if chosen else filters.tiers)


def _consent_click(filters: CustomerFilters, points: list[list], problems: list[str]) -> CustomerFilters:
    picked = _picked(points)
    chosen = parse_yes_no(picked[0] if picked else None, "consent", problems)
    return replace(filters, consent=None if chosen == filters.consent else chosen)


def _category_click(filters: CustomerFilters, points: list[list], problems: list[str]) -> CustomerFilters:
    chosen = parse_choices(_picked(points), "category", CATEGORY_SLUGS, problems)
    return replace(filters, categories=_toggle(filters.categories, chosen[0]) if chosen else filters.categories)


def rules(bins: dict[str, CustomerBins]) -> Rules[CustomerFilters]:
    """What each control and chart of the page does to the filters (``bins``: the release's
    customer bins, which bound the sliders)."""
    def slider(column: str):
        return lambda f, value, problems: f.with_range(column, _slider_range(value, column, bins[column], problems))

    return Rules(
        empty=CustomerFilters(),
        panel={"tier": lambda f, value, problems: replace(f, tiers=parse_choices(value, "tier", TIER_KEYS, problems)),
               "consent": lambda f, value, problems: replace(f, consent=parse_yes_no(value, "consent", problems)),
               "category": lambda f, value, problems: replace(
                   f, categories=parse_choices(value, "category", CATEGORY_SLUGS, problems)),
               **{f"range-{c}": slider(c) for c in SLIDERS}},
        click={"by-tier": _tier_click, "by-consent": _consent_click, "by-category": _category_click,
               **{f"dist-{c}": toggle_range(c, lambda a, b: a == b, none_changes_nothing=True)
                  for c in CUSTOMER_RANGE_COLUMNS}},
        select={f"dist-{c}": select_range(c) for c in CUSTOMER_RANGE_COLUMNS},
        clear_keys=CLEAR_KEYS,
    )
