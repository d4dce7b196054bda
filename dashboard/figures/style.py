"""The common look of every figure, and the plain-dict figure itself. No I/O here.

The palette is Okabe–Ito (readable with every common colour-vision deficiency): blue for the
good outcome (purchased, same level), vermillion for the bad one (abandoned, declined).

A figure is the plain dict ``{"data": [trace dicts], "layout": {...}}`` that ``dcc.Graph``
takes and Dash serialises as it is: no ``go.Figure`` is built. Building one, even with
``_validate=False``, costs its construction plus a deep copy in ``to_dict()`` when Dash
serialises it, for each of the dozen figures of a filter change; validating them cost ~80 ms
per histogram. The tests validate every builder's output with Plotly instead
(tests/test_figures.py), so a wrong property still fails there.
"""
from __future__ import annotations

from typing import Any

from dashboard.language import _, percent

Figure = dict[str, Any]   # {"data": [...], "layout": {...}}, what dcc.Graph(figure=...) takes

GOOD, BAD = "#0072B2", "#D55E00"          # Okabe-Ito blue, vermillion
ACCENT, NEUTRAL = "#009E73", "#999999"    # bluish green, grey
EXTRA = ("#E69F00", "#56B4E9", "#CC79A7", "#F0E442")
OUTCOME_COLOURS = {False: GOOD, True: BAD}
DIVERGING = [[0.0, "#B35806"], [0.25, "#F1A340"], [0.5, "#F7F7F7"], [0.75, "#998EC3"], [1.0, "#542788"]]  # PuOr
DIMMED = 0.3
FONT = dict(family="system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif", size=13, color="#212529")

GRID = "#E5E9F0"
# A small look of our own instead of the full "plotly_white" template: that one is ~10 kB
# per figure on the wire (a dozen figures per filter change) and costly to copy.
TEMPLATE = {"layout": {
    "paper_bgcolor": "white", "plot_bgcolor": "white",
    "colorway": [GOOD, BAD, ACCENT, *EXTRA, NEUTRAL],
    "xaxis": {"gridcolor": GRID, "linecolor": GRID, "zerolinecolor": GRID, "ticks": "", "automargin": True},
    "yaxis": {"gridcolor": GRID, "linecolor": GRID, "zerolinecolor": GRID, "ticks": "", "automargin": True},
}}


# Plotly never wraps a title; past this many characters it would run out of a phone-wide chart
# (Spanish and Russian titles are a third longer than English ones)
TITLE_LINE = 40


def _two_lines(title: str) -> str:
    """A long title broken at the space nearest its middle (``<br>``), a short one as it is."""
    if len(title) <= TITLE_LINE or "<br>" in title:
        return title
    middle = len(title) // 2
    spaces = [i for i, c in enumerate(title) if c == " "]
    if not spaces:
        return title
    cut = min(spaces, key=lambda i: abs(i - middle))
    return title[:cut] + "<br>" + title[cut + 1:]


def figure(traces: list[dict], layout: dict, title: str | None = None, height: int = 320) -> Figure:
    """Wrap traces and layout with the common look (title, font, margins, legend on top)."""
    base = {
        "template": TEMPLATE, "font": FONT, "height": height,
        # the title on its own line at the top, the legend on the line under it: side by side
        # they overlapped on a phone's width (and in Spanish or Russian, whose words are longer)
        "margin": dict(l=56, r=24, t=68 if title else 28, b=48),
        "legend": dict(orientation="h", yanchor="bottom", y=1.0, xanchor="left", x=0, title=None),
        "hoverlabel": dict(font_size=13), "bargap": 0.18,
    }
    if title:
        text = _two_lines(title)
        if "<br>" in text:
            base["margin"]["t"] += 20
        # Plotly centres it in the top margin, which has room for two lines and the legend
        base["title"] = dict(text=text, x=0, xanchor="left", font=dict(size=15))
    return {"data": traces, "layout": {**base, **layout}}


def line(axis: str, value: float, text: str | None = None, position: str = "top left") -> tuple[dict, dict | None]:
    """A dashed reference line across the plot (vertical for axis 'x'), with an optional label."""
    if axis == "x":
        shape = dict(type="line", xref="x", yref="paper", x0=value, x1=value, y0=0, y1=1,
                     line=dict(color="#212529", dash="dash", width=1.5))
        # inside the plot's top edge: above it is the legend's line
        note = dict(x=value, y=1, xref="x", yref="paper", text=text, showarrow=False, yanchor="top",
                    bgcolor="rgba(255,255,255,0.8)",
                    xanchor="right" if position.endswith("left") else "left") if text else None
    else:
        shape = dict(type="line", xref="paper", yref="y", x0=0, x1=1, y0=value, y1=value,
                     line=dict(color=NEUTRAL, dash="dash", width=1.5))
        note = dict(x=0, y=value, xref="paper", yref="y", text=text, showarrow=False, xanchor="left",
                    yanchor="top") if text else None
    return shape, note


def empty(message: str | None = None, title: str | None = None, height: int = 320) -> Figure:
    """A figure with ``message`` (default: no data for these filters, in the reader's language) and no plot."""
    if message is None:
        message = _("No data for these filters")
    note = dict(text=message, showarrow=False, font=dict(size=14, color="#6c757d"), xref="paper", yref="paper",
                x=0.5, y=0.5)
    return figure([], {"annotations": [note], "xaxis": dict(visible=False), "yaxis": dict(visible=False)},
                  title, height)


def pct(value: float | None) -> str:
    """A share as text in the reader's language (``88.2%`` / ``88,2 %``; missing: ``–``)."""
    return percent(value)
