"""Behind a real nginx (Debian's nginx-light, localservers/nginx.py), the sign-in throttle and
the audit log see each client's own address, not the balancer's, and a client cannot choose
the address it is counted under by sending its own X-Forwarded-For.

The app (AUTH=local, werkzeug on a free loopback port) trusts nginx's 127.0.0.1 as its
balancer; the two clients connect to nginx from 127.0.0.2 and 127.0.0.3 (loopback addresses
too on Linux), so nginx appends a different address for each."""
from __future__ import annotations

import http.client
import threading
import urllib.parse
from http.cookies import SimpleCookie

import pytest

from localservers import ServerMissing, skip_or_fail
from localservers.nginx import Nginx
from tests.attacks.support import PASSWORD, clean_env, csrf

pytestmark = pytest.mark.servers


class Browser:
    """One client at a fixed source address, with its cookies."""

    def __init__(self, port: int, source: str) -> None:
        self.port, self.source, self.cookies = port, source, SimpleCookie()

    def request(self, method: str, path: str, form: dict | None = None, headers: dict | None = None):
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30, source_address=(self.source, 0))
        sent = {"Cookie": "; ".join(f"{k}={m.value}" for k, m in self.cookies.items()), **(headers or {})}
        body = None
        if form is not None:
            body = urllib.parse.urlencode(form)
            sent["Content-Type"] = "application/x-www-form-urlencoded"
        connection.request(method, path, body=body, headers=sent)
        response = connection.getresponse()
        text = response.read().decode("utf-8", "replace")
        for value in response.headers.get_all("Set-Cookie") or []:
            self.cookies.load(value)
        connection.close()
        return response.status, text

    def sign_in(self, name: str, password: str, headers: dict | None = None) -> int:
        _status, page = self.request("GET", "/login", headers=headers)
        status, _text = self.request("POST", "/login", {"username": name, "password": password,
                                                         "csrf_token": csrf(page), "next": "/"}, headers)
        return status


@pytest.fixture
def balanced(dashboard_data, tmp_path, monkeypatch):
    from werkzeug.serving import make_server

    from dashboard.auth.identity import Role, parse_scope
    from dashboard.auth.users import UserStore
    from localservers import free_port

    clean_env(monkeypatch)
    for name, value in {"WAREHOUSE_URL": dashboard_data["scored"], "MODELS_DIR": str(dashboard_data["models"]),
                        "CACHE_DIR": str(tmp_path / "cache"), "STATE_DIR": str(tmp_path / "state"),
                        "RAW_DIR": str(tmp_path / "no-raw"), "AUTH": "local", "SECRET_KEY": "s" * 40,
                        "LOGIN_MAX_FAILURES": "3", "FORWARDED_ALLOW_IPS": "127.0.0.1"}.items():
        monkeypatch.setenv(name, value)
    UserStore(tmp_path / "state" / "users.json").add("tess", Role.VIEWER, parse_scope([]), PASSWORD)
    from dashboard.app import create_app

    app = create_app()
    port = free_port()
    server = make_server("127.0.0.1", port, app.server, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with Nginx([port]) as balancer:
            yield app, balancer.port
    except ServerMissing as exc:
        skip_or_fail(pytest, exc)
    finally:
        server.shutdown()


def test_each_client_is_throttled_and_audited_under_its_own_address(balanced):
    app, port = balanced
    guesser, colleague = Browser(port, "127.0.0.2"), Browser(port, "127.0.0.3")
    assert [guesser.sign_in("tess", "wrong password!") for _ in range(3)] == [401, 401, 401]
    assert guesser.sign_in("tess", PASSWORD) == 429   # paused at its address
    # its own X-Forwarded-For does not move it elsewhere: nginx appends the address it saw
    assert guesser.sign_in("tess", PASSWORD, headers={"X-Forwarded-For": "198.51.100.7"}) == 429
    # through the same balancer, another client signs in as the same user at once
    assert colleague.sign_in("tess", PASSWORD) == 302
    events = app.server.extensions["shopper_auth"].audit.tail(20)
    addresses = {(e["event"], e["details"].get("reason")): e["ip"] for e in events}
    assert addresses[("sign-in-failed", "wrong name or password")] == "127.0.0.2"
    assert addresses[("sign-in-failed", "throttled")] == "127.0.0.2"
    assert addresses[("sign-in", None)] == "127.0.0.3"
    assert "127.0.0.1" not in {e["ip"] for e in events} and "198.51.100.7" not in {e["ip"] for e in events}
