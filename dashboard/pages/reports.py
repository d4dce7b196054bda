"""Reports: the archive of periodic reports, each to open (HTML) or download (PDF), with its
delivery status; "Build now" and the schedule for administrators.

Who may open a report is decided by :func:`may_open`, in the list and again in the file route
(:func:`install_routes`): a report made for the analyst role holds customer rows, so a viewer
sees only viewer reports; a scoped user only reports limited to (part of) their own scope. The
build controls have ``admin-`` ids (the request gate refuses them to everyone else) and check
the role again; every answer stays out of the response cache (the archive changes between two
identical requests).
"""
from __future__ import annotations

import logging

import dash
import dash_bootstrap_components as dbc
from dash import Input, Output, State, callback, ctx, dcc, html
from flask import Flask, Response, send_file

from dashboard.auth.identity import Identity, Role, parse_scope
from dashboard.auth.session import current
from dashboard.auth.state import NotInstalled, client_ip, is_admin, stores, uncached
from dashboard import terms
from dashboard.components.alerts import with_code
from dashboard.components.cards import page_header
from dashboard.components.moments import when
from dashboard.figures.history import look, shown
from dashboard.language import N_, NAMES, _, current_lang, lazy, number, page_title
from dashboard.reports.archive import Archive, Manifest

dash.register_page(__name__, path="/reports", name=N_("Reports"), order=7, title=page_title(N_("Reports")),
                   description=lazy(N_("Periodic reports: open or download each, see whom it was mailed to.")))

log = logging.getLogger(__name__)

P = "admin-reports-"
BUILD, ROLE, LANG, SEND = P + "build", P + "role", P + "lang", P + "send"
STATUS, POLL, NOTE, LIST = P + "status", P + "poll", P + "note", P + "list"
REFUSED = N_("Administrators only.")
POLL_MS = 2000
LANGS = NAMES   # a report's language, each named in its own language
_COLOURS = {"running": "info", "succeeded": "success", "failed": "danger", "stopped": "warning", "never": "secondary"}
_WORDS = {"running": N_("Building a report now"), "succeeded": N_("Last build succeeded"),
          "failed": N_("Last build failed"), "stopped": N_("Last build stopped before it finished"),
          "never": N_("No report built from here yet")}
TABLE_KPIS = ("abandonment_rate", "sessions", "declined_share", "customers", "profit_at_risk")
_DELIVERY = {"sent": "success", "pending": "warning", "failed": "danger"}
# a delivery's status, a build's trigger and a schedule slot's outcome, as the reader reads them
DELIVERY_WORDS = {"sent": N_("sent"), "pending": N_("pending"), "failed": N_("failed")}
TRIGGERS = {"command": N_("built by a command"), "schedule": N_("scheduled"), "page": N_("built from this page")}
SLOT_OUTCOMES = {"done": N_("built"), "failed": N_("failed"), "building": N_("building now (or cut off)"),
                 "interrupted": N_("cut off by a stop; built at the next start"), "baseline": N_("first start")}


def _word(words: dict[str, str], key) -> str:
    """``key``'s entry of ``words`` (msgids) in the reader's language; an unknown key as it is."""
    found = words.get(key)
    return _(found) if found else str(key)


# --- who may open what ----------------------------------------------------------------------


def may_open(identity: Identity | None, manifest: Manifest) -> bool:
    """Whether ``identity`` may see ``manifest``'s report: its role at least the report's, and
    for a scoped user a report limited to the user's columns and to values within their scope
    (a report of a wider or another scope would show rows and totals the scope promises to hide)."""
    if identity is None:
        return False
    try:
        needed, scope = Role.parse(manifest.role), parse_scope(list(manifest.scope))
    except (ValueError, TypeError):
        return identity.role is Role.ADMIN   # an unreadable manifest: not for everyone
    if identity.role < needed:
        return False
    if identity.scope.unrestricted:
        return True
    mine = dict(identity.scope.columns)
    return not scope.unrestricted and all(
        column in mine and set(values) <= set(mine[column]) for column, values in scope.columns)


def _identity() -> Identity | None:
    try:
        return current()
    except PermissionError:
        return None


def _prefix() -> str:
    from dashboard.config import get_config

    return get_config().url_prefix


def install_routes(server: Flask, prefix: str) -> None:
    """``GET {prefix}reports/<id>/html`` (inline) and ``…/pdf`` (a download). The request gate
    has already required a signed-in identity; the role and scope are checked here."""
    from dashboard.auth.login import message_page

    if "report_file" in server.view_functions:   # installed already (a second app in one process)
        return

    @server.get(f"{prefix}reports/<report_id>/<kind>", endpoint="report_file")
    def report_file(report_id: str, kind: str) -> Response:
        archive = Archive()
        try:
            manifest = archive.read(report_id)
            path = archive.file(report_id, kind) if kind in ("html", "pdf") else None
        except (ValueError, TypeError, KeyError, OSError):   # a crafted id, no such report or file
            path = None
        if path is None:
            return message_page(N_("There is no such report."), 404, prefix)
        identity = _identity()
        if not may_open(identity, manifest):
            log.warning("refused %s report %s (made for %s)", identity.role.label if identity else "?", report_id,
                        manifest.role)
            return message_page(N_("This report was made for another role or scope than yours."), 403, prefix)
        if manifest.role != Role.VIEWER.label:   # customer rows leave the app: audited like an export
            try:
                stores().audit.record("export", identity.name, ip=client_ip(), page="/reports", format=kind,
                                      report=report_id, role=manifest.role)
            except NotInstalled:
                pass
        date = manifest.created[:10]
        if kind == "pdf":
            response = send_file(path, mimetype="application/pdf", as_attachment=True,
                                 download_name=f"shopper-insights-report-{date}.pdf")
        else:
            response = send_file(path, mimetype="text/html; charset=utf-8")
        response.headers["Cache-Control"] = "private, no-store"   # what may be opened depends on who asks
        return response


# --- the archive ----------------------------------------------------------------------------


def _deliveries(manifest: Manifest, admin: bool) -> list:
    if not manifest.deliveries:
        return [html.Span(_("not mailed"), className="text-secondary")]
    if not admin:   # who receives it and the mail server's errors are for administrators
        counts = {}
        for d in manifest.deliveries:
            counts[d.status] = counts.get(d.status, 0) + 1
        return [html.Span(", ".join(_("{n} {status}").format(status=_word(DELIVERY_WORDS, status), n=number(n))
                                    for status, n in sorted(counts.items())))]
    items = []
    for d in sorted(manifest.deliveries, key=lambda d: d.to):
        facts = [_("attempt {n}").format(n=number(d.attempts)) if d.attempts else None,
                 _("sent {when}").format(when=when(d.sent_at)) if d.sent_at else None,
                 _("next try {when}").format(when=when(d.next_attempt))
                 if d.status == "pending" and d.next_attempt else None]
        items.append(html.Li([
            dbc.Badge(_word(DELIVERY_WORDS, d.status), color=_DELIVERY.get(d.status, "secondary"), className="me-1"),
            d.to,
            html.Span(" · " + "; ".join(f for f in facts if f), className="text-secondary") if any(facts) else None,
            html.Div(d.last_error, className="small text-danger report-error")
            if d.last_error and d.status != "sent" else None,
        ]))
    return [html.Ul(items, className="list-unstyled mb-0 small")]


def _headline(manifest: Manifest) -> list[tuple[str, str]]:
    """The few KPIs a row has room for (the report itself has them all)."""
    chosen = {k: v for k, v in manifest.headline.items() if k in TABLE_KPIS} or dict(list(manifest.headline.items())[:4])
    items = []
    for kpi, value in chosen.items():
        name, kind = look(kpi)
        items.append((name, shown(value, kind) if isinstance(value, (int, float)) else "–"))
    return items


def _role(label: str | None) -> str:
    """A role's name (marked in components/shell.py) in the reader's language."""
    return _(label) if label else "?"


def _scope_text(lines) -> str:
    """A report's scope (``["service_tier=premium"]``) in words; as written when unreadable."""
    try:
        return terms.scope_label(parse_scope(list(lines)).columns, _)
    except (ValueError, TypeError):
        return ", ".join(map(str, lines))


def archive_view(identity: Identity | None) -> html.Div:
    """The reports ``identity`` may open, newest first."""
    try:
        reports = [m for m in Archive().list() if may_open(identity, m)]
    except OSError as exc:
        return dbc.Alert(_("The report archive cannot be read: {reason}.").format(reason=exc.strerror or exc),
                         color="danger")
    if not reports:
        return dbc.Alert(with_code(_("No reports yet. {report} builds one now; {schedule} builds them on "
                                     "REPORT_SCHEDULE."),
                                   report="python -m dashboard report", schedule="python -m dashboard schedule"),
                         color="info")
    admin = identity is not None and identity.role is Role.ADMIN
    prefix = _prefix()
    head = html.Thead(html.Tr([html.Th(t, scope="col") for t in
                               (_("Built"), _("Data version"), _("For"), _("Headline"), _("Files"), _("Delivery"))]))
    rows = []
    for m in reports:
        files = [html.A(_("Open HTML"), href=f"{prefix}reports/{m.id}/html", target="_blank", rel="noopener",
                        className="me-2") if "html" in m.formats else None,
                 html.A(_("Download PDF"), href=f"{prefix}reports/{m.id}/pdf") if "pdf" in m.formats else None]
        audience = f"{_role(m.role)}, {LANGS.get(m.lang, m.lang)}" + (f"; {_scope_text(m.scope)}" if m.scope else "")
        rows.append(html.Tr([
            html.Td([when(m.created), html.Div(_word(TRIGGERS, m.trigger), className="small text-secondary")]),
            html.Td(html.Code(m.data_version[:12], title=m.data_version)),
            html.Td(audience),
            html.Td(html.Ul([html.Li(f"{name}: {value}") for name, value in _headline(m)],
                            className="list-unstyled mb-0 small")),
            html.Td(files),
            html.Td(_deliveries(m, admin)),
        ], **{"data-report": m.id}))
    return dbc.Table([head, html.Tbody(rows)], striped=True, hover=True, responsive=True, size="sm",
                     className="mb-0 reports-archive")


# --- administrators: build now and the schedule ----------------------------------------------


def status_view(state) -> dbc.Card:
    if state.elsewhere:
        return dbc.Card(dbc.CardBody(html.H2(dbc.Badge(_("A scheduled report is being built now"), color="info"),
                                             className="h5 mb-0")), className="graph-card mb-3")
    facts = [_("started {when} by {user} ({role}, {lang})").format(
                 when=when(state.started_at), user=state.user, role=_role(state.role),
                 lang=LANGS.get(state.lang, state.lang)) if state.started_at else None,
             _("finished {when}").format(when=when(state.finished_at)) if state.finished_at else None,
             _("report {id}").format(id=state.report) if state.report else None]
    return dbc.Card(dbc.CardBody([
        html.H2(dbc.Badge(_word(_WORDS, state.outcome), color=_COLOURS[state.outcome]), className="h5"),
        html.P("; ".join(f for f in facts if f) or "—", className="text-secondary small"),
        html.Pre("\n".join(state.log_tail) or _("(no output yet)"), className="small bg-light p-2 mb-0",
                 style={"whiteSpace": "pre-wrap", "maxHeight": "16rem", "overflowY": "auto"},
                 **{"aria-label": _("Progress of the build")}),
    ]), className="graph-card mb-3")


def schedule_view() -> dbc.Card:
    from dashboard.reports.schedule import ScheduleError, describe, schedule_settings

    try:
        found = describe(schedule_settings(), stores().config.state_dir)
    except ScheduleError as exc:
        return dbc.Alert(_("The schedule is not usable: {reason}").format(reason=exc), color="danger")
    last = found["last"] or {}
    audience = {"role": _role(found["role"]), "lang": LANGS.get(found["lang"], found["lang"])}
    mailed = (_("For {role}, {lang}; mailed to {recipients}").format(recipients=", ".join(found["recipients"]),
                                                                     **audience)
              if found["recipients"] else _("For {role}, {lang}; mailed to nobody (REPORT_RECIPIENTS is empty)")
              .format(**audience))
    lines = [html.Li(with_code(_("Schedule {schedule} (server time); next report {next}"), schedule=found["schedule"],
                               next=when(found["next"]))),
             html.Li(mailed)]
    if last.get("slot"):
        lines.append(html.Li([_("Last slot {when}: {outcome}").format(when=when(last["slot"]),
                                                                      outcome=_word(SLOT_OUTCOMES, last.get("status"))),
                              html.Div(last["error"], className="small text-danger") if last.get("error") else None]))
    return dbc.Card(dbc.CardBody([html.H2(_("Schedule"), className="h5"), html.Ul(lines, className="mb-0 small")]),
                    className="graph-card mb-3")


def _build_panel(state, recipients: bool) -> html.Div:
    return html.Div([
        dbc.Row([
            dbc.Col([dbc.Label(_("Report for"), html_for=ROLE, className="visually-hidden"),
                     dbc.Select(id=ROLE, value="viewer", options=[
                         {"label": _("For viewers (aggregates)"), "value": "viewer"},
                         {"label": _("For analysts (with customer rows)"), "value": "analyst"}])], md=4),
            dbc.Col([dbc.Label(_("Report language"), html_for=LANG, className="visually-hidden"),
                     dbc.Select(id=LANG, value=current_lang(), options=[{"label": v, "value": k}
                                                                        for k, v in LANGS.items()])], md=2),
            dbc.Col(dbc.Checkbox(id=SEND, value=False, disabled=not recipients,
                                 label=_("mail it to REPORT_RECIPIENTS")), md=3, className="pt-2"),
            dbc.Col(dbc.Button(_("Build now"), id=BUILD, color="primary", disabled=state.running), md=3),
        ], className="g-2 mb-2 align-items-center"),
        html.Div(id=NOTE, role="status"),
        html.Div(status_view(state), id=STATUS),
        dcc.Interval(id=POLL, interval=POLL_MS, disabled=not state.running),
    ])


def _state_dir():
    return stores().config.state_dir


def layout(**_query) -> html.Div:
    uncached()
    identity = _identity()
    intro = (_("Each report is archived before it is mailed; open it here, as HTML or PDF. "
               "You see the reports made for your role and scope.") if identity and identity.scope.columns
             else _("Each report is archived before it is mailed; open it here, as HTML or PDF. "
                    "You see the reports made for your role."))
    parts = [page_header(_("Reports"), intro)]
    if identity is not None and identity.role is Role.ADMIN:
        try:
            from dashboard.reports import jobs
            from dashboard.reports.schedule import ScheduleError, recipients_from_env

            try:
                recipients = bool(recipients_from_env())
            except ScheduleError:
                recipients = False
            parts += [_build_panel(jobs.status(_state_dir()), recipients), schedule_view()]
        except NotInstalled as exc:
            parts.append(dbc.Alert(_("Building is not available here: {reason}.").format(reason=exc), color="info"))
        parts.append(html.Div(archive_view(identity), id=LIST))
    else:
        parts.append(html.Div(archive_view(identity)))
    return html.Div(parts)


@callback(
    Output(STATUS, "children"), Output(POLL, "disabled"), Output(NOTE, "children"), Output(LIST, "children"),
    Output(BUILD, "disabled"),
    Input(BUILD, "n_clicks"), Input(POLL, "n_intervals"),
    State(ROLE, "value"), State(LANG, "value"), State(SEND, "value"),
    prevent_initial_call=True,
)
def update(_clicked, _ticks, role, lang, send):
    """Start a build when the button was pressed; in any case, show where it stands."""
    from dashboard.reports import jobs

    uncached()
    if not is_admin():
        return _(REFUSED), True, None, None, True
    auth, note = stores(), None
    if ctx.triggered_id == BUILD:
        role = role if role in ("viewer", "analyst") else "viewer"
        lang = lang if lang in LANGS else "en"
        user = current().name
        if jobs.start(auth.config.state_dir, user, auth.config.audit_file, role=role, lang=lang, send=send is True):
            auth.audit.record("report", user, ip=client_ip(), phase="started", role=role, lang=lang, send=send is True)
            note = dbc.Alert(_("Build started."), color="info", duration=4000)
        else:
            note = dbc.Alert(_("A report is being built already; its progress is below."), color="warning")
    state = jobs.status(auth.config.state_dir)
    return status_view(state), not state.running, note, archive_view(current()), state.running
