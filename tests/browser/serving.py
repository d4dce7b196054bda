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
