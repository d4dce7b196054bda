"""Segments: drill down from a segment to its at-risk customers, and build a segment of one's own.

The view (segment + builder thresholds) lives in the URL, so marketing can share it. The grid
has no column filters of its own: what it lists is exactly what the view selects, which is
also exactly what the CSV and XLSX exports contain (in the same order).
"""
from __future__ import annotations

import io

import dash
import dash_ag_grid as dag
import dash_bootstrap_components as dbc
import pandas as pd
from dash import Input, Output, State, callback, ctx, dcc, html
from dash.exceptions import PreventUpdate

from dashboard import figures
from dashboard.auth.scoping import ROWS_NOTE, can_read_rows
from dashboard.components.alerts import guarded_layout, problems_alert, refusing
from dashboard.components.cards import graph_card, page_header
from dashboard.components.filter_panel import labelled
from dashboard.components.kpi import format_value
from dashboard.components.view_model import outputs_for, values
from dashboard.filters import SegmentView, event_points, parse_segment_view, query_dict, query_string
from dashboard.models import read_card
from dashboard.response_cache import keep_out
from dashboard.queries import (AT_RISK_COLUMNS, at_risk, segment_p_decline, segment_profile, segment_summary,
                               segments)
from dashboard.source import Unavailable
from dashboard.views import SegmentsView
from etl.schema import label

dash.register_page(__name__, path="/segments", name="Segments", order=3, title="Segments · Shopper Insights",
                   description="Customer segments, their risk and profit, and who to contact first.")

STATE = {"type": "url-state", "page": "segments"}
GRID_ROWS = 500
BUILDER = (("promo", "Promo share at least", 0, 1, 0.05), ("p", "P(decline) at least", 0, 1, 0.05),
           ("profit", "Monthly profit at least", 0, None, 0.1))
PERCENT = {"function": "params.value == null ? '' : d3.format('.1%')(params.value)"}
NUMBER = {"function": "params.value == null ? '' : d3.format(',.2f')(params.value)"}
COLUMNS = [
    {"field": "customer_id", "headerName": label("customer_id"), "pinned": "left", "width": 105},
    {"field": "p_decline", "headerName": "P(decline)", "valueFormatter": PERCENT, "width": 110, "sort": "desc"},
    {"field": "profit", "headerName": "Profit / month", "valueFormatter": NUMBER, "width": 120},
    {"field": "expected_profit_at_risk", "headerName": "Profit at risk", "valueFormatter": NUMBER, "width": 115},
    {"field": "top_reasons", "headerName": "Top reasons for the risk", "flex": 1, "minWidth": 300,
     "wrapText": True, "autoHeight": True, "cellStyle": {"lineHeight": "1.35", "paddingTop": "6px",
                                                         "paddingBottom": "6px"}},
    {"field": "service_tier", "headerName": label("service_tier"), "width": 105},
    {"field": "top_category", "headerName": label("top_category"), "width": 170},
    {"field": "promo_share", "headerName": "Promo share", "valueFormatter": PERCENT, "width": 110},
    {"field": "segment", "headerName": "Segment", "width": 190},
]
EXPORT_HEADERS = {c["field"]: c["headerName"] for c in COLUMNS}


def _threshold() -> float | None:
    try:
        return float(read_card("customers").threshold)
    except (Unavailable, KeyError, TypeError, ValueError):
        return None


def _segment_options(table: pd.DataFrame) -> list[dict]:
    options = [{"label": "All customers", "value": "all"}]
    for kind, title in (("rule", "Rule-based"), ("cluster", "Behavioural clusters")):
        rows = table.loc[table.kind == kind]
        options += [{"label": f"{title}: {r.name} ({r.customers:,})", "value": r.segment_id}
                    for r in rows.itertuples()]
    return options


def render(view: SegmentView, problems: list[str]) -> SegmentsView:
    table = segments()
    known = set(table.segment_id)
    if view.segment and view.segment not in known:
        problems.append(f"Ignored segment {view.segment!r}: there is no such segment (any more).")
        view = SegmentView(None, view.min_promo, view.min_p_decline, view.min_profit)
    summary = segment_summary(view)
    chosen = table.loc[table.segment_id == view.segment].iloc[0] if view.segment else None
    threshold = _threshold()
    heading = chosen["name"] if chosen is not None else "All customers"
    if view.describe():
        heading += f" · {view.describe()}"
    if can_read_rows():
        rows = at_risk(view, GRID_ROWS).to_dict("records")
        shown = f"Top {len(rows):,} of {summary['customers']:,} customers by P(decline)" \
            if summary["customers"] > len(rows) else f"{summary['customers']:,} customers, highest P(decline) first"
    else:   # a viewer: the aggregates above, no customer ids (at_risk would refuse anyway)
        rows, shown = [], ROWS_NOTE
    return SegmentsView(
        state=query_string(view.query()).lstrip("?"),
        segment=view.segment or "all",
        problems=problems_alert(problems),
        heading=heading,
        summary=_summary_cards(summary),
        offer=_offer(chosen, view),
        bubbles=figures.segment_overview(table, view.segment),
        profile=figures.profile_bars(segment_profile(view)),
        p_hist=figures.p_histogram(segment_p_decline(view), threshold),
        rows=rows,
        shown=shown,
        link=dash.get_relative_path("/segments") + query_string(view.query()),
    )


def _summary_cards(summary: dict) -> dbc.Row:
    items = [("Customers", format_value(summary["customers"], "count")),
             ("Mean P(decline)", format_value(summary["mean_p_decline"], "rate")),
             ("Actually declined", format_value(summary["declined_share"], "rate")),
             ("Total monthly profit", format_value(summary["total_profit"], "money")),
             ("Profit at risk", format_value(summary["at_risk"], "number"))]
    return dbc.Row([dbc.Col(dbc.Card(dbc.CardBody([html.Div(t, className="kpi-title"),
                                                   html.Div(v, className="kpi-value")]), className="kpi-card h-100"),
                            xs=6, md=4, xl=True, className="mb-3") for t, v in items], className="g-2")


def _offer(chosen, view: SegmentView) -> html.Div:
    if chosen is None:
        text = ("A group of your own: pick a segment for its recommended offer, or use the rows below "
                "(highest risk first) for a campaign.") if view.describe() else \
            "Pick a segment (list or chart) to see its profile and recommended offer."
        return html.Div(text, className="offer text-secondary")
    return html.Div([html.Div("Recommended offer", className="kpi-title"), html.P(chosen["offer"], className="mb-1"),
                     html.P(chosen["description"], className="small text-secondary mb-0")], className="offer")


def _builder(view: SegmentView) -> list:
    fields = []
    for key, text, low, high, step in BUILDER:
        value = {"promo": view.min_promo, "p": view.min_p_decline, "profit": view.min_profit}[key]
        fields.append(labelled(text, dbc.Input(id=f"seg-{key}", type="number", min=low, max=high, step=step,
                                               value=value, debounce=True, placeholder="any", inputmode="decimal"),
                               f"seg-{key}"))
    return fields


@guarded_layout("Segments")
def layout(**query) -> html.Div:
    view, problems = parse_segment_view(query)
    out = render(view, problems)
    table = segments()
    rows_allowed = can_read_rows()
    return html.Div([
        page_header("Segments", "From a segment to the customers worth calling first.",
                    html.Div([html.Span("Link to this view: ", className="small text-secondary"),
                              html.Code(out.link, id="seg-link"),
                              dcc.Clipboard(target_id="seg-link", title="Copy the link", className="ms-1 d-inline")])),
        dcc.Store(id=STATE, data=out.state),
        html.Div(out.problems, id="seg-problems"),
        dbc.Row([
            dbc.Col(dbc.Card(dbc.CardBody([
                html.H2("Segment", className="h6 text-uppercase text-secondary"),
                labelled("Segment", dcc.Dropdown(id="seg-segment", options=_segment_options(table),
                                                 value=out.segment, clearable=False), "seg-segment"),
                html.H2("Segment builder", className="h6 text-uppercase text-secondary mt-3"),
                html.P("Narrow the segment: leave a field empty to ignore it.", className="small text-secondary"),
                *_builder(view),
            ]), className="filter-panel mb-3"), md=4, lg=3),
            dbc.Col([
                html.H2(out.heading, id="seg-heading", className="h5"),
                html.Div(out.summary, id="seg-summary"),
                html.Div(out.offer, id="seg-offer", className="mb-3"),
                graph_card("seg-bubbles", out.bubbles, interactive=True,
                           hint="Click a bar to drill into that segment."),
                dbc.Row([
                    dbc.Col(graph_card("seg-p-hist", out.p_hist), xl=5),
                    dbc.Col(graph_card("seg-profile", out.profile), xl=7),
                ], className="g-3"),
                dbc.Card(dbc.CardBody([
                    html.Div([
                        html.H2("At-risk customers", className="h5 mb-0"),
                        html.Div([
                            html.Span(out.shown, id="seg-shown", className="small text-secondary me-3"),
                            # a viewer's buttons are off (and the export callback refuses them)
                            dbc.Button("Export CSV", id="seg-export-csv", size="sm", color="primary", className="me-2",
                                       disabled=not rows_allowed),
                            dbc.Button("Export XLSX", id="seg-export-xlsx", size="sm", color="primary", outline=True,
                                       disabled=not rows_allowed),
                        ]),
                    ], className="d-flex flex-wrap justify-content-between align-items-center gap-2 mb-2"),
                    # A viewer gets the note instead of an empty grid (whose "No Rows To Show" would
                    # read as "nobody at risk"); the grid stays, hidden, for the callback's output.
                    dbc.Alert(ROWS_NOTE, color="secondary", className="rows-note mb-0") if not rows_allowed else None,
                    dag.AgGrid(id="seg-grid", columnDefs=COLUMNS, rowData=out.rows,
                               defaultColDef={"sortable": True, "resizable": True, "filter": False},
                               dashGridOptions={"animateRows": False, "rowHeight": 34, "suppressCellFocus": False},
                               style={"height": "520px"} if rows_allowed else {"display": "none"},
                               className="ag-theme-quartz"),
                    dcc.Download(id="seg-download"),
                ]), className="graph-card mb-3"),
            ], md=8, lg=9),
        ]),
    ])


@callback(
    output=outputs_for(SegmentsView, {
        "state": Output(STATE, "data"), "segment": Output("seg-segment", "value"),
        "problems": Output("seg-problems", "children"), "heading": Output("seg-heading", "children"),
        "summary": Output("seg-summary", "children"), "offer": Output("seg-offer", "children"),
        "bubbles": Output("seg-bubbles", "figure"), "profile": Output("seg-profile", "figure"),
        "p_hist": Output("seg-p-hist", "figure"), "rows": Output("seg-grid", "rowData"),
        "shown": Output("seg-shown", "children"), "link": Output("seg-link", "children")}),
    inputs=[Input("seg-segment", "value"), Input("seg-promo", "value"), Input("seg-p", "value"),
            Input("seg-profit", "value"), Input("seg-bubbles", "clickData")],
    prevent_initial_call=True,
)
@refusing
def update(segment, promo, p, profit, bubble):
    if ctx.triggered_id == "seg-bubbles":
        picked = [c[0] for c in event_points(bubble)[:1]]
        if not picked:
            raise PreventUpdate
        segment = picked[0]
    view, problems = parse_segment_view({"segment": segment, "promo": promo, "p": p, "profit": profit})
    return values(render(view, problems))


def export_frame(view: SegmentView) -> pd.DataFrame:
    """Every customer of the view, in the grid's order, with the grid's column titles."""
    rows = at_risk(view, None)
    return rows[list(AT_RISK_COLUMNS)].rename(columns=EXPORT_HEADERS)


def export_bytes(frame: pd.DataFrame, kind: str) -> bytes:
    if kind == "csv":
        return frame.to_csv(index=False).encode("utf-8-sig")  # BOM: Excel opens UTF-8 correctly
    buffer = io.BytesIO()
    with pd.ExcelWriter(buffer, engine="openpyxl") as writer:
        frame.to_excel(writer, index=False, sheet_name="At-risk customers")
    return buffer.getvalue()


@callback(
    Output("seg-download", "data"),
    Input("seg-export-csv", "n_clicks"), Input("seg-export-xlsx", "n_clicks"),
    State(STATE, "data"),
    prevent_initial_call=True,
)
@refusing   # a viewer's request: at_risk refuses it, the page says why, nothing is sent
def export(_csv, _xlsx, state):
    if ctx.triggered_id not in ("seg-export-csv", "seg-export-xlsx"):
        raise PreventUpdate
    view, _ = parse_segment_view(query_dict(state))
    kind = "csv" if ctx.triggered_id == "seg-export-csv" else "xlsx"
    name = "at-risk-" + (view.segment or "all-customers") + "." + kind
    frame = export_frame(view)      # refuses a viewer before anything is read
    keep_out()   # every export runs (and is audited); never answered from the response cache
    _audit_export(view, len(frame), kind)
    return dcc.send_bytes(export_bytes(frame, kind), name)


def _audit_export(view: SegmentView, rows: int, kind: str) -> None:
    """Rows leave the app as a file: who, which view, how many (before they are sent; an
    unwritable log fails the export rather than letting it pass unaudited)."""
    from dashboard.auth.session import current
    from dashboard.auth.state import NotInstalled, client_ip, stores

    try:
        log = stores().audit
    except NotInstalled:        # the page called outside the server (no access control at all)
        return
    identity = current()
    log.record("export", identity.name, ip=client_ip(), page="/segments", filters=query_string(view.query()),
               rows=rows, format=kind, scope=identity.scope.key())
