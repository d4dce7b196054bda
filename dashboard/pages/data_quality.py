"""Data quality: what the last ETL run read, kept and rejected (and why), and how fresh it is.

Every user sees the run, its files and the rejections counted by reason; the raw cells of
rejected rows only analysts and admins whose access is not limited to a scope (a rejected row
cannot be attributed to one): the others get a note where the grid would be."""
from __future__ import annotations

from numbers import Integral

import dash
import dash_ag_grid as dag
import dash_bootstrap_components as dbc
from dash import html

from dashboard import figures, terms
from dashboard.auth.scoping import Forbidden
from dashboard.components.library_texts import grid_locale
from dashboard.components.alerts import forbidden_alert, guarded_layout, with_code
from dashboard.components.cards import graph_card, page_header
from dashboard.components.moments import when
from dashboard.language import N_, _, lazy, number, page_title
from dashboard.models import SUBJECTS, read_card
from dashboard.queries import latest_run, rejected_sample, rejection_reasons, source_files
from dashboard.queries.quality import reads_raw_cells
from dashboard.queries.quality import require_whole_warehouse
from dashboard.source import Unavailable

dash.register_page(__name__, path="/data-quality", name=N_("Data quality"), order=6,
                   title=page_title(N_("Data quality")),
                   description=lazy(N_("Rows read, kept and rejected per source, with reasons; data version.")))

SAMPLE_ROWS = 200
# table column -> header msgid
FILE_HEADERS = {"subject": N_("Subject"), "source_file": N_("File"), "rows_read": N_("Rows read"),
                "rows_kept": N_("Kept"), "rows_rejected": N_("Rejected"), "encoding": N_("Encoding"),
                "separator": N_("Separator"), "decimal": N_("Decimal mark")}
REASON_HEADERS = {"subject": N_("Subject"), "source_file": N_("File"), "rule": N_("Rule"), "reason": N_("Reason"),
                  "rows": N_("Rows")}


def _readable(frame):
    """The ETL's words of a table (subject, rule) in the reader's language, for showing."""
    shown = frame.copy()
    if "subject" in shown:
        shown["subject"] = [terms.subject(v, _) for v in shown["subject"]]
    if "rule" in shown:
        shown["rule"] = [terms.rule(v, _) for v in shown["rule"]]
    return shown


def _cell(column: str, value, english: frozenset[str]) -> html.Td:
    if isinstance(value, Integral):
        return html.Td(number(value))
    # the ETL's own reasons, as written (in English, quoting raw cells): said in which language
    return html.Td(value, lang="en") if column in english else html.Td(value)


def _table(frame, headers: dict[str, str], english: frozenset[str] = frozenset()) -> dbc.Table:
    head = html.Thead(html.Tr([html.Th(_(t), scope="col") for t in headers.values()]))
    body = html.Tbody([html.Tr([_cell(c, v, english) for c, v in zip(headers, row)])
                       for row in _readable(frame)[list(headers)].itertuples(index=False)])
    return dbc.Table([head, body], striped=True, hover=True, responsive=True, size="sm", className="mb-0")


def _models(run: dict) -> list:
    items = []
    for subject in SUBJECTS:
        name = html.Strong(terms.subject(subject, _))
        try:
            card = read_card(subject)
        except Unavailable:
            items.append(html.Li([name, ": ", *with_code(_("no model yet — run {command}"),
                                                         command="python -m etl train")]))
            continue
        same = card.data_version == run["data_version"]
        trained = _("trained {when} on data version {version}").format(
            when=when(card.trained_at, utc=True), version=card.data_version or "?")
        items.append(html.Li([name, f": {trained} ",
                              html.Span(_("(current)") if same else _("(older data: retrain)"),
                                        className="text-success" if same else "text-danger fw-bold")]))
    return items


@guarded_layout(N_("Data quality"))
def layout(**_query) -> html.Div:
    require_whole_warehouse()   # a scoped user gets the notice (guarded_layout), no counts
    run = latest_run()
    files = source_files()
    reasons = rejection_reasons()
    try:
        sample = _sample_grid(rejected_sample(SAMPLE_ROWS))
    except Forbidden as exc:      # a viewer, or a scoped user: the counts above, no raw cells
        sample = forbidden_alert(exc.message)
    kept = _("{rows} ({sessions} sessions, {customers} customers)").format(
        rows=number(run["rows_out"]), sessions=number(run["sessions"]), customers=number(run["customers"]))
    facts = [(_("Data version"), run["data_version"]), (_("Last refresh"), when(run["finished_at"], utc=True)),
             (_("Raw folder"), run["raw_dir"]), (_("Rows read"), number(run["rows_in"])),
             (_("Rows kept"), kept), (_("Rows rejected"), number(run["rows_rejected"]))]
    return html.Div([
        page_header(_("Data quality"),
                    _("The last ETL run: every input row is either kept or rejected with a reason.")),
        dbc.Row([
            dbc.Col(dbc.Card(dbc.CardBody([
                html.H2(_("Last refresh"), className="h6"),
                html.Table([html.Tbody([html.Tr([html.Th(k, scope="row"), html.Td(v)]) for k, v in facts])],
                           className="meta-table mb-2", id="dq-facts"),
                html.H2(_("Models"), className="h6 mt-3"),
                html.Ul(_models(run), className="mb-0 small"),
            ]), className="mb-3"), lg=5),
            dbc.Col(graph_card("dq-rejections", figures.rejections(_readable(reasons))), lg=7),
        ]),
        dbc.Card(dbc.CardBody([
            html.H2(_("Per source file"), className="h6"),
            _table(files, FILE_HEADERS),
        ]), className="mb-3", id="dq-files"),
        dbc.Card(dbc.CardBody([
            html.H2(_("Rejections by reason"), className="h6"),
            _table(reasons, REASON_HEADERS, frozenset({"reason"}) if reads_raw_cells() else frozenset())
            if not reasons.empty else html.P(_("No rejected rows."), className="mb-0"),
        ]), className="mb-3"),
        dbc.Card(dbc.CardBody([
            html.H2(_("Rejected rows (first {n})").format(n=number(SAMPLE_ROWS)), className="h6"),
            sample,
        ]), className="mb-3"),
    ])


def _sample_grid(sample) -> dag.AgGrid:
    return dag.AgGrid(id="dq-rejected", rowData=_readable(sample).to_dict("records"),
                      columnDefs=[{"field": "subject", "headerName": _("Subject"), "width": 130},
                                  {"field": "source_file", "headerName": _("File"), "width": 250},
                                  {"field": "source_row", "headerName": _("Line"), "width": 90},
                                  {"field": "column_name", "headerName": _("Column"), "width": 190},
                                  {"field": "rule", "headerName": _("Rule"), "width": 210},
                                  {"field": "reason", "headerName": _("Reason"), "flex": 1, "minWidth": 260},
                                  {"field": "raw_values", "headerName": _("Raw cells"), "flex": 1, "minWidth": 260}],
                      defaultColDef={"sortable": True, "resizable": True, "filter": True},
                      dashGridOptions={"localeText": grid_locale()},
                      style={"height": "420px"}, className="ag-theme-quartz")
