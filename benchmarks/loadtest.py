"""``make loadtest``: gunicorn on loopback under 50 concurrent clients, then the same while one
worker is killed.

    python -m benchmarks.loadtest [--users 50] [--duration 30] [--workers 2*nproc+1]

1. Data of real size: the published files (``../shared/data`` via ``RAW_DIR``) when they are
   there, else 4,300 generated sessions; ETL and ``train --fast`` once (cached in
   ``benchmarks/.work/``).
2. Payloads: the app is built in this process and driven through Flask's test client
   (:mod:`benchmarks.dashclient`) through the carts filter-change script and the what-if
   feature changes; every request body it sends is recorded, and each one answered HTTP 200
   without an error (:func:`build_payloads`).
3. ``gunicorn --workers W --bind 127.0.0.1:PORT wsgi:server`` (as ``make run``, on a free port and
   a private query-cache folder); waits until every worker answers.
4. ``locust --headless -u 50 -r 50 -t 30s`` (FastHttpUser, no think time: 50 requests in
   flight) replays the payloads: 3/4 filter changes, 1/4 what-ifs. Requests/s, p50/p95/p99,
   failures from locust's CSV; CPU seconds used by gunicorn and by locust (same 2 cores).
5. Again, with SIGKILL to one worker half way: failures, and how long the master took to
   replace the worker.

Results: ``benchmarks/results/loadtest.json`` and a table on stdout. Bounded: fixed users and
duration, loopback only; gunicorn is stopped at the end.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil

from benchmarks import workload

VENV_BIN = Path(sys.executable).parent
GOALS = {"rps": 300.0, "p99_ms": 300.0, "errors": 0}
CARTS = "carts filter change"
WHAT_IF = "what-if"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --- payloads -------------------------------------------------------------------------------


def build_payloads(app, models_dir: Path, cycles: int = 1) -> list[dict]:
    """The callback requests of the carts filter-change script and of what-if feature changes
    on both subjects (those with a model), each checked through the test client (HTTP 200, no
    error); ``[{"name", "path", "body", "status", "ms"}]``."""
    from benchmarks import scenarios
    from benchmarks.dashclient import DashClient
    from etl.train.card import read_card

    client = DashClient(app)
    payloads = []

    def record(name: str, interaction) -> None:
        for request in interaction.requests:
            if request.status != 200:
                raise AssertionError(f"{name}: {request.callback[:60]} answered HTTP {request.status}")
            payloads.append({"name": name, "path": request.url, "body": request.body,
                             "status": request.status, "ms": round(request.ms, 1)})

    client.open(scenarios.CARTS_PATH)
    script = scenarios.carts_script(client)
    for _ in range(cycles):
        for action in script:
            record(CARTS, scenarios.run_action(client, action))
    for subject in ("carts", "customers"):
        try:
            specs = read_card(models_dir, subject).get("feature_specs", {})
        except Exception:  # noqa: BLE001 - no model for this subject: no what-if payloads
            continue
        for action in scenarios.what_if_script(client, subject, specs):
            record(WHAT_IF, scenarios.run_action(client, action))
    return payloads


def record_payloads(work: workload.Workload, path: Path) -> list[dict]:
    os.environ.update(work.env)
    os.environ["CACHE_DIR"] = str(work.folder / "cache-payloads")
    from dashboard.app import create_app

    payloads = build_payloads(create_app(), work.models_dir)
    path.write_text(json.dumps(payloads))
    return payloads


# --- gunicorn -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Gunicorn:
    def __init__(self, workers: int, env: dict, log_path: Path):
        self.workers, self.port = workers, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        argv = [str(VENV_BIN / "gunicorn"), "--workers", str(workers), "--bind", f"127.0.0.1:{self.port}",
                "--access-logfile", "-", "wsgi:server"]
        self.log = open(log_path, "wb")
        self.proc = subprocess.Popen(argv, cwd=workload.PROJECT_ROOT, stdout=self.log, stderr=subprocess.STDOUT,
                                     env={**os.environ, **env})
        self.master = psutil.Process(self.proc.pid)

    def worker_pids(self) -> list[int]:
        try:
            return [c.pid for c in self.master.children() if c.is_running()]
        except psutil.Error:
            return []

    def cpu_seconds(self) -> float:
        total = 0.0
        for proc in [self.master, *self.master.children(recursive=True)]:
            try:
                t = proc.cpu_times()
                total += t.user + t.system
            except psutil.Error:
                pass
        return total

    def wait_ready(self, payloads: list[dict], timeout: float = 180) -> float:
        """Until all workers run and every payload answers 200 a few times over."""
        started = time.perf_counter()
        while time.perf_counter() - started < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.proc.returncode}; see {self.log.name}")
            if len(self.worker_pids()) == self.workers and _get(self.url + "/_dash-layout") == 200:
                break
            time.sleep(0.5)
        else:
            raise TimeoutError("gunicorn did not start")
        # warm every worker: each builds its app, cube and models on first use
        for _ in range(2 * self.workers):
            for p in payloads:
                status, _ = post(self.url + p["path"], p["body"])
                if status != 200:
                    raise RuntimeError(f"{p['name']} answered HTTP {status} from gunicorn")
        return time.perf_counter() - started

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status
    except Exception:  # noqa: BLE001
        return 0


def post(url: str, body: dict) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, b""


# --- locust ---------------------------------------------------------------------------------


def run_locust(host: str, payloads_path: Path, users: int, duration: int, prefix: Path,
               server: Gunicorn, kill_at: float | None = None) -> dict:
    argv = [str(VENV_BIN / "locust"), "-f", str(workload.PROJECT_ROOT / "benchmarks" / "locustfile.py"),
            "--headless", "-u", str(users), "-r", str(users), "-t", f"{duration}s", "--host", host,
            "--csv", str(prefix), "--only-summary", "--loglevel", "WARNING", "--stop-timeout", "10"]
    env = {**os.environ, "LOADTEST_PAYLOADS": str(payloads_path)}
    cpu_before, busy_before = server.cpu_seconds(), _busy_cpu()
    started = time.perf_counter()
    locust = subprocess.Popen(argv, cwd=workload.PROJECT_ROOT, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT)
    locust_ps = psutil.Process(locust.pid)
    kill: dict = {}
    locust_cpu = [0.0]

    def sample_locust_cpu() -> None:
        while locust.poll() is None:
            try:
                t = locust_ps.cpu_times()
                locust_cpu[0] = t.user + t.system
            except psutil.Error:
                break
            time.sleep(0.5)

    def killer() -> None:
        time.sleep(kill_at)
        before = server.worker_pids()
        if not before:
            return
        victim = before[0]
        os.kill(victim, signal.SIGKILL)
        t0 = time.perf_counter()
        kill.update(pid=victim, at_s=round(t0 - started, 1), workers_before=len(before))
        while time.perf_counter() - t0 < 60:
            now = server.worker_pids()
            fresh = [p for p in now if p not in before]
            if fresh and len(now) >= len(before):
                kill.update(replaced_by=fresh[0], respawned_after_s=round(time.perf_counter() - t0, 2))
                break
            time.sleep(0.05)

    threads = [threading.Thread(target=sample_locust_cpu, daemon=True)]
    if kill_at is not None:
        threads.append(threading.Thread(target=killer, daemon=True))
    for t in threads:
        t.start()
    output, _ = locust.communicate(timeout=duration + 120)
    elapsed = time.perf_counter() - started
    for t in threads:
        t.join(timeout=65)
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
                  locust_exit=locust.returncode, workers_after=len(server.worker_pids()))
    if kill:
        result["killed_worker"] = kill
    failures = prefix.with_name(prefix.name + "_failures.csv")
    if failures.exists():
        with open(failures, newline="") as handle:
            result["failure_kinds"] = [{"name": r["Name"], "error": r["Error"][:200], "count": int(r["Occurrences"])}
                                       for r in csv.DictReader(handle)]
    tail = output.decode(errors="replace").strip().splitlines()[-3:]
    if locust.returncode not in (0, 1):  # 1: some requests failed, which we report
        raise RuntimeError("locust failed:\n" + "\n".join(tail))
    return result


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


# --- main -----------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.loadtest", description=__doc__.splitlines()[0])
    p.add_argument("--users", type=int, default=50)
    p.add_argument("--duration", type=int, default=30, help="seconds per run (default 30)")
    p.add_argument("--workers", type=int, default=2 * (os.cpu_count() or 1) + 1, help="default 2 × cores + 1")
    p.add_argument("--raw", type=Path, default=None,
                   help="raw folder (default: $RAW_DIR, else ../shared/data, else 4,300 generated sessions)")
    p.add_argument("--out", type=Path, default=workload.RESULTS_DIR / "loadtest.json")
    p.add_argument("--work-dir", type=Path, default=workload.WORK_DIR)
    p.add_argument("--no-kill", action="store_true", help="skip the run with a killed worker")
    return p


def raw_source(arg: Path | None) -> Path | None:
    if arg is not None:
        return arg
    if os.environ.get("RAW_DIR"):
        return Path(os.environ["RAW_DIR"])
    if (workload.REAL_DATA / "carts").is_dir() and (workload.REAL_DATA / "customers").is_dir():
        return workload.REAL_DATA
    return None


def run(args: argparse.Namespace) -> dict:
    info = workload.machine()
    raw = raw_source(args.raw)
    work = workload.prepare(None if raw else 4300, raw_dir=raw, work_dir=args.work_dir, log=log)
    folder = work.folder / "loadtest"
    folder.mkdir(exist_ok=True)
    payloads_path = folder / "payloads.json"
    log("recording payloads through the test client ...")
    payloads = record_payloads(work, payloads_path)
    counts = {name: sum(p["name"] == name for p in payloads) for name in (CARTS, WHAT_IF)}
    log(f"{len(payloads)} payloads ({counts[CARTS]} filter changes, {counts[WHAT_IF]} what-ifs), all HTTP 200")

    import duckdb

    with duckdb.connect(str(work.warehouse), read_only=True) as con:
        sessions = con.execute("SELECT count(*) FROM sessions").fetchone()[0]

    result = {"started_at": time.strftime("%Y-%m-%d %H:%M:%S"), "users": args.users, "duration_s": args.duration,
              "workers": args.workers, "sessions": sessions, "raw": str(work.raw_dir),
              "payloads": counts, "mix": "3 filter changes : 1 what-if, no think time",
              "query_cache": "on (filesystem, fresh folder per server start), as deployed", "runs": {}}
    env = {**work.env, "CACHE_DIR": str(folder / "cache"), "HOST": "127.0.0.1"}
    plans = [("steady", None)] + ([] if args.no_kill else [("worker_killed", args.duration / 2)])
    for name, kill_at in plans:
        server = Gunicorn(args.workers, env, folder / f"gunicorn-{name}.log")
        try:
            log(f"[{name}] gunicorn {args.workers} workers on {server.url}; warming up ...")
            ready = server.wait_ready(payloads)
            log(f"[{name}] ready in {ready:.1f} s; locust {args.users} users for {args.duration} s"
                + (f", SIGKILL to one worker at {kill_at:.0f} s" if kill_at else "") + " ...")
            result["runs"][name] = run_locust(server.url, payloads_path, args.users, args.duration,
                                              folder / f"locust-{name}", server, kill_at)
        finally:
            server.stop()
    result["goals"] = goals(result)
    result["machine"] = info
    result["machine"]["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    result["versions"] = workload.library_versions()
    result["finished_at"] = time.strftime("%Y-%m-%d %H:%M:%S")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, default=str))
    result["out"] = str(args.out)
    return result


def goals(result: dict) -> dict:
    out = {}
    steady = result["runs"].get("steady")
    if steady:
        out["≥ 300 req/s"] = {"value": steady.get("rps"), "met": (steady.get("rps") or 0) >= GOALS["rps"]}
        out["p99 ≤ 300 ms"] = {"value": steady.get("p99_ms"), "met": (steady.get("p99_ms") or 1e9) <= GOALS["p99_ms"]}
        out["0 errors"] = {"value": steady.get("failures"), "met": steady.get("failures") == 0}
    killed = result["runs"].get("worker_killed")
    if killed:
        # a sync worker handles one request at a time: at most one request is in flight on it
        out["worker killed: failures ≤ in flight (1)"] = {"value": killed.get("failures"),
                                                         "met": (killed.get("failures") or 0) <= 1}
    return out


def table(result: dict) -> str:
    lines = [f"{'run':<15}{'requests':>9}{'fail':>6}{'req/s':>8}{'p50':>7}{'p95':>7}{'p99':>7}{'max':>7}"
             f"{'server CPU':>12}{'locust CPU':>12}{'others CPU':>12}", "-" * 102]
    for name, r in result["runs"].items():
        rows = [(name, r)] + [(f"  {k}", v) for k, v in r["by_name"].items()]
        for label, v in rows:
            extra = (f"{r['server_cpu_s']:>10.0f} s{r['locust_cpu_s']:>10.0f} s{r['other_cpu_s']:>10.0f} s"
                     if label == name else "")
            lines.append(f"{label[:15]:<15}{v['requests']:>9,}{v['failures']:>6}{v['rps']:>8.1f}"
                         f"{_ms(v['p50_ms'])}{_ms(v['p95_ms'])}{_ms(v['p99_ms'])}{_ms(v['max_ms'])}{extra}")
        lines.append(f"  {r['server_cpu_ms_per_request']} ms server CPU per request → ~{r['rps_if_cores_were_free']:.0f} req/s "
                     f"if gunicorn had all {os.cpu_count()} cores; {r['cpu_capacity_s']:.0f} CPU-s in {r['wall_s']} s, "
                     f"{r['other_cpu_s']:.0f} of them used by other processes")
        if "killed_worker" in r:
            k = r["killed_worker"]
            lines.append(f"  worker {k.get('pid')} killed at {k.get('at_s')} s; replaced after "
                         f"{k.get('respawned_after_s', '?')} s; {r['workers_after']} workers at the end")
        for f in r.get("failure_kinds", []):
            lines.append(f"  failure: {f['count']} × {f['name']}: {f['error']}")
    lines.append("")
    for name, g in result["goals"].items():
        lines.append(f"  {'met' if g['met'] else 'MISSED':<7}{name} (measured {g['value']})")
    m = result["machine"]
    lines.append(f"\n{result['workers']} gunicorn workers, {result['users']} users, {result['duration_s']} s per run, "
                 f"{result['sessions']:,} sessions; machine: {m['cpu_count']} CPU ({m['cpu_model']}), "
                 f"{m['ram_gb']} GB RAM; load average {m['loadavg_at_start'][0]} at start, {m['loadavg_at_end'][0]} at end")
    return "\n".join(lines)


def _ms(value) -> str:
    return f"{value:>7.0f}" if value is not None else f"{'–':>7}"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result = run(args)
    print(table(result))
    print(f"\nwritten {result['out']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
