"""Figure of drift since training (Model page, reports): PSI per feature against the 0.2 flag."""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from dashboard.figures.style import BAD, GOOD, Figure, empty, figure, line
from etl.schema import label

if TYPE_CHECKING:   # figures stay free of the query layer; any object with these fields will do
    from dashboard.drift import FeatureDrift

PSI_FLAG = 0.2      # dashboard.drift.PSI_FLAG, repeated so this module imports no I/O code


def drift_figure(drifts: Sequence[FeatureDrift], title: str = "Drift since training (PSI per feature)") -> Figure:
    """Horizontal bars of each feature's PSI, flagged ones in the "bad" colour, largest on top,
    with the dashed 0.2 line; the hover shows the training and today's shares per bin."""
    if not drifts:
        return empty("No drift measured: the model card records no training distributions", title=title)
    rows = sorted(drifts, key=lambda d: (d.psi, d.feature))     # plotly draws the first bar at the bottom
    hover = ["<br>".join(f"{b}: {e:.1%} → {a:.1%}" for b, e, a in zip(d.bins, d.expected, d.actual))
             for d in rows]
    trace = dict(type="bar", orientation="h", y=[label(d.feature) for d in rows], x=[d.psi for d in rows],
                 marker=dict(color=[BAD if d.flagged else GOOD for d in rows]), customdata=hover,
                 hovertemplate="<b>%{y}</b>: PSI %{x:.3f}<br>training → today<br>%{customdata}<extra></extra>")
    shape, note = line("x", PSI_FLAG, f"retrain above {PSI_FLAG} ", position="top left")
    top = max(d.psi for d in rows)
    layout = {"xaxis": dict(title=dict(text="PSI"), range=[0, max(top, PSI_FLAG) * 1.1]),
              "yaxis": dict(automargin=True), "shapes": [shape], "annotations": [note]}
    return figure([trace], layout, title, max(300, 26 * len(rows) + 100))
