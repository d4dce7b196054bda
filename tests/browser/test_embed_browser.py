"""A portal frames the dashboard with a signed link, in Chromium that blocks third-party cookies.

The portal is a page on ``http://localhost:P1/``; the app runs on ``http://127.0.0.1:P2`` with
``AUTH=local`` and no user signed in, so the only way in is the embed token. ``localhost`` and
``127.0.0.1`` are different sites, which makes the framed app third-party. Chromium's profile
says "block third-party cookies" (the preference the settings page writes), and the first test
proves the block is on from inside the app's own frame before anything relies on it.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect

from dashboard.auth.embed import embed_url, make_token
from tests.browser.serving import (CHROMIUM, CHROMIUM_ARGS, SCREENSHOTS, VIEWPORT, Site, running, serving, settle,
                                   trained_warehouse, watch_errors)
from dashboard.auth.identity import Role, Scope

pytestmark = pytest.mark.browser

SECRET = "embed-browser-test-" + "s" * 32

# Run inside the app's frame: what a third-party frame may keep. Blocked, the cookie write is
# dropped and Chromium refuses the frame its storage too.
PROBE = """async () => {
  document.cookie = "embed_probe=1; SameSite=None; Secure; Path=/";
  let storage;
  try { localStorage.setItem("embed_probe", "1"); storage = "allowed"; } catch (e) { storage = e.name; }
  return {cookie: document.cookie, storage: storage, access: await document.hasStorageAccess()};
}"""


class Portal(Site):
    """The intranet portal: pages set by the test, served at http://localhost:PORT/<name>."""

    def show(self, name: str, frames: list[tuple[str, str, int]]) -> str:
        """A portal page with a header and one titled iframe per (title, src, height)."""
        cells = "".join(
            f'<section><h2>{title}</h2><iframe id="frame-{i}" title="{title}" src="{src}" '
            f'style="width:100%;height:{height}px;border:1px solid #ccd;border-radius:6px"></iframe></section>'
            for i, (title, src, height) in enumerate(frames))
        self.pages[f"/{name}"] = (
            "<!doctype html><html><head><meta charset='utf-8'><title>Intranet portal</title>"
            "<style>body{margin:0;font-family:system-ui,sans-serif;background:#eef1f5}"
            "header{background:#1f3a5f;color:#fff;padding:10px 24px;font-size:18px}"
            "main{padding:12px 24px}h2{font-size:15px;margin:4px 0 6px;color:#1f3a5f}</style></head>"
            f"<body><header>Intranet portal · Sales</header><main>{cells}</main></body></html>")
        return f"{self.url}/{name}"


@pytest.fixture(scope="module")
def portal():
    with running(Portal()) as server:
        yield server


@pytest.fixture(scope="module")
def tokens() -> dict[str, str]:
    """Made before the app starts: the expired one is signed as if two hours ago."""
    valid = make_token(SECRET, role=Role.VIEWER, scope=Scope(), page="/carts", ttl=3600)
    expired = make_token(SECRET, role=Role.VIEWER, scope=Scope(), page="/carts", ttl=3600, now=time.time() - 7200)
    middle = len(valid) // 3     # inside the payload: a changed claim, not just a bad signature
    altered = valid[:middle] + ("A" if valid[middle] != "A" else "B") + valid[middle + 1:]
    return {"valid": valid, "expired": expired, "altered": altered}


@pytest.fixture(scope="module")
def trained(tmp_path_factory, dashboard_raw) -> dict:
    return trained_warehouse(tmp_path_factory.mktemp("embed-browser"), dashboard_raw)


@pytest.fixture(scope="module")
def app_url(trained, portal, tokens):
    with serving(trained, AUTH="local", SECRET_KEY=SECRET, FRAME_ANCESTORS=f"'self' {portal.url}") as url:
        yield url


def profile(root: Path, block: bool) -> Path:
    """A Chromium profile whose cookie setting is "block third-party cookies" (or not)."""
    (root / "Default").mkdir(parents=True)
    prefs = {"profile": {"block_third_party_cookies": block, "cookie_controls_mode": 1 if block else 0}}
    (root / "Default" / "Preferences").write_text(json.dumps(prefs), encoding="utf-8")
    return root


def launch(playwright, root: Path, block: bool = True):
    return playwright.chromium.launch_persistent_context(
        str(profile(root, block)), executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, viewport=VIEWPORT)


@pytest.fixture(scope="module")
def blocking(playwright, tmp_path_factory):
    context = launch(playwright, tmp_path_factory.mktemp("chromium-blocking"))
    yield context
    context.close()


def framed(page, app_url: str):
    """The frame of the page that shows the app, once it has loaded."""
    page.wait_for_function(f"() => [...document.querySelectorAll('iframe')].every(f => f.src.startsWith({app_url!r}))")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        frames = [f for f in page.frames if f.url.startswith(app_url)]
        if frames:
            return frames
        page.wait_for_timeout(100)
    raise AssertionError("the app's frame never loaded")


def test_third_party_cookies_are_really_blocked_in_the_app_frame(playwright, blocking, portal, app_url, tmp_path):
    """The evidence the rest relies on: in the app's own frame under the portal, a cookie
    write does not stick and storage is refused; with the same probe and an allowing
    profile both work, so the probe can tell the difference."""
    probe_src = f"{app_url}/healthz"      # a public page of the app: same origin as the frames
    url = portal.show("probe", [("probe", probe_src, 120)])
    tab = blocking.new_page()
    tab.goto(url)
    blocked = framed(tab, app_url)[0].evaluate(PROBE)
    tab.close()
    assert blocked == {"cookie": "", "storage": "SecurityError", "access": False}
    assert blocking.cookies(app_url) == []

    allowing = launch(playwright, tmp_path / "chromium-allowing", block=False)
    try:
        tab = allowing.new_page()
        tab.goto(url)
        allowed = framed(tab, app_url)[0].evaluate(PROBE)
    finally:
        allowing.close()
    assert allowed == {"cookie": "embed_probe=1", "storage": "allowed", "access": True}


def test_the_framed_carts_page_draws_without_cookies_and_survives_a_reload(blocking, portal, app_url, tokens):
    src = embed_url(app_url, "/carts", tokens["valid"])
    url = portal.show("carts", [("Carts: abandonment this month", src, 760)])
    tab = blocking.new_page()
    errors = watch_errors(tab)
    dash_requests: list[dict] = []
    tab.on("request", lambda r: dash_requests.append(r.headers) if "/_dash-" in r.url
           and "/_dash-component-suites/" not in r.url else None)
    tab.goto(url)
    frame = framed(tab, app_url)[0]
    frame.wait_for_selector("#carts-kpis .kpi-value")
    settle(frame)

    assert frame.locator("#carts-kpis .kpi-value").count() >= 3
    assert frame.locator(".js-plotly-plot").count() >= 2
    assert not frame.locator(".app-nav").is_visible()           # embed=1: no chrome
    body = frame.locator("body").inner_text()
    assert "could not be drawn" not in body and "Sign in" not in body
    # every Dash request carried the token, none a cookie (there is none to carry)
    assert dash_requests and all(h.get("x-embed-token") == tokens["valid"] for h in dash_requests)
    assert not any("cookie" in h for h in dash_requests)
    assert blocking.cookies(app_url) == []

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=str(SCREENSHOTS / "embedded-portal.png"))

    # a filter change rewrites the frame's address; embed=1 and the token stay in it
    sessions = frame.locator("#carts-kpis .kpi-value").first.inner_text()
    frame.get_by_label("Type 1").check()
    expect(frame.locator("#carts-kpis .kpi-value").first).not_to_have_text(sessions)
    settle(frame)
    address = frame.evaluate("() => location.search")
    assert address.startswith("?embed=1&") and "segment=1" in address and address.endswith("&token=" + tokens["valid"])
    frame.evaluate("() => location.reload()")
    frame = framed(tab, app_url)[0]
    frame.wait_for_selector("#carts-kpis .kpi-value")
    settle(frame)
    assert frame.get_by_label("Type 1").is_checked()
    assert frame.locator(".js-plotly-plot").count() >= 2
    assert errors == [], f"browser console errors: {errors}"
    tab.close()


@pytest.mark.parametrize("kind, words", [("expired", "link expired at"), ("altered", "it was changed")])
def test_an_expired_or_altered_token_gets_a_clear_page_and_no_data(blocking, portal, app_url, tokens, kind, words,
                                                                   tmp_path):
    src = embed_url(app_url, "/carts", tokens[kind])
    url = portal.show(kind, [("valid", embed_url(app_url, "/carts", tokens["valid"]), 420), (kind, src, 260)])
    tab = blocking.new_page()
    responses: list[int] = []
    tab.on("response", lambda r: responses.append(r.status) if r.url == src else None)
    tab.goto(url)
    frames = {f.url: f for f in framed(tab, app_url)}
    refused = frames[src]
    refused.wait_for_selector(".embed-refusal")
    text = refused.locator("body").inner_text()
    assert words in text and "reload the portal page" in text.lower()
    assert responses == [401]
    # nothing of the dashboard: no script ran, no Dash request was made, no number shown
    assert refused.locator("script, #react-entry-point, .kpi-value").count() == 0
    # the valid frame beside it is unaffected
    valid = next(f for u, f in frames.items() if u != src)
    valid.wait_for_selector("#carts-kpis .kpi-value")
    settle(valid)
    tab.screenshot(path=str(tmp_path / f"embedded-{kind}.png"))   # for a person checking the wording
    tab.close()


def test_a_token_refused_while_the_page_is_open_replaces_the_dashboard_with_the_reason(blocking, portal, app_url, tokens):
    """The gate answers a Dash request with an expired token 401 + message (the link expired
    while the page stood open): embed.js shows that message instead of the charts."""
    url = portal.show("mid-session", [("carts", embed_url(app_url, "/carts", tokens["valid"]), 600)])
    tab = blocking.new_page()
    tab.goto(url)
    frame = framed(tab, app_url)[0]
    frame.wait_for_selector("#carts-kpis .kpi-value")
    settle(frame)
    message = "This embedded view's link expired at 2030-01-01 00:00 UTC; reload the portal page to get a new one."
    tab.route(lambda address: "/_dash-update-component" in address, lambda route: route.fulfill(
        status=401, content_type="application/json", body=json.dumps({"message": message})))
    frame.get_by_label("Type 2").check()
    expect(frame.locator(".embed-refusal")).to_have_text(message)
    assert not frame.locator("#react-entry-point").is_visible()
    tab.close()
