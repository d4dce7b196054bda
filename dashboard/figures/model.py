"""Figures of the model pages (Model, What-if, the P(decline) view of Segments)."""
from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from dashboard import terms
from dashboard.figures.style import ACCENT, BAD, GOOD, NEUTRAL, OUTCOME_COLOURS, Figure, empty, figure, line
from dashboard.language import N_, _, current_lang, number, percent

# Whole phrases per subject and outcome (word order and agreement differ between languages).
ACTUALLY = {"carts": {False: N_("Actually purchased"), True: N_("Actually abandoned")},
            "customers": {False: N_("Actually kept the same level"), True: N_("Actually declined")}}
PREDICTED = {"carts": {False: N_("Predicted purchase"), True: N_("Predicted abandonment")},
             "customers": {False: N_("Predicted same level"), True: N_("Predicted decline")}}
TOWARDS = {"carts": N_("← towards purchase · towards abandonment →"),
           "customers": N_("← towards the same level · towards decline →")}
COUNTED = {"carts": N_("Sessions"), "customers": N_("Customers")}
HOVER_COUNT = {"carts": N_("{p}: {n} sessions"), "customers": N_("{p}: {n} customers")}
PROBABILITY = {"carts": "p_abandon", "customers": "p_decline"}     # terms.LABELS columns
NO_DATA = N_("No data for these filters")


def p_histogram(frame: pd.DataFrame, threshold: float | None, *, subject: str = "customers",
                title: str | None = None) -> Figure:
    title = title or _("P(decline) distribution")
    if frame.empty:
        return empty(_(NO_DATA), title=title)
    outcome = "declined" if "declined" in frame.columns else "abandoned"
    traces = []
    for value in (False, True):
        rows = frame.loc[frame[outcome] == value]
        name = _(ACTUALLY[subject][value])
        traces.append(dict(type="bar", x=list((rows.lo + rows.hi) / 2), y=list(rows.n), width=list(rows.hi - rows.lo),
                           name=name, marker=dict(color=OUTCOME_COLOURS[value], line=dict(color="white", width=1)),
                           hovertemplate=_(HOVER_COUNT[subject]).format(p="%{x:.2f}", n="%{y:,}")
                           + "<extra>%{fullData.name}</extra>"))
    layout = {"barmode": "stack", "xaxis": dict(range=[0, 1], title=dict(text=_("Predicted probability"))),
              "yaxis": dict(title=dict(text=_(COUNTED[subject]))),
              # the two outcome names wrap onto two legend lines in a half-width card
              "margin": dict(l=56, r=24, t=96, b=48)}
    if threshold is not None:
        shape, note = line("x", threshold, _("threshold {value}").format(value=number(threshold, 2)) + " ")
        layout.update(shapes=[shape], annotations=[note])
    return figure(traces, layout, title, 320)


def roc_curve(fpr: Sequence[float], tpr: Sequence[float], auc: float | None, point: tuple[float, float] | None) -> Figure:
    title = _("ROC curve (holdout)")
    if not fpr:
        return empty(_(NO_DATA), title=title)
    traces = [dict(type="scatter", x=list(fpr), y=list(tpr), mode="lines", line=dict(color=GOOD, width=3),
                   name=_("Model (AUC {auc})").format(auc=number(auc, 3)) if auc else _("Model")),
              dict(type="scatter", x=[0, 1], y=[0, 1], mode="lines", name=_("Chance"),
                   line=dict(color=NEUTRAL, dash="dash"))]
    if point:
        traces.append(dict(type="scatter", x=[point[0]], y=[point[1]], mode="markers", name=_("At threshold"),
                           marker=dict(color=BAD, size=12, symbol="diamond")))
    layout = {"xaxis": dict(title=dict(text=_("False positive rate")), range=[0, 1]),
              "yaxis": dict(title=dict(text=_("True positive rate")), range=[0, 1.02])}
    return figure(traces, layout, title, 340)


def pr_curve(precision: Sequence[float], recall: Sequence[float], base_rate: float | None,
             point: tuple[float, float] | None) -> Figure:
    title = _("Precision–recall curve (holdout)")
    if not precision:
        return empty(_(NO_DATA), title=title)
    traces = [dict(type="scatter", x=list(recall), y=list(precision), mode="lines", name=_("Model"),
                   line=dict(color=GOOD, width=3))]
    if point:
        traces.append(dict(type="scatter", x=[point[0]], y=[point[1]], mode="markers", name=_("At threshold"),
                           marker=dict(color=BAD, size=12, symbol="diamond")))
    layout = {"xaxis": dict(title=dict(text=_("Recall")), range=[0, 1]),
              "yaxis": dict(title=dict(text=_("Precision")), range=[0, 1.02])}
    if base_rate is not None:
        shape, note = line("y", base_rate, _("base rate {value}").format(value=number(base_rate, 2)))
        layout.update(shapes=[shape], annotations=[note])
    return figure(traces, layout, title, 340)


def confusion_matrix(counts: dict, subject: str) -> Figure:
    z = [[counts.get("tn", 0), counts.get("fp", 0)], [counts.get("fn", 0), counts.get("tp", 0)]]
    total = sum(sum(r) for r in z) or 1
    trace = dict(type="heatmap", z=z, x=[_(PREDICTED[subject][False]), _(PREDICTED[subject][True])],
                 y=[_(ACTUALLY[subject][False]), _(ACTUALLY[subject][True])],
                 text=[[f"{number(v)}<br>{percent(v / total)}" for v in row] for row in z], texttemplate="%{text}",
                 textfont=dict(size=15), showscale=False, colorscale=[[0, "#F7F7F7"], [1, "#56B4E9"]],
                 hovertemplate="%{y}, %{x}: %{z:,}<extra></extra>")
    return figure([trace], {"yaxis": dict(autorange="reversed")}, _("Confusion matrix (holdout)"), 320)


def profit_curve(points: Sequence[dict], threshold: float | None) -> Figure:
    if not points:
        return empty(_("No profit curve: it is computed for customers, whose profit is known"),
                     title=_("Profit curve"), height=340)
    frame = pd.DataFrame(points)
    trace = dict(type="scatter", x=list(frame.threshold), y=list(frame.expected_retained_profit), mode="lines",
                 line=dict(color=ACCENT, width=3), name=_("Expected retained profit"),
                 hovertemplate=_("threshold {threshold}: {profit}").format(threshold="%{x:.2f}", profit="%{y:,.1f}")
                 + "<extra></extra>")
    layout = {"xaxis": dict(title=dict(text=_("Threshold (offer to customers above it)")), range=[0, 1]),
              "yaxis": dict(title=dict(text=_("Expected retained profit")))}
    if threshold is not None:
        shape, note = line("x", threshold, f" {number(threshold, 2)}", "top right")
        layout.update(shapes=[shape], annotations=[note])
    return figure([trace], layout, _("Profit curve: whom to make an offer to"), 340)


def importances(frame: pd.DataFrame, title: str | None = None) -> Figure:
    title = title or _("Permutation importance (drop in holdout ROC-AUC)")
    if frame.empty:
        return empty(_(NO_DATA), title=title)
    rows = frame.sort_values("importance_mean")
    trace = dict(type="bar", y=[terms.label(f, _) for f in rows.feature], x=list(rows.importance_mean),
                 orientation="h",
                 error_x=dict(type="data", array=list(rows.importance_std), color="#495057", thickness=1.2),
                 marker=dict(color=GOOD), hovertemplate="%{y}: %{x:.4f}<extra></extra>")
    return figure([trace], {"yaxis": dict(automargin=True)}, title, max(300, 28 * len(rows) + 90))


def contributions(frame: pd.DataFrame, subject: str) -> Figure:
    """Log-odds contribution of each feature to this one prediction (``value``: the row's own
    value, shown as the reader reads it: a number in the locale's format, a category translated)."""
    title = _("What drives this prediction (log-odds)")
    if frame.empty:
        return empty(_(NO_DATA), title=title)
    rows = frame.reindex(frame.contribution.abs().sort_values().index)
    lang = current_lang()
    trace = dict(type="bar", y=[f"{terms.label(f, _)} = {terms.shown(f, v, _, lang)}" for f, v in zip(rows.feature, rows.value)],
                 x=list(rows.contribution), orientation="h",
                 marker=dict(color=[BAD if c > 0 else GOOD for c in rows.contribution]),
                 hovertemplate="%{y}: %{x:+.3f}<extra></extra>")
    shape, _line = line("x", 0)
    layout = {"xaxis": dict(title=dict(text=_(TOWARDS[subject]))),
              "yaxis": dict(automargin=True), "shapes": [{**shape, "line": dict(color="#495057", width=1)}]}
    return figure([trace], layout, title, max(300, 26 * len(rows) + 100))


def probability_gauge(p: float, threshold: float, subject: str) -> Figure:
    trace = dict(type="indicator", mode="gauge+number", value=p * 100, number=dict(suffix=" %", valueformat=".1f"),
                 title=dict(text=terms.label(PROBABILITY[subject], _)),
                 gauge=dict(axis=dict(range=[0, 100], ticksuffix="%"), bar=dict(color=BAD if p >= threshold else GOOD),
                            threshold=dict(line=dict(color="#212529", width=3), value=threshold * 100),
                            steps=[dict(range=[0, threshold * 100], color="#EAF2F8"),
                                   dict(range=[threshold * 100, 100], color="#FBEEE6")]))
    return figure([trace], {"margin": dict(l=24, r=24, t=48, b=8)}, None, 250)


OBSERVED = {"carts": N_("Observed abandonment rate"), "customers": N_("Observed decline rate")}


def reliability_curve(bins: Sequence[dict], subject: str) -> Figure:
    """Mean predicted probability against the observed rate per bin of the holdout (the card's
    ``calibration.reliability``); a calibrated model lies on the diagonal. Marker area follows
    the bin's row count, so a far-off bin of three rows does not look like a systematic error."""
    title = _("Calibration (holdout): predicted vs observed")
    if not bins:
        return empty(_("No reliability curve in this model card: retrain the model to record it"), title=title)
    rows = [b["rows"] for b in bins]
    largest = max(rows)
    hover = _("predicted {predicted}, observed {observed}").format(predicted="%{x:.2f}", observed="%{y:.2f}")
    counted = _("{counted}: {n}").format(counted=_(COUNTED[subject]), n="%{customdata:,}")
    traces = [dict(type="scatter", x=[0, 1], y=[0, 1], mode="lines", name=_("Perfectly calibrated"),
                   line=dict(color=NEUTRAL, dash="dash"), hoverinfo="skip"),
              dict(type="scatter", x=[b["predicted"] for b in bins], y=[b["observed"] for b in bins],
                   mode="lines+markers", name=_("Model"), customdata=rows, line=dict(color=GOOD, width=2),
                   marker=dict(color=GOOD, size=[8 + 18 * (n / largest) ** 0.5 for n in rows]),
                   hovertemplate=f"{hover}<br>{counted}<extra></extra>")]
    layout = {"xaxis": dict(title=dict(text=_("Mean predicted probability")), range=[0, 1]),
              "yaxis": dict(title=dict(text=_(OBSERVED[subject])), range=[0, 1.02])}
    return figure(traces, layout, title, 340)
