"""Figures of the Segments and Data quality pages: segment bars, profiles, rejected rows."""
from __future__ import annotations

import pandas as pd

from dashboard.figures.style import BAD, EXTRA, GOOD, NEUTRAL, Figure, empty, figure, line
from etl.schema import label


def profile_bars(profile: pd.DataFrame) -> Figure:
    """Segment mean relative to everyone's, per feature (1 = same as everyone)."""
    rows = profile.dropna(subset=["ratio"]).sort_values("ratio")
    if rows.empty:
        return empty(title="Profile")
    trace = dict(type="bar", y=[label(f) for f in rows.feature], x=list(rows.ratio - 1), base=1, orientation="h",
                 marker=dict(color=[BAD if r > 1 else GOOD for r in rows.ratio]),
                 customdata=[[float(a), float(b)] for a, b in zip(rows.segment, rows.overall)],
                 hovertemplate="%{y}: %{customdata[0]:,.2f} vs %{customdata[1]:,.2f} overall<extra></extra>")
    shape, _ = line("x", 1)
    layout = {"xaxis": dict(title=dict(text="Segment mean ÷ overall mean")), "yaxis": dict(automargin=True),
              "shapes": [{**shape, "line": dict(color="#495057", width=1)}]}
    return figure([trace], layout, "Profile: how this group differs from all customers", 440)


def rejections(frame: pd.DataFrame) -> Figure:
    if frame.empty:
        return empty("No rejected rows", title="Rejected rows by rule")
    rows = frame.groupby(["subject", "rule"], as_index=False)["rows"].sum().sort_values("rows")
    colours = dict(zip(sorted(rows.subject.unique()), EXTRA))
    traces = [dict(type="bar", y=list(part.rule), x=list(part.rows), orientation="h", name=subject.capitalize(),
                   marker=dict(color=colours[subject]), text=list(part.rows), textposition="outside",
                   cliponaxis=False, hovertemplate="%{y}: %{x:,} rows<extra>%{fullData.name}</extra>")
              for subject, part in rows.groupby("subject")]
    layout = {"yaxis": dict(automargin=True), "xaxis": dict(title=dict(text="Rows"))}
    return figure(traces, layout, "Rejected rows by rule", max(260, 40 * len(rows) + 110))


def segment_overview(frame: pd.DataFrame, selected: str | None) -> Figure:
    """One bar per segment: its customers, labelled with risk and profit; clickable."""
    if frame.empty:
        return empty(title="Segments")
    rows = frame.iloc[::-1]  # the table is ordered rule segments first, riskiest first
    trace = dict(
        type="bar", y=list(rows.name), x=list(rows.customers), orientation="h",
        marker=dict(color=[BAD if s == selected else (GOOD if k == "rule" else NEUTRAL)
                           for s, k in zip(rows.segment_id, rows.kind)]),
        text=[f"P {p:.2f} · profit {t:,.0f}" for p, t in zip(rows.mean_p_decline, rows.total_profit)],
        textposition="outside", cliponaxis=False, customdata=[[s, k] for s, k in zip(rows.segment_id, rows.kind)],
        hovertemplate="%{y}<br>%{x:,} customers<br>%{text}<extra></extra>")
    layout = {"xaxis": dict(title=dict(text="Customers"), range=[0, float(rows.customers.max()) * 1.35]),
              "yaxis": dict(automargin=True, tickfont=dict(size=12)), "clickmode": "event"}
    return figure([trace], layout, "Segments (blue: rule-based, grey: behavioural clusters) — click one",
                   max(300, 34 * len(rows) + 90))
