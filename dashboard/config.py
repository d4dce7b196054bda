"""Dashboard-only settings, read from the environment at call time (never at import).

| variable          | default          | meaning                                                   |
|-------------------|------------------|-----------------------------------------------------------|
| ``URL_PREFIX``    | ``/``            | sub-path the app is served under, e.g. ``/bi/``; the proxy forwards the path unchanged |
| ``FRAME_ANCESTORS`` | ``'self'``     | value of ``Content-Security-Policy: frame-ancestors`` (who may embed the app) |
| ``CACHE_DIR``     | ``data/cache``   | filesystem query cache shared by the gunicorn workers of one host |
| ``CACHE_REDIS_URL`` | (unset)        | ``redis://host:6379/0``: use Redis instead, for several hosts |
| ``CACHE_TIMEOUT`` | ``3600``         | seconds a cached query result is kept (keys carry the data version, so this only bounds disk use) |
| ``REFRESH_FAST``  | (unset)          | ``1``: "Refresh data now" trains with the small search grids (demos, tests) |
| ``LOG_LEVEL``     | ``INFO``         | ``DEBUG``, ``INFO``, ``WARNING``, ``ERROR`` or ``CRITICAL``; every line carries the request id and is cut at 2,000 characters |

Warehouse and models locations come from :func:`etl.settings.get_settings`.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from etl.settings import PROJECT_ROOT

# Dash's assets folder (CSS, our scripts, and make's plotly-charts.min.js)
ASSETS_DIR = PROJECT_ROOT / "assets"
# A CSP source list: keywords, schemes, hosts with optional wildcards/ports/paths. Anything
# else (quotes in odd places, semicolons, newlines) could inject other directives.
_FRAME_SOURCE = re.compile(r"^('self'|'none'|[a-z][a-z0-9+.-]*:|(?:[a-z][a-z0-9+.-]*://)?[*a-z0-9.-]+(?::\d+|:\*)?(?:/[^\s;,']*)?)$",
                           re.IGNORECASE)
_PREFIX = re.compile(r"^/(?:[A-Za-z0-9._~-]+/)*$")


@dataclass(frozen=True)
class DashboardConfig:
    url_prefix: str
    frame_ancestors: str
    cache_dir: Path
    cache_redis_url: str | None
    cache_timeout: int
    log_level: str
    refresh_fast: bool = False


def normalise_prefix(value: str) -> str:
    """``bi`` / ``/bi`` / ``/bi/`` -> ``/bi/``; Dash wants a leading and a trailing slash."""
    prefix = "/" + value.strip().strip("/") + "/" if value.strip().strip("/") else "/"
    if not _PREFIX.match(prefix):
        raise ValueError(f"URL_PREFIX must be a path like /bi/, got {value!r}")
    return prefix


def check_frame_ancestors(value: str) -> str:
    sources = value.split()
    if not sources or not all(_FRAME_SOURCE.match(s) for s in sources):
        raise ValueError("FRAME_ANCESTORS must be a space-separated CSP source list such as "
                         f"\"'self' https://portal.example.com\", got {value!r}")
    return " ".join(sources)


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def check_log_level(value: str) -> str:
    level = value.strip().upper()
    if level not in LOG_LEVELS:
        raise ValueError(f"LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, got {value!r}")
    return level


def get_config() -> DashboardConfig:
    timeout = os.environ.get("CACHE_TIMEOUT", "3600")
    if not re.fullmatch(r"[0-9]{1,9}", timeout):  # not isdigit(): "²".isdigit() is true, int("²") fails
        raise ValueError(f"CACHE_TIMEOUT must be a whole number of seconds, got {timeout!r}")
    cache_dir = Path(os.environ.get("CACHE_DIR", "data/cache")).expanduser()
    return DashboardConfig(
        url_prefix=normalise_prefix(os.environ.get("URL_PREFIX", "/")),
        frame_ancestors=check_frame_ancestors(os.environ.get("FRAME_ANCESTORS", "'self'")),
        cache_dir=cache_dir if cache_dir.is_absolute() else PROJECT_ROOT / cache_dir,
        cache_redis_url=os.environ.get("CACHE_REDIS_URL") or None,
        cache_timeout=int(timeout),
        log_level=check_log_level(os.environ.get("LOG_LEVEL", "INFO")),
        refresh_fast=os.environ.get("REFRESH_FAST", "").strip() == "1",
    )
