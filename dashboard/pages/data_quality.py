"""Data quality: what the last ETL run read, kept and rejected (and why), and how fresh it is.

Every user sees the run, its files and the rejections counted by reason; the raw cells of
rejected rows only analysts and admins whose access is not limited to a scope (a rejected row
cannot be attributed to one): the others get a note where the grid would be."""
from __future__ import annotations

import dash
import dash_ag_grid as dag
import dash_bootstrap_components as dbc
from dash import html

from dashboard import figures
from dashboard.auth.scoping import Forbidden
from dashboard.components.alerts import forbidden_alert, guarded_layout
from dashboard.components.cards import graph_card, page_header
from dashboard.models import SUBJECTS, read_card
from dashboard.queries import latest_run, rejected_sample, rejection_reasons, source_files
from dashboard.queries.quality import require_whole_warehouse
from dashboard.source import Unavailable

dash.register_page(__name__, path="/data-quality", name="Data quality", order=6,
                   title="Data quality · Shopper Insights",
                   description="Rows read, kept and rejected per source, with reasons; data version.")

SAMPLE_ROWS = 200


def _table(frame, headers: dict[str, str]) -> dbc.Table:
    head = html.Thead(html.Tr([html.Th(t, scope="col") for t in headers.values()]))
    body = html.Tbody([html.Tr([html.Td(f"{v:,}" if isinstance(v, int) else v) for v in row])
                       for row in frame[list(headers)].itertuples(index=False)])
    return dbc.Table([head, body], striped=True, hover=True, responsive=True, size="sm", className="mb-0")


def _models(run: dict) -> list:
    items = []
    for subject in SUBJECTS:
        try:
            card = read_card(subject)
        except Unavailable:
            items.append(html.Li([html.Strong(subject.capitalize()), ": no model yet — run ",
                                  html.Code("python -m etl train")]))
            continue
        same = card.data_version == run["data_version"]
        items.append(html.Li([html.Strong(subject.capitalize()), f": trained {str(card.trained_at or '?')[:16]} "
                              f"on data version {card.data_version or '?'} ",
                              html.Span("(current)" if same else "(older data: retrain)",
                                        className="text-success" if same else "text-danger fw-bold")]))
    return items


@guarded_layout("Data quality")
def layout(**_query) -> html.Div:
    require_whole_warehouse()   # a scoped user gets the notice (guarded_layout), no counts
    run = latest_run()
    files = source_files()
    reasons = rejection_reasons()
    try:
        sample = _sample_grid(rejected_sample(SAMPLE_ROWS))
    except Forbidden as exc:      # a viewer, or a scoped user: the counts above, no raw cells
        sample = forbidden_alert(exc.message)
    facts = [("Data version", run["data_version"]), ("Last refresh", str(run["finished_at"])[:19] + " UTC"),
             ("Raw folder", run["raw_dir"]), ("Rows read", f"{run['rows_in']:,}"),
             ("Rows kept", f"{run['rows_out']:,} ({run['sessions']:,} sessions, {run['customers']:,} customers)"),
             ("Rows rejected", f"{run['rows_rejected']:,}")]
    return html.Div([
        page_header("Data quality", "The last ETL run: every input row is either kept or rejected with a reason."),
        dbc.Row([
            dbc.Col(dbc.Card(dbc.CardBody([
                html.H2("Last refresh", className="h6"),
                html.Table([html.Tbody([html.Tr([html.Th(k, scope="row"), html.Td(v)]) for k, v in facts])],
                           className="meta-table mb-2", id="dq-facts"),
                html.H2("Models", className="h6 mt-3"),
                html.Ul(_models(run), className="mb-0 small"),
            ]), className="mb-3"), lg=5),
            dbc.Col(graph_card("dq-rejections", figures.rejections(reasons)), lg=7),
        ]),
        dbc.Card(dbc.CardBody([
            html.H2("Per source file", className="h6"),
            _table(files, {"subject": "Subject", "source_file": "File", "rows_read": "Rows read",
                           "rows_kept": "Kept", "rows_rejected": "Rejected", "encoding": "Encoding",
                           "separator": "Separator", "decimal": "Decimal"}),
        ]), className="mb-3", id="dq-files"),
        dbc.Card(dbc.CardBody([
            html.H2("Rejections by reason", className="h6"),
            _table(reasons, {"subject": "Subject", "source_file": "File", "rule": "Rule", "reason": "Reason",
                             "rows": "Rows"}) if not reasons.empty else html.P("No rejected rows.", className="mb-0"),
        ]), className="mb-3"),
        dbc.Card(dbc.CardBody([
            html.H2(f"Rejected rows (first {SAMPLE_ROWS})", className="h6"),
            sample,
        ]), className="mb-3"),
    ])


def _sample_grid(sample) -> dag.AgGrid:
    return dag.AgGrid(id="dq-rejected", rowData=sample.to_dict("records"),
                      columnDefs=[{"field": "subject", "width": 110}, {"field": "source_file", "width": 250},
                                  {"field": "source_row", "headerName": "Line", "width": 90},
                                  {"field": "column_name", "headerName": "Column", "width": 190},
                                  {"field": "rule", "width": 190}, {"field": "reason", "flex": 1, "minWidth": 260},
                                  {"field": "raw_values", "headerName": "Raw cells", "flex": 1, "minWidth": 260}],
                      defaultColDef={"sortable": True, "resizable": True, "filter": True},
                      style={"height": "420px"}, className="ag-theme-quartz")
