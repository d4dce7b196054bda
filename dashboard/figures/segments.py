"""Figures of the Segments and Data quality pages: segment bars, profiles, rejected rows."""
from __future__ import annotations

import pandas as pd

from dashboard import terms
from dashboard.figures.style import BAD, EXTRA, GOOD, NEUTRAL, Figure, empty, figure, line
from dashboard.language import _, number

RATIO_DIGITS = 9


def profile_bars(profile: pd.DataFrame) -> Figure:
    """Segment mean relative to everyone's, per feature (1 = same as everyone)."""
    title = _("Profile: how this group differs from all customers")
    # Ratios rounded before they are ordered and coloured: two engines (or two summation
    # orders) give 1.0 and 1.0000000000000002 for the same mean, which must neither reorder
    # the bars nor paint "same as everyone" as worse. Ties keep the features' own order.
    rows = profile.dropna(subset=["ratio"]).assign(order=lambda f: f.ratio.round(RATIO_DIGITS))
    rows = rows.sort_values("order", kind="stable")
    if rows.empty:
        return empty(_("No data for these filters"), title=title)
    trace = dict(type="bar", y=[terms.label(f, _) for f in rows.feature], x=list(rows.ratio - 1), base=1,
                 orientation="h", marker=dict(color=[BAD if r > 1 else GOOD for r in rows.order]),
                 customdata=[[float(a), float(b)] for a, b in zip(rows.segment, rows.overall)],
                 hovertemplate=_("{feature}: {segment} vs {overall} overall").format(
                     feature="%{y}", segment="%{customdata[0]:,.2f}", overall="%{customdata[1]:,.2f}")
                 + "<extra></extra>")
    shape, _note = line("x", 1)
    layout = {"xaxis": dict(title=dict(text=_("Segment mean ÷ overall mean"))), "yaxis": dict(automargin=True),
              "shapes": [{**shape, "line": dict(color="#495057", width=1)}]}
    return figure([trace], layout, title, 440)


def rejections(frame: pd.DataFrame) -> Figure:
    title = _("Rejected rows by rule")
    if frame.empty:
        return empty(_("No rejected rows"), title=title)
    rows = frame.groupby(["subject", "rule"], as_index=False)["rows"].sum().sort_values("rows")
    colours = dict(zip(sorted(rows.subject.unique()), EXTRA))
    hover = _("{rule}: {rows} rows").format(rule="%{y}", rows="%{x:,}") + "<extra>%{fullData.name}</extra>"
    traces = [dict(type="bar", y=[terms.rule(r, _) for r in part.rule], x=list(part.rows), orientation="h",
                   name=terms.subject(subject, _), marker=dict(color=colours[subject]),
                   text=[number(n) for n in part.rows], textposition="outside", cliponaxis=False, hovertemplate=hover)
              for subject, part in rows.groupby("subject")]
    layout = {"yaxis": dict(automargin=True), "xaxis": dict(title=dict(text=_("Rows")))}
    return figure(traces, layout, title, max(260, 40 * len(rows) + 110))


def segment_overview(frame: pd.DataFrame, selected: str | None) -> Figure:
    """One bar per segment: its customers, labelled with risk and profit; clickable. ``name``
    is the segment's name as the reader reads it (the page translates it)."""
    title = _("Segments (blue: rule-based, grey: behavioural clusters) — click one")
    if frame.empty:
        return empty(_("No data for these filters"), title=title)
    rows = frame.iloc[::-1]  # the table is ordered rule segments first, riskiest first
    trace = dict(
        type="bar", y=list(rows.name), x=list(rows.customers), orientation="h",
        marker=dict(color=[BAD if s == selected else (GOOD if k == "rule" else NEUTRAL)
                           for s, k in zip(rows.segment_id, rows.kind)]),
        text=[_("P {p} · profit {profit}").format(p=number(p, 2), profit=number(round(t)))
              for p, t in zip(rows.mean_p_decline, rows.total_profit)],
        textposition="outside", cliponaxis=False, customdata=[[s, k] for s, k in zip(rows.segment_id, rows.kind)],
        hovertemplate="%{y}<br>" + _("{n} customers").format(n="%{x:,}") + "<br>%{text}<extra></extra>")
    layout = {"xaxis": dict(title=dict(text=_("Customers")), range=[0, float(rows.customers.max()) * 1.7]),
              "yaxis": dict(automargin=True, tickfont=dict(size=12)), "clickmode": "event"}
    return figure([trace], layout, title, max(300, 34 * len(rows) + 90))
