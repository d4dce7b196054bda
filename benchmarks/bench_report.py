"""What ``make bench`` concludes from its measurements: the goals (at 10 M sessions on the
2-core machine, from the issue), the ratios and the table printed after a run
(benchmarks/bench.py measures)."""
from __future__ import annotations


GOALS = {  # at 10 M sessions on the 2-core machine (the issue)
    "callback_ms_p95": 150.0,
    "callback_vs_sql": 2.0,           # callback p50 ≤ 2 × SQL p50
    "pandas_vs_callback": 10.0,       # pandas p50 ≥ 10 × callback p50
    "whatif_ms_p50": 20.0,
    "etl_seconds": 60.0,
    "etl_peak_rss_mb": 2048.0,
}
GOAL_ROWS = 10_000_000


def ratio(a, b):
    return round(a / b, 2) if a is not None and b else None


def goals(r: dict) -> dict:
    def check(value, goal, ok):
        return {"value": value, "goal": goal, "met": None if value is None else bool(ok)}

    return {
        "filter change p95 ≤ 150 ms": check(r["callback_ms_p95"], GOALS["callback_ms_p95"],
                                            r["callback_ms_p95"] is not None and r["callback_ms_p95"] <= 150),
        "filter change ≤ 2× raw SQL (p50)": check(r["ratio_callback_to_sql"], GOALS["callback_vs_sql"],
                                                  (r["ratio_callback_to_sql"] or 99) <= 2),
        "≥ 10× faster than pandas (p50)": check(r["ratio_pandas_to_callback"], GOALS["pandas_vs_callback"],
                                               (r["ratio_pandas_to_callback"] or 0) >= 10),
        "what-if ≤ 20 ms (p50)": check(r.get("whatif_ms_p50"), GOALS["whatif_ms_p50"],
                                      (r.get("whatif_ms_p50") or 1e9) <= 20),
        "ETL ≤ 60 s": check(r["etl_seconds"], GOALS["etl_seconds"], (r["etl_seconds"] or 1e9) <= 60),
        "ETL peak RSS ≤ 2 GB": check(r["etl_peak_rss_mb"], GOALS["etl_peak_rss_mb"],
                                     (r["etl_peak_rss_mb"] or 1e9) <= 2048),
    }


def _fmt(value, unit: str = "") -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        # ratios far below 1 (a callback answered from memory vs a slow engine) keep two digits
        text = f"{value:.2f}" if 0 < abs(value) < 0.1 else f"{value:,.1f}" if abs(value) < 1000 else f"{value:,.0f}"
    else:
        text = f"{value:,}"
    return text + unit


def table(r: dict) -> str:
    wi = r.get("whatif", {})
    backend = r.get("backend", "duckdb")
    rows = [
        ("sessions (customers)", f"{r['rows']:,} ({_fmt(r.get('customers'))})", ""),
        ("warehouse backend", backend, ""),
        ("ETL wall time / peak RSS", f"{_fmt(r['etl_seconds'], ' s')} / {_fmt(r['etl_peak_rss_mb'], ' MB')}"
         + (" (cached)" if r.get("etl_reused") else ""), "≤ 60 s / ≤ 2048 MB"),
        ("/carts open cold / warm p50", f"{_fmt(r['page_open_cold_ms'], ' ms')} / "
         f"{_fmt(r['page_open_warm_ms']['p50'], ' ms')}", ""),
        ("filter change p50 / p95 (cache off)", f"{_fmt(r['callback_ms_p50'], ' ms')} / "
         f"{_fmt(r['callback_ms_p95'], ' ms')}", "p95 ≤ 150 ms"),
        ("  requests per change, response", f"{r['callback_requests_per_change']}, "
         f"{_fmt(r['callback_response_kb_p50'], ' KB')}", ""),
        ("filter change p50 / p95 (cache on)", f"{_fmt(r.get('callback_cached_ms_p50'), ' ms')} / "
         f"{_fmt(r.get('callback_cached_ms_p95'), ' ms')}", ""),
        ("DuckDB SQL p50 / p95" + ("" if r.get("backend_sql_ms_p50") else " (floor)"),
         f"{_fmt(r['duckdb_sql_ms_p50'], ' ms')} / {_fmt(r['duckdb_sql_ms_p95'], ' ms')}", ""),
        *([(f"{backend} SQL p50 / p95 (floor)", f"{_fmt(r['backend_sql_ms_p50'], ' ms')} / "
            f"{_fmt(r['backend_sql_ms_p95'], ' ms')}", ""),
           (f"{backend} publish / pull (whole warehouse)", f"{_fmt(r.get('backend_publish_s'), ' s')} / "
            f"{_fmt(r.get('backend_pull_s'), ' s')}", "")] if r.get("backend_sql_ms_p50") else []),
        ("pandas p50 / p95 (naive peer)", f"{_fmt(r.get('pandas_ms_p50'), ' ms')} / "
         f"{_fmt(r.get('pandas_ms_p95'), ' ms')}", ""),
        ("callback ÷ SQL (p50)", _fmt(r["ratio_callback_to_sql"], "×"), "≤ 2×"),
        ("pandas ÷ callback (p50)", _fmt(r["ratio_pandas_to_callback"], "×"), "≥ 10×"),
        ("same numbers (dashboard = SQL = pandas)", "yes" if r["references_match"] else "NO", ""),
        ("chart selection off the cube p50", _fmt(r.get("offcube_ms_p50"), " ms"), ""),
    ]
    for subject, w in wi.items():
        if "callback_ms" not in w:
            rows.append((f"what-if {subject}", "skipped", ""))
            continue
        b = w["bare"]
        rows.append((f"what-if {subject} callback p50 / p95", f"{_fmt(w['callback_ms']['p50'], ' ms')} / "
                     f"{_fmt(w['callback_ms']['p95'], ' ms')}", "p50 ≤ 20 ms"))
        rows.append(("  bare predict / contrib. / advice p50", f"{_fmt(b['predict_proba_ms']['p50'], ' ms')} / "
                     f"{_fmt(b['contributions_ms']['p50'], ' ms')} / {_fmt(b['smallest_change_ms']['p50'], ' ms')}",
                     ""))
    width = max(len(a) for a, _, _ in rows) + 2
    vwidth = max(len(b) for _, b, _ in rows) + 2
    lines = [f"{'metric':<{width}}{'value':<{vwidth}}goal (at 10 M)", "-" * (width + vwidth + 16)]
    lines += [f"{a:<{width}}{b:<{vwidth}}{c}" for a, b, c in rows]
    lines.append("")
    lines.append("goals" + ("" if r["rows"] >= GOAL_ROWS else f" (they apply at {GOAL_ROWS:,} sessions)") + ":")
    for name, g in r["goals"].items():
        mark = {True: "met", False: "MISSED", None: "n/a"}[g["met"]]
        lines.append(f"  {mark:<7}{name} (measured {_fmt(g['value'])})")
    m = r["machine"]
    lines.append("")
    lines.append(f"machine: {m['cpu_count']} CPU ({m['cpu_model']}), {m['ram_gb']} GB RAM, Python {m['python']}, "
                 f"load average {m['loadavg_at_start'][0]} at start, {m['loadavg_at_end'][0]} at end")
    return "\n".join(lines)
