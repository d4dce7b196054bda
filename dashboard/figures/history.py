"""Figure of the KPI history (Overview): one small line chart per KPI across the snapshots.

Each snapshot (:mod:`dashboard.reports.history`) is a point: its time on x, the KPI on y, a
circle for an ETL run and a diamond for a report, and the hover names its data version. The
charts are small multiples of one figure (one x/y axis pair per KPI, the time axes matched),
so the whole history is one plain dict like every other figure.
"""
from __future__ import annotations

import math
from datetime import timezone
from collections.abc import Sequence
from typing import TYPE_CHECKING

from dashboard.figures.style import ACCENT, GOOD, GRID, NEUTRAL, Figure, empty, figure
from dashboard.language import N_, _, ngettext, number, percent

if TYPE_CHECKING:   # figures stay free of I/O; any object with these fields will do
    from dashboard.reports.history import Snapshot

MIN_SNAPSHOTS = 2   # a trend needs two points
COLUMNS = 3
ROW_HEIGHT = 200    # px per row of small charts (title, plot, time ticks)
# KPI name (etl.kpi_snapshot.KPIS) -> (title msgid, kind); kind: rate (a share, shown in %), count, number
LOOK = {
    "sessions": (N_("Cart sessions"), "count"),
    "abandonment_rate": (N_("Abandonment rate"), "rate"),
    "conversion_rate": (N_("Conversion rate"), "rate"),
    "items_per_cart": (N_("Items per cart"), "number"),
    "customers": (N_("Customers"), "count"),
    "declined_share": (N_("Activity declined"), "rate"),
    "profit_at_risk": (N_("Profit at risk"), "money"),
    "rows_read": (N_("Raw rows read"), "count"),
    "rows_rejected": (N_("Raw rows rejected"), "count"),
}
# source -> (name msgid, marker, colour)
SOURCES = {"etl": (N_("data refresh (ETL run)"), "circle", GOOD), "report": (N_("report"), "diamond", ACCENT)}
_HOVER = {"rate": ".2%", "count": ",.0f", "money": ",.0f", "number": ",.2f"}
_TICKS = {"rate": ".1~%", "count": ",", "money": ","}
# the least span of a y axis: 2 points for a rate (noise is not drawn as a trend), 4 % of the
# value otherwise, and 4 for a count (whole ticks)
_MIN_SPAN = {"rate": 0.02, "count": 4.0}


def look(kpi: str) -> tuple[str, str]:
    """(title, kind) of ``kpi``, the title in the reader's language; a KPI added to the
    snapshot later gets a title from its name."""
    if kpi in LOOK:
        title, kind = LOOK[kpi]
        return _(title), kind
    kind = "rate" if kpi.endswith(("_rate", "_share")) else "number"
    return kpi.replace("_", " ").capitalize(), kind


def shown(value: float, kind: str) -> str:
    if kind == "rate":
        return percent(value)
    if kind in ("count", "money"):
        return number(value, 0)
    return number(value, 2)


def waiting_message(count: int) -> str:
    """What to say instead of a trend drawn from fewer than :data:`MIN_SNAPSHOTS` snapshots."""
    if count == 0:
        return _("The trend appears after the next data refresh or report; no snapshot so far.")
    return ngettext("The trend appears after the next data refresh or report; {n} snapshot so far.",
                    "The trend appears after the next data refresh or report; {n} snapshots so far.",
                    count).format(n=number(count))


def source_name(source: str) -> str:
    """A snapshot's source (etl, report) in the reader's language."""
    return _(SOURCES[source][0]) if source in SOURCES else source


def _utc(snapshot: Snapshot) -> str:
    """The snapshot's time in UTC, written as Plotly reads a date (without a UTC offset)."""
    return snapshot.moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def _points(snapshots: Sequence[Snapshot], kpi: str) -> list[Snapshot]:
    return [s for s in snapshots if isinstance(s.kpis.get(kpi), (int, float)) and not isinstance(s.kpis[kpi], bool)
            and math.isfinite(s.kpis[kpi])]


def _y_range(values: list[float], kind: str) -> list[float]:
    low, high = min(values), max(values)
    span = max(high - low, 0.04 * max(abs(high), abs(low), 1.0) if kind != "rate" else 0, _MIN_SPAN.get(kind, 0))
    middle = (low + high) / 2
    low, high = middle - span * 0.6, middle + span * 0.6
    if min(values) >= 0:   # a count or a share is not drawn below 0, nor a share above 100 %
        low = max(low, 0.0)
    if kind == "rate" and max(values) <= 1:
        high = min(high, 1.0)
    return [low, high]


def _domain(start: float, end: float) -> list[float]:
    return [round(min(max(start, 0.0), 1.0), 6), round(min(max(end, 0.0), 1.0), 6)]


def kpi_history(snapshots: Sequence[Snapshot], kpis: Sequence[str], title: str | None = None) -> Figure:
    """Small multiples of ``kpis`` (their order, :data:`COLUMNS` per row) over ``snapshots``
    (oldest first); each chart's title carries the latest value. Fewer than two snapshots give
    the waiting message as an empty figure (the page says it in words instead)."""
    if len(snapshots) < MIN_SNAPSHOTS or not kpis:
        return empty(waiting_message(len(snapshots)), title=title, height=160)
    rows = math.ceil(len(kpis) / COLUMNS)
    height = rows * ROW_HEIGHT + (40 if title else 0) + 28
    gap_x, gap_y = 0.07, 78 / (rows * ROW_HEIGHT)   # px of titles and time ticks between rows
    cell_w, cell_h = (1 - gap_x * (COLUMNS - 1)) / COLUMNS, (1 - gap_y * (rows - 1)) / rows
    traces, notes, layout = [], [], {}
    for i, kpi in enumerate(kpis):
        name, kind = look(kpi)
        row, col = divmod(i, COLUMNS)
        x0, y1 = col * (cell_w + gap_x), 1 - row * (cell_h + gap_y)
        suffix = "" if i == 0 else str(i + 1)
        points = _points(snapshots, kpi)
        values = [float(s.kpis[kpi]) for s in points]
        latest = f" · {shown(values[-1], kind)}" if values else ""
        notes.append(dict(text=f"<b>{name}</b>{latest}", x=x0, y=y1, xref="paper", yref="paper", xanchor="left",
                          yanchor="bottom", yshift=4, showarrow=False, font=dict(size=13)))
        axis_x = dict(domain=_domain(x0, x0 + cell_w), anchor=f"y{suffix}", type="date", nticks=4, showgrid=False,
                      linecolor=GRID, tickfont=dict(size=11), hoverformat="%Y-%m-%d %H:%M")
        if i:
            axis_x["matches"] = "x"   # one time window for every chart
        axis_y = dict(domain=_domain(y1 - cell_h, y1), anchor=f"x{suffix}", nticks=6, tickfont=dict(size=11),
                      tickformat=_TICKS.get(kind))
        if values:
            axis_y["range"] = _y_range(values, kind)
        else:
            notes.append(dict(text=_("not measured yet"), x=x0 + cell_w / 2, y=y1 - cell_h / 2, xref="paper",
                              yref="paper", showarrow=False, font=dict(size=12, color="#6c757d")))
            axis_y.update(showticklabels=False)
        layout[f"xaxis{suffix}"], layout[f"yaxis{suffix}"] = axis_x, {k: v for k, v in axis_y.items() if v is not None}
        traces.append(dict(
            type="scatter", mode="lines+markers", x=[_utc(s) for s in points], y=values, xaxis=f"x{suffix}",
            yaxis=f"y{suffix}", name=name, showlegend=False,
            line=dict(color=NEUTRAL, width=1.5),
            marker=dict(size=8, color=[SOURCES.get(s.source, SOURCES["etl"])[2] for s in points],
                        symbol=[SOURCES.get(s.source, SOURCES["etl"])[1] for s in points],
                        line=dict(color="white", width=1)),
            customdata=[[s.data_version, source_name(s.source)] for s in points],
            hovertemplate=(f"<b>{name}</b>: %{{y:{_HOVER[kind]}}}<br>%{{x}} UTC<br>"
                           + _("data version {version}").format(version="%{customdata[0]}") + "<br>"
                           + _("source: {source}").format(source="%{customdata[1]}") + "<extra></extra>"),
        ))
    layout.update(annotations=notes, hovermode="closest", showlegend=False,
                  margin=dict(l=64, r=16, t=(72 if title else 44), b=30))   # the first titles below the modebar
    return figure(traces, layout, title, height)
