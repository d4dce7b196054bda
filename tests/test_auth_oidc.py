"""``AUTH=oidc`` end to end, through real HTTP on both sides.

The provider is ``tests/oidc_provider.py`` in its own process. The app side is served by
werkzeug on a loopback port: a minimal Flask app with :func:`dashboard.auth.oidc.install`
under ``/bi/``, and the dashboard (``create_app()`` with ``AUTH=oidc``). A
``requests.Session`` plays the browser, following redirects between them and filling in the
provider's form; the session is read back from the cookie with the test's ``SECRET_KEY``.
"""
from __future__ import annotations

import html
import json
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest
import requests
from flask import Flask, jsonify
from werkzeug.serving import make_server

from dashboard.auth.oidc import install
from dashboard.auth.redirects import safe_next
from dashboard.auth.session import from_session
from dashboard.auth.settings import AuthConfigError, get_auth_config
from localservers import free_port
from tests.oidc_provider import ProviderProcess

CLIENT_ID, CLIENT_SECRET = "shopper-insights", "client-secret-for-tests"
SECRET_KEY = "oidc-test-secret-key-0123456789abcdef"
GROUPS = "bi-admins:admin;bi-analysts:analyst;premium-sales:viewer:service_tier=premium"
PASSWORD = "correct horse battery"
USERS = {
    "ana": {"groups": ["bi-analysts"]},
    "adam": {"groups": ["bi-admins", "premium-sales"]},
    "pat": {"groups": ["premium-sales"]},
    "stringy": {"groups": "staff, bi-analysts"},
    "okta": {"groups": ["bi-analysts"], "groups_in_id_token": False},
    "una": {"groups": ["marketing"]},
    # ID tokens the app must refuse (see tests/oidc_provider.py)
    "wrong-aud": {"groups": ["bi-admins"], "claims": {"aud": "another-app"}},
    # azp names this app, so only pinning aud to the client id catches it
    "aud-with-azp": {"groups": ["bi-admins"], "claims": {"aud": "another-app", "azp": CLIENT_ID}},
    "wrong-iss": {"groups": ["bi-admins"], "claims": {"iss": "http://127.0.0.1:9/elsewhere"}},
    "expired": {"groups": ["bi-admins"], "claims": {"exp": 1_000_000_000}},
    "wrong-nonce": {"groups": ["bi-admins"], "claims": {"nonce": "not-the-one-sent"}},
    "forged": {"groups": ["bi-admins"], "foreign_key": True},
}
MINIMAL_PREFIX = "/bi/"


# --- servers -------------------------------------------------------------------------------

class _Listener:
    """A werkzeug server on a free loopback port whose app is set later: the provider must
    know the app's redirect URI and the app the provider's issuer, so one of them binds first."""

    def __init__(self) -> None:
        self.app = None
        self.httpd = make_server("127.0.0.1", 0, lambda env, start: self.app(env, start), threaded=True)
        self.origin = f"http://127.0.0.1:{self.httpd.server_port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.thread.join(timeout=10)
        self.httpd.server_close()


def _auth_env(env: pytest.MonkeyPatch, issuer: str, state_dir: Path) -> None:
    for name, value in {"AUTH": "oidc", "SECRET_KEY": SECRET_KEY, "STATE_DIR": str(state_dir), "OIDC_ISSUER": issuer,
                        "OIDC_CLIENT_ID": CLIENT_ID, "OIDC_CLIENT_SECRET": CLIENT_SECRET, "AUTH_GROUPS": GROUPS}.items():
        env.setenv(name, value)
    for name in ("HOST", "AUTH_DEFAULT_ROLE", "OIDC_SCOPES", "OIDC_USER_CLAIM", "OIDC_GROUPS_CLAIM"):
        env.delenv(name, raising=False)


@dataclass
class Site:
    """One app under test: where it is, and what its audit callbacks saw (minimal app only)."""

    name: str
    origin: str
    prefix: str
    server: Flask
    signed_in: list = field(default_factory=list)
    refused: list = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.origin + self.prefix

    @property
    def callback(self) -> str:
        return self.url + "auth/oidc/callback"

    def identity(self, browser: requests.Session) -> dict | None:
        """The identity the browser's session cookie holds (None: not signed in)."""
        value = browser.cookies.get(self.server.config["SESSION_COOKIE_NAME"])
        if value is None:
            return None
        data = self.server.session_interface.get_signing_serializer(self.server).loads(value)
        return data.get("identity")


def _minimal_app(prefix: str) -> Site:
    """A bare Flask app with the OIDC routes and one page that says who is signed in."""
    config = get_auth_config()
    server = Flask("oidc_test_app")
    server.secret_key = config.secret_key
    server.config.update(SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax", SESSION_COOKIE_PATH=prefix)
    site = Site("minimal", "", prefix, server)
    install(server, config, site.signed_in.append, lambda user, reason: site.refused.append((user, reason)),
            prefix=prefix)

    @server.get(prefix)
    def home():
        return "Shopper Insights (test app)"

    @server.get(f"{prefix}whoami")
    def whoami():
        identity = from_session(config.session_lifetime)
        return (jsonify(identity.to_session()), 200) if identity else (jsonify(None), 401)

    return site


@pytest.fixture(scope="module")
def listeners():
    made = {name: _Listener() for name in ("minimal", "dashboard")}
    yield made
    for listener in made.values():
        listener.close()


def _start_provider(folder: Path, redirect_uris: list[str], port: int = 0) -> ProviderProcess:
    users = folder / "users.json"
    users.write_text(json.dumps({name: {"password": PASSWORD, **attrs} for name, attrs in USERS.items()}))
    return ProviderProcess(users, CLIENT_ID, CLIENT_SECRET, redirect_uris, port)


@pytest.fixture(scope="module")
def provider(listeners, tmp_path_factory):
    running = _start_provider(tmp_path_factory.mktemp("oidc-provider"), [
        listeners["minimal"].origin + MINIMAL_PREFIX + "auth/oidc/callback",
        listeners["dashboard"].origin + "/auth/oidc/callback",
    ])
    yield running
    running.stop()


@pytest.fixture(scope="module")
def minimal_site(listeners, provider, tmp_path_factory):
    with pytest.MonkeyPatch.context() as env:
        _auth_env(env, provider.issuer, tmp_path_factory.mktemp("minimal-state"))
        site = _minimal_app(MINIMAL_PREFIX)
    site.origin = listeners["minimal"].origin
    listeners["minimal"].app = site.server
    return site


@pytest.fixture(scope="module")
def dashboard_site(listeners, provider, dashboard_data, tmp_path_factory):
    with pytest.MonkeyPatch.context() as env:
        env.setenv("WAREHOUSE_URL", dashboard_data["scored"])
        env.setenv("MODELS_DIR", str(dashboard_data["models"]))
        env.setenv("CACHE_DIR", str(tmp_path_factory.mktemp("oidc-cache")))
        for name in ("URL_PREFIX", "FRAME_ANCESTORS", "CACHE_REDIS_URL"):
            env.delenv(name, raising=False)
        _auth_env(env, provider.issuer, tmp_path_factory.mktemp("dashboard-state"))
        from dashboard.app import create_app

        server = create_app().server
        assert any(rule.rule == "/auth/oidc/callback" for rule in server.url_map.iter_rules())
        server.test_client().get("/healthz")   # its first request: it claims its page callbacks now
        listeners["dashboard"].app = server
        yield Site("dashboard", listeners["dashboard"].origin, "/", server)


@pytest.fixture(params=["minimal", "dashboard"])
def site(request) -> Site:
    return request.getfixturevalue(f"{request.param}_site")


# --- the browser's side --------------------------------------------------------------------

def _open_login(site: Site, browser: requests.Session, next_path: str) -> requests.Response:
    """From the app's sign-in link to the provider's form."""
    page = browser.get(site.url + "login/oidc", params={"next": next_path}, timeout=30)
    assert page.status_code == 200 and "<form" in page.text, page.text[:500]
    return page


def _submit(page: requests.Response, browser: requests.Session, username: str, password: str = PASSWORD,
            follow: bool = True, cancel: bool = False) -> requests.Response:
    action = html.unescape(re.search(r'<form method="post" action="([^"]+)"', page.text).group(1))
    data = {"username": username, "password": password, ("cancel" if cancel else "login"): ""}
    return browser.post(requests.compat.urljoin(page.url, action), data=data, allow_redirects=follow, timeout=30)


def _sign_in(site: Site, username: str, next_path: str | None = None) -> tuple[requests.Session, requests.Response]:
    browser = requests.Session()
    page = _open_login(site, browser, next_path or site.prefix)
    return browser, _submit(page, browser, username)


def _readable_failure(answer: requests.Response, status: int, words: str) -> None:
    assert answer.status_code == status, answer.text[:500]
    assert answer.headers["Content-Type"].startswith("text/html")
    assert words in answer.text and "Try again" in answer.text
    assert "Traceback" not in answer.text and "File \"" not in answer.text


def _signed_out(site: Site, browser: requests.Session) -> None:
    assert site.identity(browser) is None
    if site.name == "dashboard":
        assert browser.get(site.url + "_dash-layout", timeout=30).status_code == 401


# --- tests ---------------------------------------------------------------------------------

def test_a_mapped_user_signs_in_and_lands_on_next(site):
    next_path = site.prefix + ("whoami?x=1" if site.name == "minimal" else "carts?segment=1")
    browser, landed = _sign_in(site, "ana", next_path)
    assert landed.status_code == 200 and landed.url == site.origin + next_path
    # the hops: provider -> callback (sets the cookie) -> next
    callback = next(r for r in landed.history if r.url.startswith(site.callback))
    assert callback.status_code == 302 and callback.headers["Location"].endswith(next_path)
    cookie = callback.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert site.identity(browser) == {"name": "ana", "role": "analyst", "scope": [], "source": "oidc"}
    if site.name == "minimal":
        assert landed.json()["name"] == "ana"
        assert [(i.name, i.role.label, i.source) for i in site.signed_in][-1] == ("ana", "analyst", "oidc")
    else:
        assert browser.get(site.url + "_dash-layout", timeout=30).status_code == 200
        assert requests.get(site.url + "_dash-layout", timeout=30).status_code == 401


@pytest.mark.parametrize("user, role, scope", [
    ("pat", "viewer", ["service_tier=premium"]),
    ("adam", "admin", []),        # an unscoped group among them makes the user unscoped
    ("stringy", "analyst", []),   # groups as one comma-separated string
    ("okta", "analyst", []),      # groups only in the userinfo answer
])
def test_the_role_and_scope_come_from_the_groups_claim(site, user, role, scope):
    browser, landed = _sign_in(site, user)
    assert landed.status_code == 200
    assert site.identity(browser) == {"name": user, "role": role, "scope": scope, "source": "oidc"}


def test_a_viewer_from_a_group_is_refused_rows_by_the_dashboard(dashboard_site):
    body = {"output": "seg-download.data", "outputs": {"id": "seg-download", "property": "data"},
            "inputs": [], "changedPropIds": []}
    viewer, _ = _sign_in(dashboard_site, "pat")
    analyst, _ = _sign_in(dashboard_site, "ana")
    assert viewer.post(dashboard_site.url + "_dash-update-component", json=body, timeout=30).status_code == 403
    assert analyst.post(dashboard_site.url + "_dash-update-component", json=body, timeout=30).status_code != 403


def test_an_account_in_no_mapped_group_is_refused_without_a_session(site):
    browser, _ = _sign_in(site, "ana")   # someone signed in before, in the same browser
    assert site.identity(browser) is not None
    refused = _submit(_open_login(site, browser, site.prefix), browser, "una")
    assert refused.status_code == 403
    text = html.unescape(refused.text)
    assert "Your account una has no role in Shopper Insights" in text and "bi-analysts" in text
    assert "Traceback" not in text
    _signed_out(site, browser)
    if site.name == "minimal":
        assert site.refused[-1][0] == "una"


def test_a_wrong_password_at_the_provider_never_yields_a_session(site):
    browser = requests.Session()
    answer = _submit(_open_login(site, browser, site.prefix), browser, "ana", "wrong password")
    assert answer.status_code == 401 and "Wrong user name or password" in answer.text
    assert not answer.history and "/authorize" in answer.url   # never sent back to the app
    _signed_out(site, browser)


def test_a_tampered_state_is_refused_with_a_readable_page(site):
    browser = requests.Session()
    to_provider = browser.get(site.url + "login/oidc", allow_redirects=False, timeout=30)
    assert to_provider.status_code == 302
    parts = urlsplit(to_provider.headers["Location"])
    query = [(k, v + "tampered" if k == "state" else v) for k, v in parse_qsl(parts.query)]
    page = browser.get(urlunsplit(parts._replace(query=urlencode(query))), timeout=30)
    answer = _submit(page, browser, "ana")
    assert answer.url.startswith(site.callback)
    _readable_failure(answer, 400, "not started in this browser")
    _signed_out(site, browser)


def test_a_replayed_code_is_refused(site):
    browser = requests.Session()
    to_callback = _submit(_open_login(site, browser, site.prefix), browser, "ana", follow=False)
    callback_url = to_callback.headers["Location"]
    assert callback_url.startswith(site.callback) and "code=" in callback_url
    # The session cookie is client-side: a copy taken before the callback still holds the
    # pending state. Only the provider's one-time code stops its replay.
    before = requests.Session()
    before.cookies.update(browser.cookies)
    assert browser.get(callback_url, timeout=30).status_code == 200
    assert site.identity(browser) is not None
    replay = before.get(callback_url, timeout=30)
    _readable_failure(replay, 400, "did not sign you in")
    _signed_out(site, before)


def test_a_sign_in_cancelled_at_the_provider_is_reported(site):
    browser = requests.Session()
    answer = _submit(_open_login(site, browser, site.prefix), browser, "ana", cancel=True)
    assert answer.url.startswith(site.callback) and "error=access_denied" in answer.url
    _readable_failure(answer, 400, "did not sign you in")
    _signed_out(site, browser)


@pytest.mark.parametrize("user", ["wrong-aud", "aud-with-azp", "wrong-iss", "expired", "wrong-nonce", "forged"])
def test_an_id_token_that_does_not_verify_is_refused(site, user):
    browser, answer = _sign_in(site, user)
    assert answer.url.startswith(site.callback)
    _readable_failure(answer, 400, "could not be verified")
    _signed_out(site, browser)


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/", "/\\evil.example/",
                                    "/\t/evil.example/"])
def test_next_outside_the_app_is_not_followed(site, target):
    browser, landed = _sign_in(site, "ana", target)
    assert landed.status_code == 200 and landed.url == site.url
    assert all("evil" not in r.headers.get("Location", "") for r in landed.history)
    assert site.identity(browser)["name"] == "ana"


@pytest.mark.parametrize("target, kept", [
    ("/bi/carts?segment=1", True), ("/bi/", True), ("/bi/a%20b", True),
    (None, False), ("", False), ("/carts", False), ("https://evil.example/bi/", False),
    ("//evil.example/bi/", False), ("/bi/\\evil", False), ("/\\/evil.example", False),
    ("/bi/\t/x", False), ("/bi/\n", False), ("javascript:alert(1)", False), ("/bi/../x", False),
    ("/bi/%2e%2e/x", False), ("/bi/login/oidc?next=/bi/", False), ("/bi/auth/oidc/callback", False),
    ("/bi/" + "a" * 3000, False), ("http:/bi/x", False),
])
def test_safe_next_keeps_only_paths_inside_the_app(target, kept):
    assert safe_next(target, "/bi/") == (target if kept else "/bi/")


def test_the_provider_down_gives_a_502_page_and_the_app_recovers(tmp_path, caplog):
    """Down at start (the app starts anyway), up later (sign-in works), down between the
    form and the callback (the code cannot be exchanged): a page each time, no traceback."""
    listener = _Listener()
    port = free_port()
    try:
        with pytest.MonkeyPatch.context() as env:
            _auth_env(env, f"http://127.0.0.1:{port}", tmp_path / "state")
            site = _minimal_app(MINIMAL_PREFIX)
        site.origin, listener.app = listener.origin, site.server
        browser = requests.Session()
        caplog.clear()
        down = browser.get(site.url + "login/oidc", timeout=30)
        _readable_failure(down, 502, "could not be reached")
        assert f"127.0.0.1:{port}" in down.text
        lines = [r for r in caplog.records if r.name == "dashboard.auth.oidc"]
        assert len(lines) == 1 and lines[0].exc_info is None and "\n" not in lines[0].getMessage()

        provider = _start_provider(tmp_path, [site.callback], port=port)
        try:
            to_callback = _submit(_open_login(site, browser, site.prefix + "whoami"), browser, "ana", follow=False)
        finally:
            provider.stop()
        gone = browser.get(to_callback.headers["Location"], timeout=30)
        _readable_failure(gone, 502, "could not be reached")
        _signed_out(site, browser)
    finally:
        listener.close()


def test_the_dashboard_starts_while_the_provider_is_down(dashboard_site, monkeypatch, tmp_path):
    monkeypatch.setenv("OIDC_ISSUER", f"http://127.0.0.1:{free_port()}")
    from dashboard.app import create_app

    answer = create_app().server.test_client().get("/login/oidc?next=/carts")
    assert answer.status_code == 502 and b"could not be reached" in answer.data and b"Traceback" not in answer.data


@pytest.mark.parametrize("issuer", ["http://idp.example.com", "ftp://idp.example.com"])
def test_install_refuses_an_issuer_without_tls_off_loopback(issuer, monkeypatch, tmp_path):
    _auth_env(monkeypatch, issuer, tmp_path)
    with pytest.raises(AuthConfigError, match="https"):
        install(Flask("x"), get_auth_config(), print, print)
