"""Static bundles at brotli's best quality (11), compressed once per file and kept for every worker.

The JavaScript and CSS a first visit downloads (Dash's component suites, ``/assets/``) never
change for a given file, so the 7.5 s of CPU that quality 11 costs for plotly.min.js is paid once
per file and host, not per request: the result is kept in the query cache of
:mod:`dashboard.cache` (the workers' shared folder, or Redis) under the file's identity. Until it
is there a request never waits for it: it gets flask-compress's on-the-fly level 4 (fast) and a
background thread of this worker computes quality 11, one file at a time per worker and one
computation per file and host (a lock file in the cache folder), at a lower CPU priority than
requests. ``BestBrotli.prime`` queues the bundles every page loads at start-up (the warm-up).

Everything else (callback answers, pages, clients that do not accept br) is left to
flask-compress as before. Measured on the first visit to /carts (benchmarks/first_load.py):
plotly.min.js 1.41 -> 1.11 MB, dash_ag_grid.min.js 0.35 -> 0.28 MB, the visit 2.10 -> 1.69 MB.
With make's partial plotly.js (``/assets/plotly-charts.min.js``) dcc.Graph never asks for
plotly.min.js, so the warm-up compresses that bundle instead.
"""
from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import pkgutil
import queue
import sys
import threading
from pathlib import Path

import brotli
from dash.development.base_component import ComponentRegistry
from dash.fingerprint import check_fingerprint
from flask import Flask, Response, request
# the same choice flask-compress makes (q-values, identity, *), so both hooks agree on "br"
from flask_compress.flask_compress import _choose_algorithm

from dashboard.cache import cache, cache_active
from dashboard.config import ASSETS_DIR

log = logging.getLogger(__name__)

QUALITY = 11
# Bundles are immutable per identity; a month keeps them through any release cycle while letting
# Redis forget the bundles of versions no longer deployed.
KEEP_SECONDS = 30 * 24 * 3600
SUITES = "_dash-component-suites/"
ASSETS = "assets/"
# Built by make (plotly_bundle/): Plotly.js with only our trace types. Loaded from the assets on
# every page, it sets window.Plotly, which dcc.Graph then uses instead of fetching plotly.min.js.
CHARTS_BUNDLE = "plotly-charts.min.js"
FULL_PLOTLY = ("plotly", "package_data/plotly.min.js")


def _suite_identity(package: str, path_in_pkg: str, size: int) -> str | None:
    """Package file, size and modification time: the same key whether the URL has Dash's
    fingerprint or not (plotly.min.js has none), so ``prime`` can fill what browsers ask for."""
    module = sys.modules.get(package)
    folder = getattr(module, "__file__", None)
    if folder is None:
        return None
    try:
        mtime = (Path(folder).parent / path_in_pkg).stat().st_mtime_ns
    except OSError:
        return None
    return f"suite|{package}|{path_in_pkg}|{size}|{mtime}"


def _asset_identity(name: str) -> str | None:
    """An assets file's name, size and modification time (what ``prime`` can compute too)."""
    try:
        path = (ASSETS_DIR / name).resolve()
        if not path.is_relative_to(ASSETS_DIR.resolve()):
            return None
        stat = path.stat()
    except (OSError, ValueError):
        return None
    return f"asset|{name}|{stat.st_size}|{stat.st_mtime_ns}"


def _key(identity: str) -> str:
    return f"br{QUALITY}:" + hashlib.sha256(identity.encode()).hexdigest()


def _identity(prefix: str, response: Response) -> str | None:
    """Which bundle this response is, or None for anything that is not a static bundle."""
    if request.path.startswith(prefix + SUITES):
        args = request.view_args or {}
        package, path = args.get("package_name"), args.get("fingerprinted_path")
        if not package or not path:
            return None
        return _suite_identity(package, check_fingerprint(path)[0], response.content_length or 0)
    if request.path.startswith(prefix + ASSETS):
        return _asset_identity(request.path[len(prefix + ASSETS):])
    return None


class BestBrotli:
    """``server.extensions["static_compression"]``: this worker's quality-11 bodies and the
    background thread that computes them. ``prime()`` is called from the warm-up thread."""

    def __init__(self, server: Flask, lock_dir: Path) -> None:
        self.server, self.lock_dir = server, lock_dir
        # bodies already read from the shared cache (a handful of bundles, ~2 MB): a hit then
        # costs no file or Redis read
        self._ready: dict[str, bytes] = {}
        self._running: set[str] = set()   # queued or being computed in this worker
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._worker: threading.Thread | None = None
        self._guard = threading.Lock()

    def ready(self, key: str) -> bytes | None:
        body = self._ready.get(key)
        if body is not None:
            return body
        try:
            body = cache.get(key)
        except Exception:  # noqa: BLE001 - an unreachable Redis must not take the bundle down
            return None
        if isinstance(body, bytes):
            self._ready[key] = body
            return body
        return None

    def running(self) -> int:
        """Computations in progress in this worker (the benchmark waits for none)."""
        with self._guard:
            return len(self._running)

    def start(self, key: str, data: bytes) -> None:
        with self._guard:
            if key in self._running:
                return
            self._running.add(key)
            self._jobs.put((key, data))
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(target=self._work, name=f"brotli-{QUALITY}", daemon=True)
                self._worker.start()

    def _work(self) -> None:
        """One file at a time per worker: quality 11 holds ~70 MB for plotly.js, and a cold start
        asks for a dozen bundles at once. Requests first: this thread's nice value is its own
        (Linux), and brotli releases the GIL, so the worker keeps answering while it runs."""
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
        while True:
            self._compress_and_keep(*self._jobs.get())

    def _compress_and_keep(self, key: str, data: bytes) -> None:
        try:
            with self.server.app_context(), open(self.lock_dir / f"{key.replace(':', '-')}.lock", "w") as handle:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:   # another worker of this host is on it; its result is shared
                    return
                if self.ready(key) is None:   # else finished by another worker meanwhile
                    body = brotli.compress(data, quality=QUALITY)
                    # kept here too: with the shared cache away (a Redis outage) this worker
                    # must not compress the bundle again on every request
                    cache.set(key, body, timeout=KEEP_SECONDS)
                    self._ready[key] = body
        except Exception:  # noqa: BLE001 - level 4 keeps being served; the next request retries
            log.warning("brotli quality %s of a static bundle failed", QUALITY, exc_info=True)
        finally:
            with self._guard:
                self._running.discard(key)

    def prime(self) -> int:
        """Start quality 11 of every component library's main bundle and of plotly.js (the
        bytes of a first visit) in the background; returns how many were started."""
        started = 0
        with self.server.app_context():
            if not cache_active():
                return 0
            for identity, data in _first_visit_files():
                if self.ready(_key(identity)) is None:
                    self.start(_key(identity), data)
                    started += 1
        return started


def _first_visit_files() -> list[tuple[str, bytes]]:
    """(identity, bytes) of the bundles in :func:`eager_bundles` and of the charts bundle."""
    found = []
    for package, path in eager_bundles():
        try:
            data = pkgutil.get_data(package, path)
        except (OSError, ImportError):
            continue
        identity = _suite_identity(package, path, len(data or b""))
        if data and identity:
            found.append((identity, data))
    identity = _asset_identity(CHARTS_BUNDLE)
    if identity:
        found.append((identity, (ASSETS_DIR / CHARTS_BUNDLE).read_bytes()))
    return found


def eager_bundles() -> list[tuple[str, str]]:
    """(package, path) of the scripts every page loads: the registered libraries' bundles that
    are not loaded on demand, and plotly.js (``async: "eager"`` in dcc, drawn on every page)
    unless make's charts bundle stands in for it."""
    found = []
    for module_name in dict.fromkeys([*ComponentRegistry.registry, "dash.dcc"]):
        for resource in getattr(sys.modules.get(module_name), "_js_dist", []):
            package, path = resource.get("namespace"), resource.get("relative_package_path")
            if (not resource.get("dynamic") and resource.get("async") in (None, "eager")
                    and isinstance(path, str) and package):
                found.append((package, path))
    if (ASSETS_DIR / CHARTS_BUNDLE).is_file():
        found = [bundle for bundle in found if bundle != FULL_PLOTLY]
    return list(dict.fromkeys(found))


def install(server: Flask, prefix: str, cache_dir: Path) -> None:
    """Register after flask-compress's hook (Flask runs ``after_request`` hooks last-registered
    first, so this one sees the uncompressed bundle and flask-compress leaves a body that
    already has a Content-Encoding alone)."""
    lock_dir = cache_dir / "locks"
    lock_dir.mkdir(parents=True, exist_ok=True)
    bundles = server.extensions["static_compression"] = BestBrotli(server, lock_dir)
    mimetypes = set(server.config["COMPRESS_MIMETYPES"])
    algorithms = tuple(server.config["COMPRESS_ALGORITHM"])
    min_size = server.config["COMPRESS_MIN_SIZE"]

    @server.after_request
    def best_brotli(response: Response) -> Response:
        if (request.method not in ("GET", "HEAD") or response.status_code != 200
                or response.mimetype not in mimetypes or "Content-Encoding" in response.headers
                or (response.content_length or 0) < min_size or not cache_active()
                or _choose_algorithm(algorithms, request.headers.get("Accept-Encoding", "")) != "br"):
            return response
        identity = _identity(prefix, response)
        if identity is None:
            return response
        key = _key(identity)
        body = bundles.ready(key)
        if body is None:
            # send_file's stream is read once into memory (a few hundred kB at most) so the
            # background thread has the bytes; flask-compress then sends level 4 with a length
            response.direct_passthrough = False
            bundles.start(key, response.get_data())
            return response
        if hasattr(response.response, "close"):   # send_file's open file: replaced, not sent
            response.response.close()
        response.direct_passthrough = False
        response.set_data(body)   # also sets Content-Length
        response.headers["Content-Encoding"] = "br"
        vary = response.headers.get("Vary")
        if not vary:
            response.headers["Vary"] = "Accept-Encoding"
        elif "accept-encoding" not in vary.lower():
            response.headers["Vary"] = f"{vary}, Accept-Encoding"
        etag, weak = response.get_etag()
        if etag and not weak:
            # flask-compress's validator for br: a copy of either quality decodes to the same file
            response.set_etag(f"{etag}:br")
        return response.make_conditional(request)
