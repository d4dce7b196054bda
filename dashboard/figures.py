"""Pure figure builders: small DataFrames/dicts in, ``go.Figure`` out. No I/O here.

The palette is Okabe–Ito (readable with every common colour-vision deficiency): blue for the
good outcome (purchased, same level), vermillion for the bad one (abandoned, declined).

Figures are assembled as plain trace and layout dicts and wrapped once, without Plotly's
per-property validation: validating (and deep-copying the template) cost ~80 ms per histogram
and the Carts page draws about a dozen per filter change; this way it is ~2 ms. The tests
validate every builder's output instead (tests/test_figures.py).
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd
import plotly.graph_objects as go

from etl.schema import OUTCOME_LABELS, label

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


def _figure(traces: list[dict], layout: dict, title: str | None = None, height: int = 320) -> go.Figure:
    """Wrap traces and layout with the common look (title, font, margins, legend on top)."""
    base = {
        "template": TEMPLATE, "font": FONT, "height": height,
        "margin": dict(l=56, r=24, t=56 if title else 28, b=48),
        "legend": dict(orientation="h", yanchor="bottom", y=1.0, xanchor="right", x=1, title=None),
        "hoverlabel": dict(font_size=13), "bargap": 0.18,
    }
    if title:
        base["title"] = dict(text=title, x=0, xanchor="left", font=dict(size=15))
    return go.Figure(data=traces, layout={**base, **layout}, _validate=False)


def _line(axis: str, value: float, text: str | None = None, position: str = "top left") -> tuple[dict, dict | None]:
    """A dashed reference line across the plot (vertical for axis 'x'), with an optional label."""
    if axis == "x":
        shape = dict(type="line", xref="x", yref="paper", x0=value, x1=value, y0=0, y1=1,
                     line=dict(color="#212529", dash="dash", width=1.5))
        note = dict(x=value, y=1, xref="x", yref="paper", text=text, showarrow=False, yanchor="bottom",
                    xanchor="right" if position.endswith("left") else "left") if text else None
    else:
        shape = dict(type="line", xref="paper", yref="y", x0=0, x1=1, y0=value, y1=value,
                     line=dict(color=NEUTRAL, dash="dash", width=1.5))
        note = dict(x=0, y=value, xref="paper", yref="y", text=text, showarrow=False, xanchor="left",
                    yanchor="top") if text else None
    return shape, note


def empty(message: str = "No data for these filters", title: str | None = None, height: int = 320) -> go.Figure:
    note = dict(text=message, showarrow=False, font=dict(size=14, color="#6c757d"), xref="paper", yref="paper",
                x=0.5, y=0.5)
    return _figure([], {"annotations": [note], "xaxis": dict(visible=False), "yaxis": dict(visible=False)},
                   title, height)


def _pct(value: float | None) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.1%}"


def funnel(outcomes: pd.DataFrame, stages: Sequence[tuple[str, str]], subject: str = "carts") -> go.Figure:
    """Share of each outcome's sessions that reach each stage, outcomes side by side."""
    if outcomes["n"].sum() == 0:
        return empty(title="Checkout funnel")
    stages = [(col, name) for col, name in stages if col != "n"]  # every session is 100 %: not shown
    traces = []
    for outcome in (False, True):
        row = outcomes.loc[outcomes.abandoned == outcome]
        total = float(row["n"].sum())
        counts = [float(row[col].sum()) for col, _ in stages]
        shares = [c / total if total else 0 for c in counts]
        traces.append(dict(type="bar", x=[name for _, name in stages], y=shares, name=OUTCOME_LABELS[subject][outcome],
                           marker=dict(color=OUTCOME_COLOURS[outcome]), text=[_pct(s) for s in shares],
                           textfont=dict(size=12), textposition="outside", cliponaxis=False,
                           customdata=[[int(c)] for c in counts],
                           hovertemplate="%{x}: %{y:.1%} (%{customdata[0]:,} sessions)<extra>%{fullData.name}</extra>"))
    layout = {"yaxis": dict(tickformat=".0%", title=dict(text="Share of sessions"), range=[0, 1.15])}
    return _figure(traces, layout, "Checkout funnel: how far sessions get", 340)


def outcome_shares(counts: pd.DataFrame, category: str, subject: str, *, names: dict | None = None,
                   selected: Sequence | None = None, title: str | None = None, height: int = 300,
                   outcome: str = "abandoned") -> go.Figure:
    """100 % bars per category split by outcome; the bad outcome's share is written on it.

    ``selected`` categories stay opaque and the others are dimmed (cross-filter highlight);
    each bar carries its category in ``customdata`` so a click can filter by it.
    """
    if counts.empty or counts["n"].sum() == 0:
        return empty(title=title, height=height)
    pivot = counts.pivot_table(index=category, columns=outcome, values="n", aggfunc="sum", fill_value=0)
    for column in (False, True):
        if column not in pivot.columns:
            pivot[column] = 0
    totals = pivot[False] + pivot[True]
    keys = list(pivot.index)
    shown = [str((names or {}).get(k, k)) for k in keys]
    opacity = [1.0 if not selected or k in selected else DIMMED for k in keys]
    traces = []
    for value in (False, True):
        share = list((pivot[value] / totals.where(totals > 0)).fillna(0))
        traces.append(dict(
            type="bar", y=shown, x=share, orientation="h", name=OUTCOME_LABELS[subject][value],
            marker=dict(color=OUTCOME_COLOURS[value], opacity=opacity),
            text=[_pct(s) for s in share] if value else None, textposition="inside",
            insidetextanchor="middle", textfont=dict(color="white"),
            customdata=[[k if not isinstance(k, bool) else ("yes" if k else "no"), int(n), int(t)]
                        for k, n, t in zip(keys, pivot[value], totals)],
            hovertemplate="%{y}: %{x:.1%} (%{customdata[1]:,} of %{customdata[2]:,})<extra>%{fullData.name}</extra>",
        ))
    layout = {"barmode": "stack", "clickmode": "event", "legend": dict(
        orientation="h", yanchor="bottom", y=1.0, xanchor="right", x=1, traceorder="normal"),
        "xaxis": dict(tickformat=".0%", range=[0, 1]), "yaxis": dict(autorange="reversed", automargin=True)}
    return _figure(traces, layout, title, height)


def distribution(frame: pd.DataFrame, behaviour: str, subject: str, *, outcome: str = "abandoned",
                 selected: tuple[float | None, float | None] | None = None, height: int = 300) -> go.Figure:
    """One behaviour: share of each outcome's rows per bucket, side by side, plus the rate.

    Bars carry ``[behaviour, lo, hi, range text]`` in customdata so a click or a box
    selection maps back to a range of the raw column.
    """
    title = label(behaviour)
    rows = frame[frame["behaviour"].to_numpy() == behaviour]
    if rows.empty or rows["n"].sum() == 0:
        return empty(title=title, height=height)
    # plain tallies: pandas reshaping costs more than the whole figure on frames this small
    tally: dict[int, list[int]] = {}
    meta: dict[int, tuple] = {}
    for bucket, bad, n, text, full, lo, hi in zip(rows.bucket, rows[outcome], rows.n, rows.label,
                                                 rows.range_text, rows.lo, rows.hi):
        tally.setdefault(int(bucket), [0, 0])[bool(bad)] += int(n)
        meta[int(bucket)] = (text, full, float(lo), None if pd.isna(hi) else float(hi))
    order = sorted(tally)
    labels = [meta[b][0] for b in order]
    in_range = [_within(meta[b][2], meta[b][3], selected) for b in order]
    custom = [[behaviour, meta[b][2], meta[b][3], meta[b][1]] for b in order]
    totals = [sum(tally[b][v] for b in order) for v in (0, 1)]
    traces = []
    for value in (False, True):
        share = [tally[b][value] / totals[value] if totals[value] else 0.0 for b in order]
        traces.append(dict(type="bar", x=labels, y=share, name=OUTCOME_LABELS[subject][value],
                           marker=dict(color=OUTCOME_COLOURS[value], opacity=[1.0 if s else DIMMED for s in in_range]),
                           customdata=custom, hovertemplate="%{customdata[3]}: %{y:.1%} of "
                           + OUTCOME_LABELS[subject][value].lower() + "<extra></extra>"))
    rate = [tally[b][1] / sum(tally[b]) if sum(tally[b]) else None for b in order]
    rate_name = "Abandonment rate" if subject == "carts" else "Decline rate"
    traces.append(dict(type="scatter", x=labels, y=rate, name=rate_name, mode="lines+markers", yaxis="y2",
                       line=dict(color="#000000", width=1.5, dash="dot"), marker=dict(size=5, symbol="diamond"),
                       customdata=custom,
                       hovertemplate="%{customdata[3]}: " + rate_name.lower() + " %{y:.1%}<extra></extra>"))
    layout = {
        "xaxis": dict(type="category", tickangle=-45 if len(labels) > 7 else 0, tickfont=dict(size=11), nticks=12),
        "yaxis": dict(tickformat=".0%", rangemode="tozero",
                      title=dict(text="Share of sessions" if subject == "carts" else "Share of customers")),
        "yaxis2": dict(tickformat=".0%", range=[0, 1.05], tickvals=[0, 0.25, 0.5, 0.75, 1], overlaying="y",
                       side="right", showgrid=False, title=dict(text=rate_name)),
        "dragmode": "select", "selectdirection": "h", "clickmode": "event+select", "barmode": "group",
        "showlegend": False, "margin": dict(l=56, r=56, t=40, b=56),
    }
    return _figure(traces, layout, title, height)


def _within(lo: float, hi: float | None, selected: tuple[float | None, float | None] | None) -> bool:
    if selected is None:
        return True
    s_lo, s_hi = selected
    top = math.inf if hi is None or pd.isna(hi) else hi
    return (s_lo is None or top >= s_lo) and (s_hi is None or lo <= s_hi)


def period_trends(trends: pd.DataFrame) -> go.Figure:
    """Mean revenue and minutes on site per period, declined vs same level, in two panels."""
    if trends.empty:
        return empty(title="Revenue and minutes over the periods")
    traces = []
    for panel, measure in ((1, "revenue"), (2, "minutes")):
        part = trends.loc[trends.measure == measure].sort_values("order")
        for outcome in (False, True):
            rows = part.loc[part.declined == outcome]
            traces.append(dict(type="scatter", x=list(rows.period), y=list(rows["mean"]),
                               name=OUTCOME_LABELS["customers"][outcome], mode="lines+markers",
                               line=dict(color=OUTCOME_COLOURS[outcome], width=3),
                               marker=dict(size=9, symbol="circle" if not outcome else "square"),
                               legendgroup=str(outcome), showlegend=panel == 1,
                               xaxis="x" if panel == 1 else "x2", yaxis="y" if panel == 1 else "y2",
                               hovertemplate="%{x}: %{y:,.1f}<extra>%{fullData.name}</extra>"))
    titles = [dict(text=t, x=x, y=1.02, xref="paper", yref="paper", showarrow=False, xanchor="center",
                   yanchor="bottom", font=dict(size=13))
              for t, x in (("Mean revenue per customer", 0.22), ("Mean minutes on site", 0.78))]
    layout = {"xaxis": dict(domain=[0, 0.44], anchor="y", tickangle=0),
              "xaxis2": dict(domain=[0.56, 1], anchor="y2", tickangle=0),
              "yaxis": dict(anchor="x"), "yaxis2": dict(anchor="x2"), "annotations": titles,
              "legend": dict(orientation="h", yanchor="top", y=-0.15, xanchor="center", x=0.5),
              "margin": dict(l=56, r=24, t=70, b=60)}
    return _figure(traces, layout, "Revenue and minutes over the three periods", 360)


def correlation_heatmap(matrix: pd.DataFrame) -> go.Figure:
    if matrix.empty:
        return empty(title="Correlations")
    names = [label(c) for c in matrix.columns]
    values = matrix.to_numpy()
    text = [[("" if math.isnan(v) else f"{v:.2f}") for v in row] for row in values]
    z = [[None if math.isnan(v) else float(v) for v in row] for row in values]
    trace = dict(type="heatmap", z=z, x=names, y=names, zmin=-1, zmax=1, colorscale=DIVERGING, text=text,
                 texttemplate="%{text}", textfont=dict(size=10), colorbar=dict(title=dict(text="r"), thickness=12),
                 hovertemplate="%{y} × %{x}: r = %{z:.2f}<extra></extra>")
    layout = {"xaxis": dict(tickangle=-45, automargin=True), "yaxis": dict(autorange="reversed", automargin=True),
              "margin": dict(l=8, r=8, t=56, b=8)}
    return _figure([trace], layout, "Correlations (Pearson) between features and decline", 640)


def revenue_by_period(current: dict, base: dict, periods: Sequence[tuple[str, str]]) -> go.Figure:
    names = [name for _, name in periods]
    traces = [dict(type="bar", x=names, y=[base.get(c, 0) for c, _ in periods], name="All customers",
                   marker=dict(color=NEUTRAL)),
              dict(type="bar", x=names, y=[current.get(c, 0) for c, _ in periods], name="Current filters",
                   marker=dict(color=ACCENT))]
    layout = {"barmode": "group", "yaxis": dict(title=dict(text="Revenue"), tickformat=",.0f")}
    return _figure(traces, layout, "Revenue by period", 300)


def profile_bars(profile: pd.DataFrame) -> go.Figure:
    """Segment mean relative to everyone's, per feature (1 = same as everyone)."""
    rows = profile.dropna(subset=["ratio"]).sort_values("ratio")
    if rows.empty:
        return empty(title="Profile")
    trace = dict(type="bar", y=[label(f) for f in rows.feature], x=list(rows.ratio - 1), base=1, orientation="h",
                 marker=dict(color=[BAD if r > 1 else GOOD for r in rows.ratio]),
                 customdata=[[float(a), float(b)] for a, b in zip(rows.segment, rows.overall)],
                 hovertemplate="%{y}: %{customdata[0]:,.2f} vs %{customdata[1]:,.2f} overall<extra></extra>")
    shape, _ = _line("x", 1)
    layout = {"xaxis": dict(title=dict(text="Segment mean ÷ overall mean")), "yaxis": dict(automargin=True),
              "shapes": [{**shape, "line": dict(color="#495057", width=1)}]}
    return _figure([trace], layout, "Profile: how this group differs from all customers", 440)


def p_histogram(frame: pd.DataFrame, threshold: float | None, *, subject: str = "customers",
                title: str = "P(decline) distribution") -> go.Figure:
    if frame.empty:
        return empty(title=title)
    outcome = "declined" if "declined" in frame.columns else "abandoned"
    traces = []
    for value in (False, True):
        rows = frame.loc[frame[outcome] == value]
        traces.append(dict(type="bar", x=list((rows.lo + rows.hi) / 2), y=list(rows.n), width=list(rows.hi - rows.lo),
                           name=f"Actually {OUTCOME_LABELS[subject][value].lower()}",
                           marker=dict(color=OUTCOME_COLOURS[value], line=dict(color="white", width=1)),
                           hovertemplate="%{x:.2f}: %{y:,} customers<extra>%{fullData.name}</extra>"))
    layout = {"barmode": "stack", "xaxis": dict(range=[0, 1], title=dict(text="Predicted probability")),
              "yaxis": dict(title=dict(text="Customers"))}
    if threshold is not None:
        shape, note = _line("x", threshold, f"threshold {threshold:.2f} ")
        layout.update(shapes=[shape], annotations=[note])
    return _figure(traces, layout, title, 320)


def roc_curve(fpr: Sequence[float], tpr: Sequence[float], auc: float | None, point: tuple[float, float] | None) -> go.Figure:
    if not fpr:
        return empty(title="ROC curve")
    traces = [dict(type="scatter", x=list(fpr), y=list(tpr), mode="lines", line=dict(color=GOOD, width=3),
                   name=f"Model (AUC {auc:.3f})" if auc else "Model"),
              dict(type="scatter", x=[0, 1], y=[0, 1], mode="lines", name="Chance",
                   line=dict(color=NEUTRAL, dash="dash"))]
    if point:
        traces.append(dict(type="scatter", x=[point[0]], y=[point[1]], mode="markers", name="At threshold",
                           marker=dict(color=BAD, size=12, symbol="diamond")))
    layout = {"xaxis": dict(title=dict(text="False positive rate"), range=[0, 1]),
              "yaxis": dict(title=dict(text="True positive rate"), range=[0, 1.02])}
    return _figure(traces, layout, "ROC curve (holdout)", 340)


def pr_curve(precision: Sequence[float], recall: Sequence[float], base_rate: float | None,
             point: tuple[float, float] | None) -> go.Figure:
    if not precision:
        return empty(title="Precision–recall curve")
    traces = [dict(type="scatter", x=list(recall), y=list(precision), mode="lines", name="Model",
                   line=dict(color=GOOD, width=3))]
    if point:
        traces.append(dict(type="scatter", x=[point[0]], y=[point[1]], mode="markers", name="At threshold",
                           marker=dict(color=BAD, size=12, symbol="diamond")))
    layout = {"xaxis": dict(title=dict(text="Recall"), range=[0, 1]),
              "yaxis": dict(title=dict(text="Precision"), range=[0, 1.02])}
    if base_rate is not None:
        shape, note = _line("y", base_rate, f"base rate {base_rate:.2f}")
        layout.update(shapes=[shape], annotations=[note])
    return _figure(traces, layout, "Precision–recall curve (holdout)", 340)


def confusion_matrix(counts: dict, subject: str) -> go.Figure:
    names = OUTCOME_LABELS[subject]
    z = [[counts.get("tn", 0), counts.get("fp", 0)], [counts.get("fn", 0), counts.get("tp", 0)]]
    total = sum(sum(r) for r in z) or 1
    trace = dict(type="heatmap", z=z, x=[f"Predicted {names[False].lower()}", f"Predicted {names[True].lower()}"],
                 y=[f"Actually {names[False].lower()}", f"Actually {names[True].lower()}"],
                 text=[[f"{v:,}<br>{v / total:.1%}" for v in row] for row in z], texttemplate="%{text}",
                 textfont=dict(size=15), showscale=False, colorscale=[[0, "#F7F7F7"], [1, "#56B4E9"]],
                 hovertemplate="%{y}, %{x}: %{z:,}<extra></extra>")
    return _figure([trace], {"yaxis": dict(autorange="reversed")}, "Confusion matrix (holdout)", 320)


def profit_curve(points: Sequence[dict], threshold: float | None) -> go.Figure:
    if not points:
        return empty("No profit curve: it is computed for customers, whose profit is known",
                     title="Profit curve", height=340)
    frame = pd.DataFrame(points)
    trace = dict(type="scatter", x=list(frame.threshold), y=list(frame.expected_retained_profit), mode="lines",
                 line=dict(color=ACCENT, width=3), name="Expected retained profit",
                 hovertemplate="threshold %{x:.2f}: %{y:,.1f}<extra></extra>")
    layout = {"xaxis": dict(title=dict(text="Threshold (offer to customers above it)"), range=[0, 1]),
              "yaxis": dict(title=dict(text="Expected retained profit"))}
    if threshold is not None:
        shape, note = _line("x", threshold, f" {threshold:.2f}", "top right")
        layout.update(shapes=[shape], annotations=[note])
    return _figure([trace], layout, "Profit curve: whom to make an offer to", 340)


def importances(frame: pd.DataFrame, title: str = "Permutation importance (drop in holdout ROC-AUC)") -> go.Figure:
    if frame.empty:
        return empty(title=title)
    rows = frame.sort_values("importance_mean")
    trace = dict(type="bar", y=[label(f) for f in rows.feature], x=list(rows.importance_mean), orientation="h",
                 error_x=dict(type="data", array=list(rows.importance_std), color="#495057", thickness=1.2),
                 marker=dict(color=GOOD), hovertemplate="%{y}: %{x:.4f}<extra></extra>")
    return _figure([trace], {"yaxis": dict(automargin=True)}, title, max(300, 28 * len(rows) + 90))


def contributions(frame: pd.DataFrame, subject: str) -> go.Figure:
    """Log-odds contribution of each feature to this one prediction."""
    title = "What drives this prediction (log-odds)"
    if frame.empty:
        return empty(title=title)
    rows = frame.reindex(frame.contribution.abs().sort_values().index)
    towards = OUTCOME_LABELS[subject][True].lower()
    trace = dict(type="bar", y=[f"{label(f)} = {v}" for f, v in zip(rows.feature, rows.value)],
                 x=list(rows.contribution), orientation="h",
                 marker=dict(color=[BAD if c > 0 else GOOD for c in rows.contribution]),
                 hovertemplate="%{y}: %{x:+.3f}<extra></extra>")
    shape, _ = _line("x", 0)
    layout = {"xaxis": dict(title=dict(text=f"← towards {OUTCOME_LABELS[subject][False].lower()} · towards {towards} →")),
              "yaxis": dict(automargin=True), "shapes": [{**shape, "line": dict(color="#495057", width=1)}]}
    return _figure([trace], layout, title, max(300, 26 * len(rows) + 100))


def probability_gauge(p: float, threshold: float, subject: str) -> go.Figure:
    bad = OUTCOME_LABELS[subject][True]
    trace = dict(type="indicator", mode="gauge+number", value=p * 100, number=dict(suffix=" %", valueformat=".1f"),
                 title=dict(text=f"P({bad.lower()})"),
                 gauge=dict(axis=dict(range=[0, 100], ticksuffix="%"), bar=dict(color=BAD if p >= threshold else GOOD),
                            threshold=dict(line=dict(color="#212529", width=3), value=threshold * 100),
                            steps=[dict(range=[0, threshold * 100], color="#EAF2F8"),
                                   dict(range=[threshold * 100, 100], color="#FBEEE6")]))
    return _figure([trace], {"margin": dict(l=24, r=24, t=48, b=8)}, None, 250)


def rejections(frame: pd.DataFrame) -> go.Figure:
    if frame.empty:
        return empty("No rejected rows", title="Rejected rows by rule")
    rows = frame.groupby(["subject", "rule"], as_index=False)["rows"].sum().sort_values("rows")
    colours = dict(zip(sorted(rows.subject.unique()), EXTRA))
    traces = [dict(type="bar", y=list(part.rule), x=list(part.rows), orientation="h", name=subject.capitalize(),
                   marker=dict(color=colours[subject]), text=list(part.rows), textposition="outside",
                   cliponaxis=False, hovertemplate="%{y}: %{x:,} rows<extra>%{fullData.name}</extra>")
              for subject, part in rows.groupby("subject")]
    layout = {"yaxis": dict(automargin=True), "xaxis": dict(title=dict(text="Rows"))}
    return _figure(traces, layout, "Rejected rows by rule", max(260, 40 * len(rows) + 110))


def segment_overview(frame: pd.DataFrame, selected: str | None) -> go.Figure:
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
    return _figure([trace], layout, "Segments (blue: rule-based, grey: behavioural clusters) — click one",
                   max(300, 34 * len(rows) + 90))
