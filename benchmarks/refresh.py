"""The refresh run of ``make loadtest``: the data is replaced while the server is under load.

Requirement (issue 8): a publish of new data and its models during a load test gives no failed
request and no mixed answer — every answer is the old data's or the new data's, never half of
each. The dashboard pins one release (warehouse file + the models it names) per request
(dashboard/release.py); ``python -m etl refresh`` publishes data and models with one rename.
How it is checked:

1. Two raw datasets: A is the load test's (the published files, or generated), B is A with every
   10th data row of the cart exports and of the customers' main file removed (so every KPI,
   histogram, model and probability changes; side-table rows of removed customers are
   quarantined by the ETL as unknown ids). B's warehouse and models are also built beforehand
   with the project's CLI (cached like every benchmark workload), as a cross-check.
2. The served copy starts as A (warehouse + models copied to a private folder). The payloads
   are the load test's (carts filter changes, what-if changes) plus one page open per page
   (the router callback, as a browser sends it). The *old* answers: each payload sent through
   Flask's test client in a fresh process on the served copy (``python -m benchmarks.refresh
   expect``), twice in two processes, each payload twice (computed, then from the query cache):
   any volatile output would show as a difference.
3. gunicorn (``gunicorn.conf.py``) serves the copy; after warm-up every payload's gunicorn
   answer must equal the test client's byte for byte.
4. Locust runs the usual 50 clients (page opens added to the mix) and keeps every distinct
   response body per payload (benchmarks/locustfile.py). At ``at`` seconds the operator's
   refresh runs against the served files: ``python -m etl refresh --fast --raw B --warehouse
   <served> --models <served models>`` (ETL and training, one publish); a watcher
   polls the served files every 10 ms to time each publish. ``after`` seconds after the refresh
   ends, locust is stopped.
5. The *new* answers: the served files, now B, recorded like the old ones. Each distinct body
   locust received is then classified (:func:`benchmarks.answers.classify`): old, new, mixed
   (some outputs old, some new), neither, or failed (an error or "not available" message).
   Comparing with the served files themselves (not with B's separate build) keeps the answers
   that show the refresh's own timestamps (ETL run time, training time) comparable; B's build
   is compared with them for the callbacks, which show no timestamps.
"""
from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from benchmarks import answers, verdicts, workload
from benchmarks.locustrun import Action, run_locust
from benchmarks.server import Gunicorn, post
from etl.backends import redact

PAGE = "page open"
DROP_EVERY = 10   # B = A without every 10th data row (of carts/*.csv and customers/market_file.csv)
SETTINGS = ("WAREHOUSE_URL", "MODELS_DIR", "RAW_DIR", "CACHE_DIR", "CACHE_REDIS_URL")


def derive_raw(source: Path, dest: Path, every: int = DROP_EVERY) -> str:
    """Write B's raw files into ``dest``; returns their digest. Rows are whole lines (the
    real and generated exports have no quoted line breaks); the header is kept."""
    dest.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    for path in sorted(p for p in source.rglob("*") if p.is_file() and p.suffix.lower() == ".csv"):
        rel = path.relative_to(source)
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        data = path.read_bytes()
        if rel.parts[0] == "carts" or rel.as_posix() == "customers/market_file.csv":
            lines = data.splitlines(keepends=True)
            data = b"".join(line for i, line in enumerate(lines) if i == 0 or i % every != 4)
        target.write_bytes(data)
        digest.update(rel.as_posix().encode() + b"\0" + data)
    return digest.hexdigest()[:16]


def prepare_b(work: workload.Workload, log) -> workload.Workload:
    """B's raw files, warehouse and models (rebuilt when A's files changed since last time)."""
    raw_b = work.folder / "refresh" / "raw-b"
    marker = raw_b.parent / "raw-b.digest"
    digest = derive_raw(work.raw_dir, raw_b)
    fresh = marker.exists() and marker.read_text() != digest
    b = workload.prepare(None, raw_dir=raw_b, work_dir=work.folder.parent, fresh=fresh, log=log)
    marker.write_text(digest)
    return b


def clean_env() -> dict:
    """The environment without the app's location settings: every command here names them."""
    return {k: v for k, v in os.environ.items() if k not in SETTINGS}


def expected_answers(payloads_path: Path, warehouse: Path | str, models: Path, out: Path, *, cache: Path) -> list[str]:
    """Each payload's answer on ``warehouse`` + ``models``, from a fresh process."""
    shutil.rmtree(cache, ignore_errors=True)
    # the warehouse in the environment, not on the command line: `ps` shows a URL's password
    argv = [sys.executable, "-m", "benchmarks.refresh", "expect", "--payloads", str(payloads_path),
            "--models", str(models), "--cache", str(cache), "--out", str(out)]
    proc = subprocess.run(argv, cwd=workload.PROJECT_ROOT, env={**clean_env(), "WAREHOUSE_URL": str(warehouse)},
                          capture_output=True, text=True,
                          timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"recording answers on {redact(str(warehouse))} failed:\n{proc.stderr[-3000:]}")
    recorded = json.loads(out.read_text())
    if recorded["repeat_differs"]:  # an answer that changes between two identical requests: volatile
        raise RuntimeError(f"answers on {redact(str(warehouse))} differ when repeated: "
                           f"payloads {recorded['repeat_differs']}")
    return recorded["answers"]


def _record(args: argparse.Namespace) -> int:
    """``expect``: runs in its own process, so nothing held in memory (cube, models) carries over."""
    os.environ.update(MODELS_DIR=str(args.models), CACHE_DIR=str(args.cache))   # WAREHOUSE_URL: from the caller
    from dashboard.app import create_app

    client = create_app().server.test_client()
    payloads = json.loads(Path(args.payloads).read_text())
    out, differs = [], []
    for i, p in enumerate(payloads):
        first, again = (client.post(p["path"], json=p["body"]) for _ in range(2))  # computed, then cached
        if first.status_code != 200:
            raise SystemExit(f"{p['name']} #{i}: HTTP {first.status_code}")
        if first.data != again.data:
            differs.append(i)
        out.append(first.get_data(as_text=True))
    Path(args.out).write_text(json.dumps({"answers": out, "repeat_differs": differs}))
    return 0


def publish_watcher(files: dict[str, Path], started_at: float, stop: threading.Event) -> list[dict]:
    """Polls the served files; each change of identity (a rename over it) with its time."""
    events: list[dict] = []

    def stamp(path: Path):
        try:
            st = path.stat()
            return st.st_ino, st.st_mtime_ns, st.st_size
        except OSError:
            return None

    def watch() -> None:
        last = {name: stamp(path) for name, path in files.items()}
        while not stop.is_set():
            for name, path in files.items():
                now = stamp(path)
                if now != last[name]:
                    events.append({"file": name, "at_s": round(time.time() - started_at, 2)})
                    last[name] = now
            stop.wait(0.01)

    threading.Thread(target=watch, daemon=True).start()
    return events


def refresher(raw_b: Path, warehouse: Path, models: Path, at: float, after: float, log_dir: Path) -> Action:
    """The operator's refresh, ``at`` seconds into the run; stops locust ``after`` seconds later."""
    py = sys.executable
    # the warehouse in the environment (WAREHOUSE_URL), not on the command line (`ps` shows it)
    steps = [("refresh", [py, "-m", "etl", "refresh", "--fast", "--raw", str(raw_b), "--models", str(models)])]

    def act(started_at: float, locust: subprocess.Popen) -> dict:
        stop = threading.Event()
        events = publish_watcher({"warehouse": warehouse, "carts card": models / "carts.json",
                                  "customers card": models / "customers.json"}, started_at, stop)
        time.sleep(at)
        done: dict = {}
        for name, argv in steps:
            t0 = time.time()
            with open(log_dir / f"refresh-{name}.log", "wb") as out:
                # STATE_DIR: the run's own (hosts) or a private one, never the project's KPI history
                code = subprocess.run(argv, cwd=workload.PROJECT_ROOT, stdout=out,
                                      env={**clean_env(), "WAREHOUSE_URL": str(warehouse),
                                           "STATE_DIR": os.environ.get("STATE_DIR") or str(log_dir / "refresh-state")},
                                      stderr=subprocess.STDOUT).returncode
            done[name] = {"command": " ".join(["python", *argv[1:]]), "exit": code,
                          "started_s": round(t0 - started_at, 2), "finished_s": round(time.time() - started_at, 2),
                          "seconds": round(time.time() - t0, 2)}
            if code != 0:
                break
        time.sleep(after)
        stop.set()
        if locust.poll() is None:
            locust.send_signal(signal.SIGTERM)  # locust writes its stats and exits as at -t
        else:
            done["locust_ended_first"] = True   # the -t bound: the refresh took too long
        return {"refresh": done, "publishes": events}

    return act


def page_payloads(app) -> list[dict]:
    """One page open per registered page: the router callback's request(s), as the browser sends them."""
    import dash

    from benchmarks.dashclient import DashClient

    client = DashClient(app)
    out = []
    for page in sorted(dash.page_registry.values(), key=lambda p: p.get("order") or 0):
        if page["path"].startswith("/404"):
            continue
        for request in client.open(page["path"]).requests:
            if request.status == 200:
                out.append({"name": PAGE, "path": request.url, "body": request.body, "page": page["path"]})
    return out


def run(work: workload.Workload, payloads: list[dict], pages: list[dict], folder: Path, *, users: int,
        workers: int, at: float, after: float, limit: float, log) -> dict:
    """The whole refresh run (steps 1-5 of the module docstring); the ``runs.refresh`` entry."""
    b = prepare_b(work, log)
    served = folder / "refresh-served"
    shutil.rmtree(served, ignore_errors=True)
    (served / "models").mkdir(parents=True)
    warehouse, models = served / "warehouse.duckdb", served / "models"
    shutil.copyfile(work.warehouse, warehouse)
    for card in work.models_dir.iterdir():
        if card.suffix in (".pkl", ".json"):
            shutil.copyfile(card, models / card.name)
    checked = payloads + pages
    path = folder / "payloads-refresh.json"
    path.write_text(json.dumps(checked))
    record = functools.partial(expected_answers, path, cache=folder / "cache-expect")
    log(f"[refresh] recording the {len(checked)} answers on A (twice), in fresh processes ...")
    old = record(warehouse, models, folder / "expected-old.json")
    volatile = [f"{p['name']} #{i}" for i, (p, x, y) in
                enumerate(zip(checked, old, record(warehouse, models, folder / "expected-old2.json"))) if x != y]

    shutil.rmtree(folder / "cache-refresh", ignore_errors=True)
    server = Gunicorn(workers, {"WAREHOUSE_URL": str(warehouse), "MODELS_DIR": str(models),
                                "CACHE_DIR": str(folder / "cache-refresh")}, folder / "gunicorn-refresh.log")
    seen_path = folder / "answers-seen.json"
    seen_path.unlink(missing_ok=True)
    try:
        log(f"[refresh] gunicorn {workers} workers on {server.url}; warming up ...")
        server.wait_ready(checked)
        # gunicorn must give the test client's bytes, or comparing them would prove nothing
        served_differs = sum(post(server.url + p["path"], p["body"])[1].decode() != x for p, x in zip(checked, old))
        log(f"[refresh] locust {users} users; at {at:.0f} s `etl refresh` publishes B with its models; "
            f"stop {after:.0f} s after it (at most {limit:.0f} s) ...")
        action = refresher(b.raw_dir, warehouse, models, at, after, folder)
        result = run_locust(server.url, path, users, int(limit), folder / "locust-refresh", server, action,
                            env={"LOADTEST_ANSWERS": str(seen_path)})
    finally:
        server.stop()
    log("[refresh] recording the answers on the refreshed files and on B's own build ...")
    new = record(warehouse, models, folder / "expected-new.json")
    built_b = record(b.warehouse, b.models_dir, folder / "expected-b.json")
    seen = json.loads(seen_path.read_text()) if seen_path.exists() else {}
    counted = verdicts.classify_seen(seen, checked, old, new, result["started_at"])
    bad = counted.pop("bad")
    if bad:
        (folder / "refresh-bad-answers.json").write_text(json.dumps(bad, indent=1, ensure_ascii=False))
        result["bad_answers_file"] = str(folder / "refresh-bad-answers.json")
    result.update(
        mix="3 filter changes : 1 what-if : 1 page open, no think time", pages=sorted({p["page"] for p in pages}),
        raw_old=str(work.raw_dir), raw_new=str(b.raw_dir), new_data=b.meta.get("etl", {}).get("summary"),
        payloads={n: {"total": sum(p["name"] == n for p in checked),
                      "old_differs_from_new": sum(p["name"] == n and x != y for p, x, y in zip(checked, old, new)),
                      "new_differs_from_b_build": sum(p["name"] == n and x != y for p, x, y in zip(checked, new, built_b))}
                  for n in sorted({p["name"] for p in checked})},
        volatile_outputs=volatile, gunicorn_differs_from_test_client=served_differs, answers=counted,
        bad_answers=verdicts.group_bad(bad))
    return result


def table_lines(run: dict) -> list[str]:
    """The refresh run's part of ``make loadtest``'s table."""
    lines = []
    for step, r in run.get("refresh", {}).items():
        if isinstance(r, dict):
            lines.append(f"  {step}: {r['command'].split(' --')[0]} … from {r['started_s']} s to {r['finished_s']} s, "
                         f"exit {r['exit']}")
    publishes = ", ".join(f"{e['file']} {e['at_s']} s" for e in run.get("publishes", []))
    lines.append(f"  files replaced: {publishes or 'none'}")
    lines += verdicts.answer_lines(run)
    p = run["payloads"]
    lines.append(f"  payloads where old ≠ new: {sum(x['old_differs_from_new'] for x in p.values())} of "
                 f"{sum(x['total'] for x in p.values())}; volatile outputs: {run['volatile_outputs'] or 'none'}; "
                 f"gunicorn ≠ test client: {run['gunicorn_differs_from_test_client']}; new answers ≠ B's own build: "
                 + ", ".join(f"{n} {x['new_differs_from_b_build']}" for n, x in p.items()))
    return lines


def goals(run: dict) -> dict:
    refresh, a = run.get("refresh", {}), run["answers"]
    finished = refresh.get("refresh", {}).get("exit") == 0 and "locust_ended_first" not in refresh
    flipped = all(a["by_name"].get(n, {}).get(answers.OLD) and a["by_name"].get(n, {}).get(answers.NEW)
                  for n in a["by_name"])
    return {
        "refresh: 0 failed requests": {"value": run.get("failures"), "met": run.get("failures") == 0},
        "refresh: 0 mixed or unexpected answers": {"value": verdicts.wrong(a), "met": verdicts.wrong(a) == 0},
        "refresh: the publish during the run, old and new answers seen": {
            "value": f"finished {finished}, both seen {bool(flipped)}", "met": finished and bool(flipped)},
        "refresh: nothing volatile, gunicorn = test client": {
            "value": f"{len(run['volatile_outputs'])} volatile, {run['gunicorn_differs_from_test_client']} differ",
            "met": not run["volatile_outputs"] and run["gunicorn_differs_from_test_client"] == 0},
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.refresh",
                                description="internal: record the expected answers for the refresh run")
    sub = p.add_subparsers(dest="command", required=True)
    e = sub.add_parser("expect")
    for name in ("payloads", "models", "cache", "out"):
        e.add_argument(f"--{name}", type=Path, required=True)
    return _record(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
