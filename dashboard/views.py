"""Typed view models: what each page shows, one dataclass per callback, one field per output.

A page's ``render`` returns one of these; its callback's ``output=`` dict has the same names
(checked by :func:`dashboard.components.view_model.outputs_for`), so no output is matched to a
value by position or by a formatted key. They live outside ``dashboard/pages`` because Dash
executes page modules without registering them in ``sys.modules``, which dataclasses need.
Figures are whatever :mod:`dashboard.figures` builds; components are Dash components.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

Figure = Any     # what dashboard.figures returns
Component = Any  # a Dash component, a list of them, or None


@dataclass(frozen=True)
class CartsView:
    """Everything the page shows for one set of filters; each field is one callback output."""

    state: str                       # the URL query string of the filters
    segment: list[int]               # panel values
    details: str
    sliders: dict[str, list[int]]    # cube behaviour -> slider bucket positions
    chips: list[Component]
    rows: Component                  # the "Show rows (N)" button (None for a viewer)
    problems: Component
    kpis: list[Component]
    funnel: Figure
    by_segment: Figure
    by_details: Figure
    distributions: dict[str, Figure]  # behaviour -> its chart


@dataclass(frozen=True)
class CustomersView:
    """Everything the page shows for one set of filters; each field is one callback output."""

    state: str                       # the URL query string of the filters
    tier: list[str]                  # panel values
    consent: str
    category: list[str]
    sliders: dict[str, list[float]]  # slider feature -> its value
    chips: list[Component]
    rows: Component                  # the "Show rows (N)" button (None for a viewer)
    problems: Component
    kpis: list[Component]
    trends: Figure
    by_category: Figure
    by_tier: Figure
    by_consent: Figure
    correlations: Figure
    distributions: dict[str, Figure]  # feature -> its chart


@dataclass(frozen=True)
class OverviewCartsView:
    """The Overview's cart section."""

    state: str
    problems: Component
    kpis: list[Component]
    funnel: Figure
    link: str                        # the Carts page with the same filters


@dataclass(frozen=True)
class OverviewCustomersView:
    """The Overview's customer section."""

    state: str
    problems: Component
    kpis: list[Component]
    revenue: Figure
    link: str                        # the Customers page with the same filters


@dataclass(frozen=True)
class SegmentsView:
    state: str
    segment: str                     # the dropdown's value ("all" for every customer)
    problems: Component
    heading: str
    summary: Component
    offer: Component
    bubbles: Figure
    profile: Figure
    p_hist: Figure
    rows: list[dict]                 # the grid's rows
    shown: str
    link: str


@dataclass(frozen=True)
class ModelView:
    state: str
    problems: Component
    roc: Figure
    pr: Figure
    confusion: Figure
    metrics: Component
    profit: Figure


@dataclass(frozen=True)
class PredictionView:
    """What-if gauge, verdict and drivers; ``p`` is no output but feeds the advice (None when
    a value is invalid)."""

    state: str
    problems: Component
    gauge: Figure
    contributions: Figure
    verdict: Component
    p: float | None = None
