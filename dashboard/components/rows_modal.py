"""The "Show rows (N)" drill-through of the Carts and Customers pages: a button beside the
filter chips, a modal with the first rows behind the current filters and a CSV of all of them.

Only for identities that may read rows (the button and the modal are not in a viewer's page;
the row queries refuse a viewer anyway, and the gate refuses the callbacks, whose row-carrying
outputs are ``<prefix>-rows-body`` and ``<prefix>-rows-download``). The pages own the
callbacks (the gate maps a callback to the page that registered it); this module draws and
formats. Headers and categorical values are in the reader's language, ids as stored.
"""
from __future__ import annotations

from collections.abc import Callable

import dash_bootstrap_components as dbc
import pandas as pd
from dash import dcc, html
from dash.exceptions import PreventUpdate

from dashboard import spreadsheet, terms
from dashboard.auth.scoping import can_read_rows
from dashboard.response_cache import keep_out
from dashboard.crossfilter import Ids
from dashboard.filters import query_string
from dashboard.language import _, ngettext, number

SHOWN_ROWS = 200
# stored values a reader reads as words (the ids are not translated)
WORDS = frozenset(("service_tier", "top_category", "customer_segment", "product_details_viewed", "abandoned",
                   "activity_declined", "marketing_consent"))


def ids(page: Ids) -> dict[str, str]:
    """The component ids of the drill-through of a page (``carts-rows-open`` ...)."""
    return {name: page.of(f"rows-{name}") for name in ("bar", "open", "modal", "body", "csv", "download")}


def rows_button(page: Ids, count: int | None) -> dbc.Button | None:
    """The button (None for an identity that may not read rows, or when no row matches)."""
    if not can_read_rows() or not count:
        return None
    return dbc.Button(_("Show rows ({n})").format(n=number(count)), id=ids(page)["open"], size="sm",
                      color="primary", outline=True, className="mb-2 rows-open")


def rows_modal(page: Ids, title: str) -> list:
    """The modal and the download of a page (empty for a viewer)."""
    if not can_read_rows():
        return []
    found = ids(page)
    return [
        dbc.Modal([
            dbc.ModalHeader(dbc.ModalTitle(title)),
            dbc.ModalBody(dcc.Loading(html.Div(id=found["body"]))),
            dbc.ModalFooter(dbc.Button(_("Download CSV (all rows)"), id=found["csv"], color="primary", size="sm")),
        ], id=found["modal"], is_open=False, size="xl", scrollable=True),
        dcc.Download(id=found["download"]),
    ]


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and pd.isna(value))


def _word(column: str, value) -> str:
    if _missing(value):
        return ""
    # numpy's bool is not a bool: terms.value reads yes/no from a real one
    return terms.value(column, value.item() if hasattr(value, "item") else value, _)


def _cell(column: str, value) -> str:
    if column in WORDS:
        return _word(column, value)
    if _missing(value):
        return ""
    if isinstance(value, str) or column.endswith("_id"):
        return str(value)
    return number(value, 0 if float(value).is_integer() else 2)


def rows_body(frame: pd.DataFrame, total: int) -> list:
    """How many rows, and the first :data:`SHOWN_ROWS` of them as a table."""
    if total > len(frame):
        count = ngettext("Showing the first {shown} of {total} row.", "Showing the first {shown} of {total} rows.",
                         total).format(shown=number(len(frame)), total=number(total))
    else:
        count = ngettext("{n} row matches the filters.", "{n} rows match the filters.", total).format(n=number(total))
    head = html.Thead(html.Tr([html.Th(terms.label(c, _), scope="col") for c in frame.columns]))
    body = html.Tbody([html.Tr([html.Td(_cell(c, v)) for c, v in zip(frame.columns, row)])
                       for row in frame.itertuples(index=False)])
    return [html.P(count, className="small text-secondary rows-count"),
            dbc.Table([head, body], size="sm", striped=True, hover=True, responsive=True, className="rows-table")]


def export_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows with headers and categorical values in the reader's language (numbers as stored)."""
    out = frame.copy()
    for column in out.columns:
        if column in WORDS:
            out[column] = [_word(column, v) for v in out[column]]
    return out.rename(columns={c: terms.label(c, _) for c in out.columns})


def csv_bytes(frame: pd.DataFrame) -> bytes:
    return spreadsheet.csv_bytes(export_frame(frame))


def opened(clicks, filters, read_rows: Callable, count_rows: Callable) -> tuple[list, bool]:
    """The modal's body for ``filters``, open: what the page's "Show rows" callback answers."""
    if not clicks:   # the button is drawn again with every filter change: that is no click
        raise PreventUpdate
    return rows_body(read_rows(filters, SHOWN_ROWS), count_rows(filters)), True


def download(clicks, page: str, filters, read_rows: Callable, filename: str) -> dict:
    """Every row behind ``filters`` as a CSV file, audited: what the page's CSV callback answers."""
    if not clicks:   # a button drawn again is no click
        raise PreventUpdate
    frame = read_rows(filters)   # refuses a viewer before anything is read
    keep_out()   # every export runs (and is audited); never answered from the response cache
    audit_export(page, query_string(filters.query()), len(frame))
    return dcc.send_bytes(csv_bytes(frame), filename)


def audit_export(page: str, filters: str, rows: int) -> None:
    """Rows leave the app as a file: who, which page and filters, how many (before they are
    sent; an unwritable log fails the export rather than letting it pass unaudited)."""
    from dashboard.auth.session import current
    from dashboard.auth.state import NotInstalled, client_ip, stores

    try:
        log = stores().audit
    except NotInstalled:        # the page called outside the server (no access control at all)
        return
    identity = current()
    log.record("export", identity.name, ip=client_ip(), page=page, filters=filters, rows=rows, format="csv",
               scope=identity.scope.key())
