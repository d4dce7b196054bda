"""One headless locust run against a :class:`benchmarks.server.Gunicorn`, and what it measured.

``locust --headless -u USERS -r USERS -t DURATION`` with benchmarks/locustfile.py; requests/s,
p50/p95/p99 and failures from locust's CSV; CPU seconds used by gunicorn, by locust and by
everything else on the (shared) machine during the run. An ``action`` runs beside it in a
thread (kill a worker, refresh the data) and may stop locust early; what it returns is kept.
"""
from __future__ import annotations

import csv
import json
import os
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psutil

from benchmarks import workload
from benchmarks.server import VENV_BIN, Gunicorn

# action(started_at: epoch seconds, locust: Popen) -> dict, run in a thread during the run
Action = Callable[[float, subprocess.Popen], dict]


def run_locust(host: str, payloads_path: Path, users: int, duration: int, prefix: Path, server: Gunicorn,
               action: Action | None = None, env: dict | None = None) -> dict:
    argv = [str(VENV_BIN / "locust"), "-f", str(workload.PROJECT_ROOT / "benchmarks" / "locustfile.py"),
            "--headless", "-u", str(users), "-r", str(users), "-t", f"{duration}s", "--host", host,
            "--csv", str(prefix), "--only-summary", "--loglevel", "WARNING", "--stop-timeout", "10"]
    cache_states = prefix.with_name(prefix.name + "_cache.json")
    cache_states.unlink(missing_ok=True)
    env = {**os.environ, **(env or {}), "LOADTEST_PAYLOADS": str(payloads_path),
           "LOADTEST_CACHE_STATES": str(cache_states)}
    cpu_before, busy_before = server.cpu_seconds(), _busy_cpu()
    started, started_at = time.perf_counter(), time.time()
    locust = subprocess.Popen(argv, cwd=workload.PROJECT_ROOT, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT)
    locust_ps = psutil.Process(locust.pid)
    locust_cpu = [0.0]
    acted: dict = {}

    def sample_locust_cpu() -> None:
        while locust.poll() is None:
            try:
                t = locust_ps.cpu_times()
                locust_cpu[0] = t.user + t.system
            except psutil.Error:
                break
            time.sleep(0.5)

    threads = [threading.Thread(target=sample_locust_cpu, daemon=True)]
    if action is not None:
        threads.append(threading.Thread(target=lambda: acted.update(action(started_at, locust)), daemon=True))
    for t in threads:
        t.start()
    output, _ = locust.communicate(timeout=duration + 120)
    elapsed = time.perf_counter() - started
    for t in threads:
        t.join(timeout=max(65, duration))
    result = parse_stats(prefix)
    server_cpu, busy = server.cpu_seconds() - cpu_before, _busy_cpu() - busy_before
    # CPU seconds of the whole machine not used by gunicorn or locust: other people's work
    # (the machine is shared), which the server did not get
    result.update(wall_s=round(elapsed, 1), server_cpu_s=round(server_cpu, 1),
                  locust_cpu_s=round(locust_cpu[0], 1), other_cpu_s=round(max(0.0, busy - server_cpu - locust_cpu[0]), 1),
                  cpu_capacity_s=round(elapsed * (os.cpu_count() or 1), 1),
                  server_cpu_ms_per_request=round(1000 * server_cpu / max(1, result.get("requests", 0)), 1),
                  # what the same server would do with the machine's cores to itself (CPU-bound)
                  rps_if_cores_were_free=round((os.cpu_count() or 1) * result.get("requests", 0) / max(server_cpu, 1e-9), 1),
                  locust_exit=locust.returncode, workers_after=len(server.worker_pids()),
                  worker_rss_mb_after=server.worker_rss_mb(), started_at=started_at)
    result.update(acted)
    if cache_states.exists():   # X-Response-Cache counts: hit / miss / skip (none: not a callback)
        result["response_cache"] = json.loads(cache_states.read_text())
    failures = prefix.with_name(prefix.name + "_failures.csv")
    if failures.exists():
        with open(failures, newline="") as handle:
            result["failure_kinds"] = [{"name": r["Name"], "error": r["Error"][:200], "count": int(r["Occurrences"])}
                                       for r in csv.DictReader(handle)]
    tail = output.decode(errors="replace").strip().splitlines()[-3:]
    if locust.returncode not in (0, 1):  # 1: some requests failed, which we report
        raise RuntimeError("locust failed:\n" + "\n".join(tail))
    return result


def kill_one_worker(server: Gunicorn, at: float) -> Action:
    """SIGKILL to one worker ``at`` seconds in; how long the master takes to replace it."""

    def act(started_at: float, _locust: subprocess.Popen) -> dict:
        import signal

        time.sleep(at)
        before = server.worker_pids()
        if not before:
            return {}
        victim = before[0]
        os.kill(victim, signal.SIGKILL)
        t0 = time.perf_counter()
        kill = {"pid": victim, "at_s": round(time.time() - started_at, 1), "workers_before": len(before)}
        while time.perf_counter() - t0 < 60:
            now = server.worker_pids()
            fresh = [p for p in now if p not in before]
            if fresh and len(now) >= len(before):
                kill.update(replaced_by=fresh[0], respawned_after_s=round(time.perf_counter() - t0, 2))
                break
            time.sleep(0.05)
        return {"killed_worker": kill}

    return act


def _busy_cpu() -> float:
    t = psutil.cpu_times()
    return sum(t) - t.idle - getattr(t, "iowait", 0.0)


def _num(value: str) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def parse_stats(prefix: Path) -> dict:
    path = prefix.with_name(prefix.name + "_stats.csv")
    out: dict = {"by_name": {}}
    with open(path, newline="") as handle:
        for row in csv.DictReader(handle):
            entry = {"requests": int(row["Request Count"]), "failures": int(row["Failure Count"]),
                     "rps": round(_num(row["Requests/s"]) or 0, 1), "p50_ms": _num(row["50%"]),
                     "p95_ms": _num(row["95%"]), "p99_ms": _num(row["99%"]), "max_ms": _num(row["100%"]),
                     "mean_ms": round(_num(row["Average Response Time"]) or 0, 1),
                     "mean_bytes": round(_num(row["Average Content Size"]) or 0)}
            if row["Name"] == "Aggregated":
                out.update(entry)
            else:
                out["by_name"][row["Name"]] = entry
    return out
