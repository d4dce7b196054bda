"""Model: how good each model is, and what a decision threshold would mean on the holdout."""
from __future__ import annotations

import dash
import dash_bootstrap_components as dbc
import pandas as pd
from dash import Input, Output, State, callback, dcc, html

from dashboard import figures, terms
from dashboard.auth.scoping import Forbidden, default_subject, require_subject
from dashboard.components.alerts import forbidden_alert, guarded_layout, problems_alert, refusing
from dashboard.components.cards import graph_card, page_header, subject_tabs
from dashboard.components.view_model import outputs_for, values
from dashboard.drift import PSI_FLAG, feature_drift, retrain_suggested
from dashboard.figures.drift import drift_figure
from dashboard.figures.model import reliability_curve
from dashboard.filters import parse_threshold, query_string
from dashboard.inputs import choice, first
from dashboard.language import N_, _, current_lang, lazy, number, page_title, percent
from dashboard.models import ModelCard, explanation, read_card
from dashboard.queries import confusion, latest_run
from dashboard.source import Unavailable
from dashboard.views import ModelView

dash.register_page(__name__, path="/model", name=N_("Model"), order=5, title=page_title(N_("Model")),
                   description=lazy(N_("ROC and PR curves, confusion matrix at a threshold, profit curve, importances.")))

STATE = {"type": "url-state", "page": "model"}
SUBJECT_NAMES = {"carts": N_("Cart abandonment"), "customers": N_("Customer decline")}
CALIBRATION_METHODS = {"sigmoid": N_("sigmoid (Platt)"), "isotonic": N_("isotonic")}
# etl.train.features.CUSTOMER_GROUPS
FEATURE_GROUPS = {"revenue_trend": N_("Revenue trend (month-to-month change)"),
                  "minutes_trend": N_("Minutes on site: change from last month"),
                  "revenue_per_minute": N_("Revenue per minute on site"),
                  "marketing_per_tenure": N_("Marketing contacts per day of tenure"),
                  "marketing_trend": N_("Marketing contacts this month minus the 6-month average")}


def _subject(value) -> str:
    return choice(first(value), SUBJECT_NAMES) or default_subject("carts")


def _rates(counts: dict) -> dict:
    tp, fp, fn, tn = (counts.get(k, 0) for k in ("tp", "fp", "fn", "tn"))
    div = lambda a, b: a / b if b else None  # noqa: E731
    precision, recall = div(tp, tp + fp), div(tp, tp + fn)
    f1 = div(2 * precision * recall, precision + recall) if precision is not None and recall is not None else None
    return {"precision": precision, "recall": recall, "f1": f1, "fpr": div(fp, fp + tn),
            "accuracy": div(tp + tn, tp + fp + fn + tn), "flagged": div(tp + fp, tp + fp + fn + tn)}


def render(subject: str, threshold: float, problems: list[str]) -> ModelView:
    """The subject's model quality; the confusion counts are over the holdout rows the user's
    scope covers (the curves and metrics of the card are the model's own, over every row)."""
    require_subject(subject)     # a subject the user's scope hides is not shown at all
    card = read_card(subject)
    counts = confusion(subject, round(threshold, 4))
    rates = _rates(counts)
    curves = card.curves
    roc, pr = curves.get("roc", {}), curves.get("pr", {})
    holdout = card.holdout
    base_rate = holdout["positives"] / holdout["rows"] if holdout.get("rows") else None
    metrics = dbc.Table([html.Tbody([html.Tr([html.Th(k, scope="row"), html.Td(v)]) for k, v in (
        (_("Precision"), percent(rates["precision"])), (_("Recall"), percent(rates["recall"])),
        (_("F1"), percent(rates["f1"])), (_("Accuracy"), percent(rates["accuracy"])),
        (_("Flagged"), percent(rates["flagged"])))])],
        size="sm", className="meta-table mb-0")
    return ModelView(
        state=query_string({"subject": subject, "t": f"{threshold:.2f}"}).lstrip("?"),
        problems=problems_alert(problems),
        roc=figures.roc_curve(roc.get("fpr", []), roc.get("tpr", []), holdout.get("roc_auc"),
                              None if rates["fpr"] is None or rates["recall"] is None else (rates["fpr"], rates["recall"])),
        pr=figures.pr_curve(pr.get("precision", []), pr.get("recall", []), base_rate,
                            None if rates["precision"] is None or rates["recall"] is None
                            else (rates["recall"], rates["precision"])),
        confusion=figures.confusion_matrix(counts, subject),
        metrics=metrics,
        profit=figures.profit_curve(list(card.profit_curve), threshold),
    )


def _facts(card: ModelCard) -> dbc.Card:
    holdout, cv, excluded = card.holdout, card.cv, card.leakage_excluded
    try:
        warehouse_version = latest_run()["data_version"]
    except Exception:  # noqa: BLE001 - the facts are still worth showing
        warehouse_version = None
    stale = warehouse_version is not None and card.data_version not in (None, warehouse_version)
    rows = [(_("Model"), terms.estimator(card.chosen_candidate, card.estimator_label, _)),
            (_("Calibration"), _calibration_name(card)),
            (_("Holdout ROC-AUC"), with_interval(card, "roc_auc")),
            (_("Holdout F1 at the threshold"), with_interval(card, "f1")),
            (_("Holdout PR-AUC"), with_interval(card, "pr_auc")),
            (_("Holdout Brier score"), with_interval(card, "brier")),
            (_("CV ROC-AUC"), f"{_auc(cv.get('roc_auc_mean'))} ± {_auc(cv.get('roc_auc_std'))}"),
            (_("Trained"), terms.moment(card.trained_at, current_lang())),
            (_("Excluded as leakage"), ", ".join(terms.label(c, _) for c in excluded) or _("none")),
            (_("Model version"), card.model_version or "–")]
    explained = explanation(card)
    return dbc.Card(dbc.CardBody([
        html.Table([html.Tbody([html.Tr([html.Th(k, scope="row"), html.Td(v)]) for k, v in rows])],
                   className="meta-table"),
        html.P(_("In brackets: 95 % bootstrap interval over the {n} holdout rows.").format(
            n=number(holdout.get("rows"))), className="small text-secondary mb-0") if card.holdout_ci else None,
        html.P(explained, id="model-contributions", className="small text-secondary mt-2 mb-0")
        if explained else None,
        dbc.Alert(_("This model was trained on another version of the data than the warehouse holds: "
                    "run {command}.").format(command="python -m etl train"), color="warning",
                  className="mt-2 mb-0") if stale else None,
    ]), className="mb-3")


def _auc(value) -> str:
    """A metric between 0 and 1 with three decimals (``–`` when the card lacks it)."""
    return number(value, 3)


def with_interval(card: ModelCard, metric: str) -> str:
    """"0.910 (0.88–0.94)": the holdout metric and its bootstrap interval (the bare number for a
    card trained before intervals were recorded)."""
    value, bounds = card.holdout.get(metric), card.interval(metric)
    if bounds is None:
        return _auc(value)
    return _("{value} ({low}–{high})").format(value=_auc(value), low=number(bounds[0], 2),
                                              high=number(bounds[1], 2))


def _calibration_name(card: ModelCard) -> str:
    if not card.calibration:
        return "–"
    method = card.calibration.get("method")
    if method is None:
        return _("none")
    name = CALIBRATION_METHODS.get(method, method)
    return _(name)


def _difference(row: dict) -> str:
    return _("{difference} (95 % interval {low} to {high})").format(
        difference=number(row.get("difference"), 3), low=number(row.get("difference_low"), 3),
        high=number(row.get("difference_high"), 3))


def _verdict(card: ModelCard) -> str:
    """Why this model and not the seed's pipeline, and whether it was calibrated, in the reader's words."""
    selection, calibration = card.selection, card.calibration
    best = next((r for r in selection.get("candidates", ()) if r.get("name") == selection.get("best")), {})
    model = terms.estimator(best.get("name"), best.get("label"), _)
    if selection.get("chosen") == "candidate":
        text = _("{model} was chosen: its ROC-AUC is higher than the seed's pipeline's by {difference}, "
                 "and the whole interval is above zero.").format(model=model, difference=_difference(best))
    else:
        text = _("The seed's pipeline was kept: the best candidate, {model}, differs from it by {difference}; "
                 "an interval that is not above zero does not show a better model.").format(
            model=model, difference=_difference(best))
    briers, method = calibration.get("cv_brier") or {}, calibration.get("method")
    if method:
        name = CALIBRATION_METHODS.get(method, method)
        text += " " + _("Calibrated ({method}): it lowered the cross-validated Brier score from {before} "
                        "to {after}.").format(method=_(name), before=_auc(briers.get("none")),
                                              after=_auc(briers.get(method)))
    elif briers:
        text += " " + _("Not calibrated: no calibration method lowered the cross-validated Brier score "
                        "({value}).").format(value=_auc(briers.get("none")))
    return text


def _selection(card: ModelCard) -> dbc.Card | None:
    """The paired comparison with the seed's pipeline (issue 14); nothing for older cards."""
    selection = card.selection
    if not selection:
        return None
    folds, baseline = selection.get("folds", {}), selection.get("baseline", {})
    chosen_baseline = selection.get("chosen") == "baseline"
    rows = [html.Tr([html.Td([_("The seed's pipeline (logistic regression, L1, C = 1)"),
                              html.Span(" " + _("(chosen)"), className="fw-bold") if chosen_baseline else None]),
                     html.Td(f"{_auc(baseline.get('roc_auc_mean'))} ± {_auc(baseline.get('roc_auc_sd'))}"),
                     html.Td(_("baseline"))])]
    for row in sorted(selection.get("candidates", ()), key=lambda r: -r.get("roc_auc_mean", 0)):
        chosen = not chosen_baseline and row.get("name") == selection.get("best")
        rows.append(html.Tr([
            html.Td([terms.estimator(row.get("name"), row.get("label"), _),
                     html.Span(" " + _("(chosen)"), className="fw-bold") if chosen else None]),
            html.Td(f"{_auc(row.get('roc_auc_mean'))} ± {_auc(row.get('roc_auc_sd'))}"),
            html.Td(_difference(row))]))
    head = html.Thead(html.Tr([html.Th(h, scope="col") for h in
                               (_("Candidate"), _("ROC-AUC (mean ± sd)"), _("Difference from the seed's pipeline"))]))
    how = _("Paired {splits}×{repeats} repeated stratified cross-validation on {n} training rows; intervals are "
            "Nadeau–Bengio corrected resampled t intervals (95 %), because repeated folds overlap.").format(
        splits=number(folds.get("splits")), repeats=number(folds.get("repeats")), n=number(folds.get("rows")))
    return dbc.Card(dbc.CardBody([
        html.H2(_("Chosen against the seed's pipeline"), className="h6"),
        html.P(_verdict(card), id="model-verdict"),
        dbc.Table([head, html.Tbody(rows)], striped=True, responsive=True, size="sm", className="mb-2"),
        html.P(how, className="small text-secondary mb-0"),
    ]), className="mb-3")


def _feature_experiments(card: ModelCard) -> dbc.Card | None:
    """The derived features tried with the chosen model and whether each was kept (issue 14)."""
    record = card.feature_experiments
    groups = record.get("groups") or ()
    if not groups:
        return None
    rows = []
    for group in groups:
        name = FEATURE_GROUPS.get(group.get("group"), group.get("label") or group.get("group"))
        rows.append(html.Tr([html.Td(_(name)), html.Td(_difference(group)),
                             html.Td(_("kept") if group.get("kept") else _("not kept"))]))
    head = html.Thead(html.Tr([html.Th(h, scope="col") for h in
                               (_("Derived features"), _("Difference in ROC-AUC"), _("Decision"))]))
    how = _("Each group was added alone to the chosen model (ROC-AUC {value} without it) on the same repeated "
            "folds; it is kept only when the whole 95 % interval of the difference is above zero.").format(
        value=_auc(record.get("roc_auc_without")))
    return dbc.Card(dbc.CardBody([
        html.H2(_("Derived features tried"), className="h6"),
        dbc.Table([head, html.Tbody(rows)], striped=True, responsive=True, size="sm", className="mb-2",
                  id="model-feature-experiments"),
        html.P(how, className="small text-secondary mb-0"),
    ]), className="mb-3")


def _candidates(card: ModelCard) -> dbc.Table:
    chosen = card.chosen_candidate
    rows = []
    for c in sorted(card.candidates, key=lambda c: -c.get("cv", {}).get("roc_auc_mean", 0)):
        cv = c.get("cv", {})
        rows.append(html.Tr([
            html.Td([terms.estimator(c.get("name"), c.get("label", c.get("name")), _),
                     html.Span(" " + _("(chosen)"), className="fw-bold") if c.get("name") == chosen else None]),
            html.Td(f"{_auc(cv.get('roc_auc_mean'))} ± {_auc(cv.get('roc_auc_std'))}"),
            html.Td(_auc(cv.get("pr_auc_mean"))), html.Td(_auc(cv.get("f1_mean"))),
            html.Td(_("{seconds} s").format(seconds=number(c.get("seconds"), 1))),
            html.Td(", ".join(f"{k}={v}" for k, v in (c.get("params") or {}).items()), className="small"),
        ]))
    head = html.Thead(html.Tr([html.Th(h, scope="col") for h in
                               (_("Candidate"), _("CV ROC-AUC"), _("CV PR-AUC"), _("CV F1"), _("Search time"),
                                _("Best parameters"))]))
    return dbc.Table([head, html.Tbody(rows)], striped=True, hover=True, responsive=True, size="sm", className="mb-0")


def _drift(subject: str) -> dbc.Row:
    """PSI per feature since training (the same numbers as the reports' model health); a model
    trained before distributions were recorded says what to run instead."""
    try:
        drifts = feature_drift(subject)
    except Unavailable as exc:
        before, _code, after = _("Drift since training is not measured for this model: run {command}.").partition(
            "{command}")
        return dbc.Alert([before, html.Code(exc.command), after], color="info", className="mb-3")
    verdict = (_("Retraining suggested: at least one feature moved above {value}.") if retrain_suggested(drifts)
               else _("No feature moved above {value} since training.")).format(value=number(PSI_FLAG, 1))
    return dbc.Row([dbc.Col([graph_card("model-drift", drift_figure(drifts)),
                             html.P(verdict, className="small text-secondary")], lg=6)])


@guarded_layout(N_("Model"))
def layout(**query) -> html.Div:
    subject = _subject(query.get("subject"))
    tabs = subject_tabs("/model", subject, SUBJECT_NAMES)
    header = page_header(_("Model"), _("Holdout performance of the trained model and what a threshold would mean."))
    try:
        require_subject(subject)
    except Forbidden as exc:     # the other subject's tab stays reachable
        return html.Div([header, tabs, forbidden_alert(exc.message)])
    card = read_card(subject)
    problems: list[str] = []
    threshold = parse_threshold(query.get("t"), "t", 0, 1, problems)
    threshold = float(card.threshold) if threshold is None else threshold
    out = render(subject, threshold, problems)
    importance = pd.DataFrame(list(card.permutation_importance),
                              columns=["feature", "importance_mean", "importance_std"])
    default = round(float(card.threshold), 2)
    # round marks near the default one would overlap its label (0.51 beside 0.5): left out
    marks = {at: number(at, 1 if at == 0.5 else None) for at in (0, 0.5, 1) if abs(at - default) > 0.15}
    marks[default] = _("default {value}").format(value=number(default, 2))
    return html.Div([
        header,
        dcc.Store(id=STATE, data=out.state),
        dcc.Store(id="model-subject", data=subject),
        tabs,
        html.Div(out.problems, id="model-problems"),
        dbc.Row([
            dbc.Col(_facts(card), lg=4),
            dbc.Col(dbc.Card(dbc.CardBody([
                dbc.Label(_("Decision threshold"), html_for="model-threshold", className="fw-semibold"),
                dcc.Slider(id="model-threshold", min=0, max=1, step=0.01, value=round(threshold, 2), marks=marks,
                           updatemode="mouseup", tooltip={"placement": "bottom", "always_visible": False}),
                dbc.Row([dbc.Col(graph_card("model-confusion", out.confusion), md=7),
                         dbc.Col(html.Div(out.metrics, id="model-metrics"), md=5, className="pt-4")]),
            ]), className="mb-3"), lg=8),
        ]),
        dbc.Row([dbc.Col(graph_card("model-roc", out.roc), lg=6), dbc.Col(graph_card("model-pr", out.pr), lg=6)]),
        dbc.Row([
            dbc.Col(graph_card("model-profit", out.profit), lg=6),
            dbc.Col(graph_card("model-importance", figures.importances(importance)), lg=6),
        ]),
        dbc.Row([dbc.Col(graph_card("model-reliability",
                                    reliability_curve(card.calibration.get("reliability") or [], subject)), lg=6),
                 dbc.Col([_selection(card), _feature_experiments(card)], lg=6)]),
        _drift(subject),
        dbc.Card(dbc.CardBody([html.H2(_("Candidates compared (cross-validation on the training split)"),
                                       className="h6"),
                               _candidates(card)]), className="mb-3"),
    ])


@callback(
    output=outputs_for(ModelView, {
        "state": Output(STATE, "data"), "problems": Output("model-problems", "children"),
        "roc": Output("model-roc", "figure"), "pr": Output("model-pr", "figure"),
        "confusion": Output("model-confusion", "figure"), "metrics": Output("model-metrics", "children"),
        "profit": Output("model-profit", "figure")}),
    inputs=[Input("model-threshold", "value"), State("model-subject", "data")],
    prevent_initial_call=True,
)
@refusing
def update(threshold, subject):
    problems: list[str] = []
    value = parse_threshold(threshold, "threshold", 0, 1, problems)
    subject = _subject(subject)
    if value is None:
        value = float(read_card(subject).threshold)
    return values(render(subject, value, problems))
