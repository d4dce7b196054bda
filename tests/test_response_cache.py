"""The response-level cache of callback answers (dashboard/response_cache.py) and compression,
through the real app, the real warehouse and the real filesystem cache; no mocks.

The callback request used is the page router's (the one the browser sends to open /carts):
it is Dash's own, so it stays the same whatever the pages' ids become, and it is answered
from the warehouse (the page's figures are drawn in it)."""
from __future__ import annotations

import json
import os
import shutil

import brotli
import pytest

from benchmarks.dashclient import DashClient

UPDATE = "/_dash-update-component"


@pytest.fixture
def private_env(dashboard_env, monkeypatch, tmp_path) -> dict:
    """A warehouse file of this test's own, so publishing over it touches no other test."""
    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copyfile(dashboard_env["scored"], warehouse)
    monkeypatch.setenv("WAREHOUSE_URL", str(warehouse))
    return {**dashboard_env, "warehouse": warehouse}


def _app():
    from dashboard.app import create_app

    return create_app()


def _open_body(app, path: str = "/carts", search: str = "") -> dict:
    """The body the browser's router sends to open ``path`` (recorded, as the load test does)."""
    requests = DashClient(app).open(path, search).requests
    return requests[0].body


def test_a_repeated_request_is_answered_from_the_cache(private_env):
    app = _app()
    client = app.server.test_client()
    body = _open_body(app)   # this first open went through the app: it is now in the cache
    again = client.post(UPDATE, json=body)
    assert again.status_code == 200 and again.headers["X-Response-Cache"] == "hit"
    # a second app (another gunicorn worker) shares the cache folder: a hit there too
    other = _app().server.test_client().post(UPDATE, json=body)
    assert other.headers["X-Response-Cache"] == "hit"
    assert other.get_data() == again.get_data()
    # the same request with its fields in another order is the same entry
    reordered = json.loads(json.dumps(body, sort_keys=True))
    assert client.post(UPDATE, json=dict(reversed(list(reordered.items())))).headers["X-Response-Cache"] == "hit"


def test_the_cached_answer_equals_the_computed_one(private_env, monkeypatch, tmp_path):
    app = _app()
    body = _open_body(app)
    hit = app.server.test_client().post(UPDATE, json=body)
    assert hit.headers["X-Response-Cache"] == "hit"
    monkeypatch.setenv("CACHE_DIR", str(tmp_path / "empty-cache"))
    computed = _app().server.test_client().post(UPDATE, json=body)
    assert computed.headers["X-Response-Cache"] == "miss"
    assert computed.get_data() == hit.get_data()


def test_different_bodies_do_not_collide(private_env):
    app = _app()
    client = app.server.test_client()
    carts, customers = _open_body(app, "/carts"), _open_body(app, "/customers")
    filtered = _open_body(app, "/carts", "?segment=0")
    answers = {client.post(UPDATE, json=b).get_data() for b in (carts, customers, filtered)}
    assert len(answers) == 3
    for b in (carts, customers, filtered):
        assert client.post(UPDATE, json=b).headers["X-Response-Cache"] == "hit"


def test_a_new_publish_of_the_warehouse_is_a_miss(private_env, tmp_path):
    app = _app()
    client = app.server.test_client()
    body = _open_body(app)
    assert client.post(UPDATE, json=body).headers["X-Response-Cache"] == "hit"
    # publish: a copy renamed over the served file (what the ETL does), so a new release
    staged = tmp_path / "staged.duckdb"
    shutil.copyfile(private_env["warehouse"], staged)
    os.replace(staged, private_env["warehouse"])
    after = client.post(UPDATE, json=body)
    assert after.status_code == 200 and after.headers["X-Response-Cache"] == "miss"
    assert client.post(UPDATE, json=body).headers["X-Response-Cache"] == "hit"


def test_answers_the_app_could_not_give_are_never_cached(private_env, monkeypatch, tmp_path):
    from dashboard.response_cache import NOT_ANSWERED

    # no warehouse: the page answers with its "Not available yet" notice, every time computed
    monkeypatch.setenv("WAREHOUSE_URL", str(tmp_path / "missing.duckdb"))
    app = _app()
    client = app.server.test_client()
    body = _open_body(app)
    for _ in range(2):
        response = client.post(UPDATE, json=body)
        assert response.status_code == 200
        assert any(marker in response.get_data() for marker in NOT_ANSWERED)
        assert response.headers.get("X-Response-Cache") in (None, "skip")
    # a malformed request is refused before any lookup
    refused = client.post(UPDATE, json={"output": "nope"})
    assert refused.status_code == 400 and "X-Response-Cache" not in refused.headers


def test_answers_are_compressed_for_clients_that_accept_it(private_env):
    app = _app()
    client = app.server.test_client()
    body = _open_body(app)
    plain = client.post(UPDATE, json=body)
    packed = client.post(UPDATE, json=body, headers={"Accept-Encoding": "gzip, deflate, br"})
    assert "Content-Encoding" not in plain.headers
    assert packed.headers["Content-Encoding"] == "br" and "Accept-Encoding" in packed.headers["Vary"]
    assert brotli.decompress(packed.get_data()) == plain.get_data()
    assert len(packed.get_data()) < len(plain.get_data()) / 3
    page = client.get("/carts", headers={"Accept-Encoding": "gzip"})
    assert page.status_code == 200 and page.headers["Content-Encoding"] == "gzip"


def test_callback_answers_are_encoded_with_orjson():
    """Dash encodes answers with plotly.io.json, which uses orjson when it can import it
    ("auto"); nothing in the app may switch that back to the stdlib encoder."""
    import orjson  # noqa: F401 - pinned in requirements.txt
    import plotly.io as pio

    assert pio.json.config.default_engine in ("auto", "orjson")
    from dash._utils import to_json

    assert to_json({"x": "é"}) == '{"x":"é"}'   # orjson writes UTF-8; the stdlib engine would write \u00e9


def test_pruning_the_filesystem_cache_meets_only_entries(dashboard_env, tmp_path, monkeypatch, caplog):
    """Build locks live beside the cache's folder, not in it: cachelib reads every file there
    as an entry when it prunes, and logs a traceback for anything else."""
    import logging

    from dashboard.app import create_app
    from dashboard.cache import build_lock, cache

    monkeypatch.setenv("CACHE_DIR", str(tmp_path / "cache"))
    server = create_app().server
    with server.app_context():
        with build_lock("cart-cube"):
            cache.set("k", 1)
        backend = cache.cache
        backend._threshold = 1                  # force a prune on the next write
        with caplog.at_level(logging.WARNING):
            cache.set("k2", 2)
            cache.set("k3", 3)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert all(p.suffix != ".lock" for p in (tmp_path / "cache" / "entries").iterdir())
