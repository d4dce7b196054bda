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
from dashboard.components.library_texts import grid_locale
from dashboard.components.cards import page_header
from dashboard.inputs import text
from dashboard.language import N_, _, lazy, ngettext, number, page_title

dash.register_page(__name__, path="/admin/audit", name=N_("Audit log"), order=21, title=page_title(N_("Audit log")),
                   description=lazy(N_("Sign-ins, exports, embed tokens and user changes.")), admin=True)

P = "admin-audit-"
FILTER, RELOAD, GRID, SHOWN = P + "filter", P + "reload", P + "grid", P + "shown"
LIMIT = 500
REFUSED = N_("Administrators only.")
# the grid's columns: (field, header msgid, look); the time stays ISO 8601 (UTC), which sorts
COLUMNS = [("time", N_("Time (UTC)"), {"width": 210, "sort": "desc"}), ("event", N_("Event"), {"width": 170}),
           ("user", N_("User"), {"width": 170}), ("ip", N_("Address"), {"width": 140}),
           ("details", N_("Details"), {"flex": 1, "minWidth": 300, "wrapText": True, "autoHeight": True})]
# the events the app records (auth/, pages, reports), as a reader names them
EVENTS = {
    "sign-in": N_("sign-in"), "sign-in-failed": N_("sign-in failed"), "sign-out": N_("sign-out"),
    "export": N_("export"), "embed-token": N_("embedded view opened"), "user-added": N_("user added"),
    "user-changed": N_("user changed"), "user-removed": N_("user removed"), "password-set": N_("password set"),
    "refresh": N_("data refresh"), "report": N_("report build"),
}


def column_defs() -> list[dict]:
    return [{"field": field, "headerName": _(header), **look} for field, header, look in COLUMNS]


def event_name(event: str) -> str:
    """An event in the reader's language (an event this page does not know, as it is written)."""
    return _(EVENTS[event]) if event in EVENTS else event


def _row(entry: dict) -> dict:
    details = entry.get("details")
    if isinstance(details, dict):
        shown = "; ".join(f"{k}={v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)}"
                          for k, v in details.items())
    else:
        shown = "" if details is None else json.dumps(details, ensure_ascii=False)
    return {"time": str(entry.get("time", "")), "event": event_name(str(entry.get("event", ""))),
            "user": str(entry.get("user") or ""), "ip": str(entry.get("ip") or ""), "details": shown}


def rows(entries: list[dict], query: str = "") -> list[dict]:
    """Table rows of ``entries`` whose text (as shown, or the event as recorded) contains
    ``query`` (case-insensitive)."""
    needle = query.strip().casefold()
    found = []
    for entry in entries:
        row = _row(entry)
        if not needle or needle in " ".join([*row.values(), str(entry.get("event", ""))]).casefold():
            found.append(row)
    return found


def shown_text(count: int, total: int, skipped: int) -> str:
    if count != total:
        shown = ngettext("{count} of the newest {total} entry.", "{count} of the newest {total} entries.", total)
    else:
        shown = ngettext("The newest {total} entry.", "The newest {total} entries.", total)
    shown = shown.format(count=number(count), total=number(total))
    if skipped:
        shown += " " + ngettext("{n} unreadable line skipped.", "{n} unreadable lines skipped.",
                                skipped).format(n=number(skipped))
    return shown


def _not_available(exc: NotInstalled) -> str:
    return _("The audit log is not available: {reason}.").format(reason=exc)


def _unreadable(exc: OSError) -> str:
    return _("The audit log cannot be read: {reason}.").format(reason=exc.strerror or exc)


def _entries() -> Entries:
    return stores().audit.tail(LIMIT)


def layout(**_query) -> html.Div:
    uncached()
    if not is_admin():
        return html.Div([html.H1(_("Audit log"), className="h3 mb-3"),
                         dbc.Alert(_(REFUSED), color="warning", className="admin-only")])
    header = page_header(_("Audit log"),
                         _("Who did what, newest first (the last {n} entries).").format(n=number(LIMIT)))
    try:
        entries = _entries()
    except NotInstalled as exc:
        return html.Div([header, dbc.Alert(_not_available(exc), color="info")])
    except OSError as exc:
        return html.Div([header, dbc.Alert(_unreadable(exc), color="danger")])
    found = rows(entries)
    return html.Div([
        header,
        html.Div([
            dbc.Label(_("Filter the entries"), html_for=FILTER, className="visually-hidden"),
            dbc.Input(id=FILTER, type="search", placeholder=_("Filter: a name, an event, an address…"), debounce=True,
                      maxlength=200, style={"maxWidth": "24rem"}, className="me-2"),
            dbc.Button(_("Reload"), id=RELOAD, color="secondary", outline=True),
        ], className="d-flex mb-2"),
        html.P(shown_text(len(found), len(entries), entries.skipped), id=SHOWN, className="text-secondary small"),
        dag.AgGrid(id=GRID, rowData=found, columnDefs=column_defs(),
                   defaultColDef={"sortable": True, "resizable": True},
                   dashGridOptions={"localeText": grid_locale()},
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
        return [], _(REFUSED)
    needle = text(query) if query is not None else ""
    if needle is None:
        return [], _("The filter is at most 200 printable characters.")
    try:
        entries = _entries()
    except NotInstalled as exc:
        return [], _not_available(exc)
    except OSError as exc:
        return [], _unreadable(exc)
    found = rows(entries, needle)
    return found, shown_text(len(found), len(entries), entries.skipped)
