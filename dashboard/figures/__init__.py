"""Pure figure builders: small DataFrames/dicts in, plain figure dicts out. No I/O here.

Split by what they draw: :mod:`.style` (palette, common look, the empty figure),
:mod:`.explore` (Carts, Customers, Overview), :mod:`.model` (Model, What-if, P(decline)),
:mod:`.segments` (Segments, Data quality), :mod:`.history` (the KPI history on Overview).
Pages call them as ``figures.<name>``.
"""
from dashboard.figures.explore import (correlation_heatmap, distribution, funnel, histograms, outcome_shares,
                                       period_trends, revenue_by_period)
from dashboard.figures.history import kpi_history
from dashboard.figures.model import (confusion_matrix, contributions, importances, p_histogram, pr_curve,
                                     probability_gauge, profit_curve, roc_curve)
from dashboard.figures.segments import profile_bars, rejections, segment_overview
from dashboard.figures.style import (ACCENT, BAD, DIMMED, DIVERGING, EXTRA, FONT, GOOD, GRID, NEUTRAL,
                                     OUTCOME_COLOURS, TEMPLATE, Figure, empty, figure)

__all__ = [
    "ACCENT", "BAD", "DIMMED", "DIVERGING", "EXTRA", "FONT", "GOOD", "GRID", "NEUTRAL", "OUTCOME_COLOURS",
    "TEMPLATE", "Figure", "confusion_matrix", "contributions", "correlation_heatmap", "distribution", "empty",
    "figure", "funnel", "histograms", "importances", "kpi_history", "outcome_shares", "p_histogram", "period_trends",
    "pr_curve", "probability_gauge", "profile_bars", "profit_curve", "rejections", "revenue_by_period",
    "roc_curve", "segment_overview",
]
