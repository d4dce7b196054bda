"""``make bench ROWS=N BENCH_OUT=path.json``: is the dashboard interactive at N sessions?

    python -m benchmarks.bench --rows 1000000 --out benchmarks/results/bench-1000000.json
    python -m benchmarks.bench --rows 1000000 --backend postgres     # or spark

1. Data: N generated sessions (``python -m etl sample``), customers from
   :func:`benchmarks.workload.customers_for`, ``python -m etl run`` timed with its peak RSS,
   ``python -m etl train --fast`` when models are missing (never part of a timing). All reused
   from ``benchmarks/.work/`` while N and the seed match; ``--fresh`` rebuilds,
   ``--rerun-etl`` re-times the ETL on the same raw files.
2. The real app (``dashboard.app.create_app``) in this process, Flask-Caching detached (there is
   no setting that turns the query cache off), driven through Flask's test client with the
   requests a browser sends (:mod:`benchmarks.dashclient`): open /carts, then a cycle of filter
   changes (:func:`benchmarks.scenarios.carts_script`). One filter change = every callback request
   it triggers, chained ones included; their times are summed (a browser may overlap
   independent ones: the largest single request is reported too).
3. References on the same filters: the same aggregates in hand-written DuckDB SQL (floor) and
   in pandas on the sessions held in memory (naive peer, load time excluded); all three are
   checked to give identical numbers.
4. What-if: a feature change through the what-if callback, and the bare model calls.
5. The same filter changes with the query cache on, and a chart selection on a behaviour that
   is not a cube dimension (the slow path), for the report.

``--backend postgres|spark``: the warehouse built in step 1 is published to a throw-away
PostgreSQL server or Spark folder (:func:`benchmarks.workload.served`; publish and pull timed)
and the dashboard reads it there; the same SQL also runs on that engine (``backend_sql_ms``,
the floor the callback is compared with) and must give the same numbers too.

Results: JSON (``--out``), a table on stdout, and a cProfile of one cycle next to the JSON.
"""
from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import sys
import time
from contextlib import ExitStack
from pathlib import Path

from benchmarks import workload
from benchmarks.bench_report import goals, ratio, table
from benchmarks.workload import stats
from etl.backends import redact


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench", description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, required=True, help="cart sessions to generate")
    p.add_argument("--backend", choices=workload.BACKENDS, default="duckdb",
                   help="warehouse the dashboard reads (default duckdb; postgres and spark are started here)")
    p.add_argument("--out", type=Path,
                   help="JSON result (default benchmarks/results/bench-ROWS.json, bench-BACKEND-ROWS.json)")
    p.add_argument("--runs", type=int, default=24, help="timed filter changes / what-ifs / references (default 24)")
    p.add_argument("--warmup", type=int, default=None,
                   help="untimed runs first (default: one cycle of the script, at least 3)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--customers", type=int, default=None, help="default max(1300, rows // 770)")
    p.add_argument("--work-dir", type=Path, default=workload.WORK_DIR, help="cache of data/warehouse/models")
    p.add_argument("--fresh", action="store_true", help="regenerate data, rerun the ETL and training")
    p.add_argument("--rerun-etl", action="store_true", help="re-time the ETL on the cached raw files")
    p.add_argument("--models", type=Path, default=None, help="use these models instead of training")
    p.add_argument("--offcube-runs", type=int, default=5, help="timed chart selections off the cube (default 5)")
    p.add_argument("--no-pandas", action="store_true", help="skip the pandas reference")
    p.add_argument("--no-profile", action="store_true", help="skip the cProfile of one cycle")
    p.add_argument("--prepare-only", action="store_true", help="only generate, run the ETL and train")
    return p


_T0 = time.perf_counter()


def log(msg: str) -> None:
    print(f"[{time.perf_counter() - _T0:7.1f} s] {msg}", file=sys.stderr, flush=True)


# --- measurements ---------------------------------------------------------------------------


def time_script(client, script, runs: int, warmup: int, start: int = 0) -> tuple[list[dict], int]:
    """Run ``warmup`` then ``runs`` actions of ``script`` cyclically; finish the cycle untimed,
    so the page is back at its initial view. Returns the timed records and the next index."""
    from benchmarks.scenarios import page_state, run_action

    records, i = [], start
    for n in range(warmup + runs):
        action = script[i % len(script)]
        interaction = run_action(client, action)
        i += 1
        if n >= warmup:
            records.append({"action": action.label, "ms": round(interaction.total_ms, 3),
                            "max_ms": round(interaction.max_ms, 3), "requests": len(interaction.requests),
                            "chained": sum(r.chained for r in interaction.requests),
                            "bytes": sum(r.size for r in interaction.requests),
                            "statuses": sorted({r.status for r in interaction.requests}),
                            "state": page_state(client)})
    while i % len(script):
        run_action(client, script[i % len(script)])
        i += 1
    return records, i


def time_calls(func, args_list: list, runs: int, warmup: int) -> tuple[list[float], list]:
    """Call ``func`` ``warmup`` times, then ``runs`` times timed; timed call i gets
    ``args_list[i % len]``, so results line up with the argument list."""
    for n in range(warmup):
        func(*args_list[n % len(args_list)])
    times, results = [], []
    for i in range(runs):
        args = args_list[i % len(args_list)]
        started = time.perf_counter()
        result = func(*args)
        times.append((time.perf_counter() - started) * 1000)
        results.append(result)
    return times, results


def profile_cycle(client, script, path: Path, title: str) -> str:
    from benchmarks.scenarios import run_action

    profiler = cProfile.Profile()
    profiler.enable()
    for action in script:
        run_action(client, action)
    profiler.disable()
    out = io.StringIO()
    out.write(f"== {title}: cProfile of one cycle ({len(script)} actions), sorted by cumulative time ==\n")
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(45)
    out.write("\n== same, sorted by own time ==\n")
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(25)
    with open(path, "a") as handle:
        handle.write(out.getvalue())
    return out.getvalue()


def what_if_bare(models_dir: Path, subject: str, runs: int) -> dict:
    """The model alone on one row (the card's baseline row): predict_proba, the contributions
    and the counterfactual search the what-if callback runs."""
    import pandas as pd

    from dashboard.counterfactual import smallest_change
    from etl.train.card import explainer, load_model

    pipeline, card = load_model(models_dir, subject)
    explained = explainer(pipeline, card)      # built once per fitted model, as the dashboard does
    features = card["features"]
    row = {f: card["baseline"][f] for f in features}
    frame = pd.DataFrame([row], columns=features)
    threshold = float(card["threshold"])
    calls = {
        "predict_proba": lambda: pipeline.predict_proba(frame)[:, 1],
        "contributions": lambda: explained.explain(frame),
        "smallest_change": lambda: smallest_change(lambda f: pipeline.predict_proba(f[features])[:, 1], row,
                                                   card.get("feature_specs", {}), features, threshold),
    }
    out = {"model": card.get("estimator", {}).get("label"), "features": len(features)}
    for name, call in calls.items():
        times, _ = time_calls(call, [()], runs, 3)
        out[f"{name}_ms"] = stats(times)
    return out


# --- main -----------------------------------------------------------------------------------


def run(args: argparse.Namespace, stack: ExitStack) -> dict:
    started_at = time.strftime("%Y-%m-%d %H:%M:%S")
    info = workload.machine()
    prefix = "bench-" if args.backend == "duckdb" else f"bench-{args.backend}-"
    out_path = args.out or workload.RESULTS_DIR / f"{prefix}{args.rows}.json"
    out_path.parent.mkdir(parents=True, exist_ok=True)
    profile_path = out_path.with_name(out_path.stem + "-profile.txt")
    profile_path.unlink(missing_ok=True)

    work = workload.prepare(args.rows, seed=args.seed, customers=args.customers, work_dir=args.work_dir,
                            fresh=args.fresh, rerun_etl=args.rerun_etl, models_dir=args.models, log=log)
    served = stack.enter_context(workload.served(args.backend, work.warehouse, log=log))
    os.environ.update(work.env)
    os.environ["WAREHOUSE_URL"] = served.url
    os.environ["CACHE_DIR"] = str(work.folder / "cache")
    os.environ.pop("CACHE_REDIS_URL", None)
    os.environ.pop("URL_PREFIX", None)

    import duckdb

    from benchmarks import references, scenarios
    from benchmarks.dashclient import DashClient
    from dashboard.app import create_app
    from dashboard.cache import cache
    from etl.train.card import read_card

    log("building the app ...")
    app = create_app()
    extensions = app.server.extensions.setdefault("cache", {})
    attached = dict(extensions)
    extensions.clear()  # query cache off: every memoized query runs
    client = DashClient(app)

    result: dict = {"rows": args.rows, "backend": args.backend, "started_at": started_at, **served.timings}
    started = time.perf_counter()
    client.open(scenarios.CARTS_PATH)
    result["page_open_cold_ms"] = round((time.perf_counter() - started) * 1000, 1)
    log(f"/carts opened cold in {result['page_open_cold_ms']:.0f} ms (builds this process's cart cube)")
    opens = []
    for _ in range(3):
        opens.append(client.open(scenarios.CARTS_PATH).total_ms)
    result["page_open_warm_ms"] = stats(opens)

    script = scenarios.carts_script(client)
    warmup = args.warmup if args.warmup is not None else max(3, len(script))
    log(f"carts: {warmup} warm-up + {args.runs} timed filter changes, query cache off ...")
    records, _ = time_script(client, script, args.runs, warmup)
    totals = [r["ms"] for r in records]
    callback = stats(totals)
    result.update(callback_ms_p50=callback["p50"], callback_ms_p95=callback["p95"], callback_ms=callback,
                  callback_max_request_ms=stats([r["max_ms"] for r in records]),
                  callback_requests_per_change=max(r["requests"] for r in records),
                  callback_response_kb_p50=round(stats([r["bytes"] for r in records])["p50"] / 1024, 1))
    per_action: dict[str, list[float]] = {}
    for r in records:
        per_action.setdefault(r["action"], []).append(r["ms"])
    result["callback_by_action_ms_p50"] = {k: stats(v)["p50"] for k, v in per_action.items()}

    # --- references on the same filters --------------------------------------------------
    from dashboard.cart_cube import cart_bins

    edges = {column: bins.edges for column, bins in cart_bins().items()}
    specs = [references.Spec.from_query(r["state"]) for r in records]
    con = duckdb.connect(str(work.warehouse), read_only=True)
    log(f"DuckDB SQL reference: {args.runs} runs ...")
    sql_times, sql_results = time_calls(lambda s: references.sql_aggregates(con, s, edges),
                                        [(s,) for s in specs], args.runs, min(warmup, 3))
    sql = stats(sql_times)
    result.update(duckdb_sql_ms_p50=sql["p50"], duckdb_sql_ms_p95=sql["p95"], duckdb_sql_ms=sql)
    result["duckdb_threads"] = con.execute("SELECT current_setting('threads')").fetchone()[0]
    engine_results = []
    if args.backend != "duckdb":
        engine = stack.enter_context(workload.engine_sql(served.url))
        log(f"{args.backend} SQL reference: {args.runs} runs ...")
        engine_times, engine_results = time_calls(lambda s: references.sql_aggregates(engine, s, edges),
                                                  [(s,) for s in specs], args.runs, min(warmup, 3))
        floor = stats(engine_times)
        result.update(backend_sql_ms_p50=floor["p50"], backend_sql_ms_p95=floor["p95"], backend_sql_ms=floor)

    pandas_results = []
    if not args.no_pandas:
        started = time.perf_counter()
        frame = references.load_frame(con)
        result["pandas_load_s"] = round(time.perf_counter() - started, 2)
        result["pandas_frame_mb"] = round(frame.memory_usage(deep=True).sum() / 2**20, 1)
        log(f"pandas reference: frame loaded in {result['pandas_load_s']} s "
            f"({result['pandas_frame_mb']} MB); {args.runs} runs ...")
        pandas_times, pandas_results = time_calls(lambda s: references.pandas_aggregates(frame, s, edges),
                                                  [(s,) for s in specs], args.runs, 3)
        pd_stats = stats(pandas_times)
        result.update(pandas_ms_p50=pd_stats["p50"], pandas_ms_p95=pd_stats["p95"], pandas_ms=pd_stats)
        del frame
    else:
        result.update(pandas_ms_p50=None, pandas_ms_p95=None)

    # --- they all give the same numbers -----------------------------------------------------
    problems, checked = [], set()
    for record, spec, sql_result, pandas_result, engine_result in zip(
            records, specs, sql_results, pandas_results or [None] * len(records),
            engine_results or [None] * len(records)):
        if spec.key() in checked:
            continue
        checked.add(spec.key())
        mine = references.dashboard_aggregates(record["state"])
        for name, other in (("sql", sql_result), ("pandas", pandas_result), (f"{args.backend} sql", engine_result)):
            if other is not None and other != mine:
                problems.append(f"{record['state']!r} dashboard vs {name}: "
                                + "; ".join(references.differences(mine, other)))
    result["references_match"] = not problems
    result["references_checked_filters"] = len(checked)
    if problems:
        result["references_mismatches"] = problems[:10]
        log("WARNING: the references disagree with the dashboard:\n  " + "\n  ".join(problems[:5]))

    # --- what-if -----------------------------------------------------------------------------
    whatif = {}
    for subject in ("carts", "customers"):
        try:
            card = read_card(work.models_dir, subject)
        except Exception as exc:  # noqa: BLE001 - a missing model is reported, not fatal
            whatif[subject] = {"skipped": str(exc)}
            continue
        wi_script = scenarios.what_if_script(client, subject, card.get("feature_specs", {}))
        wi_warmup = args.warmup if args.warmup is not None else max(3, len(wi_script))
        log(f"what-if ({subject}): {wi_warmup} warm-up + {args.runs} timed feature changes ...")
        wi_records, _ = time_script(client, wi_script, args.runs, wi_warmup)
        whatif[subject] = {"callback_ms": stats([r["ms"] for r in wi_records]),
                           "requests_per_change": max(r["requests"] for r in wi_records),
                           "bare": what_if_bare(work.models_dir, subject, args.runs)}
    result["whatif"] = whatif
    measured = [w for w in whatif.values() if "callback_ms" in w]
    if measured:
        worst = max(measured, key=lambda w: w["callback_ms"]["p50"])
        result.update(whatif_ms_p50=worst["callback_ms"]["p50"], whatif_ms_p95=worst["callback_ms"]["p95"],
                      whatif_model_ms_p50=max(w["bare"]["predict_proba_ms"]["p50"] for w in measured))
    else:
        result.update(whatif_ms_p50=None, whatif_ms_p95=None, whatif_model_ms_p50=None)

    # --- off the cube, and with the query cache on -------------------------------------------
    client.open(scenarios.CARTS_PATH)
    off_script = scenarios.off_cube_script(client)
    if args.offcube_runs > 0:
        log(f"chart selection off the cube: 1 warm-up + {args.offcube_runs} timed ...")
        off_records, _ = time_script(client, off_script, 2 * args.offcube_runs, 2)
        result["offcube_action"] = off_script[0].label
        result["offcube_ms"] = stats([r["ms"] for r in off_records if r["action"] == off_script[0].label])
        result["offcube_ms_p50"] = result["offcube_ms"]["p50"]

    if not args.no_profile:
        profile_cycle(client, script, profile_path, "carts filter changes, query cache off")
        if measured:
            subject = next(s for s, w in whatif.items() if "callback_ms" in w)
            card = read_card(work.models_dir, subject)
            wi_script = scenarios.what_if_script(client, subject, card.get("feature_specs", {}))
            profile_cycle(client, wi_script, profile_path, f"what-if ({subject}) feature changes")
            client.open(scenarios.CARTS_PATH)
        result["profile"] = str(profile_path)

    extensions.update(attached)  # query cache on (a fresh folder per workload)
    with app.server.app_context():
        cache.clear()
    client.open(scenarios.CARTS_PATH)
    log(f"carts with the query cache on: {warmup} warm-up + {args.runs} timed ...")
    cached, _ = time_script(client, script, args.runs, warmup)
    cached_stats = stats([r["ms"] for r in cached])
    result.update(callback_cached_ms_p50=cached_stats["p50"], callback_cached_ms_p95=cached_stats["p95"])
    con.close()

    # --- ETL, ratios, goals ------------------------------------------------------------------
    etl = work.meta.get("etl", {})
    result.update(etl_seconds=etl.get("seconds"), etl_peak_rss_mb=etl.get("peak_rss_mb"), etl=etl,
                  etl_reused=etl.get("measured_at", "") < started_at,
                  customers=work.meta.get("customers"), seed=args.seed, train=work.meta.get("train"),
                  sample_seconds=work.meta.get("sample_seconds"))
    # the floor is the SQL of the engine the dashboard reads
    result["ratio_callback_to_sql"] = ratio(result["callback_ms_p50"],
                                            result.get("backend_sql_ms_p50") or result["duckdb_sql_ms_p50"])
    result["ratio_pandas_to_callback"] = ratio(result.get("pandas_ms_p50"), result["callback_ms_p50"])
    result["goals"] = goals(result)
    result["filters"] = sorted({r["state"] or "(none)" for r in records})
    result["runs"], result["warmup"] = args.runs, warmup
    result["machine"] = info
    result["machine"]["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    result["versions"] = workload.library_versions()
    result["workload"] = {"key": work.key, "folder": str(work.folder), "warehouse": str(work.warehouse),
                          "served_from": redact(served.url),
                          "warehouse_mb": round(work.warehouse.stat().st_size / 2**20, 1),
                          "models": str(work.models_dir)}
    result["query_cache"] = "off (Flask-Caching detached in-process) unless the key says cached"
    result["details"] = {"carts": records}
    result["finished_at"] = time.strftime("%Y-%m-%d %H:%M:%S")
    out_path.write_text(json.dumps(result, indent=1, default=str))
    result["out"] = str(out_path)
    return result


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.rows < 1 or args.runs < 1:
        print("error: --rows and --runs must be ≥ 1", file=sys.stderr)
        return 2
    if args.prepare_only:
        work = workload.prepare(args.rows, seed=args.seed, customers=args.customers, work_dir=args.work_dir,
                                fresh=args.fresh, rerun_etl=args.rerun_etl, models_dir=args.models, log=log)
        print(json.dumps(work.meta, indent=1, default=str))
        return 0
    with ExitStack() as stack:      # a server or folder started for --backend is stopped on any exit
        result = run(args, stack)
    print(table(result))
    print(f"\nwritten {result['out']}" + (f", profile {result['profile']}" if result.get("profile") else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
