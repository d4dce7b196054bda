"""Users (administrators only): who may sign in under ``AUTH=local``, with which role and scope.

The layout and every callback check the role themselves (the server-side gate refuses these
callbacks too, but a page must not rely on it) and keep their answers out of the response
cache: they read the user store, and their buttons change it. Each change is audited.
"""
from __future__ import annotations

import dash
import dash_bootstrap_components as dbc
from dash import Input, Output, State, callback, ctx, dcc, html, no_update

from dashboard import terms
from dashboard.auth.identity import ROLE_NAMES, SCOPE_COLUMNS, Role, Scope, parse_scope
from dashboard.auth.session import current
from dashboard.auth.state import AuthState, NotInstalled, client_ip, is_admin, stores, uncached
from dashboard.auth.users import NoSuchUser, User, UserError, UserStoreError
from dashboard.components.alerts import with_code
from dashboard.components.cards import page_header
from dashboard.components.moments import when
from dashboard.inputs import choice, text
from dashboard.language import N_, _, lazy, page_title

dash.register_page(__name__, path="/admin/users", name=N_("Users"), order=20, title=page_title(N_("Users")),
                   description=lazy(N_("Who may sign in, with which role and which rows.")), admin=True)

P = "admin-users-"
MESSAGE, TABLE = P + "message", P + "table"
ADD_NAME, ADD_ROLE, ADD_SCOPE, ADD_PASSWORD, ADD = (P + s for s in ("add-name", "add-role", "add-scope",
                                                                      "add-password", "add"))
EDIT_USER, EDIT_ROLE, EDIT_SCOPE, SAVE = (P + s for s in ("edit-user", "edit-role", "edit-scope", "save"))
EDIT_PASSWORD, SET_PASSWORD, REMOVE = P + "edit-password", P + "set-password", P + "remove"
ACTIONS = {ADD: "add", SAVE: "save", SET_PASSWORD: "password", REMOVE: "remove"}
REFUSED = N_("Administrators only.")
MAX_SCOPE_TEXT = 2000
# by AUTH mode: why users are not managed on this page (msgids)
MANAGED_ELSEWHERE = {
    "none": N_("Sign-in is off (AUTH=none): there are no users to manage."),
    "oidc": N_("Users sign in through the identity provider (AUTH=oidc); their roles and scopes come from "
               "its groups (AUTH_GROUPS). Manage them there."),
    "proxy": N_("Users are named by the sign-in proxy (AUTH=proxy); their roles and scopes come from its "
                "groups header (AUTH_GROUPS). Manage them there."),
}


def _managed_elsewhere(mode: str) -> str:
    found = MANAGED_ELSEWHERE.get(mode)
    return _(found) if found else _("Users are managed elsewhere.")


def _scope_hint() -> str:
    return _("One COLUMN=VALUE[,VALUE…] a line; columns: {columns}. Empty: every row.").format(
        columns=", ".join(SCOPE_COLUMNS))


def _role(label: str) -> str:
    """A role's name (viewer, analyst, admin: marked in components/shell.py) in the reader's language."""
    return _(label)


def _scope(scope: Scope, every: str = N_("All rows")) -> str:
    """A scope in words; ``every`` (a msgid) for none."""
    return terms.scope_label(scope.columns, _) if scope.columns else _(every)


def refused() -> html.Div:
    return html.Div([html.H1(_("Users"), className="h3 mb-3"),
                     dbc.Alert(_(REFUSED), color="warning", className="admin-only")])


def scope_from_text(value) -> Scope:
    """The scope typed in a text area (one item a line); :class:`UserError` when it is not one."""
    if value is None or value == "":
        return Scope()
    if not isinstance(value, str) or len(value) > MAX_SCOPE_TEXT:
        raise UserError(_("the scope is at most {n} characters of text").format(n=MAX_SCOPE_TEXT))
    lines = [line.strip() for line in value.splitlines() if line.strip()]
    if any(text(line) is None for line in lines):
        raise UserError(_("a scope line is at most 200 printable characters"))
    try:
        return parse_scope(lines)
    except ValueError as exc:
        raise UserError(str(exc)) from None


def users_table(users: list[User]) -> dbc.Table | html.P:
    if not users:
        return html.P(with_code(_("No users yet: add the first one below, or run {command}"),
                                command="python -m dashboard users add NAME --role admin"), className="mb-0")
    head = html.Thead(html.Tr([html.Th(t, scope="col")
                               for t in (_("Name"), _("Role"), _("Scope"), _("Created"), _("Updated"))]))
    body = html.Tbody([html.Tr([html.Td(u.name), html.Td(_role(u.role.label)), html.Td(_scope(u.scope)),
                                html.Td(when(u.created)), html.Td(when(u.updated))]) for u in users])
    return dbc.Table([head, body], striped=True, hover=True, responsive=True, size="sm", className="mb-0")


def _role_select(control_id: str, value: str | None) -> dbc.Select:
    return dbc.Select(id=control_id, options=[{"label": _role(r), "value": r} for r in ROLE_NAMES], value=value)


def _field(label: str, control, control_id: str, hint: str | None = None) -> html.Div:
    return html.Div([dbc.Label(label, html_for=control_id), control,
                     dbc.FormText(hint) if hint else None], className="mb-2")


def _forms(users: list[User]) -> dbc.Row:
    add = dbc.Card(dbc.CardBody([
        html.H2(_("Add a user"), className="h6"),
        _field(_("Name"), dbc.Input(id=ADD_NAME, maxlength=64, autocomplete="off"), ADD_NAME,
               _("Letters, digits, . _ @ -")),
        _field(_("Role"), _role_select(ADD_ROLE, "viewer"), ADD_ROLE),
        _field(_("Scope"), dbc.Textarea(id=ADD_SCOPE, rows=2, placeholder=_("for example: {scope}").format(
            scope="service_tier=premium")), ADD_SCOPE, _scope_hint()),
        _field(_("Password"), dbc.Input(id=ADD_PASSWORD, type="password", autocomplete="new-password"), ADD_PASSWORD,
               _("At least 10 characters.")),
        dbc.Button(_("Add user"), id=ADD, color="primary"),
    ]), className="mb-3")
    names = [{"label": u.name, "value": u.name} for u in users]
    change = dbc.Card(dbc.CardBody([
        html.H2(_("Change a user"), className="h6"),
        _field(_("User"), dbc.Select(id=EDIT_USER, options=names, placeholder=_("Choose a user")), EDIT_USER),
        _field(_("Role"), _role_select(EDIT_ROLE, None), EDIT_ROLE),
        _field(_("Scope"), dbc.Textarea(id=EDIT_SCOPE, rows=2), EDIT_SCOPE, _scope_hint()),
        dbc.Button(_("Save role and scope"), id=SAVE, color="primary", className="mb-3"),
        _field(_("New password"), dbc.Input(id=EDIT_PASSWORD, type="password", autocomplete="new-password"),
               EDIT_PASSWORD),
        html.Div([
            dbc.Button(_("Set password"), id=SET_PASSWORD, color="secondary", className="me-2"),
            dcc.ConfirmDialogProvider(dbc.Button(_("Remove user"), color="danger", outline=True), id=REMOVE,
                                      message=_("Remove this user? They will no longer be able to sign in.")),
        ]),
    ]), className="mb-3")
    return dbc.Row([dbc.Col(add, lg=6), dbc.Col(change, lg=6)])


def layout(**_query) -> html.Div:
    uncached()
    if not is_admin():
        return refused()
    header = page_header(_("Users"), _("Who may sign in, with which role, and which rows they see."))
    try:
        state = stores()
        if state.config.mode != "local":
            return html.Div([header, dbc.Alert(_managed_elsewhere(state.config.mode), color="info")])
        users = state.users.list()
    except NotInstalled as exc:
        return html.Div([header, dbc.Alert(_("User management is not available: {reason}.").format(reason=exc),
                                           color="info")])
    except UserStoreError as exc:
        return html.Div([header, dbc.Alert(str(exc), color="danger")])
    return html.Div([
        header,
        html.Div(id=MESSAGE, role="status", **{"aria-live": "polite"}),
        dbc.Card(dbc.CardBody(users_table(users), id=TABLE), className="mb-3"),
        _forms(users),
    ])


def _local_state() -> AuthState:
    state = stores()
    if state.config.mode != "local":
        raise UserError(_managed_elsewhere(state.config.mode))
    return state


def act(state: AuthState, action: str, form: dict) -> str:
    """Carry out one form action for the current (admin) user; the message to show.
    Raises :class:`UserError` when refused."""
    actor, ip = current().name, client_ip()
    if action == "add":
        role = choice(form.get("add_role"), ROLE_NAMES)
        if role is None:
            raise UserError(_("choose a role"))
        user = state.users.add(form.get("add_name"), Role.parse(role), scope_from_text(form.get("add_scope")),
                               form.get("add_password"))
        state.audit.record("user-added", actor, ip=ip, target=user.name, role=user.role.label,
                           scope=user.scope.text())
        return _("Added {name} ({role}).").format(name=user.name, role=_role(user.role.label))
    name = form.get("edit_user")
    before = state.users.get(name) if text(name, 64) else None
    if before is None:
        raise NoSuchUser(_("choose a user first"))
    if action == "password":
        state.users.set_password(name, form.get("edit_password"))
        state.audit.record("password-set", actor, ip=ip, target=name)
        return _("Password set for {name}.").format(name=name)
    if action == "remove":
        if name == actor:   # the last admin would lock everyone out of this page
            raise UserError(_("you cannot remove your own account; ask another administrator"))
        state.users.remove(name)
        state.audit.record("user-removed", actor, ip=ip, target=name, role=before.role.label,
                           scope=before.scope.text())
        return _("Removed {name}.").format(name=name)
    role = choice(form.get("edit_role"), ROLE_NAMES)
    if role is None:
        raise UserError(_("choose a role"))
    if name == actor and Role.parse(role) < Role.ADMIN:
        raise UserError(_("you cannot lower your own role; ask another administrator"))
    user = state.users.update(name, Role.parse(role), scope_from_text(form.get("edit_scope")))
    state.audit.record("user-changed", actor, ip=ip, target=name, role=[before.role.label, user.role.label],
                       scope=[before.scope.text(), user.scope.text()])
    return _("Saved {name}: {role}, {scope}.").format(name=name, role=_role(user.role.label),
                                                      scope=_scope(user.scope, N_("all rows")))


@callback(
    Output(EDIT_ROLE, "value"), Output(EDIT_SCOPE, "value"), Output(REMOVE, "message"),
    Input(EDIT_USER, "value"),
    prevent_initial_call=True,
)
def pick(name):
    """Fill the change form with the chosen user's role and scope."""
    uncached()
    if not is_admin():
        return None, "", _(REFUSED)
    try:
        user = _local_state().users.get(name) if text(name, 64) else None
    except (NotInstalled, UserError, UserStoreError):
        user = None
    if user is None:
        return no_update, no_update, no_update
    return (user.role.label, "\n".join(user.scope.text()),
            _("Remove {name}? They will no longer be able to sign in.").format(name=user.name))


@callback(
    Output(MESSAGE, "children"), Output(TABLE, "children"), Output(EDIT_USER, "options"),
    Output(ADD_NAME, "value"), Output(ADD_PASSWORD, "value"), Output(EDIT_PASSWORD, "value"),
    Input(ADD, "n_clicks"), Input(SAVE, "n_clicks"), Input(SET_PASSWORD, "n_clicks"),
    Input(REMOVE, "submit_n_clicks"),
    State(ADD_NAME, "value"), State(ADD_ROLE, "value"), State(ADD_SCOPE, "value"), State(ADD_PASSWORD, "value"),
    State(EDIT_USER, "value"), State(EDIT_ROLE, "value"), State(EDIT_SCOPE, "value"),
    State(EDIT_PASSWORD, "value"),
    prevent_initial_call=True,
)
def change(_add, _save, _password, _remove, add_name, add_role, add_scope, add_password,
           edit_user, edit_role, edit_scope, edit_password):
    """Add, change, set the password of or remove a user; the passwords are cleared either way."""
    uncached()
    if not is_admin():
        return dbc.Alert(_(REFUSED), color="warning"), [], [], no_update, "", ""
    action = ACTIONS.get(ctx.triggered_id) if isinstance(ctx.triggered_id, str) else None
    if action is None:
        return no_update, no_update, no_update, no_update, "", ""
    form = {"add_name": add_name, "add_role": add_role, "add_scope": add_scope, "add_password": add_password,
            "edit_user": edit_user, "edit_role": edit_role, "edit_scope": edit_scope, "edit_password": edit_password}
    try:
        state = _local_state()
    except (NotInstalled, UserError) as exc:
        refusal = _("Not done: {reason}.").format(reason=_(str(exc)))
        return dbc.Alert(refusal, color="info"), no_update, no_update, no_update, "", ""
    done = False
    try:
        message, color, done = act(state, action, form), "success", True
    except UserError as exc:
        message, color = _("Not done: {reason}.").format(reason=_(str(exc))), "warning"
    except UserStoreError as exc:
        return dbc.Alert(str(exc), color="danger"), no_update, no_update, no_update, "", ""
    except OSError as exc:   # the change is made, the audit log could not be written
        message, color = _("Done, but the audit log could not be written: {reason}.").format(
            reason=exc.strerror or exc), "danger"
    try:
        users = state.users.list()
    except UserStoreError as exc:
        return dbc.Alert(str(exc), color="danger"), no_update, no_update, no_update, "", ""
    names = [{"label": u.name, "value": u.name} for u in users]
    alert = dbc.Alert(message, color=color, dismissable=True)
    return alert, users_table(users), names, "" if done and action == "add" else no_update, "", ""
