"""Bytes a first visit to /carts transfers: HTML, JavaScript bundles, CSS, the layout, the
callback graph and the first callbacks — measured in real Chromium (Debian's, driven by
Playwright, as the browser tests), with an empty browser cache.

    python -m benchmarks.first_load [--path /carts] [--out benchmarks/results/first_load.json]

The app (``create_app()``, as gunicorn serves it) runs in this process behind werkzeug on a
free loopback port, on the load test's data (the published files when they are there). Three
visits, two as Chromium sends them (``Accept-Encoding: gzip, deflate, br, zstd``) and one with
``Accept-Encoding: identity`` (nothing compressed): ``cold`` right after start (static bundles
at flask-compress's level 4 while their brotli quality 11 is computed in the background),
``compressed`` once the warm-up's quality-11 bundles are ready (what a visitor gets from a
server up for ~20 s on 2 cores; dashboard/static_compression.py) and ``uncompressed``.
Bytes are the encoded bodies plus response headers of every request until the page is idle
(``Request.sizes()``). Goal (issue 9): under 1.5 MB compressed.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

from benchmarks import workload

GOAL_BYTES = 1.5 * 1024 * 1024
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def _kind(url: str, resource: str) -> str:
    if "_dash-update-component" in url:
        return "callbacks"
    if "_dash-layout" in url or "_dash-dependencies" in url:
        return "layout + callback graph"
    return {"script": "JavaScript", "stylesheet": "CSS", "document": "HTML"}.get(resource, resource)


def visit(browser, base_url: str, path: str, encoding: str | None) -> dict:
    """One visit with an empty cache; bytes per kind of resource."""
    headers = {"Accept-Encoding": encoding} if encoding else {}
    context = browser.new_context(base_url=base_url, extra_http_headers=headers)
    page = context.new_page()
    finished = []
    page.on("requestfinished", lambda request: finished.append(request))
    page.goto(path)
    page.wait_for_selector("h1")
    page.wait_for_load_state("networkidle")
    page.wait_for_function("() => !document.querySelector('[data-dash-is-loading=\"true\"]')")
    page.wait_for_timeout(500)
    by_kind: dict[str, dict] = defaultdict(lambda: {"requests": 0, "bytes": 0})
    encodings: dict[str, int] = defaultdict(int)
    files = []
    for request in finished:
        sizes = request.sizes()
        size = sizes["responseBodySize"] + sizes["responseHeadersSize"]
        files.append((size, request.url.replace(base_url, "").split("?")[0]))
        entry = by_kind[_kind(request.url, request.resource_type)]
        entry["requests"] += 1
        entry["bytes"] += size
        response = request.response()
        encodings[(response.headers.get("content-encoding") if response else None) or "none"] += 1
    graphs = page.locator(".js-plotly-plot").count()
    context.close()
    total = sum(v["bytes"] for v in by_kind.values())
    return {"accept_encoding": encoding or "chromium's default", "requests": len(finished), "bytes": total,
            "mb": round(total / 1024 / 1024, 3), "by_kind": dict(by_kind), "content_encodings": dict(encodings),
            "charts_drawn": graphs, "largest": [{"path": f, "bytes": b} for b, f in sorted(files, reverse=True)[:12]]}


def measure(path: str, raw: Path | None) -> dict:
    from playwright.sync_api import sync_playwright
    from werkzeug.serving import make_server

    work = workload.prepare(None if raw else 4300, raw_dir=raw, log=lambda m: None)
    os.environ.update(work.env)
    cache_dir = work.folder / "cache-first-load"
    shutil.rmtree(cache_dir, ignore_errors=True)   # a cold start: no quality-11 bundle kept yet
    os.environ["CACHE_DIR"] = str(cache_dir)
    from dashboard.app import create_app

    app = create_app().server
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base_url = f"http://127.0.0.1:{server.server_port}"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            try:
                cold = visit(browser, base_url, path, None)
                app.extensions["static_compression"].prime()   # as wsgi.py's warm-up does
                started = time.monotonic()
                while app.extensions["static_compression"].running():
                    time.sleep(0.2)
                waited = round(time.monotonic() - started, 1)
                compressed = visit(browser, base_url, path, None)
                plain = visit(browser, base_url, path, "identity")
            finally:
                browser.close()
    finally:
        server.shutdown()
        thread.join(timeout=10)
    return {"path": path, "measured_at": time.strftime("%Y-%m-%d %H:%M:%S"), "cold": cold,
            "quality_11_wait_s": waited, "compressed": compressed, "uncompressed": plain,
            "goal_bytes": GOAL_BYTES, "goal_met": compressed["bytes"] <= GOAL_BYTES}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.first_load", description=__doc__.splitlines()[0])
    p.add_argument("--path", default="/carts")
    p.add_argument("--raw", type=Path, default=None, help="raw folder (default: ../shared/data when present)")
    p.add_argument("--out", type=Path, default=workload.RESULTS_DIR / "first_load.json")
    args = p.parse_args(argv)
    raw = args.raw or (workload.REAL_DATA if (workload.REAL_DATA / "carts").is_dir() else None)
    result = measure(args.path, raw)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    for name in ("cold", "compressed", "uncompressed"):
        r = result[name]
        print(f"{name:<13} {r['mb']:.2f} MB in {r['requests']} requests ({r['accept_encoding']}); "
              + ", ".join(f"{k} {v['bytes'] / 1024:.0f} KB" for k, v in sorted(r["by_kind"].items())))
    print(f"goal ≤ 1.5 MB compressed: {'met' if result['goal_met'] else 'MISSED'}; written {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
