"""Query cache shared by the gunicorn workers (a folder) or by every host (Redis), keyed by the
data version and the identity.

Keys are (function, code version, data version, identity, arguments): a rebuilt warehouse or a
retrained model has a new version, so its answers get new keys and an old answer is never
served; the old entries just age out. The identity part (role and row-level scope,
:meth:`dashboard.auth.identity.Identity.key`) keeps a scoped user's answer from ever being
served to anyone else, and the reverse. Outside a Flask app (unit tests, scripts) the
functions run uncached.

With ``CACHE_REDIS_URL`` the cache is :class:`SharedRedisCache`: when Redis goes away, every
call is a miss (reads find nothing, writes are dropped) instead of an error, so every page
and everything else that uses the cache (response cache, sign-out revocation, the login
throttle, static bundles) keeps answering, uncached; see :class:`Outage` for how long a
request may wait on a dead Redis and what is logged. :func:`build_lock` is then a Redis lock,
so one process of the whole cluster computes an expensive shared value (the cart cube) while
the others wait and read it from the cache.
"""
from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from flask import Flask, current_app, has_app_context
from flask_caching import Cache
from flask_caching.backends.rediscache import RedisCache
from redis.exceptions import LockError, RedisError

from dashboard.auth.session import current
from dashboard.config import DashboardConfig
from dashboard.source import data_version

log = logging.getLogger(__name__)

cache = Cache()
_code = {"stamp": ""}
LOCKS = "shopper_build_locks"   # app.extensions key of this app's FileLocks / RedisLocks

# A Redis on the same network answers in well under a millisecond; these bound what a request
# can lose to one that does not answer (a host gone without a reset: packets dropped). The
# read timeout leaves room for the largest value, the cube at 10 M sessions (a few MB).
# Both can be changed in the URL: redis://host:6379/0?socket_timeout=5&socket_connect_timeout=1
CONNECT_TIMEOUT_S = 0.5
READ_TIMEOUT_S = 2.0
# After a failure Redis is left alone this long: requests meanwhile are answered uncached
# without touching the network, then one call tries again (so caching resumes within this
# long of Redis coming back).
RETRY_AFTER_S = 2.0
# A build lock expires by itself after LOCK_TTL_S (a holder killed mid-build cannot block the
# others longer): gunicorn kills a request after 60 s anyway. A waiter stops waiting after
# LOCK_WAIT_S and computes the value itself: 30 s covers the slowest cube build measured
# (23.7 s at 10 M sessions on a loaded machine, gunicorn.conf.py).
LOCK_TTL_S = 60
LOCK_WAIT_S = 30.0

P = ParamSpec("P")
R = TypeVar("R")


def code_stamp() -> str:
    """Fingerprint of the dashboard's code: a deploy must not read answers pickled by the old one."""
    digest = hashlib.sha256()
    for path in sorted(Path(__file__).resolve().parent.rglob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


# --- Redis that fails soft ------------------------------------------------------------------


class Outage:
    """Whether this process's Redis is answering. After a failure every cache call is a miss for
    RETRY_AFTER_S (no network at all), then the next call tries again. An outage is logged
    once when it starts (a warning: each process says it once, not each request) and once
    when Redis answers again."""

    def __init__(self, where: str, retry_after: float = RETRY_AFTER_S) -> None:
        self.where, self.retry_after = where, retry_after
        self._lock = threading.Lock()
        self._down_since: float | None = None
        self._retry_at = 0.0

    def usable(self) -> bool:
        return self._down_since is None or time.monotonic() >= self._retry_at

    def failed(self, exc: BaseException) -> None:
        with self._lock:
            now = time.monotonic()
            self._retry_at = now + self.retry_after
            if self._down_since is not None:
                return
            self._down_since = now
        log.warning("cache: Redis at %s does not answer (%s: %s); answering uncached, trying again every %g s",
                    self.where, type(exc).__name__, str(exc)[:200], self.retry_after)

    def answered(self) -> None:
        if self._down_since is None:   # the common case: no lock taken
            return
        with self._lock:
            since, self._down_since = self._down_since, None
        if since is not None:
            log.info("cache: Redis at %s answers again after %.0f s; caching resumes",
                     self.where, time.monotonic() - since)


def _soft(miss: Callable[..., Any]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A cache operation that answers ``miss(*its arguments)`` instead of raising when Redis
    does not answer: what a cache that remembers nothing would answer."""

    def decorate(op: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(op)
        def guarded(self: SharedRedisCache, *args: Any, **kwargs: Any) -> Any:
            if not self.outage.usable():
                return miss(*args, **kwargs)
            try:
                result = op(self, *args, **kwargs)
            except (RedisError, OSError) as exc:   # unreachable, timed out, refused, out of memory
                self.outage.failed(exc)
                return miss(*args, **kwargs)
            self.outage.answered()
            return result

        return guarded

    return decorate


class SharedRedisCache(RedisCache):
    """flask-caching's RedisCache for ``CACHE_REDIS_URL`` with short timeouts, no retries and
    every operation soft (:func:`_soft`): a dead Redis is a cache that remembers nothing."""

    def __init__(self, *args: Any, outage: Outage, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.outage = outage

    @classmethod
    def factory(cls, app: Flask, config: dict[str, Any], args: list[Any], kwargs: dict[str, Any]) -> SharedRedisCache:
        from redis import Redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        from etl.backends import redact

        url = config["CACHE_REDIS_URL"]
        # redis-py retries a failed command 10 times with back-off by default: seconds per
        # request while Redis is down. No retry: a pooled connection that a restarted Redis
        # closed is noticed and reopened before use anyway. The URL's own options win.
        client = Redis.from_url(url, socket_connect_timeout=CONNECT_TIMEOUT_S, socket_timeout=READ_TIMEOUT_S,
                                retry=Retry(NoBackoff(), 0))
        return cls(client, default_timeout=kwargs["default_timeout"], key_prefix=config.get("CACHE_KEY_PREFIX"),
                   outage=Outage(redact(url)))

    get = _soft(lambda *_: None)(RedisCache.get)
    get_many = _soft(lambda *keys: [None] * len(keys))(RedisCache.get_many)
    has = _soft(lambda *_: False)(RedisCache.has)
    set = _soft(lambda *_, **__: False)(RedisCache.set)
    add = _soft(lambda *_, **__: False)(RedisCache.add)
    set_many = _soft(lambda *_, **__: [])(RedisCache.set_many)
    delete = _soft(lambda *_: False)(RedisCache.delete)
    delete_many = _soft(lambda *_: [])(RedisCache.delete_many)
    inc = _soft(lambda *_, **__: None)(RedisCache.inc)
    dec = _soft(lambda *_, **__: None)(RedisCache.dec)
    clear = _soft(lambda: False)(RedisCache.clear)


# --- build locks ----------------------------------------------------------------------------


class FileLocks:
    """``flock`` on a file per name: the workers of one host (the filesystem cache is per host).
    The kernel releases the lock of a killed holder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @contextlib.contextmanager
    def hold(self, name: str, wait: float | None = None) -> Iterator[None]:
        """``wait`` is RedisLocks' bound; a local lock is waited for as long as its holder lives."""
        with open(self.folder / f"{name}.lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


class RedisLocks:
    """redis-py's ``Lock`` per name: one holder in the whole cluster. It expires after
    LOCK_TTL_S; a waiter gives up after ``wait`` seconds, and anyone proceeds unlocked while
    Redis does not answer (the value is then computed more than once, never not at all)."""

    def __init__(self, backend: SharedRedisCache, prefix: str) -> None:
        self.backend, self.prefix = backend, prefix

    @contextlib.contextmanager
    def hold(self, name: str, wait: float) -> Iterator[None]:
        outage = self.backend.outage
        lock, held, started = None, False, time.monotonic()
        if outage.usable():
            lock = self.backend._write_client.lock(f"{self.prefix}lock:{name}", timeout=LOCK_TTL_S, sleep=0.05,
                                                   blocking_timeout=wait)
            try:
                held = lock.acquire()
            except (RedisError, OSError) as exc:
                outage.failed(exc)
            else:
                outage.answered()
                waited = time.monotonic() - started
                if not held:
                    log.warning("build lock %s: still taken after %.0f s; computing here too", name, waited)
                elif waited >= 0.5:
                    log.info("build lock %s: waited %.1f s for another process", name, waited)
        try:
            yield
        finally:
            if held:
                try:
                    lock.release()
                except (LockError, RedisError, OSError):
                    pass   # expired while held, or Redis is gone: it expires by itself


def init_cache(server: Flask, config: DashboardConfig) -> None:
    _code["stamp"] = code_stamp()
    prefix = "shopper-insights:"
    if config.cache_redis_url:
        settings = {"CACHE_TYPE": f"{__name__}.SharedRedisCache", "CACHE_REDIS_URL": config.cache_redis_url}
    else:
        # Entries and locks in separate folders: when it prunes, cachelib reads every file of
        # its folder as an entry and logs a traceback for anything else (a lock file).
        entries, locks = config.cache_dir / "entries", config.cache_dir / "locks"
        for folder in (entries, locks):
            folder.mkdir(parents=True, exist_ok=True)
        server.extensions[LOCKS] = FileLocks(locks)
        # threshold: entries kept before the oldest are pruned; answers are small frames
        settings = {"CACHE_TYPE": "dashboard.file_cache.PrunedFileSystemCache", "CACHE_DIR": str(entries),
                    "CACHE_THRESHOLD": 5000}
    cache.init_app(server, config={**settings, "CACHE_DEFAULT_TIMEOUT": config.cache_timeout,
                                   "CACHE_KEY_PREFIX": prefix})
    if config.cache_redis_url:
        server.extensions[LOCKS] = RedisLocks(server.extensions["cache"][cache], prefix)


@contextlib.contextmanager
def build_lock(name: str, wait: float = LOCK_WAIT_S) -> Iterator[None]:
    """Let one process compute an expensive shared answer while the others wait for it (and
    then read it from the cache): the workers of this host with the filesystem cache, every
    process of the cluster with Redis (which a waiter stops waiting for after ``wait`` s). A
    no-op outside an app with the cache attached."""
    locks = current_app.extensions.get(LOCKS) if _active() else None
    if locks is None:
        yield
        return
    with locks.hold(name, wait):
        yield


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
    Such a value without arguments (bins, the cart cube, quality summaries: a handful per
    release) is logged when it is computed and kept, so the log shows which process of the
    cluster built it and how long it took.
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
            except Exception:  # noqa: BLE001 - a broken entry or backend is a miss, never an error page
                hit = None
            if hit is not None:
                return hit[0]
            started = time.perf_counter()
            value = func(*args, **kwargs)
            try:
                kept = cache.set(key, (value,))
            except Exception:  # noqa: BLE001
                kept = False
            if kept and shared and not args and not kwargs:
                log.info("computed %s in %.2f s and kept it in the shared cache", name, time.perf_counter() - started)
            return value

        return wrapper

    return decorate
