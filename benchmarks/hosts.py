"""The hosts run of ``make loadtest`` (issue 12): two gunicorn instances (``gunicorn -c
gunicorn.conf.py wsgi:server``; stand-ins for hosts, on two ports) behind Debian's nginx (round
robin, localservers/nginx.py), sharing what several hosts must share: Redis (cache, build
locks, sign-out revocation, login throttle), the warehouse (PostgreSQL, or the DuckDB file), one
MODELS_DIR, one STATE_DIR and one SECRET_KEY. ``AUTH=local``; during the run:

* every locust request carries the cookie of one sign-in made through nginx (``LOADTEST_COOKIE``);
* a probe signs in anew every ``sign_in_every`` s, opens ``/carts?segment=1`` and sends a carts
  filter change with that session, each request with its own ``X-Request-ID``: nginx's access
  log names the host that answered it, so a session made on one host is seen used on the other;
* at ``kill_at`` s host A gets SIGKILL (master and workers), at ``at`` s ``etl refresh`` publishes B.

Answers are classified as in the refresh run (benchmarks/verdicts.py); failures are set against
the requests in flight on the killed host (nginx's 502s from it)."""
from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections import Counter
from itertools import groupby
from dataclasses import dataclass
from pathlib import Path

import requests

from benchmarks import answers, refresh, verdicts, workload
from benchmarks.locustrun import run_locust
from benchmarks.server import Gunicorn, get
from etl.backends import backend as open_backend, redact
from dashboard.auth.identity import Role, parse_scope
from dashboard.auth.users import UserStore
from dashboard.response_cache import NOT_ANSWERED
from localservers.nginx import Nginx, Served, summary
from localservers.postgres import postgres_server
from localservers.redis import RedisServer

LABELS = ("A", "B", "C", "D")
ADMIN = "loadtest-admin"
CUBE_BUILT = "computed dashboard.cart_cube._shared_cube"   # logged by dashboard/cache.py
STATEFUL_PAGES = ("/admin/",)   # they read STATE_DIR (users, the audit log the sign-ins append to)


class Hosts:
    """Gunicorn instances; one server to run_locust (a killed host's CPU counted up to its death)."""

    def __init__(self, count: int, workers: int, env: dict, folder: Path) -> None:
        self.instances: list[Gunicorn] = []
        self.spent: dict[int, float] = {}
        try:
            for label in LABELS[:count]:
                self.instances.append(Gunicorn(workers, env, folder / f"gunicorn-host-{label}.log"))
        except BaseException:
            self.stop()
            raise

    def label(self, address: str) -> str:
        return {f"127.0.0.1:{g.port}": LABELS[i] for i, g in enumerate(self.instances)}.get(address, address)

    def alive(self) -> list[Gunicorn]:
        return [g for i, g in enumerate(self.instances) if i not in self.spent]

    def cpu_seconds(self) -> float:
        return sum(self.spent.values()) + sum(g.cpu_seconds() for g in self.alive())

    def worker_pids(self) -> list[int]:
        return [pid for g in self.alive() for pid in g.worker_pids()]

    def worker_rss_mb(self) -> list[float]:
        return [mb for g in self.alive() for mb in g.worker_rss_mb()]

    def wait_ready(self, timeout: float = 180) -> None:
        """Until every instance runs all its workers and answers ``/healthz`` (no sign-in needed)."""
        deadline = time.monotonic() + timeout
        for g in self.instances:
            while not (len(g.worker_pids()) == g.workers and get(g.url + "/healthz") == 200):
                if g.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"gunicorn did not start (exit {g.proc.poll()}); see {g.log.name}")
                time.sleep(0.3)

    def kill(self, index: int) -> dict:
        """SIGKILL to host ``index``: its master stopped first (no new worker in between), then all."""
        g, started = self.instances[index], time.monotonic()
        os.kill(g.proc.pid, signal.SIGSTOP)
        workers = g.worker_pids()
        self.spent[index] = g.cpu_seconds()
        for pid in (g.proc.pid, *workers):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        g.proc.wait(30)
        deadline = time.monotonic() + 10   # gone once its port refuses: a dying worker holds the socket
        while time.monotonic() < deadline and not refused(g.port):
            time.sleep(0.005)
        return {"host": LABELS[index], "address": f"127.0.0.1:{g.port}", "workers_killed": len(workers),
                "gone_after_s": round(time.monotonic() - started, 3)}

    def cube_builds(self) -> dict[str, int]:   # cart cubes each host built (and kept in Redis), from its log
        return {LABELS[i]: Path(g.log.name).read_text(errors="replace").count(CUBE_BUILT) for i, g in enumerate(self.instances)}

    def stop(self) -> None:
        for g in self.instances:
            g.stop()


def refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return False
    except OSError:
        return True


@dataclass
class Call:   # kind: login-form, sign-in, page or callback (of payload ``index``); round: the session's
    rid: str
    kind: str
    index: int | None
    status: int
    body: bytes
    sent: float
    received: float
    round: int | None = None


def problem(status: int, body: bytes) -> str | None:
    """Why a callback answer is a failure (as benchmarks/locustfile.py judges one), or None."""
    return (f"HTTP {status}" if status != 200 else "not a Dash answer" if answers.outputs(body) is None else
            "the app could not answer" if any(m in body for m in NOT_ANSWERED) else None)


class Probe:
    """Requests through the balancer, each with its own ``X-Request-ID``; all of them kept."""

    def __init__(self, base: str) -> None:
        self.base, self.calls = base, []
        self._lock = threading.Lock()

    def call(self, session, kind: str, method: str, path: str, index: int | None = None,
             round_: int | None = None, **kwargs):
        rid, sent = f"probe-{uuid.uuid4().hex[:20]}", time.time()
        try:
            response = session.request(method, self.base + path, headers={"X-Request-ID": rid}, timeout=60,
                                       allow_redirects=False, **kwargs)
            status, body = response.status_code, response.content
        except requests.RequestException as exc:
            response, status, body = None, 0, str(exc).encode()
        with self._lock:
            self.calls.append(Call(rid, kind, index, status, body, sent, time.time(), round_))
        return response

    def sign_in(self, name: str, password: str, round_: int | None = None):
        """A new session signed in through nginx (form and post may reach two hosts), or None."""
        session = requests.Session()
        form = self.call(session, "login-form", "GET", "/login", round_=round_)
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.text if form is not None else "")
        if not token:
            return None
        done = self.call(session, "sign-in", "POST", "/login", round_=round_,
                         data={"username": name, "password": password, "csrf_token": token.group(1)})
        return session if done is not None and done.status_code == 302 else None

    def send(self, session, payloads: list[dict], index: int, round_: int | None = None) -> None:
        p = payloads[index]
        self.call(session, "callback", "POST", p["path"], index=index, round_=round_, json=p["body"])

    def seen(self) -> dict:
        """The callbacks' answers in the form locust keeps them (benchmarks/locustfile.py)."""
        out: dict[str, dict] = {}
        for c in (c for c in self.calls if c.kind == "callback"):
            e = out.setdefault(str(c.index), {}).setdefault(f"probe:{c.status}:{hash(c.body)}", {
                "count": 0, "problem": problem(c.status, c.body), "body": c.body.decode("utf-8", "replace"),
                "first_sent": c.sent, "last_sent": c.sent, "first_received": c.received, "last_received": c.received})
            e.update(count=e["count"] + 1, first_sent=min(e["first_sent"], c.sent), last_sent=max(e["last_sent"], c.sent),
                     last_received=max(e["last_received"], c.received))
        return out


def report(calls: list[Call], served: list[Served], hosts: Hosts, victim: str | None) -> tuple[dict, dict]:
    """What nginx did (localservers/nginx.py), and the probe's sign-in rounds: each session
    must work on whichever host answers."""
    balancer, by_round = summary(served, hosts.label, victim), (lambda c: c.round)
    host = {s.request_id: hosts.label(s.upstream) for s in served}
    lost_rids = {s.request_id for s in served if s.failed and victim in s.upstreams}
    ok, crossed, lost, failed = 0, 0, 0, []
    for n, grouped in groupby(sorted((c for c in calls if c.round is not None), key=by_round), key=by_round):
        group = list(grouped)
        made = [host.get(c.rid) for c in group if c.kind == "sign-in" and c.status == 302]
        used = [c for c in group if c.kind in ("page", "callback")]
        if any(c.rid in lost_rids for c in group):   # in flight on the host that died: not the session's fault
            lost += 1
        elif not made or len(used) != 2 or any(c.status != 200 for c in used):
            failed.append({"round": n, "statuses": [(c.kind, c.status) for c in group]})
        else:
            ok += 1
            crossed += any(host.get(c.rid) not in (None, made[0]) for c in used)
    answered = Counter(host[c.rid] for c in calls if c.rid in host and c.status in (200, 302))
    return balancer, {"rounds": ok + lost + len(failed), "ok": ok, "lost_with_the_killed_host": lost,
                      "used_on_other_host": crossed, "failed": failed[:10], "answered_by_host": dict(answered)}


def chaos(hosts: Hosts, kill_at: float, operator, probe: Probe, sign_in: tuple[str, str], every: float,
          payloads: list[dict], indices: list[int]):
    """Host A killed at ``kill_at`` s, ``operator`` (the refresh; it stops locust), sign-in rounds."""

    def act(started_at: float, locust: subprocess.Popen) -> dict:
        stop, killed = threading.Event(), {}

        def kill() -> None:
            if not stop.wait(max(0.0, kill_at - (time.time() - started_at))):
                killed.update(at_s=round(time.time() - started_at, 3), **hosts.kill(0))

        def rounds(n: int = 0) -> None:
            while not stop.wait(every):
                session = probe.sign_in(*sign_in, n)
                if session is not None:
                    probe.call(session, "page", "GET", "/carts?segment=1", round_=n)
                    probe.send(session, payloads, indices[n % len(indices)], n)
                n += 1

        threads = [threading.Thread(target=f, daemon=True) for f in (kill, rounds)]
        for t in threads:
            t.start()
        try:
            return {**operator(started_at, locust), "killed_host": killed}
        finally:
            stop.set()
            for t in threads:
                t.join(60)

    return act


class PublishedUrl(str):
    """A server warehouse's URL where the refresh run's publish watcher expects a file path:
    ``stat()`` names the published release (``backend``: one connection, polled every 10 ms)."""

    def stat(self) -> os.stat_result:
        try:
            return os.stat_result((0, hash(self.backend.stamp()), 0, 0, 0, 0, 0, 0, 0, 0))
        except Exception as exc:  # noqa: BLE001 - the watcher takes it as "not there yet"
            raise OSError(str(exc)) from None


def served_data(work: workload.Workload, folder: Path, backend: str, stack: contextlib.ExitStack):
    """A private copy of A for the hosts: (warehouse as the CLI names it, models); PostgreSQL:
    a throw-away server with A published into it."""
    served, models = folder / "hosts-served", folder / "hosts-served" / "models"
    shutil.rmtree(served, ignore_errors=True)
    shutil.copytree(work.models_dir, models, ignore=lambda _, names: [n for n in names if not n.endswith((".pkl", ".json"))])
    warehouse = served / "warehouse.duckdb"
    shutil.copyfile(work.warehouse, warehouse)
    if backend == "duckdb":
        return warehouse, models
    url = PublishedUrl(stack.enter_context(postgres_server()).url)
    url.backend = open_backend(url)
    stack.callback(url.backend.close)
    url.backend.publish(warehouse)
    return url, models


def run(work: workload.Workload, payloads: list[dict], pages: list[dict], folder: Path, *, users: int,
        workers: int, count: int = 2, backend: str = "duckdb", kill_at: float = 20, at: float = 10,
        after: float = 15, limit: float = 300, sign_in_every: float = 2.0, log=print) -> dict:
    """The ``runs.hosts`` entry of ``make loadtest``."""
    checked = payloads + [p for p in pages if not p["page"].startswith(STATEFUL_PAGES)]
    carts = [i for i, p in enumerate(checked) if p["name"] == "carts filter change"]
    b = refresh.prepare_b(work, log)
    path, seen_path, state = folder / "payloads-hosts.json", folder / "answers-hosts.json", folder / "hosts-state"
    path.write_text(json.dumps(checked))
    seen_path.unlink(missing_ok=True)
    shutil.rmtree(state, ignore_errors=True)
    password = secrets.token_urlsafe(16)
    with contextlib.ExitStack() as stack:
        # the recordings, the refresh and the hosts all read this STATE_DIR (KPI history)
        previous = os.environ.get("STATE_DIR")
        stack.callback(lambda: os.environ.pop("STATE_DIR") if previous is None else
                       os.environ.update(STATE_DIR=previous))
        os.environ["STATE_DIR"] = str(state)
        warehouse, models = served_data(work, folder, backend, stack)
        record = lambda where, out: refresh.expected_answers(path, where, models, out,  # noqa: E731
                                                             cache=folder / "cache-expect")
        log(f"[hosts] recording the {len(checked)} answers on A ({backend}) in a fresh process ...")
        old = record(warehouse, folder / "hosts-old.json")
        UserStore(state / "users.json").add(ADMIN, Role.parse("admin"), parse_scope([]), password)
        redis = stack.enter_context(RedisServer(folder / "hosts-redis"))
        env = {"WAREHOUSE_URL": str(warehouse), "MODELS_DIR": str(models), "CACHE_REDIS_URL": redis.url,
               "STATE_DIR": str(state), "AUTH": "local", "SECRET_KEY": secrets.token_urlsafe(32), "LOG_LEVEL": "INFO"}
        hosts = Hosts(count, workers, env, folder)
        stack.callback(hosts.stop)
        log(f"[hosts] {count} gunicorn instances × {workers} workers, Redis {redact(redis.url)}; warming up ...")
        hosts.wait_ready()
        lb = stack.enter_context(Nginx([g.port for g in hosts.instances], folder / "hosts-nginx"))
        probe = Probe(lb.url)
        session = probe.sign_in(ADMIN, password)
        if session is None:
            raise RuntimeError(f"signing in through nginx failed: {[(c.kind, c.status) for c in probe.calls]}")
        for _ in range(2 * workers):   # every worker of every host computes (or reads) what it needs
            for i in range(len(checked)):
                probe.send(session, checked, i)
        # as JSON: Dash orders a component's aria-* props by the process's hash seed
        differs = sum(answers.classify(c.body, x, x) != answers.SAME for c, x in zip(probe.calls[-len(checked):], old))
        probe.calls.clear()
        log(f"[hosts] locust {users} users via nginx, signed in; host A killed at {kill_at:g} s, B published at {at:g} s")
        act = chaos(hosts, kill_at, refresh.refresher(b.raw_dir, warehouse, models, at, after, folder), probe,
                    (ADMIN, password), sign_in_every, checked, carts)
        cookie = "; ".join(f"{k}={v}" for k, v in session.cookies.items())
        result = run_locust(lb.url, path, users, int(limit), folder / "locust-hosts", hosts, act,
                            env={"LOADTEST_ANSWERS": str(seen_path), "LOADTEST_COOKIE": cookie})
        served = lb.served_all(c.rid for c in probe.calls)
        hosts.stop()
        log("[hosts] recording the answers on the published B ...")
        new = record(warehouse, folder / "hosts-new.json")
    seen = json.loads(seen_path.read_text()) if seen_path.exists() else {}
    for index, bodies in probe.seen().items():
        seen.setdefault(index, {}).update(bodies)
    counted = verdicts.classify_seen(seen, checked, old, new, result["started_at"])
    bad = counted.pop("bad")
    if bad:
        (folder / "hosts-bad-answers.json").write_text(json.dumps(bad, indent=1, ensure_ascii=False))
    balancer, sessions = report(probe.calls, served, hosts, (result.get("killed_host") or {}).get("address"))
    result.update(
        hosts=count, workers_per_host=workers, backend=backend, mix="3 filter changes : 1 what-if : 1 page open",
        shared="Redis, warehouse, MODELS_DIR, STATE_DIR, SECRET_KEY", balancer=balancer, sessions=sessions,
        cube_builds_by_host=hosts.cube_builds(),
        gunicorn_differs_from_test_client=differs, answers=counted, bad_answers=verdicts.group_bad(bad),
        probe_failures=sum(problem(c.status, c.body) is not None for c in probe.calls if c.kind == "callback"))
    return result


def goals(run: dict) -> dict:
    lb, a, s, killed = run["balancer"], run["answers"], run["sessions"], run.get("killed_host") or {}
    lost, failed = lb["lost_in_flight_on_killed_host"], (run.get("failures") or 0) + run["probe_failures"]
    old, new, differs = a["totals"].get(answers.OLD, 0), a["totals"].get(answers.NEW, 0), run["gunicorn_differs_from_test_client"]
    goal = lambda value, met: {"value": value, "met": bool(met)}  # noqa: E731
    return {
        "hosts: a host killed, failed requests ≤ those in flight on it": goal(
            f"{failed} failed, {lost} lost in flight on the killed host", killed and failed <= lost),
        "hosts: 0 mixed or unexpected answers": goal(verdicts.wrong(a), verdicts.wrong(a) == 0),
        "hosts: the publish during the run, old and new answers seen": goal(f"old {old}, new {new}", old and new),
        "hosts: sessions work whichever host answers": goal(
            f"{s['ok']} of {s['rounds']} sign-ins, {s['used_on_other_host']} used on the other host",
            0 < s["ok"] == s["rounds"] - s["lost_with_the_killed_host"] and s["used_on_other_host"]),
        "hosts: every host served": goal(lb["answered_by_host"], len(lb["answered_by_host"]) == run["hosts"]),
        "hosts: nothing volatile, gunicorn = test client": goal(differs, differs == 0)}


def table_lines(run: dict) -> list[str]:
    lb, s, k = run["balancer"], run["sessions"], run.get("killed_host") or {}
    r = (run.get("refresh") or {}).get("refresh") or {}
    return [f"  {run['hosts']} hosts × {run['workers_per_host']} workers, {run['backend']}; host {k.get('host')} "
            f"killed ({k.get('workers_killed')} workers) at {k.get('at_s')} s; etl refresh {r.get('started_s')}–"
            f"{r.get('finished_s')} s, exit {r.get('exit')}; cubes built by host {run['cube_builds_by_host']}",
            f"  nginx: {lb['requests']:,} requests, answered by {lb['answered_by_host']}, {lb['passed_to_another_host']} "
            f"passed on, {lb['lost_in_flight_on_killed_host']} lost in flight on the killed host",
            f"  sign-ins: {s['ok']} of {s['rounds']} worked, {s['used_on_other_host']} used on the other host; probe "
            f"answered by {s['answered_by_host']}; gunicorn ≠ test client: {run['gunicorn_differs_from_test_client']}",
            *verdicts.answer_lines(run)]
