"""What sign-in costs per request: the same answered-from-cache callback under AUTH=none and
AUTH=local (a signed session cookie, the user re-read from the store), in one run.

``python -m benchmarks.auth_overhead [--requests N] [--warehouse PATH --models DIR]``

A cache hit is the cheapest answer the app gives (no query, no figure), so the gate's share of
it is the largest it can be. Medians and p95 of wall time per request, in-process (Flask test
client, no network), and their ratio. With no warehouse given, a small generated one is built.
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path


def _warehouse(folder: Path) -> tuple[str, Path]:
    from etl.pipeline import run_pipeline
    from etl.sample import write_sample
    from etl.train.run import run_training

    raw = folder / "raw"
    write_sample(raw, sessions=3000, customers=600, seed=7)
    url = str(folder / "warehouse.duckdb")
    run_pipeline(raw, url)
    run_training(url, folder / "models", ["carts", "customers"], offer_cost=None, fast=True, progress=lambda _: None)
    return url, folder / "models"


def _timings(mode: str, folder: Path, requests: int) -> list[float]:
    """Seconds per request for ``requests`` identical overview callbacks (all but the first hit the cache)."""
    os.environ.update(AUTH=mode, STATE_DIR=str(folder / f"state-{mode}"), CACHE_DIR=str(folder / f"cache-{mode}"),
                      SECRET_KEY="benchmark-key-" + "k" * 32)
    from dashboard.app import create_app
    from dashboard.auth.identity import Role, Scope
    from tests.dashboard_generators import harvest_pages, post_json, server_callbacks, valid_body

    app = create_app()
    client = app.server.test_client()
    if mode == "local":
        users = app.server.extensions["shopper_auth"].users
        if users.get("bench") is None:   # the rounds share one state folder per mode
            users.add("bench", Role.VIEWER, Scope(), "benchmark password")
        page = client.get("/login").get_data(as_text=True)
        token = page.split('name="csrf_token" value="')[1].split('"')[0]
        assert client.post("/login", data={"username": "bench", "password": "benchmark password",
                                           "csrf_token": token}).status_code == 302
    callbacks = server_callbacks(client)
    body = next(valid_body(cb, harvest_pages(client, callbacks)) for cb in callbacks if "ov-carts-kpis" in cb["output"])
    post_json(client, body)   # computed and kept: every later one is a hit
    out = []
    for _ in range(requests):
        started = time.perf_counter()
        response = post_json(client, body)
        out.append(time.perf_counter() - started)
        assert response.headers.get("X-Response-Cache") == "hit", response.headers
    return out


def _summary(values: list[float]) -> tuple[float, float]:
    ordered = sorted(values)
    return statistics.median(ordered) * 1000, ordered[int(0.95 * (len(ordered) - 1))] * 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.auth_overhead")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--warehouse")
    parser.add_argument("--models")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        url, models = (args.warehouse, Path(args.models)) if args.warehouse else _warehouse(folder)
        os.environ.update(WAREHOUSE_URL=url, MODELS_DIR=str(models), RAW_DIR=str(folder / "no-raw"), HOST="127.0.0.1")
        # interleaved rounds, so both modes see the same machine load
        results: dict[str, list[float]] = {"none": [], "local": []}
        for _ in range(4):
            for mode in results:
                results[mode] += _timings(mode, folder, args.requests // 4)
    rows = {mode: _summary(values) for mode, values in results.items()}
    for mode, (median, p95) in rows.items():
        print(f"AUTH={mode:<5} cache-hit callback: median {median:.3f} ms, p95 {p95:.3f} ms ({len(results[mode])} requests)")
    print(f"sign-in overhead: median {rows['local'][0] - rows['none'][0]:+.3f} ms "
          f"({rows['local'][0] / rows['none'][0]:.2f}x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
