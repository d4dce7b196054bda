"""What the browser tests share: Debian's Chromium driven by Playwright, a warehouse from the
real ETL with fast-trained models, and the app served from a thread on a free loopback port."""
from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
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

        server = make_server("127.0.0.1", 0, create_app().server, threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_port}"
        finally:
            server.shutdown()
            thread.join(timeout=10)


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
_SHARED: dict[str, dict] = {}


def shared_warehouse(tmp_path_factory, raw: Path) -> dict:
    """One trained warehouse per test session for the browser modules that only read it (the
    ETL and training take most of a browser module's time)."""
    if str(raw) not in _SHARED:
        _SHARED[str(raw)] = trained_warehouse(tmp_path_factory.mktemp("browser-shared"), raw)
    return _SHARED[str(raw)]


def with_lang(path: str, lang: str) -> str:
    """``path`` asking for ``lang`` (``?lang=`` is how a link chooses the language)."""
    return f"{path}{'&' if '?' in path else '?'}lang={lang}"


def settle(page) -> None:
    """Wait until Dash has no request in flight and the charts are drawn (and described)."""
    page.wait_for_load_state("networkidle")
    page.wait_for_function("() => !document.querySelector('[data-dash-is-loading=\"true\"]')")
    # every chart drawn and given its text alternative (assets/charts.js)
    page.wait_for_function("() => Array.from(document.querySelectorAll('.graph-figure'))"
                           ".every(box => box.dataset.described === 'true')")
    page.wait_for_timeout(300)


def open_page(page, path: str) -> None:
    page.goto(path)
    page.wait_for_selector("h1")
    settle(page)
