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

from dashboard import figures, terms
from dashboard.auth.scoping import START_NOTE, Forbidden, can_read_rows, default_subject, require_subject
from dashboard.components.library_texts import dropdown_labels
from dashboard.components.alerts import forbidden_alert, guarded_layout, problems_alert, refusing
from dashboard.components.cards import graph_card, page_header, subject_tabs
from dashboard.components.view_model import outputs_for
from dashboard.components.view_model import values as view_values
from dashboard.counterfactual import FIXED, smallest_change
from dashboard.feature_values import parse_row, parse_value
from dashboard.filters import query_string
from dashboard.inputs import choice, first, number, text
from dashboard.language import N_, _, current_lang, graph_config, lazy, page_title, percent
from dashboard.language import number as shown_number
from dashboard.models import ModelCard, explanation, load, score
from dashboard.queries import example_ids, subject_row
from dashboard.views import PredictionView

dash.register_page(__name__, path="/what-if", name=N_("What-if"), order=4, title=page_title(N_("What-if")),
                   description=lazy(N_("Try a session or a customer against the model, feature by feature.")))

STATE = {"type": "url-state", "page": "what-if"}
# ``?subject=customers&start=<id>`` starts the form from that customer (analysts; the
# Segments page's at-risk list links here)
SUBJECT_NAMES = {"customers": N_("Customer"), "carts": N_("Cart session")}
START_LABELS = {"customers": N_("Start from customer #"), "carts": N_("Start from cart session #")}
NO_ROW = {"customers": N_("No customer with id {id}."), "carts": N_("No cart session with id {id}.")}
PROBABILITY = {"carts": "p_abandon", "customers": "p_decline"}     # terms.LABELS columns
# whole sentences per subject and side of the threshold; {p} is shown in bold
VERDICTS = {("customers", True): N_("{p} chance this customer's activity declines — above the threshold {threshold}."),
            ("customers", False): N_("{p} chance this customer's activity declines — below the threshold {threshold}."),
            ("carts", True): N_("{p} chance this cart session is abandoned — above the threshold {threshold}."),
            ("carts", False): N_("{p} chance this cart session is abandoned — below the threshold {threshold}.")}
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
        return {}, None if start is None else _(NO_ROW[subject]).format(id=start)
    return {f: row.get(f) for f in features}, None


def _field(feature: str, spec: dict, value) -> dbc.Col:
    fid = {"type": FIELD, "name": feature}
    kind = spec.get("kind")
    shown = terms.label(feature, _)
    if kind in ("bool", "category"):
        options = [{"label": (_("Yes") if c else _("No")) if kind == "bool" else terms.value(feature, c, _), "value": c}
                   for c in spec.get("choices", [])]
        control = dcc.Dropdown(id=fid, options=options, value=value, clearable=False, labels=dropdown_labels())
        hint = None
    else:
        step = 1 if kind == "int" else "any"
        # no HTML min/max: the browser would send an out-of-range number as "empty"; the
        # server checks the range and says what is allowed
        control = dbc.Input(id=fid, type="number", step=step, value=value, debounce=True,
                            inputmode="numeric" if kind == "int" else "decimal")
        hint = f"{shown_number(spec.get('min'))} – {shown_number(spec.get('max'))}"
    text = _("{label} (fixed)").format(label=shown) if feature in FIXED else shown
    children = [dbc.Label(text, html_for=_dom_id(fid)), control]
    if hint:
        children.append(dbc.FormText(hint))
    return dbc.Col(html.Div(children, className="mb-2"), xs=12, sm=6, xl=4)


def _dom_id(pattern_id: dict) -> str:
    """The DOM id Dash gives a pattern-matching id (so <label for> points at the input)."""
    return json.dumps(pattern_id, sort_keys=True, separators=(",", ":"))


def _model_facts(card: ModelCard) -> html.Table:
    auc, bounds = shown_number(card.holdout.get("roc_auc"), 3), card.interval("roc_auc")
    if bounds is not None:   # "0.910 (0.88–0.94)": one holdout number alone claims too much (issue 14)
        auc = _("{value} ({low}–{high})").format(value=auc, low=shown_number(bounds[0], 2),
                                                 high=shown_number(bounds[1], 2))
    rows = [(_("Model"), terms.estimator(card.chosen_candidate, card.estimator_label, _)),
            (_("Holdout ROC-AUC (95 % interval)") if bounds is not None else _("Holdout ROC-AUC"), auc),
            (_("Trained"), terms.moment(card.trained_at, current_lang())),
            (_("Decision threshold"), shown_number(float(card.threshold), 2)),
            (_("Model version"), card.model_version or "–")]
    return html.Table([html.Tbody([html.Tr([html.Th(k, scope="row"), html.Td(v)]) for k, v in rows])],
                      className="meta-table mb-0")


FIX_VALUES = N_("Fix the highlighted values")


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
                              problems=problems_alert(list(problems.values()), _("Check these values:")),
                              gauge=figures.empty(_(FIX_VALUES), height=250),
                              contributions=figures.empty(_(FIX_VALUES)), verdict="", p=None)
    frame = pd.DataFrame([row], columns=features)
    p, drivers = score(subject, frame)  # one model call for the probability and its drivers
    before, _p, after = _(VERDICTS[subject, p >= threshold]).format(
        p="{p}", threshold=shown_number(threshold, 2)).partition("{p}")
    return PredictionView(
        state=query_string(state).lstrip("?"),
        problems=None,
        p=p,
        gauge=figures.probability_gauge(p, threshold, subject),
        contributions=figures.contributions(drivers, subject),
        verdict=html.P([before, html.Strong(percent(p)), after], className="mb-0"),
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
        return html.P(_("Fix the highlighted values to see the advice."), className="mb-0 text-secondary")
    advice = smallest_change(lambda f: pipeline.predict_proba(f[features])[:, 1], row, specs, features,
                             threshold, p=p)
    return _advice(advice, subject, threshold, advice.probability if p is None else p)


def _advice(advice, subject: str, threshold: float, p: float) -> html.Div:
    probability, lang = terms.label(PROBABILITY[subject], _), current_lang()
    if not advice.changes and advice.reached:
        return html.P(_("Already below the threshold ({p} < {threshold}): no change needed.").format(
            p=percent(p), threshold=percent(threshold, 0)), className="mb-0")
    items = [html.Li([html.Strong(terms.label(c.feature, _)),
                      f": {terms.shown(c.feature, c.old, _, lang)} → {terms.shown(c.feature, c.new, _, lang)}"])
             for c in advice.changes]
    if advice.reached:
        head = _("The smallest change that brings {probability} below {threshold} (to {p}):")
    else:
        head = _("No change of up to three features reaches the threshold; the best found lowers "
                 "{probability} to {p}:")
    head = head.format(probability=probability, threshold=shown_number(threshold, 2), p=percent(advice.probability))
    return html.Div([html.P(head, className="mb-1"), html.Ul(items, className="advice mb-0")])


@guarded_layout(N_("What-if"))
def layout(**query) -> html.Div:
    subject = _subject(query.get("subject"))
    tabs = subject_tabs("/what-if", subject, SUBJECT_NAMES)
    header = page_header(_("What-if"), _("Change any feature; the prediction, its drivers and the advice follow."))
    try:
        require_subject(subject)
    except Forbidden as exc:     # the other subject's tab stays reachable
        return html.Div([header, tabs, forbidden_alert(exc.message)])
    _pipeline, card = load(subject)
    features, specs = list(card.features), card.feature_specs
    rows_allowed = can_read_rows()
    if rows_allowed:
        examples = [str(i) for i in example_ids(subject)]
        asked = query.get("start")
        start = _start_id(subject, asked) if asked else _start_id(subject, examples[0] if examples else None)
        values, missing = _row_values(subject, start, features)
        if asked and start is None:     # not an id at all: say so rather than start from the baseline
            missing = _("Ignored start {value}: not a valid id.").format(value=repr(str(first(asked))[:40]))
    else:       # a viewer: the model's baseline values, no ids (the queries would refuse them)
        examples, start, values, missing = [], None, {}, _(START_NOTE)
    values = {f: values.get(f, card.baseline.get(f)) for f in features}
    for feature in features:  # values in the link override the starting row
        if feature in query:
            parsed, _problem = parse_value(query[feature], specs.get(feature, {}), feature)
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
                        dbc.Label(_(START_LABELS[subject]), html_for="wi-start",
                                  className="me-2 mb-0 fw-semibold"),
                        dbc.Input(id="wi-start", value="" if start is None else str(start), list="wi-examples",
                                  style={"maxWidth": "14rem"}, className="me-2", debounce=True,
                                  disabled=not rows_allowed),
                        html.Datalist(id="wi-examples", children=[html.Option(value=e) for e in examples]),
                        dbc.Button(_("Load"), id="wi-load", color="primary", size="sm", disabled=not rows_allowed),
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
                    # the verdict above says what the gauge draws, in words (and live): the
                    # gauge itself is a picture of it, hidden from screen readers
                    html.Div(dcc.Graph(id="wi-gauge", figure=out.gauge, config=graph_config({"displayModeBar": False})),
                             **{"aria-hidden": "true"}),
                    _model_facts(card),
                ]), className="mb-3"),
                dbc.Card(dbc.CardBody([html.H2(_("Smallest change below the threshold"), className="h6"),
                                       html.Div(advice, id="wi-advice", **{"aria-live": "polite"})]),
                         className="mb-3"),
                graph_card("wi-contributions", out.contributions),
                html.P(explanation(card) or "", id="wi-contributions-note", className="small text-secondary"),
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
        return [dash.no_update] * len(names), _("Enter an id to start from.")
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
