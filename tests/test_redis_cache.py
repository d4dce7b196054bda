"""The shared Redis cache (``CACHE_REDIS_URL``, dashboard/cache.py) against a real Debian
redis-server on a free loopback port (localservers/redis.py); nothing is mocked.

Two ``create_app()`` in one process stand for two hosts: each has its own cache client, its own
releases and its own in-memory cube, and they share only Redis (and, for sign-ins, STATE_DIR
and SECRET_KEY), as two machines would. Redis is killed (SIGKILL) mid-run and started again on
the same port, empty, as after a crash.
"""
from __future__ import annotations

import logging
import shutil
import threading
import time

import numpy as np
import pytest

from benchmarks.dashclient import DashClient
from localservers import ServerMissing, skip_or_fail
from tests.attacks.support import PASSWORD, csrf
from tests.conftest import AUTH_VARIABLES

pytestmark = pytest.mark.servers

UPDATE = "/_dash-update-component"
CUBE = "computed dashboard.cart_cube._shared_cube"
OUTAGE = "does not answer"


@pytest.fixture(scope="module")
def redis_server():
    from localservers.redis import RedisServer

    try:
        server = RedisServer()
    except ServerMissing as exc:
        skip_or_fail(pytest, exc)
    with server:
        yield server


@pytest.fixture
def redis_env(dashboard_env, redis_server, monkeypatch, tmp_path) -> dict:
    """The dashboard on a private warehouse copy with the cache in Redis, emptied first."""
    import redis

    redis_server.start()   # a test before may have left it stopped
    redis.Redis.from_url(redis_server.url).flushdb()
    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copyfile(dashboard_env["scored"], warehouse)
    monkeypatch.setenv("WAREHOUSE_URL", str(warehouse))
    monkeypatch.setenv("CACHE_REDIS_URL", redis_server.url)
    return {**dashboard_env, "warehouse": warehouse, "redis": redis_server}


def _app():
    from dashboard.app import create_app

    app = create_app()
    app.server.config["TESTING"] = True
    return app


def _bodies(app) -> list[dict]:
    """The router requests the browser sends to open three views (as the load test records them)."""
    client = DashClient(app)
    return [client.open(path, search).requests[0].body
            for path, search in (("/carts", ""), ("/customers", ""), ("/carts", "?segment=0"))]


def _keys(redis_server, kind: str) -> int:
    import redis

    return len(redis.Redis.from_url(redis_server.url).keys(f"shopper-insights:{kind}:*"))


def test_two_instances_share_their_answers(redis_env):
    first, second = _app(), _app()
    body = _bodies(first)[0]   # computed by the first instance, kept in Redis
    assert _keys(redis_env["redis"], "r") >= 1 and _keys(redis_env["redis"], "q") >= 1
    kept = first.server.test_client().post(UPDATE, json=body)
    other = second.server.test_client().post(UPDATE, json=body)
    assert kept.headers["X-Response-Cache"] == other.headers["X-Response-Cache"] == "hit"
    assert other.get_data() == kept.get_data()
    # a query answer too: the second instance reads the first one's entry (no new key)
    from dashboard.filters import CustomerFilters
    from dashboard.queries import customer_kpis

    before = _keys(redis_env["redis"], "q")
    with first.server.app_context():
        computed = customer_kpis(CustomerFilters(tiers=("premium",)))
    after = _keys(redis_env["redis"], "q")
    assert after > before
    with second.server.app_context():
        assert customer_kpis(CustomerFilters(tiers=("premium",))) == computed
    assert _keys(redis_env["redis"], "q") == after


def test_the_cube_is_built_once_while_the_others_wait(redis_env, caplog):
    from dashboard import release
    from dashboard.cart_cube import cube

    apps = [_app() for _ in range(3)]   # three "hosts", each with its own memory and releases
    start, cubes, errors = threading.Barrier(len(apps)), {}, []

    def build(index: int, app) -> None:
        try:
            with app.server.app_context(), release.held():
                start.wait(timeout=30)   # all ask at the same moment
                cubes[index] = cube()
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    with caplog.at_level(logging.INFO, logger="dashboard.cache"):
        threads = [threading.Thread(target=build, args=(i, app)) for i, app in enumerate(apps)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
    assert not errors and len(cubes) == len(apps)
    builds = [r for r in caplog.records if CUBE in r.getMessage()]
    assert len(builds) == 1, [r.getMessage() for r in caplog.records]
    for other in cubes.values():   # the others read the builder's cube: the same numbers
        for part in ("cells", "hist"):
            for column, values in getattr(cubes[0], part).items():
                assert np.array_equal(getattr(other, part)[column], values), (part, column)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_redis_killed_mid_run_then_back(redis_env, caplog):
    app = _app()
    client = app.server.test_client()
    bodies = _bodies(app)
    expected = []
    for body in bodies:   # computed (and kept) while Redis is up, then answered from it
        answer = client.post(UPDATE, json=body)
        assert answer.headers["X-Response-Cache"] == "hit"
        expected.append(answer.get_data())

    redis_env["redis"].stop()   # SIGKILL: connections reset, nothing answers on the port
    slowest = 0.0
    with caplog.at_level(logging.INFO, logger="dashboard"):
        for _ in range(8):
            for body, answer in zip(bodies, expected):
                t0 = time.perf_counter()
                response = client.post(UPDATE, json=body)
                slowest = max(slowest, time.perf_counter() - t0)
                assert response.status_code == 200
                assert response.get_data() == answer   # the same numbers, uncached
                assert response.headers["X-Response-Cache"] == "skip"
        # pages and the other routes answer too
        assert client.get("/carts").status_code == 200
        assert client.get("/healthz").status_code == 200
    # without the back-off each cache call would wait on redis-py's 10 retries (seconds)
    assert slowest < 10, slowest
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len([w for w in warnings if OUTAGE in w]) == 1, warnings   # one line for the outage, not per request
    assert len(warnings) == 1, warnings

    caplog.clear()
    redis_env["redis"].start()   # back, empty, on the same port
    with caplog.at_level(logging.INFO, logger="dashboard"):
        deadline, state = time.monotonic() + 30, "skip"
        while state != "miss" and time.monotonic() < deadline:   # within RETRY_AFTER_S
            time.sleep(0.2)
            state = client.post(UPDATE, json=bodies[0]).headers["X-Response-Cache"]
        assert state == "miss"
        again = client.post(UPDATE, json=bodies[0])
    assert again.headers["X-Response-Cache"] == "hit" and again.get_data() == expected[0]
    assert _keys(redis_env["redis"], "r") >= 1
    assert any("answers again" in r.getMessage() for r in caplog.records)


# --- sign-ins across instances ---------------------------------------------------------------


@pytest.fixture
def local_auth(redis_env, monkeypatch, tmp_path) -> dict:
    """AUTH=local with one user, the same SECRET_KEY and STATE_DIR for every instance."""
    from dashboard.auth.identity import Role, parse_scope
    from dashboard.auth.users import UserStore

    for name in AUTH_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    state = tmp_path / "state"
    monkeypatch.setenv("STATE_DIR", str(state))
    monkeypatch.setenv("AUTH", "local")
    monkeypatch.setenv("SECRET_KEY", "test-secret-" + "x" * 32)
    monkeypatch.setenv("LOGIN_MAX_FAILURES", "3")
    UserStore(state / "users.json").add("vera", Role.parse("viewer"), parse_scope([]), PASSWORD)
    return redis_env


def _login_form(client) -> str:
    return csrf(client.get("/login").get_data(as_text=True))


def _guess(client, name: str, password: str = "wrong guess", token: str | None = None) -> int:
    return client.post("/login", data={"username": name, "password": password,
                                       "csrf_token": token or _login_form(client)}).status_code


def test_failed_sign_ins_are_counted_across_instances(local_auth):
    first, second = (app.server.test_client() for app in (_app(), _app()))
    assert [_guess(first, "vera"), _guess(second, "vera"), _guess(first, "vera")] == [401, 401, 401]
    # the third failure was on the first instance; the second one knows it, right password or not
    assert _guess(second, "vera", PASSWORD) == 429
    assert _guess(first, "vera", PASSWORD) == 429


def test_parallel_guesses_on_two_instances_are_counted_under_the_lock(local_auth):
    apps = [_app(), _app()]
    # twelve wrong guesses at once, six on each instance: each is counted under the Redis
    # lock before its (slow) password check, so exactly LOGIN_MAX_FAILURES are checked
    clients = [apps[i % 2].server.test_client() for i in range(12)]
    tokens = [_login_form(c) for c in clients]
    start, statuses = threading.Barrier(len(clients)), []

    def guess(client, token) -> None:
        start.wait(timeout=30)
        statuses.append(_guess(client, "vera", token=token))

    threads = [threading.Thread(target=guess, args=pair) for pair in zip(clients, tokens)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert sorted(statuses) == [401] * 3 + [429] * 9, statuses


def test_the_build_lock_excludes_across_instances_and_gives_up_on_a_dead_holder(redis_env, caplog):
    import redis

    from dashboard.cache import build_lock

    apps = [_app(), _app()]
    start, spans = threading.Barrier(4), []

    def hold(app) -> None:
        with app.server.app_context():
            start.wait(timeout=30)
            with build_lock("test-exclusion"):
                entered = time.monotonic()
                time.sleep(0.2)
                spans.append((entered, time.monotonic()))

    threads = [threading.Thread(target=hold, args=(apps[i % 2],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    spans.sort()
    assert len(spans) == 4 and all(a[1] <= b[0] for a, b in zip(spans, spans[1:])), spans
    # a holder that died holding the lock (its key stays until it expires): a waiter computes
    # itself after its wait instead of blocking
    redis.Redis.from_url(redis_env["redis"].url).set("shopper-insights:lock:test-dead", "gone", px=60_000)
    with apps[0].server.app_context(), caplog.at_level(logging.INFO, logger="dashboard.cache"):
        t0 = time.monotonic()
        with build_lock("test-dead", wait=0.5):
            waited = time.monotonic() - t0
    assert 0.4 <= waited < 10, waited
    assert any("still taken" in r.getMessage() for r in caplog.records)
    # and with Redis gone nobody waits at all
    redis_env["redis"].stop()
    with apps[0].server.app_context():
        t0 = time.monotonic()
        with build_lock("test-exclusion"):
            with build_lock("test-exclusion", wait=5):   # not re-entrant: with Redis up, 5 s
                pass
        assert time.monotonic() - t0 < 4


def test_a_session_works_on_both_instances_and_sign_out_ends_it_on_both(local_auth):
    first, second = _app(), _app()
    here = first.server.test_client()
    signed = here.post("/login", data={"username": "vera", "password": PASSWORD, "csrf_token": _login_form(here)})
    assert signed.status_code == 302
    cookie = here.get_cookie("shopper_session")
    there = second.server.test_client()
    there.set_cookie("shopper_session", cookie.value)
    assert there.get("/carts").status_code == 200        # signed on one host, accepted by the other
    here.post("/logout", data={"csrf_token": csrf(here.get("/logout").get_data(as_text=True))})
    # the copy of the cookie on the other host stops working: the revocation is in Redis
    assert there.get("/carts").status_code == 302
