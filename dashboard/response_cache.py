"""Whole answers to Dash callback requests, shared by the gunicorn workers.

A callback's answer is a function of its request body and of the release it reads: the pages
keep every filter in that body (URL state, control values, chart clicks) and read nothing
else. So ``POST <prefix>_dash-update-component`` is answered from the query cache of
:mod:`dashboard.cache` (a folder shared by the workers of a host, or Redis) under the key
(release version, code version, identity, canonical body) — the fiftieth manager opening the
default view costs one lookup instead of a render.

* The release is pinned in ``before_request`` (:func:`dashboard.release.pinned`) and stays
  pinned for the request, so the key names exactly the release the answer is computed from:
  a publish between the lookup and the render cannot file an answer of the new data under
  the old version (nor the reverse).
* The code version (:func:`dashboard.cache.code_version`) keeps a deploy from serving answers
  the old code drew.
* The identity's role and row-level scope (:meth:`dashboard.auth.identity.Identity.key`, set
  by the sign-in gate, which runs before the lookup): the same request by a viewer, an analyst
  or a user limited to one service tier has three answers, and none is served to the others.
  A request without an identity is not looked up at all.
* The reader's language (:func:`dashboard.language.current_lang`): titles, labels and number
  formats differ between English, Spanish and Russian answers to the same request.
* Only plain HTTP 200 JSON answers without the app's error alert or a page's "Not available
  yet" / error notice are kept: a failure is retried by the next request, never replayed.
* Responses say ``X-Response-Cache: hit`` (from the cache), ``miss`` (computed and kept) or
  ``skip`` (computed, not kept); the load test and the tests read it.

Outside an app with the cache attached (the benchmark detaches it) nothing is looked up.
"""
from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable

import orjson
from flask import Flask, Response, g, request

from dashboard import release
from dashboard.auth.session import current
from dashboard.language import current_lang
from dashboard.cache import cache, cache_active, code_version

log = logging.getLogger(__name__)

HEADER = "X-Response-Cache"
# Answers above this size (a segment export of thousands of rows) are recomputed rather than
# kept: they are rare and would crowd the small answers out of a size-bounded cache.
MAX_BYTES = 2 * 1024 * 1024
# Class names and the component id that mark an answer the app could not give (see
# dashboard/components/alerts.py and app._on_error): never cached.
NOT_ANSWERED = (b'"app-error"', b'"unavailable"', b'"page-error"')
_KEY = "response_cache_key"   # flask.g attribute: this request's cache key, set by the lookup


def keep_out() -> None:
    """Do not keep this request's answer: it depends on more than its body and release (the
    admin pages read the user store and the audit log, and their buttons act)."""
    g.pop(_KEY, None)


def request_key(version: object, code: str, identity: str, body: bytes) -> str | None:
    """The cache key of a callback request body read by ``identity`` (its
    :meth:`~dashboard.auth.identity.Identity.key`), or None when the body is not JSON.

    The body is parsed and re-encoded with sorted keys, so two renderers that order the same
    request's fields differently share one entry; values are kept exactly (no rounding).
    """
    try:
        canonical = orjson.dumps(orjson.loads(body), option=orjson.OPT_SORT_KEYS)
    except orjson.JSONDecodeError:
        return None
    digest = hashlib.sha256(f"{version}|{code}|{identity}|".encode())
    digest.update(canonical)
    return "r:" + digest.hexdigest()


def cacheable(response: Response) -> bool:
    """A complete, successful answer that any later identical request may receive."""
    if response.status_code != 200 or response.direct_passthrough or response.is_streamed:
        return False
    if response.mimetype != "application/json" or "Set-Cookie" in response.headers:
        return False
    body = response.get_data()
    return len(body) <= MAX_BYTES and not any(marker in body for marker in NOT_ANSWERED)


def install(server: Flask, update_path: str, *, enabled: Callable[[], bool] = cache_active) -> None:
    """Answer repeated callback requests from the shared cache. Register after the sign-in
    gate (the key needs the request's identity), after the request guard (a malformed body
    is refused before it is looked up) and after any compression
    layer's ``after_request`` (Flask runs those hooks in reverse order, so ``store`` then sees
    the uncompressed body, and hits are compressed on their way out like any answer)."""

    @server.before_request
    def lookup() -> Response | None:
        if request.method != "POST" or request.path != update_path or not enabled():
            return None
        try:
            version = release.pinned().version   # pinned until the request ends
        except Exception:  # noqa: BLE001 - no release (missing warehouse): the page says so, uncached
            return None
        try:
            # the reader's language too: the same filters answer in different words
            identity = f"{current().key()}|{current_lang()}"
        except PermissionError:   # no identity: the gate refuses the request, nothing to look up
            return None
        key = request_key(version, code_version(), identity, request.get_data(cache=True))
        if key is None:
            return None
        g.setdefault(_KEY, key)
        try:
            body = cache.get(key)
        except Exception:  # noqa: BLE001 - an unreachable Redis must not take the page down
            log.warning("response cache unreachable", exc_info=True)
            return None
        if body is None:
            return None
        return Response(body, 200, mimetype="application/json", headers={HEADER: "hit"})

    @server.after_request
    def store(response: Response) -> Response:
        key = g.pop(_KEY, None)
        if key is None or response.headers.get(HEADER) == "hit":
            return response
        if not cacheable(response):
            response.headers[HEADER] = "skip"
            return response
        try:
            # False when it was not kept: Redis does not answer (dashboard/cache.py logs the
            # outage once, not per request) or the folder is not writable
            kept = bool(cache.set(key, response.get_data()))
        except Exception:  # noqa: BLE001 - the answer is still good; only keeping it failed
            log.warning("response cache not written", exc_info=True)
            kept = False
        response.headers[HEADER] = "miss" if kept else "skip"
        return response
