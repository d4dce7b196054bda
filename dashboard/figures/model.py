"""Figures of the model pages (Model, What-if, the P(decline) view of Segments)."""
from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from dashboard.figures.style import ACCENT, BAD, GOOD, NEUTRAL, OUTCOME_COLOURS, Figure, empty, figure, line
from etl.schema import OUTCOME_LABELS, label


def p_histogram(frame: pd.DataFrame, threshold: float | None, *, subject: str = "customers",
                title: str = "P(decline) distribution") -> Figure:
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
        shape, note = line("x", threshold, f"threshold {threshold:.2f} ")
        layout.update(shapes=[shape], annotations=[note])
    return figure(traces, layout, title, 320)


def roc_curve(fpr: Sequence[float], tpr: Sequence[float], auc: float | None, point: tuple[float, float] | None) -> Figure:
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
    return figure(traces, layout, "ROC curve (holdout)", 340)


def pr_curve(precision: Sequence[float], recall: Sequence[float], base_rate: float | None,
             point: tuple[float, float] | None) -> Figure:
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
        shape, note = line("y", base_rate, f"base rate {base_rate:.2f}")
        layout.update(shapes=[shape], annotations=[note])
    return figure(traces, layout, "Precision–recall curve (holdout)", 340)


def confusion_matrix(counts: dict, subject: str) -> Figure:
    names = OUTCOME_LABELS[subject]
    z = [[counts.get("tn", 0), counts.get("fp", 0)], [counts.get("fn", 0), counts.get("tp", 0)]]
    total = sum(sum(r) for r in z) or 1
    trace = dict(type="heatmap", z=z, x=[f"Predicted {names[False].lower()}", f"Predicted {names[True].lower()}"],
                 y=[f"Actually {names[False].lower()}", f"Actually {names[True].lower()}"],
                 text=[[f"{v:,}<br>{v / total:.1%}" for v in row] for row in z], texttemplate="%{text}",
                 textfont=dict(size=15), showscale=False, colorscale=[[0, "#F7F7F7"], [1, "#56B4E9"]],
                 hovertemplate="%{y}, %{x}: %{z:,}<extra></extra>")
    return figure([trace], {"yaxis": dict(autorange="reversed")}, "Confusion matrix (holdout)", 320)


def profit_curve(points: Sequence[dict], threshold: float | None) -> Figure:
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
        shape, note = line("x", threshold, f" {threshold:.2f}", "top right")
        layout.update(shapes=[shape], annotations=[note])
    return figure([trace], layout, "Profit curve: whom to make an offer to", 340)


def importances(frame: pd.DataFrame, title: str = "Permutation importance (drop in holdout ROC-AUC)") -> Figure:
    if frame.empty:
        return empty(title=title)
    rows = frame.sort_values("importance_mean")
    trace = dict(type="bar", y=[label(f) for f in rows.feature], x=list(rows.importance_mean), orientation="h",
                 error_x=dict(type="data", array=list(rows.importance_std), color="#495057", thickness=1.2),
                 marker=dict(color=GOOD), hovertemplate="%{y}: %{x:.4f}<extra></extra>")
    return figure([trace], {"yaxis": dict(automargin=True)}, title, max(300, 28 * len(rows) + 90))


def contributions(frame: pd.DataFrame, subject: str) -> Figure:
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
    shape, _ = line("x", 0)
    layout = {"xaxis": dict(title=dict(text=f"← towards {OUTCOME_LABELS[subject][False].lower()} · towards {towards} →")),
              "yaxis": dict(automargin=True), "shapes": [{**shape, "line": dict(color="#495057", width=1)}]}
    return figure([trace], layout, title, max(300, 26 * len(rows) + 100))


def probability_gauge(p: float, threshold: float, subject: str) -> Figure:
    bad = OUTCOME_LABELS[subject][True]
    trace = dict(type="indicator", mode="gauge+number", value=p * 100, number=dict(suffix=" %", valueformat=".1f"),
                 title=dict(text=f"P({bad.lower()})"),
                 gauge=dict(axis=dict(range=[0, 100], ticksuffix="%"), bar=dict(color=BAD if p >= threshold else GOOD),
                            threshold=dict(line=dict(color="#212529", width=3), value=threshold * 100),
                            steps=[dict(range=[0, threshold * 100], color="#EAF2F8"),
                                   dict(range=[threshold * 100, 100], color="#FBEEE6")]))
    return figure([trace], {"margin": dict(l=24, r=24, t=48, b=8)}, None, 250)
