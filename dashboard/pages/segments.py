"""Segments: drill down from a segment to its at-risk customers, and build a segment of one's own.

The view (segment + builder thresholds) lives in the URL, so marketing can share it. The grid
has no column filters of its own: what it lists is exactly what the view selects, which is
also exactly what the CSV and XLSX exports contain (in the same order).
"""
from __future__ import annotations

import io
import json

import dash
import dash_ag_grid as dag
import dash_bootstrap_components as dbc
import pandas as pd
from dash import Input, Output, State, callback, ctx, dcc, html
from dash.exceptions import PreventUpdate

from dashboard import figures, spreadsheet, terms
from dashboard.auth.scoping import ROWS_NOTE, can_read_rows
from dashboard.components.library_texts import dropdown_labels, grid_locale
from dashboard.components import campaign_panel
from dashboard.components.alerts import guarded_layout, problems_alert, refusing
from dashboard.components.cards import graph_card, page_header
from dashboard.components.filter_panel import labelled
from dashboard.components.offcanvas import filter_column, filter_toggle
from dashboard.components.view_model import outputs_for, values
from dashboard.filters import SegmentView, parse_segment_view, query_dict, query_string
from dashboard.ranges import event_points
from dashboard.language import (N_, _, current_lang, lang_params, lazy, money, ngettext, number, page_title, percent,
                                plotly_locale)
from dashboard.models import read_card
from dashboard.queries import (AT_RISK_COLUMNS, at_risk, segment_p_decline, segment_profile, segment_summary,
                               segments)
from dashboard.queries.segments import at_risk_reasons
from dashboard.response_cache import keep_out
from dashboard.source import Unavailable
from dashboard.views import SegmentsView

dash.register_page(__name__, path="/segments", name=N_("Segments"), order=3, title=page_title(N_("Segments")),
                   description=lazy(N_("Customer segments, their risk and profit, and who to contact first.")))

STATE = {"type": "url-state", "page": "segments"}
GRID_ROWS = 500
BUILDER = (("promo", N_("Promo share at least"), 0, 1, 0.05), ("p", N_("P(decline) at least"), 0, 1, 0.05),
           ("profit", N_("Monthly profit at least"), 0, None, 0.1))
# field -> header (a terms.LABELS column, or a msgid of its own), grid width
HEADERS = {"customer_id": ("customer_id", 105), "p_decline": ("p_decline", 110),
           "profit": (N_("Profit / month"), 120), "expected_profit_at_risk": ("expected_profit_at_risk", 115),
           "top_reasons": (N_("Top reasons for the risk"), None), "service_tier": ("service_tier", 105),
           "top_category": ("top_category", 170), "promo_share": (N_("Promo share"), 110),
           "segment": (N_("Segment"), 190)}
WHAT_IF = "/what-if"
LINK = "what_if"     # the grid's column of links to the What-if page (not exported)


def _header(field: str) -> str:
    key = HEADERS[field][0]
    return terms.label(key, _) if key in terms.LABELS else _(key)


def _formatter(spec: str, scale: int = 1, suffix: str = "") -> dict:
    """A grid value formatter in the reader's number format (d3's own is English)."""
    symbols = plotly_locale(current_lang())["format"]
    locale = json.dumps({"decimal": symbols["decimal"], "thousands": symbols["thousands"], "grouping": [3],
                         "currency": ["", ""]})
    return {"function": f"params.value == null ? '' : d3.formatLocale({locale}).format('{spec}')"
                        f"(params.value * {scale}) + {json.dumps(suffix)}"}


def _rate_and_amount() -> tuple[dict, dict]:
    """The grids' formatters of a probability (as a percentage) and of an amount of money."""
    return _formatter(".1f", 100, percent(0.5, 0).replace(number(50), "")), _formatter(",.2f")   # "%" / " %"


def _columns() -> list[dict]:
    """The grid's columns in the reader's language; the customer's id links to the What-if page."""
    rate, amount = _rate_and_amount()
    spec = {"p_decline": {"valueFormatter": rate, "sort": "desc"}, "promo_share": {"valueFormatter": rate},
            "profit": {"valueFormatter": amount}, "expected_profit_at_risk": {"valueFormatter": amount},
            # a fixed width, not flex: the columns are wider than any screen anyway, and a flex
            # column keeps AG Grid's header hidden ("delay render") until the grid is resized,
            # which left an incomplete header for screen readers on a phone (axe, test_accessibility)
            "top_reasons": {"width": 360, "wrapText": True, "autoHeight": True,
                            "cellStyle": {"lineHeight": "1.35", "paddingTop": "6px", "paddingBottom": "6px"}}}
    columns = [{"field": LINK, "headerName": _header("customer_id"), "pinned": "left", "width": 105,
                "cellRenderer": "markdown", "linkTarget": "_self",
                "headerTooltip": _("Opens the customer in What-if")}]
    for field, (_key, width) in HEADERS.items():
        if field != "customer_id":
            columns.append({"field": field, "headerName": _header(field), **({"width": width} if width else {}),
                            **spec.get(field, {})})
    return columns


def what_if_link(customer_id) -> str:
    """The What-if page started from this customer, in the reader's language (a page load
    carries ``?lang=``, a callback the page's language in its header)."""
    return dash.get_relative_path(WHAT_IF) + query_string({"subject": "customers", "start": str(customer_id),
                                                           **lang_params()})


def _threshold() -> float | None:
    try:
        return float(read_card("customers").threshold)
    except (Unavailable, KeyError, TypeError, ValueError):
        return None


def _names(table: pd.DataFrame) -> dict[str, str]:
    """Segment id -> its name in the reader's language."""
    return {r.segment_id: terms.segment_name(r.segment_id, r.kind, r.name, _) for r in table.itertuples()}


def _segment_options(table: pd.DataFrame) -> list[dict]:
    options = [{"label": _("All customers"), "value": "all"}]
    names = _names(table)
    for kind, title in (("rule", N_("Rule-based: {name} ({customers})")),
                        ("cluster", N_("Behavioural clusters: {name} ({customers})"))):
        rows = table.loc[table.kind == kind]
        options += [{"label": _(title).format(name=names[r.segment_id], customers=number(r.customers)),
                     "value": r.segment_id} for r in rows.itertuples()]
    return options


def _reader_rows(frame: pd.DataFrame, reasons: pd.DataFrame, names: dict[str, str]) -> list[dict]:
    """The at-risk rows as the reader reads them: tiers, categories, segment names and the
    reasons for the risk in their language (the stored reasons are English sentences)."""
    lang, card = current_lang(), read_card("customers")
    worded: dict[int, list[str]] = {}
    for item in reasons.itertuples():
        kind = (card.feature_specs.get(item.feature) or {}).get("kind", "float")
        worded.setdefault(int(item.customer_id), []).append(
            terms.reason(item.feature, kind, item.value, card.baseline.get(item.feature), _, lang))
    nothing = _(terms.NOTHING_STANDS_OUT)
    return [{**row, "service_tier": terms.tier(row["service_tier"], _),
             "top_category": terms.category(row["top_category"], _),
             "segment": names.get(row["segment"], row["segment"]),
             "top_reasons": ", ".join(worded.get(int(row["customer_id"])) or [nothing])}
            for row in frame[list(AT_RISK_COLUMNS)].to_dict("records")]


def render(view: SegmentView, problems: list[str]) -> SegmentsView:
    table = segments()
    names = _names(table)
    if view.segment and view.segment not in names:
        problems.append(_("Ignored segment {segment}: there is no such segment (any more).").format(
            segment=repr(view.segment)))
        view = SegmentView(None, view.min_promo, view.min_p_decline, view.min_profit)
    summary = segment_summary(view)
    chosen = table.loc[table.segment_id == view.segment].iloc[0] if view.segment else None
    threshold = _threshold()
    heading = names[view.segment] if chosen is not None else _("All customers")
    if view.describe():
        heading += f" · {view.describe()}"
    total = int(summary["customers"])
    if can_read_rows():
        rows = _reader_rows(at_risk(view, GRID_ROWS), at_risk_reasons(view, GRID_ROWS), names)
        for row in rows:
            row[LINK] = f"[{row['customer_id']}]({what_if_link(row['customer_id'])})"
        shown = ngettext("Top {shown} of {total} customer by P(decline)", "Top {shown} of {total} customers by "
                         "P(decline)", total).format(shown=number(len(rows)), total=number(total)) \
            if total > len(rows) else \
            ngettext("{n} customer, highest P(decline) first", "{n} customers, highest P(decline) first",
                     total).format(n=number(total))
    else:   # a viewer: the aggregates above, no customer ids (at_risk would refuse anyway)
        rows, shown = [], _(ROWS_NOTE)
    return SegmentsView(
        state=query_string(view.query()).lstrip("?"),
        segment=view.segment or "all",
        problems=problems_alert(problems),
        heading=heading,
        summary=_summary_cards(summary),
        offer=_offer(chosen, view),
        bubbles=figures.segment_overview(table.assign(name=[names[i] for i in table.segment_id]), view.segment),
        profile=figures.profile_bars(segment_profile(view)),
        p_hist=figures.p_histogram(segment_p_decline(view), threshold),
        rows=rows,
        shown=shown,
        link=dash.get_relative_path("/segments") + query_string(view.query()),
    )


def _summary_cards(summary: dict) -> dbc.Row:
    items = [(_("Customers"), number(summary["customers"])),
             (_("Mean P(decline)"), percent(summary["mean_p_decline"])),
             (_("Actually declined"), percent(summary["declined_share"])),
             (_("Total monthly profit"), money(summary["total_profit"], 0)),
             (terms.label("expected_profit_at_risk", _), money(summary["at_risk"]))]
    return dbc.Row([dbc.Col(dbc.Card(dbc.CardBody([html.Div(t, className="kpi-title"),
                                                   html.Div(v, className="kpi-value")]), className="kpi-card h-100"),
                            xs=6, md=4, xl=True, className="mb-3") for t, v in items], className="g-2")


def _offer(chosen, view: SegmentView) -> html.Div:
    if chosen is None:
        text = _("A group of your own: pick a segment for its recommended offer, or use the rows below "
                 "(highest risk first) for a campaign.") if view.describe() else \
            _("Pick a segment (list or chart) to see its profile and recommended offer.")
        return html.Div(text, className="offer text-secondary")
    lang = current_lang()
    offers = [html.Li([headline, html.Span(f" — {why}", className="small text-secondary") if why else None])
              for headline, why in terms.offer_reasons(chosen["offer"], _, lang)]
    description = terms.segment_description(chosen["segment_id"], chosen["kind"], chosen["description"], _, lang)
    return html.Div([html.Div(_("Recommended offer"), className="kpi-title"), html.Ul(offers, className="mb-1"),
                     html.P(description, className="small text-secondary mb-0")], className="offer")


def _builder(view: SegmentView) -> list:
    fields = []
    for key, text, low, high, step in BUILDER:
        value = {"promo": view.min_promo, "p": view.min_p_decline, "profit": view.min_profit}[key]
        fields.append(labelled(_(text), dbc.Input(id=f"seg-{key}", type="number", min=low, max=high, step=step,
                                                  value=value, debounce=True, placeholder=_("any"),
                                                  inputmode="decimal"), f"seg-{key}"))
    return fields


@guarded_layout(N_("Segments"))
def layout(**query) -> html.Div:
    view, problems = parse_segment_view(query)
    out = render(view, problems)
    table = segments()
    rows_allowed = can_read_rows()
    panel = dbc.Card(dbc.CardBody([
        html.H2(_("Segment"), className="h6 text-uppercase text-secondary"),
        labelled(_("Segment"), dcc.Dropdown(id="seg-segment", options=_segment_options(table),
                                            value=out.segment, clearable=False, labels=dropdown_labels()),
                 "seg-segment"),
        html.H2(_("Segment builder"), className="h6 text-uppercase text-secondary mt-3"),
        html.P(_("Narrow the segment: leave a field empty to ignore it."), className="small text-secondary"),
        *_builder(view),
    ]), className="filter-panel mb-3")
    return html.Div([
        page_header(_("Segments"), _("From a segment to the customers worth calling first."),
                    html.Div([html.Span(_("Link to this view:") + " ", className="small text-secondary"),
                              html.Code(out.link, id="seg-link"),
                              dcc.Clipboard(target_id="seg-link", title=_("Copy the link"),
                                            className="ms-1 d-inline")])),
        dcc.Store(id=STATE, data=out.state),
        html.Div(out.problems, id="seg-problems"),
        dbc.Row([
            filter_column("segments", panel),
            dbc.Col([
                filter_toggle("segments"),
                html.H2(out.heading, id="seg-heading", className="h5"),
                html.Div(out.summary, id="seg-summary"),
                html.Div(out.offer, id="seg-offer", className="mb-3"),
                graph_card("seg-bubbles", out.bubbles, interactive=True,
                           hint=_("Click a bar to drill into that segment.")),
                dbc.Row([
                    dbc.Col(graph_card("seg-p-hist", out.p_hist), xl=5),
                    dbc.Col(graph_card("seg-profile", out.profile), xl=7),
                ], className="g-3"),
                dbc.Card(dbc.CardBody([
                    html.Div([
                        html.H2(_("At-risk customers"), className="h5 mb-0"),
                        html.Div([
                            html.Span(out.shown, id="seg-shown", className="small text-secondary me-3"),
                            # a viewer's buttons are off (and the export callback refuses them)
                            dbc.Button(_("Export CSV"), id="seg-export-csv", size="sm", color="primary",
                                       className="me-2", disabled=not rows_allowed),
                            dbc.Button(_("Export XLSX"), id="seg-export-xlsx", size="sm", color="primary",
                                       outline=True, disabled=not rows_allowed),
                        ]),
                    ], className="d-flex flex-wrap justify-content-between align-items-center gap-2 mb-2"),
                    # A viewer gets the note instead of an empty grid (whose "No Rows To Show" would
                    # read as "nobody at risk"); the grid stays, hidden, for the callback's output.
                    dbc.Alert(_(ROWS_NOTE), color="secondary", className="rows-note mb-0") if not rows_allowed
                    else html.P(_("A customer's id opens them in What-if; or select a row (click, or Space on "
                                  "the keyboard) and follow the link below the list."),
                                className="small text-secondary mb-2"),
                    dag.AgGrid(id="seg-grid", columnDefs=_columns(), rowData=out.rows,
                               defaultColDef={"sortable": True, "resizable": True, "filter": False},
                               dashGridOptions={"localeText": grid_locale(),
                                                "animateRows": False, "rowHeight": 34, "suppressCellFocus": False,
                                                "rowSelection": {"mode": "singleRow", "checkboxes": False,
                                                                 "enableClickSelection": True}},
                               style={"height": "520px"} if rows_allowed else {"display": "none"},
                               className="ag-theme-quartz"),
                    html.Div(id="seg-open", className="mt-2", **{"aria-live": "polite"}),
                    dcc.Download(id="seg-download"),
                ]), className="graph-card mb-3"),
                campaign_panel.section(parse_segment_view(query_dict(out.state))[0], query, *_rate_and_amount()),
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


@callback(Output("seg-open", "children"), Input("seg-grid", "selectedRows"), prevent_initial_call=True)
@refusing
def open_selected(selected):
    """The keyboard's way to the What-if page: a link for the selected row."""
    row = selected[0] if isinstance(selected, list) and selected and isinstance(selected[0], dict) else None
    customer = row.get("customer_id") if row else None
    if not isinstance(customer, int) or isinstance(customer, bool):
        return None
    return dcc.Link(_("Open customer {id} in What-if").format(id=customer), href=what_if_link(customer),
                    className="btn btn-outline-primary btn-sm")


def export_frame(view: SegmentView) -> pd.DataFrame:
    """Every customer of the view, in the grid's order, with the grid's column titles and
    values in the reader's language."""
    rows = _reader_rows(at_risk(view, None), at_risk_reasons(view, None), _names(segments()))
    return pd.DataFrame(rows, columns=list(AT_RISK_COLUMNS)).rename(columns={f: _header(f) for f in AT_RISK_COLUMNS})


def export_bytes(frame: pd.DataFrame, kind: str) -> bytes:
    if kind == "csv":
        return spreadsheet.csv_bytes(frame)
    buffer = io.BytesIO()
    with pd.ExcelWriter(buffer, engine="openpyxl") as writer:   # openpyxl too writes "=…" text as a formula
        spreadsheet.inert(frame).to_excel(writer, index=False, sheet_name=_("At-risk customers")[:31])
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
    view, _problems = parse_segment_view(query_dict(state))
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
