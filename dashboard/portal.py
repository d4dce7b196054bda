"""Which portals may exchange filter messages with a framed dashboard (docs/portal.md).

The same setting that lets a portal frame the app, ``FRAME_ANCESTORS``, decides whose
``postMessage`` the app listens to and where it sends its own: one list to keep right, not two.
:func:`message_origins` turns the CSP source list into origin patterns, and :func:`install`
puts them (and the URL prefix) into every page as
``<meta name="shopper-portal" content='{"origins": [...], "prefix": "/"}'>``, read by
``assets/portal.js``, which matches ``event.origin`` against them.

Patterns keep the CSP meaning: ``'self'`` (the app's own origin, resolved in the browser, where
the public scheme and host are known even behind a proxy), ``https://portal.example.com``,
``https://*.example.com`` (sub-domains only, as in CSP), ``http://localhost:*`` (any port), and
``portal.example.com`` without a scheme (the page's own scheme, or https under an http page).
Sources that allow framing by anyone of a kind (``https:``, ``*``, ``https://*``) are not
trusted for messages: a portal that wants them names its origin.
"""
from __future__ import annotations

import html
import json
import re

import dash

from dashboard.config import DashboardConfig

META_NAME = "shopper-portal"

_HOST_SOURCE = re.compile(
    r"^(?:(?P<scheme>[a-z][a-z0-9+.-]*)://)?"
    r"(?P<host>(?:\*\.)?[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*)"
    r"(?::(?P<port>[0-9]{1,5}|\*))?"
    r"(?P<path>/[^\s;,']*)?$",
    re.IGNORECASE)
# event.origin never spells these ports out
_DEFAULT_PORTS = {"http": "80", "https": "443", "ws": "80", "wss": "443"}


def _origin_pattern(source: str) -> str | None:
    """One CSP source as an origin pattern; None for a source that names no particular origin."""
    if source.lower() == "'self'":
        return "'self'"
    match = _HOST_SOURCE.match(source)
    if not match:            # keywords such as 'none' or 'unsafe-inline', schemes alone, garbage
        return None
    scheme = (match["scheme"] or "").lower()
    host = match["host"].lower()
    port = match["port"]
    if port not in (None, "*") and not 0 < int(port) <= 65535:
        return None
    if port == _DEFAULT_PORTS.get(scheme):
        port = None
    # a path narrows framing to some pages of the portal; an origin has no path
    return f"{scheme + '://' if scheme else ''}{host}{':' + port if port else ''}"


def message_origins(frame_ancestors: str) -> tuple[str, ...]:
    """The origin patterns of a ``FRAME_ANCESTORS`` value, in order, without repeats.

    ``'none'`` allows no one (CSP ignores it next to other sources, and so does this)."""
    patterns: list[str] = []
    for source in frame_ancestors.split():
        pattern = _origin_pattern(source)
        if pattern and pattern not in patterns:
            patterns.append(pattern)
    return tuple(patterns)


def meta_tag(frame_ancestors: str, url_prefix: str) -> str:
    content = json.dumps({"origins": list(message_origins(frame_ancestors)), "prefix": url_prefix},
                         separators=(",", ":"))
    return f'<meta name="{META_NAME}" content="{html.escape(content, quote=True)}">'


def install(app: dash.Dash, config: DashboardConfig) -> None:
    """Add the portal meta tag to every page Dash serves (its index has no other hook for it)."""
    tag = meta_tag(config.frame_ancestors, config.url_prefix)
    index = app.interpolate_index

    def interpolate_index(**kwargs) -> str:
        kwargs["metas"] = kwargs.get("metas", "") + tag
        return index(**kwargs)

    app.interpolate_index = interpolate_index
