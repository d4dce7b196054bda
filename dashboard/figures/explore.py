"""Figures of the explore pages (Carts, Customers, Overview): outcomes per stage, category,
bucket and period; cross-filter highlights ride in the traces (opacity, customdata).

Every text is in the reader's language: titles passed in are translated by the caller, the
builders translate their own (stage, period and outcome names, axes, hover texts). Numbers in
hover texts stay d3 formats: the graph's locale config gives them the reader's marks."""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from dashboard import terms
from dashboard.figures.style import (ACCENT, DIMMED, DIVERGING, NEUTRAL, OUTCOME_COLOURS, Figure, empty, figure,
                                     pct)
from dashboard.language import N_, _, number

# etl.schema.OUTCOME_LABELS, translatable
OUTCOMES = {"carts": {False: N_("Purchased"), True: N_("Abandoned")},
            "customers": {False: N_("Same level"), True: N_("Declined")}}


def _outcome(subject: str, value: bool) -> str:
    return _(OUTCOMES[subject][value])


def funnel(outcomes: pd.DataFrame, stages: Sequence[tuple[str, str]], subject: str = "carts") -> Figure:
    """Share of each outcome's sessions that reach each stage, outcomes side by side."""
    if outcomes["n"].sum() == 0:
        return empty(title=_("Checkout funnel"))
    # every session is 100 %: not shown
    stages = [(col, _(name)) for col, name in stages if col != "n"]
    traces = []
    is_bad = outcomes["abandoned"].to_numpy()
    for outcome in (False, True):
        # numpy on the columns rather than a filtered frame per outcome (a few ms of pandas);
        # nansum skips missing values as pandas' sum does
        rows = is_bad == outcome
        total = float(np.nansum(outcomes["n"].to_numpy()[rows]))
        counts = [float(np.nansum(outcomes[col].to_numpy()[rows])) for col, _name in stages]
        shares = [c / total if total else 0 for c in counts]
        hover = _("{stage}: {share} ({count} sessions)").format(stage="%{x}", share="%{y:.1%}",
                                                               count="%{customdata[0]:,}")
        traces.append(dict(type="bar", x=[name for _col, name in stages], y=shares, name=_outcome(subject, outcome),
                           marker=dict(color=OUTCOME_COLOURS[outcome]), text=[pct(s) for s in shares],
                           textfont=dict(size=12), textposition="outside", cliponaxis=False,
                           customdata=[[int(c)] for c in counts],
                           hovertemplate=hover + "<extra>%{fullData.name}</extra>"))
    layout = {"yaxis": dict(tickformat=".0%", title=dict(text=_("Share of sessions")), range=[0, 1.15])}
    return figure(traces, layout, _("Checkout funnel: how far sessions get"), 340)


def outcome_shares(counts: pd.DataFrame, category: str, subject: str, *, names: dict | None = None,
                   selected: Sequence | None = None, title: str | None = None, height: int = 300,
                   outcome: str = "abandoned") -> Figure:
    """100 % bars per category split by outcome; the bad outcome's share is written on it.

    ``selected`` categories stay opaque and the others are dimmed (cross-filter highlight);
    each bar carries its category in ``customdata`` so a click can filter by it. ``names``
    gives each category's shown name (translated by the caller); others are shown as they are.
    """
    if counts.empty or counts["n"].sum() == 0:
        return empty(title=title, height=height)
    # sums per (category, outcome) with numpy: a pandas pivot_table cost more than the rest of
    # the figure (several ms, twice per filter change); same sorted keys, same sums and shares
    column = counts[category].to_numpy()   # (below, outcome columns are picked with int(value): a bool would be a mask)
    known = ~pd.isna(column)                             # pivot_table drops missing keys too
    keys_array, row_key = np.unique(column[known], return_inverse=True)
    n = counts["n"].to_numpy()[known]
    sums = np.zeros((len(keys_array), 2), dtype=n.dtype if n.dtype.kind in "iuf" else float)
    np.add.at(sums, (row_key, counts[outcome].to_numpy()[known].astype(bool).astype(np.intp)), n)
    totals = sums[:, 0] + sums[:, 1]
    keys = keys_array.tolist()
    shown = [str((names or {}).get(k, k)) for k in keys]
    opacity = [1.0 if not selected or k in selected else DIMMED for k in keys]
    traces = []
    hover = _("{category}: {share} ({count} of {total})").format(
        category="%{y}", share="%{x:.1%}", count="%{customdata[1]:,}", total="%{customdata[2]:,}")
    for value in (False, True):
        share = list(np.divide(sums[:, int(value)], totals, out=np.zeros(len(keys)), where=totals > 0))
        # the good outcome's bar carries no text: the key is left out (as go.Figure did), not null
        text = {"text": [pct(s) for s in share]} if value else {}
        traces.append(dict(
            type="bar", y=shown, x=share, orientation="h", name=_outcome(subject, value),
            marker=dict(color=OUTCOME_COLOURS[value], opacity=opacity), **text, textposition="inside",
            insidetextanchor="middle", textfont=dict(color="white"),
            customdata=[[k if not isinstance(k, bool) else ("yes" if k else "no"), int(c), int(t)]
                        for k, c, t in zip(keys, sums[:, int(value)], totals)],
            hovertemplate=hover + "<extra>%{fullData.name}</extra>",
        ))
    layout = {"barmode": "stack", "clickmode": "event", "legend": dict(
        orientation="h", yanchor="bottom", y=1.0, xanchor="right", x=1, traceorder="normal"),
        "xaxis": dict(tickformat=".0%", range=[0, 1]), "yaxis": dict(autorange="reversed", automargin=True)}
    return figure(traces, layout, title, height)


# one behaviour's rows in a distributions frame, as :func:`histograms` gives them
HISTOGRAM = ("bucket", "outcome", "n", "label", "range_text", "lo", "hi")


def histograms(frame: pd.DataFrame, outcome: str = "abandoned") -> dict[str, dict[str, list]]:
    """A distributions frame (behaviour, bucket, ``outcome``, n, label, range_text, lo, hi)
    split per behaviour into plain lists named as in HISTOGRAM, in one pass: a page draws
    eight charts from one frame, and indexing the frame per chart cost more than drawing them."""
    columns = [frame[outcome if c == "outcome" else c].to_numpy().tolist() for c in HISTOGRAM]
    out: dict[str, dict[str, list]] = {}
    for behaviour, *row in zip(frame["behaviour"].to_numpy().tolist(), *columns):
        lists = out.setdefault(behaviour, {c: [] for c in HISTOGRAM})
        for name, value in zip(HISTOGRAM, row):
            lists[name].append(value)
    return out


def distribution(rows: dict[str, list] | None, behaviour: str, subject: str, *,
                 selected: tuple[float | None, float | None] | None = None, height: int = 300) -> Figure:
    """One behaviour (its :func:`histograms` rows, None when it has none): share of each
    outcome's rows per bucket, side by side, plus the rate.

    Bars carry ``[behaviour, lo, hi, range text]`` in customdata so a click or a box
    selection maps back to a range of the raw column.
    """
    title = terms.label(behaviour, _)
    if not rows or sum(rows["n"]) == 0:
        return empty(title=title, height=height)
    # plain tallies: pandas reshaping costs more than the whole figure on frames this small
    tally: dict[int, list[int]] = {}
    meta: dict[int, tuple] = {}
    for bucket, bad, n, text, full, lo, hi in zip(*(rows[c] for c in HISTOGRAM)):
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
        traces.append(dict(type="bar", x=labels, y=share, name=_outcome(subject, value),
                           marker=dict(color=OUTCOME_COLOURS[value], opacity=[1.0 if s else DIMMED for s in in_range]),
                           customdata=custom, hovertemplate=_share_hover(subject, value) + "<extra></extra>"))
    rate = [tally[b][1] / sum(tally[b]) if sum(tally[b]) else None for b in order]
    rate_name = _("Abandonment rate") if subject == "carts" else _("Decline rate")
    rate_hover = _("{bucket}: {rate_name} {rate}").format(bucket="%{customdata[3]}", rate_name=rate_name.lower(),
                                                         rate="%{y:.1%}")
    traces.append(dict(type="scatter", x=labels, y=rate, name=rate_name, mode="lines+markers", yaxis="y2",
                       line=dict(color="#000000", width=1.5, dash="dot"), marker=dict(size=5, symbol="diamond"),
                       customdata=custom, hovertemplate=rate_hover + "<extra></extra>"))
    layout = {
        "xaxis": dict(type="category", tickangle=-45 if len(labels) > 7 else 0, tickfont=dict(size=11), nticks=12),
        "yaxis": dict(tickformat=".0%", rangemode="tozero",
                      title=dict(text=_("Share of sessions") if subject == "carts" else _("Share of customers"))),
        "yaxis2": dict(tickformat=".0%", range=[0, 1.05], tickvals=[0, 0.25, 0.5, 0.75, 1], overlaying="y",
                       side="right", showgrid=False, title=dict(text=rate_name)),
        "dragmode": "select", "selectdirection": "h", "clickmode": "event+select", "barmode": "group",
        "showlegend": False, "margin": dict(l=56, r=56, t=40, b=56),
    }
    return figure(traces, layout, title, height)


def _share_hover(subject: str, outcome: bool) -> str:
    """``3–5: 12.0% of abandoned sessions`` (whole sentences per outcome: the words agree)."""
    texts = {("carts", False): _("{bucket}: {share} of purchased sessions"),
             ("carts", True): _("{bucket}: {share} of abandoned sessions"),
             ("customers", False): _("{bucket}: {share} of customers at the same level"),
             ("customers", True): _("{bucket}: {share} of customers whose activity declined")}
    return texts[subject, outcome].format(bucket="%{customdata[3]}", share="%{y:.1%}")


def _within(lo: float, hi: float | None, selected: tuple[float | None, float | None] | None) -> bool:
    if selected is None:
        return True
    s_lo, s_hi = selected
    top = math.inf if hi is None or pd.isna(hi) else hi
    return (s_lo is None or top >= s_lo) and (s_hi is None or lo <= s_hi)


def period_trends(trends: pd.DataFrame) -> Figure:
    """Mean revenue and minutes on site per period, declined vs same level, in two panels."""
    if trends.empty:
        return empty(title=_("Revenue and minutes over the three periods"))
    traces = []
    for panel, measure in ((1, "revenue"), (2, "minutes")):
        part = trends.loc[trends.measure == measure].sort_values("order")
        for outcome in (False, True):
            rows = part.loc[part.declined == outcome]
            traces.append(dict(type="scatter", x=[_(p) for p in rows.period], y=list(rows["mean"]),
                               name=_outcome("customers", outcome), mode="lines+markers",
                               line=dict(color=OUTCOME_COLOURS[outcome], width=3),
                               marker=dict(size=9, symbol="circle" if not outcome else "square"),
                               legendgroup=str(outcome), showlegend=panel == 1,
                               xaxis="x" if panel == 1 else "x2", yaxis="y" if panel == 1 else "y2",
                               hovertemplate="%{x}: %{y:,.1f}<extra>%{fullData.name}</extra>"))
    titles = [dict(text=t, x=x, y=1.02, xref="paper", yref="paper", showarrow=False, xanchor="center",
                   yanchor="bottom", font=dict(size=13))
              for t, x in ((_("Mean revenue per customer"), 0.22), (_("Mean minutes on site"), 0.78))]
    layout = {"xaxis": dict(domain=[0, 0.44], anchor="y", tickangle=0),
              "xaxis2": dict(domain=[0.56, 1], anchor="y2", tickangle=0),
              "yaxis": dict(anchor="x"), "yaxis2": dict(anchor="x2"), "annotations": titles,
              "legend": dict(orientation="h", yanchor="top", y=-0.15, xanchor="center", x=0.5),
              "margin": dict(l=56, r=24, t=70, b=60)}
    return figure(traces, layout, _("Revenue and minutes over the three periods"), 360)


def correlation_heatmap(matrix: pd.DataFrame) -> Figure:
    if matrix.empty:
        return empty(title=_("Correlations (Pearson) between features and decline"))
    names = [terms.label(c, _) for c in matrix.columns]
    values = matrix.to_numpy()
    text = [[("" if math.isnan(v) else number(v, 2)) for v in row] for row in values]
    z = [[None if math.isnan(v) else float(v) for v in row] for row in values]
    trace = dict(type="heatmap", z=z, x=names, y=names, zmin=-1, zmax=1, colorscale=DIVERGING, text=text,
                 texttemplate="%{text}", textfont=dict(size=10), colorbar=dict(title=dict(text="r"), thickness=12),
                 hovertemplate="%{y} × %{x}: r = %{z:.2f}<extra></extra>")
    layout = {"xaxis": dict(tickangle=-45, automargin=True), "yaxis": dict(autorange="reversed", automargin=True),
              "margin": dict(l=8, r=8, t=56, b=8)}
    return figure([trace], layout, _("Correlations (Pearson) between features and decline"), 640)


def revenue_by_period(current: dict, base: dict, periods: Sequence[tuple[str, str]]) -> Figure:
    names = [_(name) for _col, name in periods]
    traces = [dict(type="bar", x=names, y=[base.get(c, 0) for c, _name in periods], name=_("All customers"),
                   marker=dict(color=NEUTRAL)),
              dict(type="bar", x=names, y=[current.get(c, 0) for c, _name in periods], name=_("Current filters"),
                   marker=dict(color=ACCENT))]
    layout = {"barmode": "group", "yaxis": dict(title=dict(text=_("Revenue")), tickformat=",.0f")}
    return figure(traces, layout, _("Revenue by period"), 300)
