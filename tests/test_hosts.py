"""Several hosts behind a real load balancer: two gunicorn instances (``gunicorn -c
gunicorn.conf.py wsgi:server``, stand-ins for two hosts on two ports) sharing a real Redis, the
warehouse file, the models, STATE_DIR and SECRET_KEY, behind Debian's nginx (round robin). Signed
in with ``AUTH=local``. During a few seconds of load, host A is killed (SIGKILL, master and
workers) and ``python -m etl run`` publishes new data.

The short version of ``make loadtest``'s hosts run (benchmarks/hosts.py, whose pieces it uses):
our own client instead of locust, so that every request carries an ``X-Request-ID`` and
nginx's access log says which host answered it.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from benchmarks import answers, refresh, scenarios
from benchmarks.dashclient import DashClient
from localservers import ServerMissing, skip_or_fail
from tests.conftest import AUTH_VARIABLES

pytestmark = pytest.mark.servers

ROOT = Path(__file__).resolve().parents[1]
WORKERS = 2          # per host
CALLBACKS = 8        # carts filter changes sent in the load (URL state in their bodies)
CLIENTS = 4          # sending them at once, beside the probe's sign-in rounds


@pytest.fixture(scope="module")
def servers():
    """The Debian binaries, or a skip (a failure under CI)."""
    from localservers import find_binary

    try:
        find_binary("redis-server", "redis-server")
        find_binary("nginx", "nginx-light", "/usr/sbin")
    except ServerMissing as exc:
        skip_or_fail(pytest, exc)


@pytest.fixture
def served(servers, dashboard_data, dashboard_raw, tmp_path, monkeypatch) -> dict:
    """A private warehouse copy (A), its models, the raw files of B (every 10th row dropped),
    a state folder with one admin, and the recorded callbacks of the carts page."""
    from dashboard.auth.identity import Role, parse_scope
    from dashboard.auth.users import UserStore

    for name in (*AUTH_VARIABLES, "URL_PREFIX", "FRAME_ANCESTORS", "CACHE_REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    warehouse, models, state = tmp_path / "warehouse.duckdb", tmp_path / "models", tmp_path / "state"
    shutil.copyfile(dashboard_data["scored"], warehouse)
    shutil.copytree(dashboard_data["models"], models)
    refresh.derive_raw(dashboard_raw, tmp_path / "raw-b")
    UserStore(state / "users.json").add("ada", Role.parse("admin"), parse_scope([]), "correct horse battery")
    for name, value in (("WAREHOUSE_URL", warehouse), ("MODELS_DIR", models), ("STATE_DIR", state),
                        ("CACHE_DIR", tmp_path / "cache"), ("RAW_DIR", tmp_path / "no-raw")):
        monkeypatch.setenv(name, str(value))
    from dashboard.app import create_app

    app = create_app()   # the in-process reference: AUTH=none here, the same role (admin) as ada
    client = DashClient(app)
    client.open(scenarios.CARTS_PATH, "?segment=1")
    payloads = [{"name": "carts filter change", "path": r.url, "body": r.body}
                for action in scenarios.carts_script(client) for r in scenarios.run_action(client, action).requests]
    return {"warehouse": warehouse, "models": models, "state": state, "raw_b": tmp_path / "raw-b",
            "app": app, "payloads": payloads[:CALLBACKS], "folder": tmp_path}


def _answers(app, payloads: list[dict]) -> list[str]:
    client = app.server.test_client()
    return [client.post(p["path"], json=p["body"]).get_data(as_text=True) for p in payloads]


def test_two_hosts_behind_nginx_survive_a_killed_host_and_a_publish(served):
    from benchmarks.hosts import Hosts, Probe, chaos, problem, report
    from localservers.nginx import Nginx
    from localservers.redis import RedisServer

    payloads, folder = served["payloads"], served["folder"]
    old = _answers(served["app"], payloads)
    with RedisServer(folder / "redis") as redis:
        env = {"WAREHOUSE_URL": str(served["warehouse"]), "MODELS_DIR": str(served["models"]),
               "STATE_DIR": str(served["state"]), "CACHE_REDIS_URL": redis.url, "AUTH": "local",
               "SECRET_KEY": "hosts-test-" + "k" * 32, "LOG_LEVEL": "INFO"}
        hosts = Hosts(2, WORKERS, env, folder)
        try:
            hosts.wait_ready()
            with Nginx([g.port for g in hosts.instances], folder / "nginx") as lb:
                probe = Probe(lb.url)
                session = probe.sign_in("ada", "correct horse battery")
                assert session is not None, [(c.kind, c.status) for c in probe.calls]
                for index in range(len(payloads)):   # both hosts answer exactly what the app computes
                    probe.send(session, payloads, index)
                    probe.send(session, payloads, index)
                sent = [c for c in probe.calls if c.kind == "callback"]
                assert [answers.classify(c.body, old[c.index], old[c.index]) for c in sent] == [answers.SAME] * len(sent)
                probe.calls.clear()
                result = _load(hosts, probe, session, payloads, served, chaos)
                log = lb.served_all(c.rid for c in probe.calls)
            builds = hosts.cube_builds()
        finally:
            hosts.stop()
    new = _answers(served["app"], payloads)   # the same in-process app, now on B
    assert sum(x != y for x, y in zip(old, new)) >= len(payloads) // 2   # B really differs

    killed = result["killed_host"]
    assert killed["workers_killed"] == WORKERS and killed["at_s"] < result["published_s"], (killed, result)
    balancer, sessions = report(probe.calls, log, hosts, killed["address"])
    callbacks = [c for c in probe.calls if c.kind == "callback"]
    failed = [c for c in probe.calls if (problem(c.status, c.body) if c.kind == "callback" else c.status >= 500)]
    # only what was in flight on the dead host is lost (being answered, or waiting in its
    # listen queue): nginx passed everything else on, and the killed host got nothing after
    by_rid = {s.request_id: s for s in log}
    assert all(killed["address"] in by_rid[c.rid].upstreams for c in failed), failed
    gone = result["started_at"] + killed["at_s"] + killed["gone_after_s"]
    assert all(c.sent < gone for c in failed), (gone, failed)
    assert len(failed) == balancer["lost_in_flight_on_killed_host"] <= CLIENTS + 1, (failed, balancer)
    assert set(balancer["answered_by_host"]) == {"A", "B"}, balancer
    # every answer is the old data's or the new data's, never a mix, and both were seen
    verdicts = [answers.classify(c.body, old[c.index], new[c.index]) for c in callbacks if c.status == 200]
    assert set(verdicts) <= {answers.OLD, answers.NEW, answers.SAME}, verdicts
    assert answers.OLD in verdicts and answers.NEW in verdicts, (set(verdicts), result)
    assert all(answers.classify(c.body, old[c.index], new[c.index]) != answers.OLD
               for c in callbacks if c.sent > result["published_s"] + result["started_at"] + 0.5)
    # sessions: made on one host, used on the other (the kill ends that after a while: A is gone)
    assert sessions["rounds"] >= 2 and sessions["ok"] == sessions["rounds"] - sessions["lost_with_the_killed_host"]
    assert not sessions["failed"] and sessions["ok"] >= 2, sessions
    assert sessions["used_on_other_host"] >= 1, sessions
    # the cart cube of each release was built once for both hosts (the others read it from Redis)
    assert sum(builds.values()) == 2, builds


def _load(hosts, probe, session, payloads: list[dict], served: dict, chaos) -> dict:
    """CLIENTS clients send the callbacks through nginx while host A is killed at 2.5 s and B is
    published (``etl run`` from 3 s on); they stop 3 s after the publish. The probe signs in
    every 0.3 s: several sessions made before the kill, each used on a host nginx picks."""
    stop, published = threading.Event(), {}

    def operator(started_at: float, _locust) -> dict:
        time.sleep(3)
        argv = [sys.executable, "-m", "etl", "-q", "run", "--raw", str(served["raw_b"]),
                "--warehouse", str(served["warehouse"])]
        done = subprocess.run(argv, cwd=ROOT, env=refresh.clean_env(), capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        published["published_s"] = time.time() - started_at
        time.sleep(3)
        stop.set()
        return {}

    def client(offset: int) -> None:
        n = offset
        while not stop.is_set():
            probe.send(session, payloads, n % len(payloads))
            n += 1

    carts = list(range(len(payloads)))
    act = chaos(hosts, 2.5, operator, probe, ("ada", "correct horse battery"), 0.3, payloads, carts)
    clients = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(CLIENTS)]
    for t in clients:
        t.start()
    started_at = time.time()
    try:
        result = act(started_at, None)
    finally:
        stop.set()
        for t in clients:
            t.join(60)
    return {**result, **published, "started_at": started_at}
