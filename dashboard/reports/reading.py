"""Reading the warehouse as a report's recipient, outside any web request.

The query layer learns who is asking from ``flask.g.identity`` inside a request
(:func:`dashboard.auth.session.current`) and pins one warehouse release per request
(:mod:`dashboard.release`). A report builds such a request around its queries: a plain Flask
app (not the Dash app: creating that registers pages and callbacks in Dash's globals, which
would disturb a web worker that builds a report from the Reports page), the shared query cache
(so a report reuses the dashboard's cached answers and the reverse, keyed by identity), and a
test request whose identity is the recipient. The release is pinned with
:func:`dashboard.release.held` for the whole report, so every number comes from one warehouse
file even if a publish happens meanwhile; releases are held by ``release.OUTSIDE_APP``, the
process-wide holder, which retires them as the warehouse is replaced.
"""
from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from flask import Flask, g

from dashboard import release
from dashboard.auth.identity import Identity
from dashboard.cache import init_cache
from dashboard.config import get_config

log = logging.getLogger(__name__)


def _server() -> Flask:
    # a new app per report: cheap (milliseconds), and the cache settings are read now, like the
    # rest of the configuration, so a changed CACHE_DIR is used by the next report
    server = Flask("dashboard.reports")
    init_cache(server, get_config())
    return server


@contextlib.contextmanager
def acting_as(identity: Identity) -> Iterator[None]:
    """Run the block as a request by ``identity``, with the current warehouse release pinned."""
    server = _server()
    with server.test_request_context("/"):
        g.identity = identity
        with release.held():
            yield


def warehouse_kpis() -> dict[str, float | None] | None:
    """The whole warehouse's KPI snapshot (:mod:`etl.kpi_snapshot`) from the pinned release,
    for the KPI history; None when it cannot be read."""
    from etl.kpi_snapshot import snapshot

    try:
        return snapshot(release.pinned().connection())[1]
    except Exception as exc:  # noqa: BLE001 - the report stands without its history line
        log.warning("KPI snapshot of the warehouse failed: %s", exc)
        return None
