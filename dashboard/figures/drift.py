"""Figure of drift since training (Model page, reports): PSI per feature against the 0.2 flag."""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from dashboard import terms
from dashboard.figures.style import BAD, GOOD, Figure, empty, figure, line
from dashboard.language import _, number, percent

if TYPE_CHECKING:   # figures stay free of the query layer; any object with these fields will do
    from dashboard.drift import FeatureDrift

PSI_FLAG = 0.2      # dashboard.drift.PSI_FLAG, repeated so this module imports no I/O code


def _edge(value) -> str:
    """A bin edge with as many decimals as it has (up to six significant digits)."""
    if isinstance(value, int):
        return number(value)
    decimals = f"{value:.6g}".partition(".")[2]
    return number(value, 0 if "e" in decimals else len(decimals))


def bin_label(feature: str, key: tuple) -> str:
    """One bin of :attr:`FeatureDrift.bins` in the reader's language: ``≤ 3``, ``4–6``, ``premium``."""
    kind, *edges = key
    edges = [_edge(e) for e in edges] if kind != "value" else edges
    if kind == "le":
        return f"≤ {edges[0]}"
    if kind == "gt":
        return f"> {edges[0]}"
    if kind == "range":
        return f"{edges[0]}–{edges[1]}"
    if kind == "eq":
        return edges[0]
    if kind == "value":
        return terms.value(feature, edges[0], _)
    return {"all": _("all values"), "other": _("other"), "missing": _("missing")}.get(kind, kind)


def drift_figure(drifts: Sequence[FeatureDrift], title: str | None = None) -> Figure:
    """Horizontal bars of each feature's PSI, flagged ones in the "bad" colour, largest on top,
    with the dashed 0.2 line; the hover shows the training and today's shares per bin."""
    title = title or _("Drift since training (PSI per feature)")
    if not drifts:
        return empty(_("No drift measured: the model card records no training distributions"), title=title)
    rows = sorted(drifts, key=lambda d: (d.psi, d.feature))     # plotly draws the first bar at the bottom
    hover = ["<br>".join(f"{bin_label(d.feature, b)}: {percent(e)} → {percent(a)}"
                         for b, e, a in zip(d.bins, d.expected, d.actual)) for d in rows]
    trace = dict(type="bar", orientation="h", y=[terms.label(d.feature, _) for d in rows], x=[d.psi for d in rows],
                 marker=dict(color=[BAD if d.flagged else GOOD for d in rows]), customdata=hover,
                 hovertemplate="<b>%{y}</b>: PSI %{x:.3f}<br>" + _("training → today") + "<br>%{customdata}"
                 "<extra></extra>")
    shape, note = line("x", PSI_FLAG, _("retrain above {value}").format(value=number(PSI_FLAG, 1)) + " ",
                       position="top left")
    top = max(d.psi for d in rows)
    layout = {"xaxis": dict(title=dict(text="PSI"), range=[0, max(top, PSI_FLAG) * 1.1]),
              "yaxis": dict(automargin=True), "shapes": [shape], "annotations": [note]}
    return figure([trace], layout, title, max(300, 26 * len(rows) + 100))
