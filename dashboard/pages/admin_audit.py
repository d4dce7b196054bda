"""Audit log (administrators only): the newest entries, with a text filter.

Like the Users page, the layout and the callback check the role themselves and keep their
answers out of the response cache (the log grows between two identical requests).
"""
from __future__ import annotations

import json

import dash
import dash_ag_grid as dag
import dash_bootstrap_components as dbc
from dash import Input, Output, callback, html

from dashboard.auth.audit import Entries
from dashboard.auth.state import NotInstalled, is_admin, stores, uncached
from dashboard.components.cards import page_header
from dashboard.inputs import text

dash.register_page(__name__, path="/admin/audit", name="Audit log", order=21, title="Audit log · Shopper Insights",
                   description="Sign-ins, exports, embed tokens and user changes.", admin=True)

P = "admin-audit-"
FILTER, RELOAD, GRID, SHOWN = P + "filter", P + "reload", P + "grid", P + "shown"
LIMIT = 500
REFUSED = "Administrators only."
COLUMNS = [{"field": "time", "width": 210, "sort": "desc"}, {"field": "event", "width": 150},
           {"field": "user", "width": 170}, {"field": "ip", "headerName": "Address", "width": 140},
           {"field": "details", "flex": 1, "minWidth": 300, "wrapText": True, "autoHeight": True}]


def _row(entry: dict) -> dict:
    details = entry.get("details")
    if isinstance(details, dict):
        shown = "; ".join(f"{k}={v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)}"
                          for k, v in details.items())
    else:
        shown = "" if details is None else json.dumps(details, ensure_ascii=False)
    return {"time": str(entry.get("time", "")), "event": str(entry.get("event", "")),
            "user": str(entry.get("user") or ""), "ip": str(entry.get("ip") or ""), "details": shown}


def rows(entries: list[dict], query: str = "") -> list[dict]:
    """Table rows of ``entries`` whose text contains ``query`` (case-insensitive)."""
    found = [_row(e) for e in entries]
    needle = query.strip().casefold()
    return [r for r in found if needle in " ".join(r.values()).casefold()] if needle else found


def shown_text(count: int, total: int, skipped: int) -> str:
    entries = "entry" if total == 1 else "entries"
    base = f"{count:,} of the newest {total:,} {entries}" if count != total else f"The newest {total:,} {entries}"
    return base + (f"; {skipped:,} unreadable line(s) skipped" if skipped else "") + "."


def _entries() -> Entries:
    return stores().audit.tail(LIMIT)


def layout(**_query) -> html.Div:
    uncached()
    if not is_admin():
        return html.Div([html.H1("Audit log", className="h3 mb-3"),
                         dbc.Alert(REFUSED, color="warning", className="admin-only")])
    header = page_header("Audit log", f"Who did what, newest first (the last {LIMIT} entries).")
    try:
        entries = _entries()
    except NotInstalled as exc:
        return html.Div([header, dbc.Alert(f"The audit log is not available: {exc}.", color="info")])
    except OSError as exc:
        return html.Div([header, dbc.Alert(f"The audit log cannot be read: {exc.strerror or exc}.", color="danger")])
    found = rows(entries)
    return html.Div([
        header,
        html.Div([
            dbc.Label("Filter the entries", html_for=FILTER, className="visually-hidden"),
            dbc.Input(id=FILTER, type="search", placeholder="Filter: a name, an event, an address…", debounce=True,
                      maxlength=200, style={"maxWidth": "24rem"}, className="me-2"),
            dbc.Button("Reload", id=RELOAD, color="secondary", outline=True),
        ], className="d-flex mb-2"),
        html.P(shown_text(len(found), len(entries), entries.skipped), id=SHOWN, className="text-secondary small"),
        dag.AgGrid(id=GRID, rowData=found, columnDefs=COLUMNS,
                   defaultColDef={"sortable": True, "resizable": True},
                   style={"height": "640px"}, className="ag-theme-quartz"),
    ])


@callback(
    Output(GRID, "rowData"), Output(SHOWN, "children"),
    Input(FILTER, "value"), Input(RELOAD, "n_clicks"),
    prevent_initial_call=True,
)
def update(query, _reload):
    """The entries matching the filter, re-read from the log."""
    uncached()
    if not is_admin():
        return [], REFUSED
    needle = text(query) if query is not None else ""
    if needle is None:
        return [], "The filter is at most 200 printable characters."
    try:
        entries = _entries()
    except NotInstalled as exc:
        return [], f"The audit log is not available: {exc}."
    except OSError as exc:
        return [], f"The audit log cannot be read: {exc.strerror or exc}."
    found = rows(entries, needle)
    return found, shown_text(len(found), len(entries), entries.skipped)
