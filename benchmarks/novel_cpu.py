"""Server CPU of novel Carts filter changes in-process, by kind: answered from the cart cube, or
carrying a selection on a behaviour outside it (off-cube, a scan of the held sessions).

    python -m benchmarks.novel_cpu [--rows N | --raw DIR] [--count 260] [--seed 11] [--out path.json]

Without ``--rows`` or ``--raw``: $RAW_DIR, else ../shared/data, else 4,300 generated sessions.

The app is ``create_app()`` on the prepared workload (as ``make bench`` / ``make loadtest``
prepare it, cached in benchmarks/.work/), driven through Flask's test client with no HTTP.
The changes are the load test's novel ones (:func:`benchmarks.novel.novel_payloads`): each a
filter state never requested before. They are recorded by one app, then sent to a second one
with a fresh cache folder, so no cache answers (the first 20 warm it up). CPU is ``time.process_time()`` around each request, which includes
DuckDB's threads; a request counts as off-cube when it called ``build_held``. Before the
changes, the held sessions' first write (what one worker per host does at start) and a later
map are timed (wall clock).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import workload
from benchmarks.loadtest import raw_source

WARM_UP = 20


def measure(count: int, seed: int, cache_dir: Path | None = None) -> dict:
    """CPU per change by kind; the second app's cache (and held sessions) in ``cache_dir``
    (a new temporary folder when None)."""
    from benchmarks.novel import novel_payloads
    from dashboard import held_sessions as held_sessions_module, release
    from dashboard.app import create_app
    from dashboard.bins import cart_bins
    from dashboard.held_sessions import held_sessions
    from dashboard.queries import carts
    from dashboard.source import table
    from etl.schema import SESSIONS

    payloads = novel_payloads(create_app(), count + WARM_UP, seed=seed)
    os.environ["CACHE_DIR"] = str(cache_dir or tempfile.mkdtemp(prefix="novel-cpu-"))
    app = create_app()
    with app.server.app_context(), release.held():   # what the warm-up does first: write, then map
        started = time.perf_counter()
        held_sessions()
        written = time.perf_counter() - started
        started = time.perf_counter()
        held_sessions_module.load_sessions(table(SESSIONS, scoped=False), cart_bins(),
                                           held_sessions_module.folder_for(release.pinned(), cart_bins()))
        mapped = time.perf_counter() - started
    client = app.server.test_client()
    calls = []
    build_held = carts.build_held
    carts.build_held = lambda *args: (calls.append(1), build_held(*args))[1]
    kinds: dict[str, list[float]] = {"on the cube": [], "off the cube": []}
    try:
        for index, payload in enumerate(payloads):
            before, started = len(calls), time.process_time()
            response = client.post(payload["path"], json=payload["body"])
            spent = 1000 * (time.process_time() - started)
            if response.status_code != 200:
                raise AssertionError(f"novel change {index} answered HTTP {response.status_code}")
            if index >= WARM_UP:
                kinds["off the cube" if len(calls) > before else "on the cube"].append(spent)
    finally:
        carts.build_held = build_held
    kinds["all"] = kinds["on the cube"] + kinds["off the cube"]
    return {"held_sessions_write_s": round(written, 2), "held_sessions_map_ms": round(1000 * mapped, 1),
            **{kind: {**workload.stats(values), "median": round(statistics.median(values), 2) if values else None}
               for kind, values in kinds.items()}}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    data = p.add_mutually_exclusive_group()
    data.add_argument("--rows", type=int, help="generated cart sessions instead of the real data")
    data.add_argument("--raw", type=Path, help="raw folder (default: $RAW_DIR, else ../shared/data when present)")
    p.add_argument("--count", type=int, default=260, help="timed novel changes (default 260)")
    p.add_argument("--seed", type=int, default=11)
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/novel-cpu.json"))
    args = p.parse_args(argv)
    raw = None if args.rows else raw_source(args.raw)
    work = workload.prepare(None if raw else (args.rows or 4300), raw_dir=raw,
                            log=lambda m: print(m, file=sys.stderr, flush=True))
    os.environ.update(work.env, STATE_DIR=tempfile.mkdtemp(prefix="novel-cpu-state-"), LOG_LEVEL="WARNING",
                      CACHE_DIR=tempfile.mkdtemp(prefix="novel-cpu-"))
    os.environ.pop("CACHE_REDIS_URL", None)
    result = {"workload": work.key, "etl": work.meta.get("etl", {}).get("summary"), "count": args.count,
              "seed": args.seed, "machine": workload.machine(),
              "cpu_ms_per_change": measure(args.count, args.seed)}
    result["machine"]["loadavg_at_end"] = list(os.getloadavg())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    for kind, numbers in result["cpu_ms_per_change"].items():
        if isinstance(numbers, dict):
            print(f"{kind:>13}: {numbers['n']:4d} changes, CPU median {numbers['median']} ms, "
                  f"p95 {numbers['p95']} ms, mean {numbers['mean']} ms")
        else:
            print(f"{kind}: {numbers}")
    print(f"written {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
