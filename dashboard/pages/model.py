"""Model: how good each model is, and what a decision threshold would mean on the holdout."""
from __future__ import annotations

import dash
import dash_bootstrap_components as dbc
import pandas as pd
from dash import Input, Output, State, callback, dcc, html

from dashboard import figures
from dashboard.auth.scoping import Forbidden, default_subject, require_subject
from dashboard.components.alerts import forbidden_alert, guarded_layout, problems_alert, refusing
from dashboard.components.cards import graph_card, page_header
from dashboard.components.view_model import outputs_for, values
from dashboard.drift import feature_drift, retrain_suggested
from dashboard.figures.drift import drift_figure
from dashboard.filters import parse_threshold, query_string
from dashboard.inputs import choice, first
from dashboard.models import ModelCard, read_card
from dashboard.queries import confusion, latest_run
from dashboard.source import Unavailable
from dashboard.views import ModelView

dash.register_page(__name__, path="/model", name="Model", order=5, title="Model · Shopper Insights",
                   description="ROC and PR curves, confusion matrix at a threshold, profit curve, importances.")

STATE = {"type": "url-state", "page": "model"}
SUBJECT_NAMES = {"carts": "Cart abandonment", "customers": "Customer decline"}


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
    fmt = lambda v: "–" if v is None else f"{v:.1%}"  # noqa: E731
    metrics = dbc.Table([html.Tbody([html.Tr([html.Th(k, scope="row"), html.Td(v)]) for k, v in (
        ("Precision", fmt(rates["precision"])), ("Recall", fmt(rates["recall"])), ("F1", fmt(rates["f1"])),
        ("Accuracy", fmt(rates["accuracy"])), ("Flagged", fmt(rates["flagged"])))])],
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
    rows = [("Model", card.estimator_label or "?"),
            ("Holdout ROC-AUC", f"{holdout.get('roc_auc', float('nan')):.3f}"),
            ("Holdout PR-AUC / F1 / Brier", f"{holdout.get('pr_auc', float('nan')):.3f} / "
                                            f"{holdout.get('f1', float('nan')):.3f} / {holdout.get('brier', float('nan')):.3f}"),
            ("CV ROC-AUC", f"{cv.get('roc_auc_mean', float('nan')):.3f} ± {cv.get('roc_auc_std', float('nan')):.3f}"),
            ("Trained", str(card.trained_at or "?").replace("T", " ")[:16]),
            ("Excluded as leakage", ", ".join(excluded) or "none"),
            ("Model version", card.model_version or "?")]
    return dbc.Card(dbc.CardBody([
        html.Table([html.Tbody([html.Tr([html.Th(k, scope="row"), html.Td(v)]) for k, v in rows])],
                   className="meta-table"),
        dbc.Alert("This model was trained on another version of the data than the warehouse holds: "
                  "run python -m etl train.", color="warning", className="mt-2 mb-0") if stale else None,
    ]), className="mb-3")


def _candidates(card: ModelCard) -> dbc.Table:
    chosen = card.chosen_candidate
    rows = []
    for c in sorted(card.candidates, key=lambda c: -c.get("cv", {}).get("roc_auc_mean", 0)):
        cv = c.get("cv", {})
        rows.append(html.Tr([
            html.Td([c.get("label", c.get("name")), html.Span(" (chosen)", className="fw-bold") if c.get("name") == chosen else None]),
            html.Td(f"{cv.get('roc_auc_mean', float('nan')):.3f} ± {cv.get('roc_auc_std', float('nan')):.3f}"),
            html.Td(f"{cv.get('pr_auc_mean', float('nan')):.3f}"), html.Td(f"{cv.get('f1_mean', float('nan')):.3f}"),
            html.Td(f"{c.get('seconds', float('nan')):.1f} s"),
            html.Td(", ".join(f"{k}={v}" for k, v in (c.get("params") or {}).items()), className="small"),
        ]))
    head = html.Thead(html.Tr([html.Th(h, scope="col") for h in
                               ("Candidate", "CV ROC-AUC", "CV PR-AUC", "CV F1", "Search time", "Best parameters")]))
    return dbc.Table([head, html.Tbody(rows)], striped=True, hover=True, responsive=True, size="sm", className="mb-0")


def _drift(subject: str) -> dbc.Row:
    """PSI per feature since training (the same numbers as the reports' model health); a model
    trained before distributions were recorded says what to run instead."""
    try:
        drifts = feature_drift(subject)
    except Unavailable as exc:
        return dbc.Alert(["Drift since training is not measured for this model: run ",
                          html.Code(exc.command), "."], color="info", className="mb-3")
    verdict = ("Retraining suggested: at least one feature moved above 0.2." if retrain_suggested(drifts)
               else "No feature moved above 0.2 since training.")
    return dbc.Row([dbc.Col([graph_card("model-drift", drift_figure(drifts)),
                             html.P(verdict, className="small text-secondary")], lg=6)])


@guarded_layout("Model")
def layout(**query) -> html.Div:
    subject = _subject(query.get("subject"))
    tabs = dbc.Nav([dbc.NavItem(dbc.NavLink(name, href=dash.get_relative_path("/model") + f"?subject={key}",
                                            active=key == subject)) for key, name in SUBJECT_NAMES.items()],
                   pills=True, className="mb-3")
    header = page_header("Model", "Holdout performance of the trained model and what a threshold would mean.")
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
    marks = {0: "0", 0.5: "0.5", 1: "1", round(float(card.threshold), 2): "default"}
    return html.Div([
        header,
        dcc.Store(id=STATE, data=out.state),
        dcc.Store(id="model-subject", data=subject),
        tabs,
        html.Div(out.problems, id="model-problems"),
        dbc.Row([
            dbc.Col(_facts(card), lg=4),
            dbc.Col(dbc.Card(dbc.CardBody([
                dbc.Label("Decision threshold", html_for="model-threshold", className="fw-semibold"),
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
        _drift(subject),
        dbc.Card(dbc.CardBody([html.H2("Candidates compared (cross-validation on the training split)", className="h6"),
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
