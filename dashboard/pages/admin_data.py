"""Data refresh (administrators only): "refresh data now", with progress and the last outcome.

The refresh is ``python -m etl refresh`` in a process of its own (dashboard/refresh_job.py):
new data and its models are published together by one rename, or nothing is. The layout and
the callback check the role themselves (the request gate refuses ``admin-`` callbacks for
everyone else too) and keep their answers out of the response cache.
"""
from __future__ import annotations

import dash
import dash_bootstrap_components as dbc
from dash import Input, Output, callback, ctx, dcc, html

from dashboard.auth.session import current
from dashboard.auth.state import NotInstalled, client_ip, is_admin, stores, uncached
from dashboard.components.alerts import with_code
from dashboard.components.cards import page_header
from dashboard.components.moments import when
from dashboard.config import get_config
from dashboard.language import N_, _, lazy, page_title
from dashboard.refresh_job import RefreshStatus, start, status
from etl.backends import redact
from etl.settings import get_settings

dash.register_page(__name__, path="/admin/data", name=N_("Data refresh"), order=22,
                   title=page_title(N_("Data refresh")),
                   description=lazy(N_("Load the raw files again and retrain the models now.")), admin=True)

P = "admin-data-"
CONFIRM, BUTTON, STATUS, POLL, NOTE = P + "confirm", P + "button", P + "status", P + "poll", P + "note"
REFUSED = N_("Administrators only.")
POLL_MS = 2000
_COLOURS = {"running": "info", "succeeded": "success", "failed": "danger", "stopped": "warning", "never": "secondary"}
_WORDS = {"running": N_("Refreshing now"), "succeeded": N_("Last refresh succeeded"),
          "failed": N_("Last refresh failed"), "stopped": N_("Last refresh stopped before it finished"),
          "never": N_("No refresh started from here yet")}


def status_view(state: RefreshStatus) -> dbc.Card:
    """The outcome (or progress) of the latest refresh, with the last lines of its output."""
    facts = [_("started {when} by {user}").format(when=when(state.started_at), user=state.user)
             if state.started_at else None,
             _("finished {when}").format(when=when(state.finished_at)) if state.finished_at else None,
             _("exit code {code}").format(code=state.exit_code) if state.exit_code is not None else None]
    words = _WORDS[state.outcome]
    return dbc.Card(dbc.CardBody([
        html.H2([dbc.Badge(_(words), color=_COLOURS[state.outcome], className="me-2")],
                className="h5"),
        html.P("; ".join(f for f in facts if f) or "—", className="text-secondary small"),
        html.Pre("\n".join(state.log_tail) or _("(no output yet)"), className="small bg-light p-2 mb-0",
                 style={"whiteSpace": "pre-wrap", "maxHeight": "22rem", "overflowY": "auto"},
                 **{"aria-label": _("Output of the refresh")}),
    ]), className="graph-card")


def _state() -> RefreshStatus:
    return status(stores().config.state_dir)


def layout(**_query) -> html.Div:
    uncached()
    if not is_admin():
        return html.Div([html.H1(_("Data refresh"), className="h3 mb-3"),
                         dbc.Alert(_(REFUSED), color="warning", className="admin-only")])
    try:
        state, settings = _state(), get_settings()
    except NotInstalled as exc:
        return html.Div([html.H1(_("Data refresh"), className="h3 mb-3"),
                         dbc.Alert(_("Refreshing is not available here: {reason}.").format(reason=exc), color="info")])
    where = with_code(_("Reads the raw files in {raw} and publishes to {warehouse} with the models in {models}."),
                       raw=str(settings.raw_dir), warehouse=redact(settings.warehouse_url), models=str(settings.models_dir))
    return html.Div([
        page_header(_("Data refresh"), _("Read the raw files again, retrain both models and publish them together. "
                                         "The dashboard keeps showing the current data until the new release is "
                                         "complete.")),
        html.P(where, className="small"),
        dcc.ConfirmDialogProvider(
            dbc.Button(_("Refresh data now"), id=BUTTON, color="primary", disabled=state.running, className="mb-3"),
            id=CONFIRM, message=_("Load the raw files in {folder} again and retrain the models now? "
                                  "This takes a few minutes.").format(folder=settings.raw_dir)),
        html.Div(id=NOTE, role="status"),
        html.Div(status_view(state), id=STATUS),
        dcc.Interval(id=POLL, interval=POLL_MS, disabled=not state.running),
    ])


@callback(
    Output(STATUS, "children"), Output(POLL, "disabled"), Output(NOTE, "children"), Output(BUTTON, "disabled"),
    Input(CONFIRM, "submit_n_clicks"), Input(POLL, "n_intervals"),
    prevent_initial_call=True,
)
def update(_submitted, _ticks):
    """Start a refresh when the button was confirmed; in any case, show where it stands."""
    uncached()
    if not is_admin():
        return _(REFUSED), True, None, True
    auth, note = stores(), None
    if ctx.triggered_id == CONFIRM:
        user = current().name
        if start(auth.config.state_dir, user, auth.config.audit_file, fast=get_config().refresh_fast):
            auth.audit.record("refresh", user, ip=client_ip(), phase="started")
            note = dbc.Alert(_("Refresh started."), color="info", duration=4000)
        else:
            note = dbc.Alert(_("A refresh is already running; its progress is below."), color="warning")
    state = _state()
    return status_view(state), not state.running, note, state.running
