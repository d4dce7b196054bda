"""``make loadtest``: gunicorn on loopback under 50 concurrent clients, then the same while one
worker is killed, while the data and models are refreshed, and while publishes come in a storm.

    python -m benchmarks.loadtest [--users 50] [--duration 30] [--workers 2*nproc+1]
                                  [--no-steady] [--no-kill] [--no-refresh] [--no-storm] [--no-hosts]

1. Data of real size: the published files (``../shared/data`` via ``RAW_DIR``) when they are
   there, else 4,300 generated sessions; ETL and ``train --fast`` once (cached in
   ``benchmarks/.work/``).
2. Payloads: the app is built in this process and driven through Flask's test client
   (:mod:`benchmarks.dashclient`) through the carts filter-change script and the what-if
   feature changes; every request body it sends is recorded, and each one answered HTTP 200
   without an error (:func:`build_payloads`).
3. ``gunicorn -c gunicorn.conf.py wsgi:server`` (as ``make run``; WORKERS=W, a free port and a
   private query-cache folder); waits until every worker answers.
4. ``locust --headless -u 50 -r 50 -t 30s`` (FastHttpUser, no think time: 50 requests in
   flight) replays the payloads: 3/4 filter changes, 1/4 what-ifs. Requests/s, p50/p95/p99,
   failures from locust's CSV; CPU seconds used by gunicorn and by locust (same 2 cores).
4b. ``novel`` (same server, right after): every request a carts filter change never requested
   before in the run, each sent once (:mod:`benchmarks.novel`): the intrinsic cost, no cache hit.
5. Again, with SIGKILL to one worker half way: failures, and how long the master took to
   replace the worker.
6. Again, while ``python -m etl refresh`` publishes other data with its new models into the
   served files: failed requests, and every answer checked to be the old data's or the new
   data's, never a mix (:mod:`benchmarks.refresh`).
7. Again, while two complete builds (A, B) are published alternately every 0.5 s: the same
   checks, for requests that overlap a publish (:mod:`benchmarks.storm`).
8. Several hosts: two gunicorn instances sharing Redis, the warehouse (PostgreSQL by default,
   ``--hosts-backend duckdb`` for the file) and the state folder, behind Debian's nginx; signed
   in (``AUTH=local``); one host killed (SIGKILL) and ``etl refresh`` publishing mid-run:
   failures against the requests in flight on the dead host, old/new answers as in 6, sign-ins
   used on the other host (:mod:`benchmarks.hosts`).

Results: ``benchmarks/results/loadtest.json`` and a table on stdout. Bounded: fixed users and
duration, loopback only; gunicorn is stopped at the end.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

from benchmarks import hosts, novel, refresh, storm, workload
from benchmarks.locustrun import kill_one_worker, run_locust
from benchmarks.server import Gunicorn

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


def record_payloads(work: workload.Workload, path: Path, novel_path: Path | None = None,
                    novel_count: int = 0) -> tuple[list[dict], list[dict]]:
    """The load test's payloads (written to ``path``) and one page open per page (the refresh
    run's); with ``novel_path``, also the novel run's ``novel_count`` never-repeated changes."""
    os.environ.update(work.env)
    os.environ["CACHE_DIR"] = str(work.folder / "cache-payloads")
    from dashboard.app import create_app

    app = create_app()
    payloads = build_payloads(app, work.models_dir)
    path.write_text(json.dumps(payloads))
    if novel_path is not None:
        novel.write(app, novel_path, novel_count, exclude=payloads)
    return payloads, refresh.page_payloads(app)


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
    p.add_argument("--no-steady", action="store_true", help="skip the steady run (and the novel run on its server)")
    p.add_argument("--no-novel", action="store_true",
                   help="skip the run of never-repeated filter changes (after steady, same server)")
    p.add_argument("--novel-count", type=int, default=3000,
                   help="novel filter changes recorded; the run ends early when all are sent (default 3000)")
    p.add_argument("--no-kill", action="store_true", help="skip the run with a killed worker")
    p.add_argument("--no-refresh", action="store_true", help="skip the run with an ETL + training publish")
    p.add_argument("--refresh-at", type=float, default=10, help="seconds into the refresh run (default 10)")
    p.add_argument("--refresh-after", type=float, default=15,
                   help="seconds the refresh run goes on after training (default 15)")
    p.add_argument("--refresh-limit", type=int, default=300, help="upper bound of the refresh run (s)")
    p.add_argument("--no-storm", action="store_true", help="skip the run with a publish every --storm-period s")
    p.add_argument("--storm-period", type=float, default=0.5, help="seconds between publishes (default 0.5)")
    p.add_argument("--storm-duration", type=float, default=30, help="seconds of publishing (default 30)")
    p.add_argument("--no-hosts", action="store_true", help="skip the run with two hosts behind nginx")
    p.add_argument("--hosts-backend", choices=("postgres", "duckdb"), default="postgres",
                   help="the hosts' shared warehouse (default postgres: a throw-away local server)")
    p.add_argument("--hosts-workers", type=int, default=2 * max(1, (os.cpu_count() or 1) // 2) + 1,
                   help="workers per host (default 2 × cores/2 + 1: each host gets half the machine)")
    p.add_argument("--hosts-kill-at", type=float, default=20, help="seconds into the hosts run host A is killed")
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
    novel_path = None if args.no_novel or args.no_steady else folder / "payloads-novel.json"
    log("recording payloads through the test client"
        + ("" if args.no_novel else f" (and {args.novel_count} novel filter changes)") + " ...")
    payloads, pages = record_payloads(work, payloads_path, novel_path, args.novel_count)
    counts = {name: sum(p["name"] == name for p in payloads) for name in (CARTS, WHAT_IF)}
    log(f"{len(payloads)} payloads ({counts[CARTS]} filter changes, {counts[WHAT_IF]} what-ifs), all HTTP 200")
    if novel_path is not None:
        counts["novel"] = args.novel_count

    import duckdb

    with duckdb.connect(str(work.warehouse), read_only=True) as con:
        sessions = con.execute("SELECT count(*) FROM sessions").fetchone()[0]

    result = {"started_at": time.strftime("%Y-%m-%d %H:%M:%S"), "users": args.users, "duration_s": args.duration,
              "workers": args.workers, "sessions": sessions, "raw": str(work.raw_dir),
              "payloads": counts, "mix": "3 filter changes : 1 what-if, no think time",
              "query_cache": "on (filesystem, fresh folder per server start), as deployed", "runs": {}}
    plans = ([] if args.no_steady else [("steady", None)]) + ([] if args.no_kill else [("worker_killed", args.duration / 2)])
    for name, kill_at in plans:
        shutil.rmtree(folder / f"cache-{name}", ignore_errors=True)
        server = Gunicorn(args.workers, {**work.env, "CACHE_DIR": str(folder / f"cache-{name}")},
                          folder / f"gunicorn-{name}.log")
        try:
            log(f"[{name}] gunicorn {args.workers} workers on {server.url}; warming up ...")
            ready = server.wait_ready(payloads)
            log(f"[{name}] ready in {ready:.1f} s; locust {args.users} users for {args.duration} s"
                + (f", SIGKILL to one worker at {kill_at:.0f} s" if kill_at else "") + " ...")
            result["runs"][name] = run_locust(server.url, payloads_path, args.users, args.duration,
                                              folder / f"locust-{name}", server,
                                              None if kill_at is None else kill_one_worker(server, kill_at))
            if name == "steady" and novel_path is not None:
                # same warm server; none of these bodies was sent before (benchmarks/novel.py)
                log(f"[novel] locust {args.users} users, each of {args.novel_count} new filter changes sent once ...")
                result["runs"]["novel"] = run_locust(server.url, novel_path, args.users, args.duration,
                                                     folder / "locust-novel", server, env={"LOADTEST_NOVEL": "1"})
        finally:
            server.stop()
    if not args.no_refresh:
        result["runs"]["refresh"] = refresh.run(work, payloads, pages, folder, users=args.users, workers=args.workers,
                                                at=args.refresh_at, after=args.refresh_after,
                                                limit=args.refresh_limit, log=log)
    if not args.no_storm:
        result["runs"]["storm"] = storm.run(work, payloads + pages, folder, users=args.users, workers=args.workers,
                                            period=args.storm_period, duration=args.storm_duration, log=log)
    if not args.no_hosts:
        result["runs"]["hosts"] = hosts.run(work, payloads, pages, folder, users=args.users, workers=args.hosts_workers,
                                            backend=args.hosts_backend, kill_at=args.hosts_kill_at, at=args.refresh_at,
                                            after=args.refresh_after, limit=args.refresh_limit, log=log)
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
    fresh = result["runs"].get("novel")
    if fresh:
        out["novel: 0 errors"] = {"value": fresh.get("failures"), "met": fresh.get("failures") == 0}
    killed = result["runs"].get("worker_killed")
    if killed:
        # a sync worker handles one request at a time: at most one request is in flight on it
        out["worker killed: failures ≤ in flight (1)"] = {"value": killed.get("failures"),
                                                         "met": (killed.get("failures") or 0) <= 1}
    if "refresh" in result["runs"]:
        out.update(refresh.goals(result["runs"]["refresh"]))
    if "storm" in result["runs"]:
        out.update(storm.goals(result["runs"]["storm"]))
    if "hosts" in result["runs"]:
        out.update(hosts.goals(result["runs"]["hosts"]))
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
        if r.get("response_cache"):
            lines.append("  X-Response-Cache: " + ", ".join(f"{k} {v:,}" for k, v in sorted(r["response_cache"].items())))
        if "killed_worker" in r:
            k = r["killed_worker"]
            lines.append(f"  worker {k.get('pid')} killed at {k.get('at_s')} s; replaced after "
                         f"{k.get('respawned_after_s', '?')} s; {r['workers_after']} workers at the end")
        if name == "refresh":
            lines += refresh.table_lines(r)
        if name == "storm":
            lines += storm.table_lines(r)
        if name == "hosts":
            lines += hosts.table_lines(r)
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
