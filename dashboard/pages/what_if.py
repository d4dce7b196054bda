"""What-if: change any model feature and see the probability, its drivers, and the smallest
change that would bring this session or customer below the decision threshold.

The form is built from the model card (features, kinds, observed ranges); its values start
from a real row ("start from …") and are kept in the URL, so a what-if is a shareable link.
"""
from __future__ import annotations

import json

import dash
import dash_bootstrap_components as dbc
import pandas as pd
from dash import ALL, Input, Output, State, callback, ctx, dcc, html
from dash.exceptions import PreventUpdate

from dashboard import figures
from dashboard.auth.scoping import START_NOTE, Forbidden, can_read_rows, default_subject, require_subject
from dashboard.components.alerts import forbidden_alert, guarded_layout, problems_alert, refusing
from dashboard.components.cards import graph_card, page_header
from dashboard.components.view_model import outputs_for
from dashboard.components.view_model import values as view_values
from dashboard.counterfactual import FIXED, smallest_change
from dashboard.feature_values import parse_row, parse_value
from dashboard.filters import query_string
from dashboard.inputs import choice, first, number, text
from dashboard.models import ModelCard, load, score
from dashboard.queries import example_ids, subject_row
from dashboard.views import PredictionView
from etl.schema import OUTCOME_LABELS, label

dash.register_page(__name__, path="/what-if", name="What-if", order=4, title="What-if · Shopper Insights",
                   description="Try a session or a customer against the model, feature by feature.")

STATE = {"type": "url-state", "page": "what-if"}
SUBJECT_NAMES = {"customers": "Customer", "carts": "Cart session"}
FIELD = "wi-feature"


def _subject(value) -> str:
    return choice(first(value), SUBJECT_NAMES) or default_subject("customers")


def _start_id(subject: str, value):
    """A row id from the URL/form: customer ids are whole numbers, session ids printable text
    (never a NUL byte or a control character: the id ends up in a query)."""
    value = first(value)
    if subject == "customers":
        return number(value.strip() if isinstance(value, str) else value, low=0, whole=True)
    found = text(value, limit=100)
    return (found.strip() or None) if found is not None else None


def _row_values(subject: str, start, features: list[str]) -> tuple[dict, str | None]:
    row = subject_row(subject, start) if start is not None else None
    if row is None:
        return {}, None if start is None else f"No {SUBJECT_NAMES[subject].lower()} with id {start}."
    return {f: row.get(f) for f in features}, None


def _field(feature: str, spec: dict, value) -> dbc.Col:
    fid = {"type": FIELD, "name": feature}
    kind = spec.get("kind")
    text = spec.get("label") or label(feature)
    if kind in ("bool", "category"):
        options = [{"label": ("Yes" if c else "No") if kind == "bool" else str(c), "value": c}
                   for c in spec.get("choices", [])]
        control = dcc.Dropdown(id=fid, options=options, value=value, clearable=False)
        hint = None
    else:
        step = 1 if kind == "int" else "any"
        # no HTML min/max: the browser would send an out-of-range number as "empty"; the
        # server checks the range and says what is allowed
        control = dbc.Input(id=fid, type="number", step=step, value=value, debounce=True,
                            inputmode="numeric" if kind == "int" else "decimal")
        hint = f"{spec.get('min'):g} – {spec.get('max'):g}"
    children = [dbc.Label(text + (" (fixed)" if feature in FIXED else ""), html_for=_dom_id(fid)), control]
    if hint:
        children.append(dbc.FormText(hint))
    return dbc.Col(html.Div(children, className="mb-2"), xs=12, sm=6, xl=4)


def _dom_id(pattern_id: dict) -> str:
    """The DOM id Dash gives a pattern-matching id (so <label for> points at the input)."""
    return json.dumps(pattern_id, sort_keys=True, separators=(",", ":"))


def _model_facts(card: ModelCard) -> html.Table:
    holdout = card.holdout
    rows = [("Model", card.estimator_label or "?"),
            ("Holdout ROC-AUC", f"{holdout['roc_auc']:.3f}" if "roc_auc" in holdout else "?"),
            ("Trained", str(card.trained_at or "?").replace("T", " ")[:16]),
            ("Decision threshold", f"{float(card.threshold):.2f}"),
            ("Model version", card.model_version or "?")]
    return html.Table([html.Tbody([html.Tr([html.Th(k, scope="row"), html.Td(v)]) for k, v in rows])],
                      className="meta-table mb-0")


FIX_VALUES = "Fix the highlighted values"


def render_prediction(subject: str, values: dict, start) -> PredictionView:
    """Gauge, verdict and contributions for the form's values (messages for invalid ones); the
    advice is :func:`render_advice`, a callback of its own, so these return without waiting
    for its search. ``p`` is the probability (None for invalid values)."""
    require_subject(subject)     # a subject the user's scope hides has no what-if either
    pipeline, card = load(subject)
    features, specs = list(card.features), card.feature_specs
    threshold = float(card.threshold)
    row, problems = parse_row(values, specs, features)
    if not can_read_rows():
        start = None             # a viewer starts from the model's baseline, never from an id
    state = {"subject": subject, **({"start": str(start)} if start is not None else {}),
             **{f: str(v) for f, v in row.items()}}
    if problems:
        return PredictionView(state=query_string(state).lstrip("?"),
                              problems=problems_alert(list(problems.values()), "Check these values:"),
                              gauge=figures.empty(FIX_VALUES, height=250),
                              contributions=figures.empty(FIX_VALUES), verdict="", p=None)
    frame = pd.DataFrame([row], columns=features)
    p, drivers = score(subject, frame)  # one model call for the probability and its drivers
    bad = OUTCOME_LABELS[subject][True].lower()
    return PredictionView(
        state=query_string(state).lstrip("?"),
        problems=None,
        p=p,
        gauge=figures.probability_gauge(p, threshold, subject),
        contributions=figures.contributions(drivers, subject),
        verdict=html.P([html.Strong(f"{p:.1%}"), f" chance this {SUBJECT_NAMES[subject].lower()} is ",
                           html.Strong(bad), f" — {'above' if p >= threshold else 'below'} the threshold "
                           f"{threshold:.2f}."], className="mb-0"),
    )


def render_advice(subject: str, values: dict, p: float | None = None):
    """The smallest change below the threshold for the form's values (a short note for invalid
    ones: the other callback lists the problems). ``p``: the row's probability if known."""
    require_subject(subject)
    pipeline, card = load(subject)
    features, specs = list(card.features), card.feature_specs
    threshold = float(card.threshold)
    row, problems = parse_row(values, specs, features)
    if problems:
        return html.P(f"{FIX_VALUES} to see the advice.", className="mb-0 text-secondary")
    advice = smallest_change(lambda f: pipeline.predict_proba(f[features])[:, 1], row, specs, features,
                             threshold, p=p)
    return _advice(advice, subject, threshold, advice.probability if p is None else p)


def _show(value) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.2f}".rstrip("0").rstrip(".")
    return str(value)


def _advice(advice, subject: str, threshold: float, p: float) -> html.Div:
    bad = OUTCOME_LABELS[subject][True].lower()
    if not advice.changes and advice.reached:
        return html.P(f"Already below the threshold ({p:.1%} < {threshold:.0%}): no change needed.",
                      className="mb-0")
    items = [html.Li([html.Strong(label(c.feature)), f": {_show(c.old)} → {_show(c.new)}"]) for c in advice.changes]
    if advice.reached:
        head = (f"The smallest change that brings P({bad}) below {threshold:.2f} "
                f"(to {advice.probability:.1%}):")
    else:
        head = (f"No change of up to three features reaches the threshold; the best found lowers "
                f"P({bad}) to {advice.probability:.1%}:")
    return html.Div([html.P(head, className="mb-1"), html.Ul(items, className="advice mb-0")])


@guarded_layout("What-if")
def layout(**query) -> html.Div:
    subject = _subject(query.get("subject"))
    tabs = dbc.Nav([dbc.NavItem(dbc.NavLink(name, href=dash.get_relative_path("/what-if") + f"?subject={key}",
                                            active=key == subject))
                    for key, name in SUBJECT_NAMES.items()], pills=True, className="mb-3")
    header = page_header("What-if", "Change any feature; the prediction, its drivers and the advice follow.")
    try:
        require_subject(subject)
    except Forbidden as exc:     # the other subject's tab stays reachable
        return html.Div([header, tabs, forbidden_alert(exc.message)])
    _, card = load(subject)
    features, specs = list(card.features), card.feature_specs
    rows_allowed = can_read_rows()
    if rows_allowed:
        examples = [str(i) for i in example_ids(subject)]
        start = _start_id(subject, query.get("start")) if query.get("start") else \
            _start_id(subject, examples[0] if examples else None)
        values, missing = _row_values(subject, start, features)
    else:       # a viewer: the model's baseline values, no ids (the queries would refuse them)
        examples, start, values, missing = [], None, {}, START_NOTE
    values = {f: values.get(f, card.baseline.get(f)) for f in features}
    for feature in features:  # values in the link override the starting row
        if feature in query:
            parsed, _ = parse_value(query[feature], specs.get(feature, {}))
            if parsed is not None:
                values[feature] = parsed
    out = render_prediction(subject, values, start)
    advice = render_advice(subject, values, out.p)
    return html.Div([
        header,
        dcc.Store(id=STATE, data=out.state),
        dcc.Store(id="wi-subject", data=subject),
        tabs,
        dbc.Row([
            dbc.Col([
                dbc.Card(dbc.CardBody([
                    html.Div([
                        dbc.Label(f"Start from {SUBJECT_NAMES[subject].lower()} #", html_for="wi-start",
                                  className="me-2 mb-0 fw-semibold"),
                        dbc.Input(id="wi-start", value="" if start is None else str(start), list="wi-examples",
                                  style={"maxWidth": "14rem"}, className="me-2", debounce=True,
                                  disabled=not rows_allowed),
                        html.Datalist(id="wi-examples", children=[html.Option(value=e) for e in examples]),
                        dbc.Button("Load", id="wi-load", color="primary", size="sm", disabled=not rows_allowed),
                    ], className="d-flex flex-wrap align-items-center gap-1 mb-2"),
                    html.Div(missing or "", id="wi-start-msg",
                             className="small mb-2 " + ("text-danger" if rows_allowed else "text-secondary")),
                    html.Div(out.problems, id="wi-problems"),
                    dbc.Row([_field(f, specs.get(f, {}), values.get(f)) for f in features], className="whatif-form"),
                ]), className="mb-3"),
            ], lg=6),
            dbc.Col([
                dbc.Card(dbc.CardBody([
                    html.Div(out.verdict, id="wi-verdict", className="mb-2", **{"aria-live": "polite"}),
                    dcc.Graph(id="wi-gauge", figure=out.gauge, config={"displayModeBar": False}),
                    _model_facts(card),
                ]), className="mb-3"),
                dbc.Card(dbc.CardBody([html.H2("Smallest change below the threshold", className="h6"),
                                       html.Div(advice, id="wi-advice", **{"aria-live": "polite"})]),
                         className="mb-3"),
                graph_card("wi-contributions", out.contributions),
            ], lg=6),
        ]),
    ])


@callback(
    Output({"type": FIELD, "name": ALL}, "value"), Output("wi-start-msg", "children"),
    Input("wi-load", "n_clicks"), Input("wi-start", "n_submit"),
    State("wi-start", "value"), State("wi-subject", "data"),
    prevent_initial_call=True,
)
@refusing
def load_row(_clicks, _submit, start_value, subject_value):
    subject = _subject(subject_value)
    start = _start_id(subject, start_value)
    names = [o["id"]["name"] for o in ctx.outputs_list[0]]
    if start is None:
        return [dash.no_update] * len(names), "Enter an id to start from."
    values, missing = _row_values(subject, start, names)
    if missing:
        return [dash.no_update] * len(names), missing
    return [values.get(n) for n in names], ""


def _form_values() -> dict:
    # the request's shape was checked against the callback graph (dashboard/callback_guard.py)
    entries = ctx.inputs_list[0] if ctx.inputs_list else []
    values = {e["id"]["name"]: e.get("value") for e in entries}
    if not values:
        raise PreventUpdate
    return values


@callback(
    output=outputs_for(PredictionView, {
        "state": Output(STATE, "data"), "problems": Output("wi-problems", "children"),
        "gauge": Output("wi-gauge", "figure"), "contributions": Output("wi-contributions", "figure"),
        "verdict": Output("wi-verdict", "children")}, without=("p",)),
    inputs=[Input({"type": FIELD, "name": ALL}, "value"), State("wi-subject", "data"), State("wi-start", "value")],
    prevent_initial_call=True,
)
@refusing
def update(_values, subject_value, start_value):
    subject = _subject(subject_value)
    # every field but p, which feeds the advice callback, not the page
    return view_values(render_prediction(subject, _form_values(), _start_id(subject, start_value)), without=("p",))


@callback(
    Output("wi-advice", "children"),
    Input({"type": FIELD, "name": ALL}, "value"),
    State("wi-subject", "data"),
    prevent_initial_call=True,
)
@refusing
def update_advice(_values, subject_value):
    """The advice search (most of a what-if's time) answers separately from the gauge."""
    return render_advice(_subject(subject_value), _form_values())
