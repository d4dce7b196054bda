"""Static bundles at brotli quality 11 (dashboard/static_compression.py), through the real app,
its real query cache folder and flask-compress; callbacks and other clients as before.

The bundles used are the app's own (AG Grid's and Dash Bootstrap Components' main bundles, an
asset); plotly.js is left out because its quality 11 costs 7.5 s of CPU."""
from __future__ import annotations

import fcntl
import re
import threading
import time

import brotli
import pytest

from benchmarks.dashclient import DashClient
from dashboard import static_compression
from dashboard.config import ASSETS_DIR

UPDATE = "/_dash-update-component"
CHROMIUM = {"Accept-Encoding": "gzip, deflate, br, zstd"}


@pytest.fixture
def app(dashboard_env):
    from dashboard.app import create_app

    return create_app()   # its own quality-11 bodies: none kept from another test's cache folder


def _bundles(app) -> static_compression.BestBrotli:
    return app.server.extensions["static_compression"]


@pytest.fixture
def held(monkeypatch, app):
    """Quality 11 blocks until ``held.set()``: the state of a server whose compression runs."""
    gate = threading.Event()
    compress = brotli.compress

    def slow(data, **kwargs):
        if kwargs.get("quality") == static_compression.QUALITY:
            gate.wait(30)
        return compress(data, **kwargs)

    monkeypatch.setattr(static_compression.brotli, "compress", slow)
    yield gate
    gate.set()
    _settle(app)


def _settle(app, timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while _bundles(app).running() and time.monotonic() < end:
        time.sleep(0.05)
    assert not _bundles(app).running()


def _script(client, name: str) -> str:
    page = client.get("/carts").get_data(as_text=True)
    return next(src for src in re.findall(r'src="([^"]+)"', page) if name in src)


def test_a_bundle_is_sent_at_level_4_at_once_then_at_quality_11(app, held):
    client = app.server.test_client()
    url = _script(client, "dash_ag_grid.v")
    original = client.get(url, headers={"Accept-Encoding": "identity"}).get_data()
    started = time.monotonic()
    early = client.get(url, headers=CHROMIUM)
    assert time.monotonic() - started < 2   # did not wait for quality 11 (held until set)
    assert _bundles(app).running() == 1
    assert early.headers["Content-Encoding"] == "br"
    assert early.get_data() == brotli.compress(original, quality=4)   # flask-compress's level 4
    held.set()
    _settle(app)
    best = client.get(url, headers=CHROMIUM)
    assert best.status_code == 200 and best.headers["Content-Encoding"] == "br"
    assert "Accept-Encoding" in best.headers["Vary"]
    assert brotli.decompress(best.get_data()) == original
    assert int(best.headers["Content-Length"]) == len(best.get_data()) < len(early.get_data()) * 0.85
    assert best.headers["Cache-Control"] == "max-age=31536000"   # Dash's, for a fingerprinted URL
    # another worker (a second app on the same cache folder) serves the kept result, no new work
    from dashboard.app import create_app

    other_app = create_app()   # nothing in its own memory: the body comes from the shared cache
    other = other_app.server.test_client().get(url, headers=CHROMIUM)
    assert other.get_data() == best.get_data() and not _bundles(other_app).running()
    # the URL without Dash's fingerprint is the same file: the same kept result
    bare = client.get(re.sub(r"\.v[0-9_]+m[0-9]+", "", url), headers=CHROMIUM)
    assert bare.get_data() == best.get_data()


def test_clients_without_br_get_what_they_accept(app):
    client = app.server.test_client()
    url = _script(client, "dash_bootstrap_components")
    client.get(url, headers=CHROMIUM)
    _settle(app)
    assert client.get(url, headers=CHROMIUM).headers["Content-Encoding"] == "br"
    plain = client.get(url, headers={"Accept-Encoding": "identity"})
    assert "Content-Encoding" not in plain.headers
    assert client.get(url).headers.get("Content-Encoding") is None
    assert client.get(url, headers={"Accept-Encoding": "gzip, zstd"}).headers["Content-Encoding"] == "zstd"
    assert client.get(url, headers={"Accept-Encoding": "gzip"}).headers["Content-Encoding"] == "gzip"
    refused = client.get(url, headers={"Accept-Encoding": "br;q=0, gzip"})
    assert refused.headers["Content-Encoding"] == "gzip"


def test_head_and_conditional_requests(app):
    client = app.server.test_client()
    url = _script(client, "dash_bootstrap_components")
    asset = "/assets/00_bootstrap-5.3.8.min.css"
    for path in (url, asset):
        client.get(path, headers=CHROMIUM)
    _settle(app)
    best = client.get(url, headers=CHROMIUM)
    head = client.head(url, headers=CHROMIUM)
    assert head.status_code == 200 and head.get_data() == b""
    assert head.headers["Content-Length"] == best.headers["Content-Length"]
    assert head.headers["Content-Encoding"] == "br"
    css = client.get(asset, headers=CHROMIUM)
    assert css.headers["Content-Encoding"] == "br" and css.mimetype == "text/css"
    assert css.headers["ETag"].endswith(':br"') and "Last-Modified" in css.headers
    assert brotli.decompress(css.get_data()) == client.get(asset, headers={"Accept-Encoding": "identity"}).get_data()
    again = client.get(asset, headers={**CHROMIUM, "If-None-Match": css.headers["ETag"]})
    assert again.status_code == 304 and again.get_data() == b""
    since = client.get(asset, headers={**CHROMIUM, "If-Modified-Since": css.headers["Last-Modified"]})
    assert since.status_code == 304


def test_one_computation_per_file_and_host(app, tmp_path):
    """A worker finding another one of its host computing the file (the lock file) leaves it."""
    from dashboard.cache import cache

    client = app.server.test_client()
    url = _script(client, "dash_bootstrap_components")
    size = len(client.get(url, headers={"Accept-Encoding": "identity"}).get_data())
    key = static_compression._key(static_compression._suite_identity(
        "dash_bootstrap_components", "_components/dash_bootstrap_components.min.js", size))
    lock = tmp_path / "cache" / "locks" / f"{key.replace(':', '-')}.lock"
    with open(lock, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)   # "another worker" is computing it
        level4 = client.get(url, headers=CHROMIUM)
        _settle(app)
        assert level4.headers["Content-Encoding"] == "br"
        with app.server.app_context():
            assert _bundles(app).ready(key) is None and cache.get(key) is None
    client.get(url, headers=CHROMIUM)   # the lock is free again: this request starts it
    _settle(app)
    with app.server.app_context():
        assert brotli.decompress(cache.get(key)) == client.get(url, headers={"Accept-Encoding": "identity"}).get_data()


def test_callbacks_keep_flask_compress_level_4(app):
    client = app.server.test_client()
    body = DashClient(app).open("/carts", "").requests[0].body
    plain = client.post(UPDATE, json=body)
    packed = client.post(UPDATE, json=body, headers=CHROMIUM)
    assert packed.headers["Content-Encoding"] == "br" and "Accept-Encoding" in packed.headers["Vary"]
    assert packed.get_data() == brotli.compress(plain.get_data(), quality=4)
    assert not _bundles(app).running()


def test_prime_covers_the_bundles_of_a_first_visit(app):
    bundles = static_compression.eager_bundles()
    assert ("dash_ag_grid", "dash_ag_grid.min.js") in bundles
    # on-demand chunks (AG Grid's async-community.js, dcc's async graph) are not primed
    assert not any("async-" in path or path.endswith(".map") for _, path in bundles)
    identities = [identity for identity, _data in static_compression._first_visit_files()]
    charts = ASSETS_DIR / static_compression.CHARTS_BUNDLE
    # make builds the charts' own plotly.js; then the full one is never asked for
    assert (static_compression.FULL_PLOTLY in bundles) is not charts.is_file()
    assert any(i.startswith(f"asset|{charts.name}|") for i in identities) is charts.is_file()


def test_an_asset_is_known_by_name_size_and_time_and_never_outside_the_folder():
    identity = static_compression._asset_identity("app.css")
    stat = (ASSETS_DIR / "app.css").stat()
    assert identity == f"asset|app.css|{stat.st_size}|{stat.st_mtime_ns}"
    for outside in ("../Makefile", "/etc/passwd", "missing.js", "../assets/../Makefile"):
        assert static_compression._asset_identity(outside) is None, outside
