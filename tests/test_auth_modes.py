"""AUTH=none and AUTH=proxy: who the app believes, and what it then lets through."""
from __future__ import annotations

import pytest

from tests.conftest import AUTH_VARIABLES
from tests.dashboard_generators import harvest_pages, post_json, server_callbacks, valid_body

PROXY = "10.1.2.3"


def _app(monkeypatch, tmp_path, dashboard_data, **env):
    for name in (*AUTH_VARIABLES, "URL_PREFIX", "FRAME_ANCESTORS", "CACHE_REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WAREHOUSE_URL", dashboard_data["scored"])
    monkeypatch.setenv("MODELS_DIR", str(dashboard_data["models"]))
    monkeypatch.setenv("CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("STATE_DIR", str(tmp_path / "state"))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    from dashboard.app import create_app

    return create_app()


def _download_body(client) -> dict:
    found = server_callbacks(client)
    harvest = harvest_pages(client, found)
    return next(valid_body(cb, harvest) for cb in found if "seg-download" in cb["output"])


def test_open_access_on_loopback_is_the_operator(monkeypatch, tmp_path, dashboard_data):
    app = _app(monkeypatch, tmp_path, dashboard_data)
    client = app.server.test_client()
    layout = client.get("/_dash-layout").get_data(as_text=True)
    assert client.get("/carts").status_code == 200 and "open-access" not in layout
    assert "\\u002fadmin\\u002fusers" in layout          # the operator is the admin
    assert post_json(client, _download_body(client)).status_code == 200
    # the key for sessions and embed tokens was generated, private, and is reused
    key = tmp_path / "state" / "secret_key"
    assert key.stat().st_mode & 0o777 == 0o600 and app.server.secret_key == key.read_text().strip()


def test_open_access_on_purpose_shows_a_banner_and_no_rows(monkeypatch, tmp_path, dashboard_data):
    app = _app(monkeypatch, tmp_path, dashboard_data, HOST="0.0.0.0", AUTH_ALLOW_ANONYMOUS="1")
    client = app.server.test_client()
    layout = client.get("/_dash-layout").get_data(as_text=True)
    assert "open-access" in layout and "as viewer" in layout
    refused = post_json(client, _download_body(client))
    assert refused.status_code == 403 and "analyst" in refused.get_json()["message"]


def test_open_access_on_a_public_address_is_refused(monkeypatch, tmp_path, dashboard_data):
    from dashboard.auth.settings import AuthConfigError

    with pytest.raises(AuthConfigError, match="refusing to serve without sign-in on 0.0.0.0"):
        _app(monkeypatch, tmp_path, dashboard_data, HOST="0.0.0.0")


@pytest.fixture
def proxied(monkeypatch, tmp_path, dashboard_data):
    app = _app(monkeypatch, tmp_path, dashboard_data, AUTH="proxy", SECRET_KEY="k" * 40,
               AUTH_PROXY_ADDRESSES=f"{PROXY},192.168.0.0/24",
               AUTH_GROUPS="bi-admins:admin; bi-analysts:analyst; premium-sales:viewer:service_tier=premium")
    return app


def _as(app, address: str, user: str | None = None, groups: str | None = None):
    headers = {}
    if user is not None:
        headers["X-Forwarded-User"] = user
    if groups is not None:
        headers["X-Forwarded-Groups"] = groups
    client = app.server.test_client()
    client.environ_base.update(REMOTE_ADDR=address)
    return client, headers


def test_proxy_header_counts_only_from_the_proxy(proxied):
    client, headers = _as(proxied, "10.9.9.9", "adam", "bi-admins")
    assert client.get("/_dash-layout", headers=headers).status_code == 401
    assert client.get("/carts", headers=headers).status_code == 302
    client, headers = _as(proxied, PROXY, "adam", "bi-admins")
    assert client.get("/_dash-layout", headers=headers).status_code == 200
    client, headers = _as(proxied, "192.168.0.77", "adam", "bi-admins")
    assert client.get("/_dash-layout", headers=headers).status_code == 200


def test_proxy_groups_decide_role_and_scope(proxied):
    client, headers = _as(proxied, PROXY, "sam", "premium-sales, other")
    layout = client.get("/_dash-layout", headers=headers).get_data(as_text=True)
    assert "Service tier: premium" in layout and "admin\\u002fusers" not in layout
    admin, _ = _as(proxied, PROXY)   # the download callback's body, harvested as an admin
    admin.environ_base["HTTP_X_FORWARDED_USER"] = "adam"
    admin.environ_base["HTTP_X_FORWARDED_GROUPS"] = "bi-admins"
    body = _download_body(admin)
    client.environ_base["HTTP_X_FORWARDED_USER"] = "sam"
    client.environ_base["HTTP_X_FORWARDED_GROUPS"] = "premium-sales"
    assert post_json(client, body).status_code == 403
    client.environ_base["HTTP_X_FORWARDED_GROUPS"] = "premium-sales,bi-analysts"
    assert post_json(client, body).status_code == 200


def test_a_proxy_user_in_no_mapped_group_is_told_so(proxied):
    client, headers = _as(proxied, PROXY, "eve", "marketing")
    page = client.get("/carts", headers=headers)
    assert page.status_code == 403 and "eve has no role" in page.get_data(as_text=True)
    assert client.get("/_dash-layout", headers=headers).status_code == 403
