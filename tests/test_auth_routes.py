"""Every route's answer without a session, with each role and with a scoped user (AUTH=local).

Real sign-ins through the ``/login`` form (CSRF token, scrypt-hashed passwords in the user
store), real session cookies, and every server callback of the app posted with a valid body
(harvested from the pages like the fuzz tests do): nothing here names a callback except the
few whose refusal is the point.
"""
from __future__ import annotations

import shutil

import pytest

from dashboard.auth.gate import ROW_OUTPUTS
from dashboard.auth.identity import Role, parse_scope
from tests.attacks.support import PASSWORD, csrf, sign_in
from tests.conftest import AUTH_VARIABLES
from tests.dashboard_generators import harvest_pages, page_paths, post_json, server_callbacks, split_outputs, valid_body

USERS = {"vera": ("viewer", []), "ana": ("analyst", []), "adam": ("admin", []),
         "pia": ("analyst", ["service_tier=premium"]), "tess": ("viewer", [])}


@pytest.fixture(scope="module")
def app(tmp_path_factory, dashboard_data):
    from dashboard.auth.users import UserStore

    root = tmp_path_factory.mktemp("auth")
    with pytest.MonkeyPatch.context() as env:
        for name in (*AUTH_VARIABLES, "URL_PREFIX", "FRAME_ANCESTORS", "CACHE_REDIS_URL"):
            env.delenv(name, raising=False)
        # A private copy, and no raw data: the admin posts every callback below, "Refresh data
        # now" included, which must neither replace the session's shared warehouse nor publish.
        warehouse = root / "warehouse.duckdb"
        shutil.copyfile(dashboard_data["scored"], warehouse)
        (root / "no-raw").mkdir()
        env.setenv("RAW_DIR", str(root / "no-raw"))
        env.setenv("WAREHOUSE_URL", str(warehouse))
        env.setenv("MODELS_DIR", str(dashboard_data["models"]))
        env.setenv("CACHE_DIR", str(root / "cache"))
        env.setenv("STATE_DIR", str(root / "state"))
        env.setenv("AUTH", "local")
        env.setenv("SECRET_KEY", "test-secret-" + "x" * 32)
        env.setenv("LOGIN_MAX_FAILURES", "3")
        store = UserStore(root / "state" / "users.json")
        for name, (role, scope) in USERS.items():
            store.add(name, Role.parse(role), parse_scope(scope), PASSWORD)
        from dashboard.app import create_app

        dash_app = create_app()
        dash_app.server.config["TESTING"] = True
        yield dash_app


@pytest.fixture(scope="module")
def callbacks(app):
    """Every server callback with a valid body (read as the admin, who may open every page)."""
    client = app.server.test_client()
    assert sign_in(client, "adam").status_code == 302
    found = server_callbacks(client)
    harvest = harvest_pages(client, found)
    return [(cb, valid_body(cb, harvest)) for cb in found]


def signed_in(app, name: str):
    client = app.server.test_client()
    assert sign_in(client, name).status_code == 302
    return client


# --- without a session ---------------------------------------------------------------------


def test_pages_send_a_visitor_to_the_login_form(app):
    client = app.server.test_client()
    for path in [*page_paths(), "/no-such-page", "/carts?segment=1"]:
        response = client.get(path)
        assert response.status_code == 302, path
        assert response.headers["Location"].startswith("/login?next=/"), path


def test_dash_routes_answer_401_with_a_message(app, callbacks):
    client = app.server.test_client()
    for path in ("/_dash-layout", "/_dash-dependencies"):
        response = client.get(path)
        assert response.status_code == 401 and response.get_json()["message"].startswith("Sign in")
    for _callback, body in callbacks:
        response = post_json(client, body)
        assert response.status_code == 401, body["output"]
        assert "customer" not in response.get_data(as_text=True).lower()


def test_health_assets_and_the_login_form_stay_public(app):
    client = app.server.test_client()
    assert client.get("/healthz").status_code in (200, 503)
    assert client.get("/assets/app.css").status_code == 200
    login = client.get("/login")
    assert login.status_code == 200 and 'name="username"' in login.get_data(as_text=True)
    assert 'type="password"' in login.get_data(as_text=True)


# --- signing in ----------------------------------------------------------------------------


def test_sign_in_sets_a_safe_cookie_and_goes_to_next(app):
    client = app.server.test_client()
    response = sign_in(client, "vera", next_path="/carts?segment=1")
    assert response.status_code == 302 and response.headers["Location"] == "/carts?segment=1"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    assert client.get("/_dash-layout").status_code == 200


def test_the_cookie_is_secure_over_https(app):
    client = app.server.test_client()
    html = client.get("/login", base_url="https://dash.example").get_data(as_text=True)
    response = client.post("/login", base_url="https://dash.example",
                           data={"username": "vera", "password": PASSWORD, "csrf_token": csrf(html)})
    assert response.status_code == 302 and "Secure" in response.headers["Set-Cookie"]


@pytest.mark.parametrize("next_path", ["https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:alert(1)"])
def test_next_never_leaves_the_app(app, next_path):
    response = sign_in(app.server.test_client(), "vera", next_path=next_path)
    assert response.status_code == 302 and response.headers["Location"] == "/"


def test_a_form_without_its_csrf_token_is_refused(app):
    client = app.server.test_client()
    client.get("/login")
    response = client.post("/login", data={"username": "vera", "password": PASSWORD, "csrf_token": "forged"})
    assert response.status_code == 400 and client.get("/_dash-layout").status_code == 401


def test_wrong_passwords_are_throttled_and_audited(app):
    client = app.server.test_client()
    for _ in range(3):
        assert sign_in(client, "tess", "wrong password!").status_code == 401
    # the right password no longer helps from this address until the pause ends
    assert sign_in(client, "tess").status_code == 429
    assert client.get("/_dash-layout").status_code == 401
    events = app.server.extensions["shopper_auth"].audit.tail(50)
    failed = [e for e in events if e["event"] == "sign-in-failed" and e["user"] == "tess"]
    assert len(failed) >= 4 and any(e["details"].get("reason") == "throttled" for e in failed)


def test_sign_out_needs_a_post_with_the_token(app):
    client = signed_in(app, "vera")
    page = client.get("/logout")
    assert page.status_code == 200 and client.get("/_dash-layout").status_code == 200  # a GET signs nobody out
    assert client.post("/logout", data={"csrf_token": csrf(page.get_data(as_text=True))}).status_code == 200
    assert client.get("/_dash-layout").status_code == 401


def test_a_removed_user_is_out_on_the_next_request(app):
    store = app.server.extensions["shopper_auth"].users
    store.add("temp", Role.VIEWER, parse_scope([]), PASSWORD)
    client = signed_in(app, "temp")
    assert client.get("/_dash-layout").status_code == 200
    store.remove("temp")
    assert client.get("/_dash-layout").status_code == 401


def test_an_expired_session_counts_for_nothing(app):
    client = signed_in(app, "vera")
    with client.session_transaction() as session:
        session["signed_at"] -= 9 * 3600   # SESSION_LIFETIME defaults to 8 hours
    assert client.get("/_dash-layout").status_code == 401


def test_a_forged_session_cookie_counts_for_nothing(app):
    from flask.sessions import SecureCookieSessionInterface

    forger = app.server.test_client()
    # a cookie signed with another key, claiming to be the admin
    other = type(app.server)("other")
    other.secret_key = "another-key-" + "y" * 32
    serializer = SecureCookieSessionInterface().get_signing_serializer(other)
    import time
    value = serializer.dumps({"identity": {"name": "adam", "role": "admin", "scope": [], "source": "local"},
                              "signed_at": int(time.time())})
    forger.set_cookie("shopper_session", value)
    assert forger.get("/_dash-layout").status_code == 401


# --- every callback, each role -------------------------------------------------------------


def _needs(body: dict) -> str:
    ids = [ident for ident, _prop in split_outputs(body["output"])]
    if any(ident.startswith("admin-") or '"admin-' in ident for ident in ids):
        return "admin"
    if any(ident in ROW_OUTPUTS for ident in ids):
        return "analyst"
    return "viewer"


@pytest.mark.parametrize("name", ["vera", "ana", "adam", "pia"])
def test_every_callback_answers_each_role_as_its_role_allows(app, callbacks, name):
    client = signed_in(app, name)
    role = Role.parse(USERS[name][0])
    refused = 0
    for _callback, body in callbacks:
        response = post_json(client, body)
        allowed = role >= Role.parse(_needs(body))
        if allowed:
            assert response.status_code in (200, 204), (name, body["output"], response.status_code)
        else:
            refused += 1
            assert response.status_code == 403, (name, body["output"])
            message = response.get_json()["message"]
            assert "analyst" in message or "administrators" in message
    expected = sum(role < Role.parse(_needs(body)) for _cb, body in callbacks)
    assert refused == expected and (role is Role.ADMIN or refused > 0)


def test_callback_answers_are_not_shared_between_scopes(app, callbacks):
    """The same request by an unscoped and a scoped analyst: the response cache keeps them apart."""
    overview = [body for _cb, body in callbacks if "ov-cust-kpis" in body["output"]]
    assert overview
    wide, narrow = signed_in(app, "ana"), signed_in(app, "pia")
    first = post_json(wide, overview[0]).get_data()
    second = post_json(narrow, overview[0]).get_data()
    assert first != second
    assert post_json(wide, overview[0]).get_data() == first


def test_the_navigation_shows_admin_pages_to_admins_only(app):
    # Dash writes "/" as \u002f in its JSON
    layouts = {name: signed_in(app, name).get("/_dash-layout").get_data(as_text=True).replace("\\u002f", "/")
               for name in ("vera", "adam")}
    admin_paths = [p["relative_path"] for p in __import__("dash").page_registry.values() if p.get("admin")]
    for path in admin_paths:
        assert f'"{path}"' in layouts["adam"] and f'"{path}"' not in layouts["vera"]
    assert admin_paths and "Sign out (vera)" in layouts["vera"]


def test_a_scoped_user_sees_the_locked_scope(app):
    layout = signed_in(app, "pia").get("/_dash-layout").get_data(as_text=True)
    assert "Service tier: premium" in layout and "scope-chip" in layout


# --- embed links -----------------------------------------------------------------------------


def test_an_embed_link_opens_its_own_page_only_and_is_audited(app, callbacks):
    from dashboard.auth.embed import make_token
    from tests.dashboard_generators import router, router_body

    state = app.server.extensions["shopper_auth"]
    token = make_token(state.config.secret_key, role=Role.VIEWER, scope=parse_scope([]), page="/carts", ttl=600)
    client = app.server.test_client()   # no session: the token alone
    assert client.get(f"/carts?embed=1&token={token}").status_code == 200
    other = client.get(f"/segments?embed=1&token={token}")
    assert other.status_code == 401 and "opens /carts only" in other.get_data(as_text=True)
    route = router([cb for cb, _body in callbacks])
    headers = {"X-Embed-Token": token}
    ok = client.post("/_dash-update-component", json=router_body(route, "/carts", "?embed=1"), headers=headers)
    assert ok.status_code == 200
    crafted = client.post("/_dash-update-component", json=router_body(route, "/segments", ""), headers=headers)
    assert crafted.status_code == 403 and "opens /carts only" in crafted.get_json()["message"]
    uses = [e for e in state.audit.tail(50) if e["event"] == "embed-token"]
    assert uses and uses[0]["details"]["page"] == "/carts" and token not in str(uses)
