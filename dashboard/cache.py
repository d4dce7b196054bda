"""Query cache shared by the gunicorn workers, keyed by the data version and the identity.

Keys are (function, code version, data version, identity, arguments): a rebuilt warehouse or a
retrained model has a new version, so its answers get new keys and an old answer is never
served; the old entries just age out. The identity part (role and row-level scope,
:meth:`dashboard.auth.identity.Identity.key`) keeps a scoped user's answer from ever being
served to anyone else, and the reverse. Outside a Flask app (unit tests, scripts) the
functions run uncached.
"""
from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import ParamSpec, TypeVar

from flask import Flask, current_app, has_app_context
from flask_caching import Cache

from dashboard.auth.session import current
from dashboard.config import DashboardConfig
from dashboard.source import data_version

cache = Cache()
_code = {"stamp": ""}
_lock_dir: dict[str, Path | None] = {"path": None}

P = ParamSpec("P")
R = TypeVar("R")


def code_stamp() -> str:
    """Fingerprint of the dashboard's code: a deploy must not read answers pickled by the old one."""
    digest = hashlib.sha256()
    for path in sorted(Path(__file__).resolve().parent.rglob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def init_cache(server: Flask, config: DashboardConfig) -> None:
    _code["stamp"] = code_stamp()
    if config.cache_redis_url:
        _lock_dir["path"] = None
        settings = {"CACHE_TYPE": "RedisCache", "CACHE_REDIS_URL": config.cache_redis_url}
    else:
        # Entries and locks in separate folders: when it prunes, cachelib reads every file of
        # its folder as an entry and logs a traceback for anything else (a lock file).
        entries, locks = config.cache_dir / "entries", config.cache_dir / "locks"
        for folder in (entries, locks):
            folder.mkdir(parents=True, exist_ok=True)
        _lock_dir["path"] = locks
        # threshold: entries kept before the oldest are pruned; answers are small frames
        settings = {"CACHE_TYPE": "FileSystemCache", "CACHE_DIR": str(entries), "CACHE_THRESHOLD": 5000}
    cache.init_app(server, config={**settings, "CACHE_DEFAULT_TIMEOUT": config.cache_timeout,
                                   "CACHE_KEY_PREFIX": "shopper-insights:"})


@contextlib.contextmanager
def build_lock(name: str) -> Iterator[None]:
    """Let one worker of this host compute an expensive shared answer while the others wait
    for it (and then read it from the cache). A no-op without a filesystem cache."""
    folder = _lock_dir["path"]
    if folder is None or not _active():
        yield
        return
    with open(folder / f"{name}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _active() -> bool:
    return has_app_context() and cache in current_app.extensions.get("cache", {})


def cache_active() -> bool:
    """Whether this app has the shared cache attached (the benchmark detaches it)."""
    return _active()


def code_version() -> str:
    """The :func:`code_stamp` taken when the cache was set up (hashing the files per request
    would cost more than most answers)."""
    return _code["stamp"]


def memoized(version: Callable[[], object] = data_version, *,
             shared: bool = False) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Cache a query function's result under its name, ``version()``, the current identity
    and its arguments.

    Arguments must have a stable ``repr`` (the filter dataclasses, strings, numbers).
    ``shared``: the answer is the same for every user (keyed without the identity); only for
    values derived once per release from unscoped tables (``table(name, scoped=False)``).
    """

    def decorate(func: Callable[P, R]) -> Callable[P, R]:
        name = f"{func.__module__}.{func.__qualname__}"

        @functools.wraps(func)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            stamp = version()  # also raises Unavailable when there is nothing to read
            if not _active():
                return func(*args, **kwargs)
            who = "*" if shared else current().key()
            raw = f"{name}|{_code['stamp']}|{stamp}|{who}|{args!r}|{sorted(kwargs.items())!r}"
            key = "q:" + hashlib.sha256(raw.encode()).hexdigest()
            try:
                hit = cache.get(key)
            except Exception:  # noqa: BLE001 - an unreachable Redis must not take the page down
                hit = None
            if hit is not None:
                return hit[0]
            value = func(*args, **kwargs)
            try:
                cache.set(key, (value,))
            except Exception:  # noqa: BLE001
                pass
            return value

        return wrapper

    return decorate
