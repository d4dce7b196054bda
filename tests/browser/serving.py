"""What the browser tests share: Debian's Chromium driven by Playwright, a warehouse from the
real ETL with fast-trained models, and the app served from a thread on a free loopback port."""
from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
VIEWPORT = {"width": 1400, "height": 900}


@contextlib.contextmanager
def playwright_session() -> Iterator:
    """Playwright, for a browser launched on Debian's chromium (no browser download is possible)."""
    if not CHROMIUM.exists():
        pytest.fail("Debian's chromium is missing: run `apt-get install -y chromium` (make test does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as session:
        yield session


def trained_warehouse(root: Path, raw: Path) -> dict:
    """Real ETL and real (``--fast``) training into ``root``; paths of what the app reads."""
    from etl.pipeline import run_pipeline
    from etl.train.run import run_training

    url = str(root / "warehouse.duckdb")
    run_pipeline(raw, url)
    run_training(url, root / "models", ["carts", "customers"], offer_cost=None, fast=True, progress=lambda _: None)
    return {"url": url, "models": root / "models", "cache": root / "cache", "state": root / "state"}


@contextlib.contextmanager
def serving(trained: dict, **env: str) -> Iterator[str]:
    """The app on ``trained`` (with ``env`` on top) at the yielded base URL, until the block ends."""
    from werkzeug.serving import make_server

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WAREHOUSE_URL", trained["url"])
        patch.setenv("MODELS_DIR", str(trained["models"]))
        patch.setenv("CACHE_DIR", str(trained["cache"]))
        patch.setenv("STATE_DIR", str(trained["state"]))   # its key and history, not the project's
        for name in ("URL_PREFIX", "HOST", "AUTH", "SECRET_KEY", "FRAME_ANCESTORS"):
            patch.delenv(name, raising=False)
        for name, value in env.items():
            patch.setenv(name, value)
        from dashboard.app import create_app

        with running(make_server("127.0.0.1", 0, create_app().server, threaded=True)) as server:
            yield f"http://127.0.0.1:{server.server_port}"


@contextlib.contextmanager
def running(server):
    """``server`` answering from a thread until the block ends."""
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        thread.join(timeout=10)


class Site(ThreadingHTTPServer):
    """A loopback site at http://localhost:PORT serving fixed pages (``pages``: path -> HTML), such
    as a portal that frames the app; ``localhost`` is another site than the app's ``127.0.0.1``."""

    daemon_threads = True

    def __init__(self, pages: dict[str, str] | None = None) -> None:
        site = self
        self.pages = pages or {}

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                if self.path == "/favicon.ico":   # asked by the browser; a 404 would be a console error
                    self.send_response(204)
                    self.end_headers()
                    return
                body = site.pages.get(self.path.split("?")[0])
                self.send_response(200 if body else 404)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.end_headers()
                self.wfile.write((body or "not found").encode())

            def log_message(self, *args) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)

    @property
    def url(self) -> str:
        return f"http://localhost:{self.server_port}"


# Every page of the app at a link that shows it filled in; the admin pages are reachable because
# on loopback without sign-in (AUTH unset) the visitor is the operator, an admin.
EVERY_PAGE = {
    "overview": "/",
    "carts": "/carts?segment=0,1",
    "customers": "/customers?tier=standard",
    "segments": "/segments?segment=promo_risk_high_profit",
    "what-if": "/what-if?subject=customers",
    "model": "/model?subject=customers",
    "data-quality": "/data-quality",
    "reports": "/reports",
    "admin-users": "/admin/users",
    "admin-audit": "/admin/audit",
    "admin-data": "/admin/data",
    "not-found": "/no-such-page",
}


def with_lang(path: str, lang: str) -> str:
    """``path`` asking for ``lang`` (``?lang=`` is how a link chooses the language)."""
    return f"{path}{'&' if '?' in path else '?'}lang={lang}"


def watch_errors(tab, console: bool = True) -> list[str]:
    """The list that collects ``tab``'s uncaught page errors and (with ``console``) its console errors."""
    errors: list[str] = []
    if console:
        tab.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    tab.on("pageerror", lambda e: errors.append(str(e)))
    return errors


@contextlib.contextmanager
def checked_tab(browser, console: bool = True, **options) -> Iterator:
    """A tab in a fresh context of ``browser`` made with ``options`` (VIEWPORT unless they give
    one); once the block is done, any console error or uncaught page error in it fails the test."""
    context = browser.new_context(**{"viewport": VIEWPORT, **options})
    tab = context.new_page()
    errors = watch_errors(tab, console)
    try:
        yield tab
    finally:
        context.close()
    assert errors == [], f"browser console errors: {errors}"


def settle(page) -> None:
    """Wait until Dash has no request in flight and the charts are drawn (and described); ``page``
    may be a tab or the frame that shows the app."""
    page.wait_for_load_state("networkidle")
    page.wait_for_function("() => !document.querySelector('[data-dash-is-loading=\"true\"]')")
    # every chart drawn and given its text alternative (assets/charts.js)
    page.wait_for_function("() => Array.from(document.querySelectorAll('.graph-figure'))"
                           ".every(box => box.dataset.described === 'true')")
    page.wait_for_timeout(300)


def open_page(page, path: str, ready: str = "h1") -> None:
    """Go to ``path``, wait for ``ready`` to show (the heading, or what a test reads first), settle."""
    page.goto(path)
    page.wait_for_selector(ready)
    settle(page)
