"""gunicorn settings for ``make run`` and ``make loadtest``: ``gunicorn -c gunicorn.conf.py wsgi:server``.

Environment (read when gunicorn starts; the Makefile exports its HOST, PORT and WORKERS):

| variable         | default            | meaning                                              |
|------------------|--------------------|------------------------------------------------------|
| ``HOST``, ``PORT`` | ``127.0.0.1``, ``8050`` | where to listen                               |
| ``WORKERS``      | 2 × cores + 1      | synchronous worker processes                         |
| ``LOG_LEVEL``    | ``info``           | gunicorn's own log (the dashboard reads it too)      |
| ``TIMEOUT``      | ``60``             | seconds one request may take before its worker is killed |
| ``MAX_REQUESTS`` | ``5000``           | requests before a worker is replaced (0 = never)     |
| ``CONTROL_SOCKET`` | (none)           | path of gunicorn's control socket (``gunicornc``); off when unset |

Numbers below come from ``make bench`` / ``make loadtest`` on this project's 2-core machine
(benchmarks/README.md).
"""
from __future__ import annotations

import os


def _int(name: str, default: int, low: int = 0) -> int:
    """An integer setting from the environment; a wrong value stops the start with its name."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SystemExit(f"gunicorn.conf.py: {name} must be a whole number, got {raw!r}") from None
    if value < low:
        raise SystemExit(f"gunicorn.conf.py: {name} must be at least {low}, got {value}")
    return value


def _cores() -> int:
    # the CPUs this process may run on (a container or taskset limits them), like `nproc`
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


# --- where ---------------------------------------------------------------------------------

# Loopback by default. Another address needs a sign-in mode (AUTH=local, oidc or proxy) or
# AUTH_ALLOW_ANONYMOUS=1 on purpose: the check below stops the master before any worker
# starts, with one line saying what to set (dashboard/auth/settings.py).
bind = [f"{os.environ.get('HOST', '127.0.0.1').strip() or '127.0.0.1'}:{_int('PORT', 8050, 1)}"]


def _check_access() -> None:
    from dashboard.auth.settings import AuthConfigError, get_auth_config

    try:
        get_auth_config()
    except AuthConfigError as exc:
        raise SystemExit(f"gunicorn.conf.py: {exc}") from None


_check_access()


def _bound_host(address: str) -> str:
    """The host of a gunicorn bind: ``0.0.0.0:80`` -> ``0.0.0.0``, ``[::]:80`` -> ``::``; a unix
    socket or an inherited descriptor counts as public (a proxy in front may expose it)."""
    if address.startswith(("unix:", "fd://")) or ":" not in address:
        return address
    return address.rsplit(":", 1)[0].strip("[]")


def on_starting(server) -> None:
    """Check the addresses really bound (``-b`` and GUNICORN_CMD_ARGS override ``bind`` above),
    and tell the workers: they read HOST to decide whether visitors without sign-in are the
    operator (loopback) or the open-access visitor with a banner."""
    from dashboard.auth.settings import AuthConfigError, check_open_access, is_loopback

    hosts = [_bound_host(address) for address in server.cfg.bind]
    try:
        check_open_access((os.environ.get("AUTH") or "none").strip().lower(), hosts)
    except AuthConfigError as exc:
        raise SystemExit(f"gunicorn.conf.py: {exc}") from None
    public = [h for h in hosts if not is_loopback(h)]
    os.environ["HOST"] = public[0] if public else hosts[0]

# --- workers -------------------------------------------------------------------------------

# Synchronous workers, 2 × cores + 1 (gunicorn's rule of thumb): a callback is CPU-bound
# (31-37 ms of server CPU per request in `make loadtest`, mostly Dash/Plotly) and holds the
# GIL, so threads would not add throughput; the extra processes cover the moments a worker
# waits on DuckDB I/O or rebuilds the cube after a refresh. Each worker holds its own cube and
# models: 360-370 MB RSS each at real-data size after a load test (shared libraries counted
# in each), so more workers cost memory, not speed.
workers = _int("WORKERS", 2 * _cores() + 1, 1)
worker_class = "sync"

# The app is NOT preloaded in the master: wsgi.py's warm-up opens a DuckDB connection and
# starts a thread, and neither is safe to carry across a fork into several processes. Each
# worker imports and warms up on its own (~2 s of CPU, see max_requests).
preload_app = False

# A request may take this long before the master kills its worker (and the request fails).
# The slowest legitimate request measured: a chart selection outside the cube at 10 M
# sessions, 8.6 s, 23.7 s on a loaded machine; the first request after a refresh rebuilds the
# cube (5-9 s at 10 M). 60 s leaves 2.5x room over the worst measured while a stuck worker
# (a hung query) is still recycled within a minute. gunicorn's default, 30 s, is too close.
timeout = _int("TIMEOUT", 60, 1)

# On SIGTERM (stop) or SIGHUP (reload) a worker finishes its request for up to this long, then
# is killed. 30 s covers every request measured (the 23.7 s above) without making a deploy
# wait a full `timeout` for a request that is probably stuck.
graceful_timeout = 30

# Replace each worker after about MAX_REQUESTS requests, as insurance against slow memory
# growth in long-lived processes (pandas/Plotly/Ibis caches, fragmentation). A sync worker only
# exits between requests, so no request is lost. A restart costs ~2 s of CPU (imports, app,
# warm-up reading the cube from the shared cache, both models: 2.0 CPU-s, 2.9 s wall measured);
# 5,000 requests are ~170 CPU-s of work at 31-37 ms each, so restarts cost ~1 % and happen
# every ~13 min per worker at full load (5 workers, ~32 req/s). The jitter (10 %) keeps
# workers that started together from restarting in the same second.
max_requests = _int("MAX_REQUESTS", 5000)
max_requests_jitter = max_requests // 10

# Request line and header sizes: gunicorn's defaults, written out because they also bound the
# length of an access-log line (the request line is logged; 4 KB at most).
limit_request_line = 4094
limit_request_field_size = 8190

# The worker heartbeat file lives in memory: on a disk-backed /tmp (containers) a slow fsync
# can stall the heartbeat and make the master kill healthy workers.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None

# gunicorn >= 25.1 opens a control socket at one path per user ($HOME/.gunicorn/gunicorn.ctl)
# and unlinks whatever is there when it starts: a second server on the machine (`make loadtest`
# next to `make run`, another checkout) would take it over from the first. Nothing here uses
# `gunicornc`; set CONTROL_SOCKET to a path of its own to get it.
control_socket = os.environ.get("CONTROL_SOCKET") or "gunicorn.ctl"
control_socket_disable = not os.environ.get("CONTROL_SOCKET")

# --- logs ------------------------------------------------------------------------------------

# Both to the process's stdout/stderr: the service manager (systemd, docker) collects them.
accesslog = "-"
errorlog = "-"
loglevel = (os.environ.get("LOG_LEVEL") or "info").strip().lower()

# One line per request: client, request line (bounded by limit_request_line), status, bytes,
# duration in ms, and the request id the dashboard puts in its X-Request-ID response header,
# so an access-log line can be matched with the app's own log lines of the same request ("-"
# when a response has none, e.g. a static file served before the app).
# An embed link's token is a credential: the request line is logged with it blanked out.
logger_class = "dashboard.access_log.RedactingLogger"
access_log_format = '%(h)s "%(r)s" %(s)s %(B)sB %(M)sms rid=%({x-request-id}o)s'
