"""The portal and the framed dashboard keep their filters in sync through postMessage.

docs/portal-example.html is served as it is from ``http://localhost:P1`` (the portal); the app
runs on ``http://127.0.0.1:P2`` with ``AUTH=local``, a signed embed link for /carts and
``FRAME_ANCESTORS`` naming the portal. A third loopback server (``http://localhost:P3``, another
origin that FRAME_ANCESTORS does not name) plays a page that tries to steer the dashboard.
"""
from __future__ import annotations

import contextlib
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from playwright.sync_api import expect

from dashboard.auth.embed import embed_url, make_token
from dashboard.auth.identity import Role, Scope
from tests.browser.serving import Site, checked_tab, running, serving, settle, trained_warehouse

pytestmark = pytest.mark.browser

SECRET = "portal-browser-test-" + "s" * 32
EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "portal-example.html"
# a portal that sends its filter as soon as the frame has loaded, before Dash has drawn the page
EARLY = """<!doctype html><html><head><meta charset="utf-8"><title>early portal</title></head><body>
<output id="log"></output><iframe id="dashboard" title="dashboard" style="width:100%;height:600px"></iframe>
<script>
const src = new URLSearchParams(location.search).get("dashboard"), origin = new URL(src).origin;
const frame = document.getElementById("dashboard"), seen = [];
addEventListener("message", (e) => {
  if (e.origin !== origin || e.source !== frame.contentWindow) return;
  seen.push(e.data.type + " " + e.data.query);
  document.getElementById("log").textContent = seen.join(" | ");
});
frame.addEventListener("load", () => frame.contentWindow.postMessage(
  {type: "shopper:set-filters", query: "segment=2"}, origin));
frame.src = src;
</script></body></html>"""
# what a foreign page can do to a frame it can reach: post to it
FOREIGN_POST = "(query) => parent.frames[0].postMessage({type: 'shopper:set-filters', query: query}, '*')"


@pytest.fixture(scope="module")
def sites():
    blank = "<!doctype html><html><head><meta charset='utf-8'><title>elsewhere</title></head><body>hi</body></html>"
    servers = {"portal": Site({"/portal-example.html": EXAMPLE.read_text(encoding="utf-8"), "/early": EARLY,
                                  "/blank": blank}),
               "third": Site({"/blank": blank})}
    with contextlib.ExitStack() as stack:
        yield {name: stack.enter_context(running(server)) for name, server in servers.items()}


@pytest.fixture(scope="module")
def trained(tmp_path_factory, dashboard_raw) -> dict:
    return trained_warehouse(tmp_path_factory.mktemp("portal-browser"), dashboard_raw)


@pytest.fixture(scope="module")
def app_url(trained, sites):
    # the portal by name, and sub-domains of localhost (which Chromium resolves to loopback) by pattern
    ancestors = f"'self' {sites['portal'].url} http://*.localhost:*"
    with serving(trained, AUTH="local", SECRET_KEY=SECRET, FRAME_ANCESTORS=ancestors) as url:
        yield url


@pytest.fixture
def tab(browser):
    with checked_tab(browser) as page:
        page.console_lines = []   # every console line, for the tests that look for a console.debug
        page.on("console", lambda m: page.console_lines.append((m.type, m.text)))
        yield page


def frame_of(tab, origin: str):
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        frames = [f for f in tab.frames if f.url.startswith(origin)]
        if frames:
            return frames[0]
        tab.wait_for_timeout(100)
    raise AssertionError(f"no frame of {origin} loaded")


def open_portal(tab, sites, app_url: str, page: str = "/carts", portal: str | None = None):
    """The example portal (at ``portal``, default its own origin) framing ``page`` with a signed
    link; the dashboard's frame, drawn."""
    token = make_token(SECRET, role=Role.VIEWER, scope=Scope(), page=page, ttl=3600)
    link = quote(embed_url(app_url, page, token), safe="")
    tab.goto(f"{portal or sites['portal'].url}/portal-example.html?dashboard={link}")
    frame = frame_of(tab, app_url)
    frame.wait_for_selector(".kpi-value")
    settle(frame)
    expect(tab.locator("#reported")).to_have_text(f"{page} (no filters)")   # shopper:ready arrived
    return frame, token


def kpi(frame) -> str:
    return frame.locator("#carts-kpis .kpi-value").first.inner_text()


def chips(frame) -> list[str]:
    return frame.locator("#carts-chips .chip").all_inner_texts()


def test_the_portal_and_the_dashboard_keep_each_others_filters(tab, sites, app_url):
    frame, token = open_portal(tab, sites, app_url)
    everything = kpi(frame)

    # portal -> dashboard: the customer type chosen in the portal filters the frame
    tab.select_option("#customer-type", "1")
    expect(frame.locator("#carts-kpis .kpi-value").first).not_to_have_text(everything)
    settle(frame)
    assert frame.get_by_role("checkbox", name="Type 1").is_checked() and len(chips(frame)) == 1
    assert frame.evaluate("location.search") == f"?embed=1&segment=1&token={token}"
    type_one = kpi(frame)
    expect(tab.locator("#reported")).to_have_text("/carts?segment=1")

    # dashboard -> portal: a filter changed in the frame shows on the portal's line
    frame.locator("#carts-details").get_by_role("radio", name="Yes").check()
    expect(tab.locator("#reported")).to_have_text("/carts?segment=1&details=yes")
    expect(frame.locator("#carts-kpis .kpi-value").first).not_to_have_text(type_one)
    settle(frame)
    assert tab.locator("#customer-type").input_value() == "1"

    # the portal changes only its own filter; the dashboard's other one stays
    tab.select_option("#customer-type", "")
    expect(tab.locator("#reported")).to_have_text("/carts?details=yes")
    settle(frame)
    assert not frame.get_by_role("checkbox", name="Type 1").is_checked() and len(chips(frame)) == 1

    frame.get_by_role("checkbox", name="Type 2").check()
    expect(tab.locator("#reported")).to_have_text("/carts?segment=2&details=yes")
    assert tab.locator("#customer-type").input_value() == "2"
    settle(frame)

    # the portal's change is a history entry of the frame like any other (the tab's Back button)
    tab.evaluate("history.back()")
    expect(tab.locator("#reported")).to_have_text("/carts?details=yes")
    settle(frame)
    assert not frame.get_by_role("checkbox", name="Type 2").is_checked()


def test_messages_from_other_origins_windows_or_shapes_are_ignored(tab, sites, app_url):
    frame, token = open_portal(tab, sites, app_url)
    start = {"kpi": kpi(frame), "chips": chips(frame), "search": frame.evaluate("location.search")}

    def add_frame(url: str):
        tab.evaluate("(src) => { const f = document.createElement('iframe'); f.src = src; "
                     "document.body.appendChild(f); }", url)
        return frame_of(tab, url)

    def ignored(words: str) -> None:
        deadline = time.monotonic() + 10
        while not any(kind == "debug" and words in text for kind, text in tab.console_lines):
            assert time.monotonic() < deadline, f"no console.debug with {words!r}: {tab.console_lines}"
            tab.wait_for_timeout(100)

    # a page of a third origin (another port) that can reach the frame
    third = add_frame(f"{sites['third'].url}/blank")
    third.evaluate(FOREIGN_POST, "segment=2")
    ignored(f"ignored a message from {sites['third'].url}")
    # a page of the portal's own origin that is not the frame's parent
    sibling = add_frame(f"{sites['portal'].url}/blank")
    sibling.evaluate(FOREIGN_POST, "segment=0")
    ignored("not its portal")
    # the parent itself, with a message of the wrong shape
    post = "(m) => document.getElementById('dashboard').contentWindow.postMessage(m, new URL(document" \
           ".getElementById('dashboard').src).origin)"
    for wrong in ({"type": "shopper:set-filters", "query": 5}, {"type": "shopper:set-filters"},
                  {"type": "shopper:set-filters", "query": "segment=2", "page": "//evil.example/x"},
                  "segment=2", ["shopper:set-filters", "segment=2"]):
        tab.evaluate(post, wrong)
    ignored("not a shopper:set-filters request")
    frame.wait_for_timeout(1000)
    settle(frame)
    assert {"kpi": kpi(frame), "chips": chips(frame), "search": frame.evaluate("location.search")} == start

    # a signed frame stays on its page: another page is refused with a message back
    tab.evaluate(post, {"type": "shopper:set-filters", "query": "", "page": "/customers"})
    expect(tab.locator("#reported")).to_have_text("refused: This embedded view's link opens /carts only.")
    assert frame.evaluate("location.pathname") == "/carts"


def test_a_request_sent_before_the_page_is_drawn_is_applied_once_it_is(tab, sites, app_url):
    token = make_token(SECRET, role=Role.VIEWER, scope=Scope(), page="/carts", ttl=3600)
    tab.goto(f"{sites['portal'].url}/early?dashboard={quote(embed_url(app_url, '/carts', token), safe='')}")
    expect(tab.locator("#log")).to_have_text("shopper:ready  | shopper:filters-changed segment=2")
    frame = frame_of(tab, app_url)
    settle(frame)
    assert frame.get_by_role("checkbox", name="Type 2").is_checked()
    assert frame.evaluate("location.search") == f"?embed=1&segment=2&token={token}"


def test_a_portal_allowed_by_a_wildcard_talks_too(tab, sites, app_url):
    """http://sales.localhost:P1 is named by no source but matches http://*.localhost:*."""
    portal = f"http://sales.localhost:{sites['portal'].server_port}"
    frame, _token = open_portal(tab, sites, app_url, portal=portal)
    assert tab.evaluate("location.origin") == portal
    tab.select_option("#customer-type", "0")
    expect(tab.locator("#reported")).to_have_text("/carts?segment=0")
    settle(frame)
    assert frame.get_by_role("checkbox", name="Type 0").is_checked()
