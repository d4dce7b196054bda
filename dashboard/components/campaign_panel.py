"""The Segments page's campaign simulator: act on a few features for every customer of the
view, see who the customers model then expects to keep, and export them (analysts).

The campaign keeps its own URL state (``act_<feature>=…&cost=…``, :mod:`dashboard.campaign`)
next to the segment's, so a campaign is a link like every other view. Totals and the chart
are aggregates (every role); the customers who move are rows: a viewer's answer holds none
and the export refuses them (``seg-camp-download`` belongs in gate.ROW_OUTPUTS).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import dash
import dash_ag_grid as dag
import dash_bootstrap_components as dbc
import numpy as np
import pandas as pd
from dash import ALL, Input, Output, State, callback, ctx, dcc, html
from dash.exceptions import PreventUpdate

from dashboard import spreadsheet, terms
from dashboard.auth.scoping import ROWS_NOTE, can_read_rows
from dashboard.campaign import COST, LEVERS, MAX_COST, Campaign, Outcome, parse_campaign
from dashboard.components.library_texts import grid_locale
from dashboard.components.alerts import problems_alert, refusing, unavailable_alert
from dashboard.components.cards import graph_card
from dashboard.components.view_model import outputs_for, values
from dashboard.figures.style import BAD, GOOD, NEUTRAL, Figure, empty, figure, line
from dashboard.filters import SegmentView, parse_segment_view, query_dict, query_string
from dashboard.language import N_, _, money, ngettext, number
from dashboard.models import read_card
from dashboard.queries.campaign import MOVER_COLUMNS, campaign_movers, campaign_outcome
from dashboard.response_cache import keep_out
from dashboard.source import Unavailable

SEGMENT_STATE = {"type": "url-state", "page": "segments"}
STATE = {"type": "url-state", "page": "segments-campaign"}
LEVER = "seg-camp-lever"
GRID_ROWS = 500
BINS = 20
HEADERS = {"customer_id": "customer_id", "p_before": N_("P(decline) before"), "p_after": N_("P(decline) after"),
           "profit": N_("Profit / month"), "retained": N_("Profit retained")}
DEFINITION = N_("Every customer of this view gets the changes (clipped to the range the model was trained on). "
                "Before and after are the customers model's P(decline) for today's and the changed values. "
                "Profit retained is the fall of profit at risk (P(decline) × average monthly profit), i.e. one "
                "month of profit; the net subtracts the cost for every targeted customer. The interval is a "
                "95 % bootstrap over the customers (1000 resamples): it shows how much the result depends on "
                "who is in the segment, not how wrong the model may be.")


@dataclass(frozen=True)
class CampaignView:
    state: str
    problems: Any
    kpis: Any
    hist: Figure
    rows: list[dict]
    shown: str
    link: str


def _dom_id(pattern_id: dict) -> str:
    """The DOM id Dash gives a pattern-matching id (so <label for> points at the input)."""
    return json.dumps(pattern_id, sort_keys=True, separators=(",", ":"))


def _lever_label(feature: str) -> str:
    name = terms.label(feature, _)
    if LEVERS[feature].scale != 1:
        return _("{feature}: change in points").format(feature=name)
    return _("{feature}: change").format(feature=name)


def _kpis(outcome: Outcome) -> dbc.Row:
    low, high = outcome.interval()
    moved = int(outcome.movers.sum())
    items = [(_("Customers targeted"), number(outcome.targeted), None),
             (_("Move below the threshold"), number(moved),
              _("of {n} at or above it").format(n=number(outcome.at_risk_before))),
             (_("Customers kept (expected)"), number(outcome.kept, 1), None),
             (_("Profit retained"), money(outcome.retained), None),
             (_("Profit retained minus cost"), money(outcome.net),
              _("95 % interval {low} to {high}").format(low=money(low), high=money(high)))]
    return dbc.Row([dbc.Col(dbc.Card(dbc.CardBody([
        html.Div(title, className="kpi-title"), html.Div(value, className="kpi-value"),
        html.Div(note, className="small text-secondary") if note else None]), className="kpi-card h-100"),
        xs=6, md=4, xl=True, className="mb-3") for title, value, note in items], className="g-2")


def risk_figure(before: np.ndarray, after: np.ndarray, threshold: float) -> Figure:
    """P(decline) before and after the campaign, counted in ``BINS`` buckets (counts only: the
    chart is an aggregate, whoever reads it)."""
    title = _("P(decline) before and after the campaign")
    if len(before) == 0:
        return empty(_("No customers in this view"), title=title)
    edges = np.linspace(0, 1, BINS + 1)
    middles, width = list((edges[:-1] + edges[1:]) / 2), 1 / BINS
    traces = []
    for probabilities, name, colour in ((before, _("Before"), NEUTRAL), (after, _("After"), GOOD)):
        counts, _edges = np.histogram(np.clip(probabilities, 0, 1), bins=edges)
        traces.append(dict(type="bar", x=middles, y=[int(c) for c in counts], width=width, name=name,
                           marker=dict(color=colour), opacity=0.75,
                           hovertemplate=_("{p}: {n} customers").format(p="%{x:.2f}", n="%{y:,}")
                           + "<extra>%{fullData.name}</extra>"))
    shape, note = line("x", threshold, _("threshold {value}").format(value=number(threshold, 2)) + " ")
    layout = {"barmode": "overlay", "xaxis": dict(range=[0, 1], title=dict(text=_("Predicted probability"))),
              "yaxis": dict(title=dict(text=_("Customers"))), "shapes": [{**shape, "line": {"color": BAD}}],
              "annotations": [note]}
    return figure(traces, layout, title, 300)


def _link(view: SegmentView, campaign: Campaign) -> str:
    return dash.get_relative_path("/segments") + query_string(view.query(), campaign.query())


def render(view: SegmentView, campaign: Campaign, problems: list[str]) -> CampaignView:
    state = query_string(campaign.query()).lstrip("?")
    try:
        outcome = campaign_outcome(view, campaign)
    except Unavailable as exc:      # the scores are there, the model is not: the rest of the page still works
        return CampaignView(state, unavailable_alert(exc), None, empty(_(exc.message)), [], "", _link(view, campaign))
    if can_read_rows():
        movers = campaign_movers(view, campaign)
        rows = movers.head(GRID_ROWS).to_dict("records")
        shown = ngettext("{n} customer moves below the threshold", "{n} customers move below the threshold",
                         len(movers)).format(n=number(len(movers)))
        if len(movers) > GRID_ROWS:
            shown += " · " + _("the first {n} shown; the export has all").format(n=number(GRID_ROWS))
    else:       # a viewer: the totals above, no customer ids
        rows, shown = [], _(ROWS_NOTE)
    return CampaignView(state=state, problems=problems_alert(problems), kpis=_kpis(outcome),
                        hist=risk_figure(outcome.before, outcome.after, outcome.threshold), rows=rows, shown=shown,
                        link=_link(view, campaign))


def _features() -> tuple[str, ...] | None:
    try:
        return tuple(read_card("customers").features)
    except Unavailable:
        return None


def _columns(rate: dict, amount: dict) -> list[dict]:
    formats = {"p_before": rate, "p_after": rate, "profit": amount, "retained": amount}
    return [{"field": f, "headerName": _header(f), **({"valueFormatter": formats[f]} if f in formats else {}),
             **({"sort": "desc"} if f == "retained" else {})} for f in MOVER_COLUMNS]


def _header(field: str) -> str:
    key = HEADERS[field]
    return terms.label(key, _) if key in terms.LABELS else _(key)


def section(view: SegmentView, query: dict, rate: dict, amount: dict) -> dbc.Card:
    """The simulator's card for the page's layout; ``query``: the page's URL parameters;
    ``rate``, ``amount``: the page's grid value formatters (the reader's number format)."""
    features = _features()
    campaign, problems = parse_campaign(query, features)
    out = render(view, campaign, problems)
    rows_allowed = can_read_rows()
    levers = [dbc.Col(html.Div([
        dbc.Label(_lever_label(f), html_for=_dom_id({"type": LEVER, "name": f})),
        dbc.Input(id={"type": LEVER, "name": f}, type="number", min=lever.low, max=lever.high, step=lever.step,
                  value=campaign.value(f) or None, placeholder="0", debounce=True, inputmode="decimal"),
        dbc.FormText(f"{number(lever.low)} … {number(lever.high)}")], className="mb-2"), xs=12, sm=6, xl=4)
        for f, lever in LEVERS.items() if features is None or f in features]
    levers.append(dbc.Col(html.Div([
        dbc.Label(_("Cost of the action per customer"), html_for="seg-camp-cost"),
        dbc.Input(id="seg-camp-cost", type="number", min=0, max=MAX_COST, step="any",
                  value=campaign.cost or None, placeholder="0", debounce=True, inputmode="decimal")],
        className="mb-2"), xs=12, sm=6, xl=4))
    return dbc.Card(dbc.CardBody([
        html.H2(_("Campaign simulator"), className="h5"),
        html.P(_("Change what marketing and service can act on for every customer of this view, and see who "
                 "the customers model then expects to keep."), className="small text-secondary"),
        dcc.Store(id=STATE, data=out.state),
        dbc.Row(levers, className="g-2"),
        html.Div(out.problems, id="seg-camp-problems"),
        html.Div(out.kpis, id="seg-camp-kpis", className="mt-2", **{"aria-live": "polite"}),
        html.P(_(DEFINITION), className="small text-secondary"),
        graph_card("seg-camp-hist", out.hist),
        html.Div([html.Span(_("Link to this campaign:") + " ", className="small text-secondary"),
                  html.Code(out.link, id="seg-camp-link")], className="mb-2"),
        html.Div([
            html.H3(_("Customers who move below the threshold"), className="h6 mb-0"),
            html.Div([html.Span(out.shown, id="seg-camp-shown", className="small text-secondary me-3"),
                      dbc.Button(_("Export campaign list (CSV)"), id="seg-camp-export", size="sm", color="primary",
                                 disabled=not rows_allowed)]),
        ], className="d-flex flex-wrap justify-content-between align-items-center gap-2 mb-2"),
        dag.AgGrid(id="seg-camp-grid", columnDefs=_columns(rate, amount), rowData=out.rows,
                   defaultColDef={"sortable": True, "resizable": True, "filter": False},
                   dashGridOptions={"localeText": grid_locale()},
                   style={"height": "360px"} if rows_allowed else {"display": "none"}, className="ag-theme-quartz"),
        dcc.Download(id="seg-camp-download"),
    ]), className="graph-card mb-3")


def _form() -> dict:
    # the request's shape was checked against the callback graph (dashboard/callback_guard.py)
    entries = ctx.inputs_list[0] if ctx.inputs_list else []
    return {"act_" + e["id"]["name"]: e.get("value") for e in entries
            if isinstance(e, dict) and isinstance(e.get("id"), dict) and e["id"].get("name") in LEVERS}


@callback(
    output=outputs_for(CampaignView, {
        "state": Output(STATE, "data"), "problems": Output("seg-camp-problems", "children"),
        "kpis": Output("seg-camp-kpis", "children"), "hist": Output("seg-camp-hist", "figure"),
        "rows": Output("seg-camp-grid", "rowData"), "shown": Output("seg-camp-shown", "children"),
        "link": Output("seg-camp-link", "children")}),
    inputs=[Input({"type": LEVER, "name": ALL}, "value"), Input("seg-camp-cost", "value"),
            Input(SEGMENT_STATE, "data")],
    prevent_initial_call=True,
)
@refusing
def update(_levers, cost, segment_state):
    view, _problems = parse_segment_view(query_dict(segment_state))    # the page reports those
    campaign, problems = parse_campaign({**_form(), COST: cost}, _features())
    return values(render(view, campaign, problems))


def export_frame(view: SegmentView, campaign: Campaign) -> pd.DataFrame:
    """The campaign list: every customer who moves, the grid's columns in the reader's language."""
    frame = campaign_movers(view, campaign)      # refuses a viewer before anything is read
    return frame.rename(columns={f: _header(f) for f in MOVER_COLUMNS})


@callback(
    Output("seg-camp-download", "data"),
    Input("seg-camp-export", "n_clicks"),
    State(SEGMENT_STATE, "data"), State(STATE, "data"),
    prevent_initial_call=True,
)
@refusing
def export(clicks, segment_state, campaign_state):
    if not clicks:
        raise PreventUpdate
    view, _problems = parse_segment_view(query_dict(segment_state))
    campaign, _problems = parse_campaign(query_dict(campaign_state), _features())
    frame = export_frame(view, campaign)
    keep_out()   # every export runs (and is audited); never answered from the response cache
    _audit_export(view, campaign, len(frame))
    name = "campaign-" + (view.segment or "all-customers") + ".csv"
    return dcc.send_bytes(spreadsheet.csv_bytes(frame), name)


def _audit_export(view: SegmentView, campaign: Campaign, rows: int) -> None:
    """Rows leave the app as a file: who, which view and campaign, how many (an unwritable log
    fails the export rather than letting it pass unaudited)."""
    from dashboard.auth.session import current
    from dashboard.auth.state import NotInstalled, client_ip, stores

    try:
        log = stores().audit
    except NotInstalled:        # the page called outside the server (no access control at all)
        return
    identity = current()
    log.record("export", identity.name, ip=client_ip(), page="/segments",
               filters=query_string(view.query(), campaign.query()), rows=rows, format="csv",
               scope=identity.scope.key())
