"""The publish storm of ``make loadtest``: many publishes under load, to catch what one refresh
rarely hits — a request that reads two versions of the data because a publish landed while
it was being answered.

One refresh (benchmarks/refresh.py) replaces the warehouse twice and the models once in a
minute; a request overlaps a publish only by chance. Here the served files alternate between
A's and B's complete builds (warehouse + trained models, both built by the project's CLI, see
:func:`benchmarks.refresh.prepare_b`) every ``period`` seconds for ``duration`` seconds, each
time published the way the CLI publishes (``etl/warehouse.py``: a new file renamed over the
warehouse; ``etl/train/card.py``: each pickle, then its card, renamed into place). Every state
the server can see between publishes is A or B, or A's warehouse with some of B's model files
(or the reverse) for the microseconds between renames. Every response is classified as in the
refresh run: with per-request consistency, each one is A's answer or B's.
"""
from __future__ import annotations

import functools
import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

from benchmarks import refresh, verdicts, workload
from benchmarks.locustrun import Action, run_locust
from benchmarks.server import Gunicorn

SUBJECTS = ("carts", "customers")


def publish(build: workload.Workload, warehouse: Path, models: Path) -> None:
    """``build``'s release into the served files, in the order training publishes: its
    (content-addressed) pickles, then the warehouse that names them (the switch), then the
    JSON cards."""
    for pickle in build.models_dir.glob("*-*.pkl"):
        if not (models / pickle.name).exists():
            staged = models / f".{pickle.name}.storm-tmp"
            shutil.copyfile(pickle, staged)
            os.replace(staged, models / pickle.name)
    tmp = warehouse.with_name(warehouse.name + ".storm-tmp")
    shutil.copyfile(build.warehouse, tmp)
    os.replace(tmp, warehouse)
    for subject in SUBJECTS:
        staged = models / f".{subject}.json.storm-tmp"
        shutil.copyfile(build.models_dir / f"{subject}.json", staged)
        os.replace(staged, models / f"{subject}.json")


def storm(a: workload.Workload, b: workload.Workload, warehouse: Path, models: Path,
          period: float, duration: float, start: float = 5, settle: float = 5) -> Action:
    def act(started_at: float, locust: subprocess.Popen) -> dict:
        time.sleep(start)
        swaps, t0 = 0, time.time()
        while time.time() - t0 < duration and locust.poll() is None:
            publish(b if swaps % 2 == 0 else a, warehouse, models)
            swaps += 1
            time.sleep(period)
        time.sleep(settle)
        if locust.poll() is None:
            locust.send_signal(signal.SIGTERM)
        return {"storm": {"publishes": swaps, "period_s": period, "from_s": start,
                          "to_s": round(time.time() - started_at - settle, 1)}}

    return act


def run(work: workload.Workload, checked: list[dict], folder: Path, *, users: int, workers: int,
        period: float, duration: float, log) -> dict:
    """The ``runs.storm`` entry: ``checked`` are the refresh run's payloads (callbacks + page opens)."""
    b = refresh.prepare_b(work, log)
    served = folder / "storm-served"
    shutil.rmtree(served, ignore_errors=True)
    (served / "models").mkdir(parents=True)
    warehouse, models = served / "warehouse.duckdb", served / "models"
    path = folder / "payloads-storm.json"
    path.write_text(json.dumps(checked))
    record = functools.partial(refresh.expected_answers, path, cache=folder / "cache-expect")
    log(f"[storm] recording the {len(checked)} answers on B's and on A's build ...")
    publish(b, warehouse, models)
    new = record(warehouse, models, folder / "storm-b.json")
    publish(work, warehouse, models)
    old = record(warehouse, models, folder / "storm-a.json")

    shutil.rmtree(folder / "cache-storm", ignore_errors=True)
    server = Gunicorn(workers, {"WAREHOUSE_URL": str(warehouse), "MODELS_DIR": str(models),
                                "CACHE_DIR": str(folder / "cache-storm")}, folder / "gunicorn-storm.log")
    seen_path = folder / "answers-storm.json"
    seen_path.unlink(missing_ok=True)
    try:
        log(f"[storm] gunicorn {workers} workers on {server.url}; warming up ...")
        server.wait_ready(checked)
        log(f"[storm] locust {users} users; A ↔ B published every {period:g} s for {duration:g} s ...")
        result = run_locust(server.url, path, users, int(duration + 60), folder / "locust-storm", server,
                            storm(work, b, warehouse, models, period, duration),
                            env={"LOADTEST_ANSWERS": str(seen_path)})
    finally:
        server.stop()
    seen = json.loads(seen_path.read_text()) if seen_path.exists() else {}
    counted = verdicts.classify_seen(seen, checked, old, new, result["started_at"])
    bad = counted.pop("bad")
    if bad:
        (folder / "storm-bad-answers.json").write_text(json.dumps(bad, indent=1, ensure_ascii=False))
        result["bad_answers_file"] = str(folder / "storm-bad-answers.json")
    result.update(mix="3 filter changes : 1 what-if : 1 page open, no think time",
                  errors_logged=_errors(folder / "gunicorn-storm.log"), answers=counted,
                  bad_answers=verdicts.group_bad(bad))
    return result


_EXCEPTION = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception))\b:?\s?(.{0,60})")


def _errors(log: Path) -> dict[str, int]:
    """Exceptions in the server log (tracebacks the app logged and turned into messages), by
    class and the first words of their message."""
    counts: dict[str, int] = {}
    for line in log.read_text(errors="replace").splitlines() if log.exists() else []:
        found = _EXCEPTION.match(line)
        if found:
            # the app cuts long log lines; the first words of a message are enough to group them
            key = f"{found.group(1)}: {' '.join(found.group(2).split(' … [')[0].split()[:3])}".rstrip(": ")
            counts[key] = counts.get(key, 0) + 1
    return counts


def table_lines(run: dict) -> list[str]:
    s = run.get("storm", {})
    lines = [f"  {s.get('publishes')} publishes (A ↔ B, warehouse + 4 model files each), one every "
             f"{s.get('period_s')} s from {s.get('from_s')} s to {s.get('to_s')} s"]
    lines += verdicts.answer_lines(run)
    for error, count in run.get("errors_logged", {}).items():
        lines.append(f"  server log: {count} × {error}")
    return lines


def goals(run: dict) -> dict:
    a = run["answers"]
    return {"storm: 0 failed requests": {"value": run.get("failures"), "met": run.get("failures") == 0},
            "storm: 0 mixed or unexpected answers": {"value": verdicts.wrong(a), "met": verdicts.wrong(a) == 0}}
