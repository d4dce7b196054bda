"""The benchmarks still start: ``make bench`` on tiny data, and the load test's payloads.

The real runs (``make bench ROWS=10000000``, ``make loadtest``) take minutes and are not part of
the test suite; see benchmarks/README.md.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
KEYS = ("rows", "callback_ms_p50", "callback_ms_p95", "duckdb_sql_ms_p50", "pandas_ms_p50", "whatif_ms_p50",
        "etl_seconds", "etl_peak_rss_mb")


def _clean_env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("WAREHOUSE_URL", "MODELS_DIR", "RAW_DIR", "CACHE_DIR", "CACHE_REDIS_URL", "URL_PREFIX")}
    return {**env, **extra}


def test_bench_runs_on_tiny_data(tmp_path, dashboard_data):
    """2,000 generated sessions, 2 timed runs; the tiny models of the dashboard fixtures stand
    in for training (``--models``), which would take most of a minute."""
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench", "--rows", "2000", "--runs", "2", "--warmup", "1",
         "--offcube-runs", "0", "--no-profile", "--models", str(dashboard_data["models"]),
         "--work-dir", str(tmp_path / "work"), "--out", str(out)],
        cwd=ROOT, env=_clean_env(), capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    result = json.loads(out.read_text())
    for key in KEYS:
        assert isinstance(result[key], int | float) and result[key] > 0, (key, result.get(key))
    assert result["rows"] == 2000
    assert result["references_match"], result.get("references_mismatches")
    assert result["callback_requests_per_change"] >= 1
    assert set(result["goals"]) and "filter change p50 / p95" in proc.stdout


def test_loadtest_payloads_are_real_callback_requests(dashboard_env, tmp_path):
    from benchmarks import loadtest
    from dashboard.app import create_app

    app = create_app()
    payloads = loadtest.build_payloads(app, dashboard_env["models"])
    assert {p["name"] for p in payloads} == {loadtest.CARTS, loadtest.WHAT_IF}
    client = app.server.test_client()
    for payload in payloads:  # replayed as locust will: the recorded body, nothing else
        response = client.post(payload["path"], json=payload["body"])
        assert response.status_code == 200, payload["body"]["output"][:80]
        assert b'"multi"' in response.data and b"app-error" not in response.data
    # the locustfile loads them (in a subprocess: importing locust monkey-patches the process)
    path = tmp_path / "payloads.json"
    path.write_text(json.dumps(payloads))
    proc = subprocess.run([sys.executable, "-c", "import benchmarks.locustfile as f; print(len(f._PAYLOADS))"],
                          cwd=ROOT, env=_clean_env(LOADTEST_PAYLOADS=str(path)), capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == str(len(payloads))


def test_novel_payloads_are_all_different_and_answered_fresh(dashboard_env, tmp_path, monkeypatch):
    """The novel run's changes: real callback requests, no body twice nor one of the steady
    run's, and each one computed (X-Response-Cache: miss) when the load test sends it."""
    from benchmarks import loadtest, novel
    from dashboard.app import create_app

    app = create_app()
    steady = loadtest.build_payloads(app, dashboard_env["models"])
    payloads = novel.novel_payloads(app, 40, exclude=steady)
    bodies = [json.dumps(p["body"], sort_keys=True) for p in payloads]
    assert len(payloads) == 40 and len(set(bodies)) == 40
    assert not set(bodies) & {json.dumps(p["body"], sort_keys=True) for p in steady}
    assert len({p["change"].split()[0] for p in payloads}) >= 3   # checklists, radios, sliders, clicks
    # a server with its own cache folder, as the load test starts one: none of them is known
    monkeypatch.setenv("CACHE_DIR", str(tmp_path / "server-cache"))
    fresh = create_app().server.test_client()
    for payload in payloads[:10]:
        response = fresh.post(payload["path"], json=payload["body"])
        assert response.status_code == 200 and b"app-error" not in response.data
        assert response.headers["X-Response-Cache"] == "miss"
    proc = subprocess.run([sys.executable, "-c", "import benchmarks.locustfile as f; print(len(f._NOVEL))"],
                          cwd=ROOT, env=_clean_env(LOADTEST_PAYLOADS=str(_write(tmp_path, payloads)),
                                                   LOADTEST_NOVEL="1"),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "40"


def _write(folder, payloads) -> object:
    path = folder / "novel.json"
    path.write_text(json.dumps(payloads))
    return path


def test_novel_cpu_times_each_change_by_kind(dashboard_env, tmp_path, monkeypatch):
    from benchmarks import novel_cpu
    from dashboard.queries import carts

    monkeypatch.setenv("CACHE_DIR", str(tmp_path / "cache"))   # measure() points it at a fresh folder
    build_held = carts.build_held
    result = novel_cpu.measure(30, seed=4, cache_dir=tmp_path / "fresh")
    assert carts.build_held is build_held                       # the counter is taken off again
    on, off, both = (result[k] for k in ("on the cube", "off the cube", "all"))
    assert result["held_sessions_write_s"] > 0 and result["held_sessions_map_ms"] > 0
    assert on["n"] + off["n"] == both["n"] == 30 and on["n"] and off["n"]
    assert 0 < both["min"] <= both["median"] <= both["max"]
