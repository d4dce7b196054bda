"""The Users and Audit log pages check the role themselves: viewers and analysts get a refusal
and no data from the layout and from every callback; administrators manage users, audited."""
from __future__ import annotations

import json
from contextvars import copy_context

import flask
import pytest

from dashboard.auth.identity import Identity, Role, Scope, parse_scope

PASSWORD = "a long enough password"
ADMIN = Identity("root", Role.ADMIN)
OTHERS = [Identity("vic", Role.VIEWER), Identity("ana", Role.ANALYST), None]   # None: no identity at all


@pytest.fixture
def app(monkeypatch, tmp_path):
    return make_app(monkeypatch, tmp_path)


def make_app(monkeypatch, tmp_path):
    """AUTH=local with a temporary STATE_DIR and two users (shared with test_admin_data.py)."""
    for name in ("URL_PREFIX", "FRAME_ANCESTORS", "CACHE_REDIS_URL", "AUTH_ALLOW_ANONYMOUS", "ANONYMOUS_ROLE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("WAREHOUSE_URL", str(tmp_path / "no-warehouse.duckdb"))
    monkeypatch.setenv("STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("AUTH", "local")
    monkeypatch.setenv("SECRET_KEY", "s" * 32)
    monkeypatch.setenv("HOST", "127.0.0.1")
    from dashboard.app import create_app
    from dashboard.auth.settings import get_auth_config
    from dashboard.auth.state import install

    app = create_app()
    state = install(app.server, get_auth_config())
    state.users.add("root", Role.ADMIN, Scope(), PASSWORD)
    state.users.add("bob", Role.VIEWER, parse_scope(["service_tier=premium"]), PASSWORD)
    state.audit.record("sign-in", "bob", ip="10.1.2.3", source="local")
    return app


def as_user(app, identity: Identity | None):
    context = app.server.test_request_context("/", environ_base={"REMOTE_ADDR": "10.9.8.7"})
    context.push()
    if identity is not None:
        flask.g.identity = identity
    flask.g.response_cache_key = "r:some-key"   # as the response cache's lookup leaves it
    return context


def text_of(component) -> str:
    return json.dumps(component, default=lambda o: o.to_plotly_json() if hasattr(o, "to_plotly_json") else str(o))


def triggered(func, trigger: str, *args):
    """Call a callback's function as Dash would, with ``trigger`` as the changed property."""
    from dash._callback_context import context_value
    from dash._utils import AttributeDict

    def call():
        context_value.set(AttributeDict(triggered_inputs=[{"prop_id": trigger, "value": 1}]))
        return func(*args)

    return copy_context().run(call)


def change(button: str, **form):
    from dashboard.pages import admin_users as page

    fields = ["add_name", "add_role", "add_scope", "add_password", "edit_user", "edit_role", "edit_scope",
              "edit_password"]
    prop = "submit_n_clicks" if button == page.REMOVE else "n_clicks"
    return triggered(page.change, f"{button}.{prop}", 1, 1, 1, 1, *(form.get(f) for f in fields))


def test_the_pages_are_registered_for_admins_only(app):
    import dash

    from dashboard.pages import admin_audit, admin_users

    registry = {p["path"]: p for p in dash.page_registry.values()}
    assert registry["/admin/users"]["admin"] is True and registry["/admin/audit"]["admin"] is True
    assert registry["/admin/users"]["name"] == "Users" and registry["/admin/audit"]["name"] == "Audit log"
    assert admin_users.__name__ and admin_audit.__name__


@pytest.mark.parametrize("identity", OTHERS, ids=["viewer", "analyst", "no-identity"])
def test_everyone_but_an_admin_gets_a_refusal_and_no_data(app, identity):
    from dashboard.pages import admin_audit, admin_users

    state = app.server.extensions["shopper_auth"]
    before = (state.users.path.read_bytes(), state.audit.path.read_bytes())
    context = as_user(app, identity)
    try:
        for layout in (admin_users.layout(), admin_audit.layout()):
            shown = text_of(layout)
            assert "Administrators only" in shown
            assert "bob" not in shown and "10.1.2.3" not in shown and "admin-users-add" not in shown
        assert admin_users.pick("bob") == (None, "", "Administrators only.")
        for button in (admin_users.ADD, admin_users.SAVE, admin_users.SET_PASSWORD, admin_users.REMOVE):
            answer = change(button, add_name="eve", add_role="admin", add_password=PASSWORD, edit_user="bob",
                            edit_role="admin", edit_password=PASSWORD)
            assert "Administrators only" in text_of(answer[0]) and answer[1:3] == ([], [])
        assert triggered(admin_audit.update, f"{admin_audit.FILTER}.value", "bob", None) == ([], "Administrators only.")
        assert "response_cache_key" not in flask.g            # a refusal is never cached for others
    finally:
        context.pop()
    assert (state.users.path.read_bytes(), state.audit.path.read_bytes()) == before


def test_an_admin_sees_and_manages_users_and_each_change_is_audited(app):
    from dashboard.pages import admin_users as page

    state = app.server.extensions["shopper_auth"]
    context = as_user(app, ADMIN)
    try:
        shown = text_of(page.layout())
        assert "bob" in shown and "Service tier: premium" in shown and page.ADD_PASSWORD in shown
        assert '"type": "password"' in shown and PASSWORD not in shown
        assert "response_cache_key" not in flask.g

        message, table, options, name, add_password, edit_password = change(
            page.ADD, add_name="carol", add_role="analyst", add_scope="top_category=Kitchenware\n\ncustomer_segment=2",
            add_password=PASSWORD)
        assert "Added carol (analyst)" in text_of(message) and "carol" in text_of(table)
        assert {"label": "carol", "value": "carol"} in options and (name, add_password, edit_password) == ("", "", "")
        assert state.users.verify("carol", PASSWORD).scope.text() == ["customer_segment=2", "top_category=Kitchenware"]

        assert page.pick("carol")[:2] == ("analyst", "customer_segment=2\ntop_category=Kitchenware")
        assert "Saved carol" in text_of(change(page.SAVE, edit_user="carol", edit_role="viewer", edit_scope="")[0])
        assert state.users.get("carol").role is Role.VIEWER and state.users.get("carol").scope.unrestricted
        answer = change(page.SET_PASSWORD, edit_user="carol", edit_password="another password")
        assert "Password set" in text_of(answer[0]) and answer[4:] == ("", "")
        assert state.users.verify("carol", "another password") is not None
        assert "Removed carol" in text_of(change(page.REMOVE, edit_user="carol")[0])
        assert state.users.get("carol") is None
    finally:
        context.pop()
    events = state.audit.tail()
    assert [e["event"] for e in events[:4]] == ["user-removed", "password-set", "user-changed", "user-added"]
    assert all(e["user"] == "root" and e["ip"] == "10.9.8.7" and e["details"]["target"] == "carol" for e in events[:4])
    assert "another password" not in state.audit.path.read_text() and PASSWORD not in state.audit.path.read_text()


@pytest.mark.parametrize("button, form, message", [
    ("ADD", {"add_name": "bob", "add_role": "viewer", "add_password": PASSWORD}, "already exists"),
    ("ADD", {"add_name": "x y", "add_role": "viewer", "add_password": PASSWORD}, "user name"),
    ("ADD", {"add_name": "dave", "add_role": "viewer", "add_password": "short"}, "10 to 1024"),
    ("ADD", {"add_name": "dave", "add_role": "boss", "add_password": PASSWORD}, "choose a role"),
    ("ADD", {"add_name": "dave", "add_role": "viewer", "add_scope": "region=north", "add_password": PASSWORD},
     "scope column"),
    ("ADD", {"add_name": ["dave"], "add_role": {"a": 1}, "add_scope": 7, "add_password": None}, "Not done"),
    ("ADD", {"add_name": "dave", "add_role": "viewer", "add_scope": "x" * 5000, "add_password": PASSWORD},
     "at most 2000"),
    ("SAVE", {"edit_user": None, "edit_role": "viewer"}, "choose a user first"),
    ("SAVE", {"edit_user": "root", "edit_role": "viewer"}, "cannot lower your own role"),
    ("REMOVE", {"edit_user": "root"}, "cannot remove your own account"),
    ("REMOVE", {"edit_user": "ghost"}, "choose a user first"),
    ("SET_PASSWORD", {"edit_user": "bob", "edit_password": 12345678901}, "10 to 1024"),
])
def test_refused_changes_say_why_and_change_nothing(app, button, form, message):
    from dashboard.pages import admin_users as page

    state = app.server.extensions["shopper_auth"]
    before = (state.users.path.read_bytes(), state.audit.path.read_bytes())
    context = as_user(app, ADMIN)
    try:
        answer = change(getattr(page, button), **form)
    finally:
        context.pop()
    assert message in text_of(answer[0]) and answer[4:] == ("", "")   # passwords cleared anyway
    assert (state.users.path.read_bytes(), state.audit.path.read_bytes()) == before


def test_users_of_an_identity_provider_are_managed_there(app):
    from dashboard.auth.state import AuthState
    from dashboard.pages import admin_users as page

    state = app.server.extensions["shopper_auth"]
    config = state.config.__class__(**{**state.config.__dict__, "mode": "oidc"})
    app.server.extensions["shopper_auth"] = AuthState(config, state.users, state.audit)
    context = as_user(app, ADMIN)
    try:
        shown = text_of(page.layout())
        assert "identity provider" in shown and page.ADD_PASSWORD not in shown and "bob" not in shown
        answer = change(page.ADD, add_name="dave", add_role="admin", add_password=PASSWORD)
        assert "identity provider" in text_of(answer[0]) and state.users.get("dave") is None
    finally:
        context.pop()


def test_an_admin_reads_and_filters_the_audit_log(app):
    from dashboard.pages import admin_audit as page

    state = app.server.extensions["shopper_auth"]
    for index in range(3):
        state.audit.record("export", "root", ip="10.0.0.1", page="/segments", rows=index)
    context = as_user(app, ADMIN)
    try:
        shown = text_of(page.layout())
        assert "10.1.2.3" in shown and "The newest 4 entries" in shown and "response_cache_key" not in flask.g
        rows, note = triggered(page.update, f"{page.FILTER}.value", "SIGN-IN", None)
        assert [r["user"] for r in rows] == ["bob"] and rows[0]["details"] == "source=local" and note.startswith("1 of")
        rows, _ = triggered(page.update, f"{page.FILTER}.value", None, 1)
        assert [r["event"] for r in rows] == ["export"] * 3 + ["sign-in"] and rows[0]["details"].endswith("rows=2")
        assert triggered(page.update, f"{page.FILTER}.value", {"crafted": 1}, None)[0] == []
    finally:
        context.pop()
