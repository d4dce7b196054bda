"""Embed links, the proxy mode and open access on loopback.

Part of the attack suite of issue 10 (see tests/attacks/support.py).
"""
from __future__ import annotations

import json
import time

import pytest

from dashboard.auth.identity import Role, parse_scope
from tests.attacks.support import (UPDATE, body_for, clean_env, create_app_for_test, csv_rows, embed_token,
                                   export_body, post_with, private_data, signed_in, state_of)
from tests.dashboard_generators import router_body


def test_an_embed_link_for_one_page_cannot_drive_another_pages_callbacks(app, callbacks):
    # FINDING: an embed token is bound to its page only for page loads and the page router
    # (gate._from_token checks the router's pathname); any other callback request carries no
    # pathname, so a token made for /carts answers the callbacks of /segments, /what-if,
    # /customers, /model... A viewer link handed to a portal for the carts funnel therefore
    # reads segment profiles, profit at risk and the what-if model of the whole customer base.
    # Fix: bind callbacks to pages (e.g. a map from callback output to the page module that
    # registered it, checked against claims.page in the gate), and refuse any callback that
    # does not belong to the token's page.
    token = embed_token(app, Role.VIEWER, "/carts")
    client = app.server.test_client()
    headers = {"X-Embed-Token": token}
    carts = post_with(client, body_for(callbacks, '"page":"carts"'), headers)
    assert carts.status_code == 200
    for needle in ('"page":"segments"', '"page":"what-if"', "wi-advice", '"page":"customers"', '"page":"model"'):
        response = post_with(client, body_for(callbacks, needle), headers)
        assert response.status_code == 403, (needle, response.status_code, response.get_data()[:200])


def test_an_analyst_embed_link_for_carts_cannot_export_customers_or_load_their_rows(app, callbacks):
    # FINDING: the same page-binding gap with an analyst link (which a portal needs for session
    # rows on /carts): the token exports the full at-risk customer list of /segments (ids,
    # profit, risk) and loads any customer's row through the what-if loader.
    # Fix: as above; in addition, make the export/row callbacks check the token's page.
    token = embed_token(app, Role.ANALYST, "/carts")
    client = app.server.test_client()
    headers = {"X-Embed-Token": token}
    export = post_with(client, export_body(callbacks), headers)
    assert export.status_code == 403, f"export answered {export.status_code}, {len(export.get_data())} bytes"
    body = body_for(callbacks, "wi-start-msg")
    body["state"][0]["value"] = "215348"
    body["changedPropIds"] = ["wi-load.n_clicks"]
    body["inputs"][0]["value"] = 1
    load = post_with(client, body, headers)
    assert load.status_code == 403, f"row loader answered {load.status_code}: {load.get_data()[:150]!r}"


def test_embed_tokens_expired_altered_or_for_another_page_give_no_data(app, callbacks, route):
    from dashboard.auth.embed import make_token

    client = app.server.test_client()
    secret = state_of(app).config.secret_key
    good = embed_token(app, Role.VIEWER, "/carts")
    # expired: made two minutes ago with the shortest lifetime (one minute)
    with pytest.MonkeyPatch.context() as clock:
        made_at = time.time() - 120
        clock.setattr(time, "time", lambda: made_at)
        expired = make_token(secret, role=Role.VIEWER, scope=parse_scope([]), page="/carts", ttl=60)
    altered = good[:-2] + ("A" if good[-2] != "A" else "B") + good[-1]
    other_key = make_token("another-secret-" + "q" * 32, role=Role.ANALYST, scope=parse_scope([]), page="/carts", ttl=600)
    for token in (expired, altered, other_key, good + ".", good.replace(".", "..", 1), good[:-1], "x" * 5000):
        page = client.get(f"/carts?embed=1&token={token}")
        assert page.status_code == 401, token[:20]
        dash = post_with(client, router_body(route, "/carts", "?embed=1"), {"X-Embed-Token": token})
        assert dash.status_code == 401 and "customer" not in dash.get_data(as_text=True).lower()
    # a good token, on other pages and on routes that are not pages
    for path in ("/segments", "/carts/../segments", "/carts%2F..%2Fsegments", "/admin/users", "/_reload-hash",
                 "/Carts", "/carts/x"):
        response = client.get(f"{path}?token={good}")
        assert response.status_code in (401, 403, 404), (path, response.status_code)
    crafted = router_body(route, "/segments", "")
    assert post_with(client, crafted, {"X-Embed-Token": good}).status_code == 403
    # two pathnames in one router request: the page's and another
    doubled = router_body(route, "/carts", "")
    doubled["inputs"] = doubled["inputs"] + [dict(doubled["inputs"][0], value="/segments")]
    assert post_with(client, doubled, {"X-Embed-Token": good}).status_code in (400, 403)
    # a token never gives admin callbacks, even an analyst one
    analyst = embed_token(app, Role.ANALYST, "/admin/users")
    admin_cb = body_for(callbacks, "admin-users-message")
    assert post_with(client, admin_cb, {"X-Embed-Token": analyst}).status_code == 403


def test_an_embed_token_cannot_be_widened_by_a_second_token_or_a_session(app, callbacks):
    viewer = embed_token(app, Role.VIEWER, "/segments", ["service_tier=premium"])
    analyst = embed_token(app, Role.ANALYST, "/segments")
    client = signed_in(app, "vera")
    body = export_body(callbacks)
    # header wins over the query string; the viewer header is not widened by an analyst query token
    response = client.post(f"{UPDATE}?token={analyst}", data=json.dumps(body), content_type="application/json",
                           headers={"X-Embed-Token": viewer})
    assert response.status_code == 403


# =============================================================================================
# Sessions: another mode, fixation, forging, replay
# =============================================================================================


PROXY = "10.1.2.3"


@pytest.fixture
def proxy_app(monkeypatch, tmp_path, dashboard_data):
    clean_env(monkeypatch)
    private_data(monkeypatch, tmp_path, dashboard_data["scored"], dashboard_data["models"])
    monkeypatch.setenv("AUTH", "proxy")
    monkeypatch.setenv("SECRET_KEY", "proxy-secret-" + "p" * 32)
    monkeypatch.setenv("AUTH_PROXY_ADDRESSES", f"{PROXY},192.168.7.0/24")
    monkeypatch.setenv("AUTH_GROUPS", "staff:viewer; premium-analysts:analyst:service_tier=premium; bi-admins:admin")
    return create_app_for_test()


def _proxied(app, address: str, user: str | None, groups: str | None):
    client = app.server.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    if user is not None:
        client.environ_base["HTTP_X_FORWARDED_USER"] = user
    if groups is not None:
        client.environ_base["HTTP_X_FORWARDED_GROUPS"] = groups
    return client


def test_proxy_headers_count_only_from_the_proxy_addresses(proxy_app):
    for address in ("10.1.2.4", "::ffff:10.1.2.3", "127.0.0.1", "192.168.8.1", "", "10.1.2.3.evil"):
        client = _proxied(proxy_app, address, "adam", "bi-admins")
        assert client.get("/_dash-layout").status_code == 401, address
    # a spoofed forwarding header does not change the peer address the gate checks
    client = _proxied(proxy_app, "10.9.9.9", "adam", "bi-admins")
    assert client.get("/_dash-layout", headers={"X-Forwarded-For": PROXY, "X-Real-IP": PROXY,
                                                "Forwarded": f"for={PROXY}"}).status_code == 401
    # from the proxy: a name with odd characters is shown escaped, never as markup
    client = _proxied(proxy_app, PROXY, "<img src=x onerror=alert(1)>", "marketing")
    page = client.get("/carts").get_data(as_text=True)
    assert "<img" not in page


def test_a_low_unscoped_group_does_not_lift_the_scope_of_a_higher_scoped_group(proxy_app, callbacks):
    # FINDING: role_from_groups takes the highest role of the user's groups and, separately,
    # drops the scope altogether when any one group is unscoped. A user in "staff" (viewer, all
    # rows: aggregates for everyone) and "premium-analysts" (analyst, premium customers only)
    # becomes an UNSCOPED ANALYST: customer-level rows and exports of every customer, which
    # neither group grants. The same function serves AUTH=oidc. Fix: combine per group -
    # rows only within the scopes of the groups that grant rows (e.g. compute, for each
    # capability, the union of the scopes of the groups granting it), or refuse mixed mappings.
    client = _proxied(proxy_app, PROXY, "sam", "staff,premium-analysts")
    response = post_with(client, export_body(callbacks))
    tiers = {r["Service tier"] for r in csv_rows(response)} if response.status_code == 200 else set()
    assert response.status_code == 403 or tiers <= {"premium"}, \
        f"a premium-only analyst exported customers of tiers {sorted(tiers)}"


@pytest.fixture
def open_app(monkeypatch, tmp_path, dashboard_data):
    clean_env(monkeypatch)
    private_data(monkeypatch, tmp_path, dashboard_data["scored"], dashboard_data["models"])
    monkeypatch.setenv("HOST", "127.0.0.1")   # AUTH=none on loopback: the `make run` default
    return create_app_for_test()


def test_open_access_on_loopback_answers_only_requests_for_a_loopback_host(open_app, callbacks):
    # FINDING: with AUTH=none the only protection is "gunicorn binds 127.0.0.1", and every
    # visitor is the anonymous ADMIN. The app answers any Host header, so a web page the
    # operator merely visits can use DNS rebinding (attacker.example first resolves to the
    # attacker, then to 127.0.0.1) to read every page, export the at-risk customer list and
    # press "Refresh data now" from the victim's browser, same-origin as far as the browser
    # knows. Fix: under AUTH=none on loopback, refuse (400/421) requests whose Host is not
    # localhost/127.0.0.1/[::1] (Flask's TRUSTED_HOSTS, or a before_request check), as Jupyter
    # and other loopback servers do.
    client = open_app.server.test_client()
    assert client.get("/_dash-layout").status_code == 200              # the operator, as intended
    rebound = open_app.server.test_client()
    layout = rebound.get("/_dash-layout", base_url="http://attacker.example:8050")
    export = rebound.post(UPDATE, base_url="http://attacker.example:8050", data=json.dumps(export_body(callbacks)),
                          content_type="application/json")
    assert layout.status_code in (400, 403, 421) and export.status_code in (400, 403, 421), \
        f"Host attacker.example: layout {layout.status_code}, export {export.status_code} " \
        f"({len(export.get_data())} bytes)"
