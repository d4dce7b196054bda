"""Every request passes here first: who is asking, and may they ask this?

Default deny: a path is public only when it is in :func:`_public` (health check, static
files, the sign-in pages); everything else needs an identity. Without one, page loads are
sent to ``/login`` and Dash's ``/_dash-*`` requests get 401 with a message (the browser's
Dash renderer cannot follow a redirect to a form).

Where an identity comes from, in order:

1. ``AUTH=none``: everyone is the anonymous visitor with ``ANONYMOUS_ROLE``.
2. A signed embed token (``X-Embed-Token`` header or ``token=`` on a page load), in any
   mode: a portal's iframe works without a sign-in and without cookies.
3. ``AUTH=proxy``: the user header, believed only from ``AUTH_PROXY_ADDRESSES``.
4. The signed session cookie (``AUTH=local`` and ``oidc``); under ``local`` the user is read
   again from the store, so a removed user or a changed role applies on the next click.

Then the callback itself: a callback whose outputs carry rows or administer the product is
refused (403 with a message) unless the role allows it. This is the outer wall; the query
layer refuses the same reads again (dashboard/auth/scoping.py), so a page that forgets a
check still leaks nothing.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Callable

from flask import Flask, Response, g, jsonify, redirect, request, session

from dashboard.auth import embed
from dashboard.auth.identity import Capability, Identity
from dashboard.auth.redirects import sign_in_url
from dashboard.auth.session import STAMP, from_session, sign_out
from dashboard.auth.state import AuthState, client_ip
from dashboard.inputs import describe
from dashboard.language import N_, _

log = logging.getLogger(__name__)

# Callback outputs that need more than the viewer role: the component id of one output of
# each such callback. Admin pages keep their ids under "admin-".
ROW_OUTPUTS = ("seg-download", "wi-start-msg", "carts-rows-body", "carts-rows-download",
               "cust-rows-body", "cust-rows-download", "seg-camp-download")
ADMIN_PREFIX = "admin-"
ROUTER = "router"   # page_of() for Dash's own page router callback
UNAUTHENTICATED = N_("Sign in to use Shopper Insights.")


def _public(path: str, prefix: str) -> bool:
    local = path[len(prefix) - 1:] if path.startswith(prefix) else path
    return (local in ("/healthz", "/login", "/logout", "/login/oidc", "/auth/oidc/callback", "/_favicon.ico")
            or local.startswith(("/assets/", "/_dash-component-suites/")))


def _id_strings(ident: str) -> list[str]:
    """A component id's text: the id itself, or every string value of a pattern-matching id
    (Dash sorts their keys, so "type" is not always first)."""
    if not ident.startswith("{"):
        return [ident]
    try:
        parsed = json.loads(ident)
    except ValueError:
        return [ident]
    return [v for v in parsed.values() if isinstance(v, str)] if isinstance(parsed, dict) else [ident]


def required_capability(output_key: str) -> Capability:
    """What a callback request for ``output_key`` (Dash's ``output`` field) needs."""
    ids = [part.rsplit(".", 1)[0] for part in output_key.strip(".").split("...")]
    texts = [text for ident in ids for text in _id_strings(ident)]
    if any(text.startswith(ADMIN_PREFIX) for text in texts):
        return Capability.ADMIN
    if any(text in ROW_OUTPUTS for text in texts):
        return Capability.ROWS
    return Capability.AGGREGATES


class Refused(Exception):
    """The request cannot go on: ``response`` says why (401 / 403 page or JSON)."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


def _is_dash_request(path: str, prefix: str) -> bool:
    return path.startswith(prefix + "_dash-")


def _deny(status: int, message: str, prefix: str) -> Response:
    """401/403 with ``message`` (a msgid, or a text already translated) in the reader's language."""
    if _is_dash_request(request.path, prefix) or request.method != "GET":
        response = jsonify(message=_(message))
        response.status_code = status
        return response
    from dashboard.auth.login import message_page
    return message_page(message, status, prefix)


def resolve(state: AuthState, prefix: str) -> Identity | None:
    """The identity of this request, or None (raises :class:`Refused` for a bad token or an
    account the configuration gives no role)."""
    config = state.config
    token = embed.token_from_request(request)
    if token is None and config.mode == "none":
        return Identity("anonymous", config.anonymous_role, source="none")
    if token is not None:
        return _from_token(state, token, prefix)
    if config.mode == "proxy":
        return _from_proxy(state, prefix)
    identity = from_session(config.session_lifetime)
    if identity is None or identity.source != config.mode:
        return None   # a session from another mode (the configuration changed) counts for nothing
    if config.mode != "local":
        return identity
    # removed since the sign-in, or its password changed (the stamp is of the password hash
    # and the account's creation: a re-created name does not inherit old sessions either)
    user = state.users.session_user(identity.name, session.get(STAMP))
    if user is None:
        sign_out()
        return None
    return user.identity()


def _from_token(state: AuthState, token: str, prefix: str) -> Identity:
    """An embed link's identity, for the page it was made for only: a link to /carts does not
    open /segments (pages are checked on load and in the page router's callback)."""
    dash_request = _is_dash_request(request.path, prefix)
    try:
        claims = embed.read_claims(state.config.secret_key, token)
    except embed.EmbedTokenError as exc:
        raise Refused(_deny(401, exc.message, prefix) if dash_request else embed.expired_page(exc.message)) from None
    page = prefix.rstrip("/") + claims.page
    asked = _router_pathnames() if dash_request else [request.path]
    if any(path.rstrip("/") != page.rstrip("/") for path in asked):
        message = _("This embedded link opens {page} only.").format(page=claims.page)
        raise Refused(_deny(403, message, prefix) if dash_request else embed.expired_page(message))
    if not dash_request:
        state.audit.record("embed-token", claims.identity.name, ip=client_ip(), page=claims.page,
                           role=claims.identity.role.label, scope=claims.identity.scope.key())
    g.embed_page = claims.page
    return claims.identity


def _router_pathnames() -> list[str]:
    """The pathnames a callback request carries (Dash's page router sends the location's)."""
    body = request.get_json(silent=True) if request.method == "POST" else None
    entries = body.get("inputs", []) if isinstance(body, dict) else []
    flat = [e for item in entries if isinstance(entries, list)
            for e in (item if isinstance(item, list) else [item])]
    return [e["value"] if isinstance(e.get("value"), str) else "" for e in flat
            if isinstance(e, dict) and e.get("property") == "pathname"]


def _from_proxy(state: AuthState, prefix: str) -> Identity | None:
    from dashboard.auth.settings import role_from_groups

    config = state.config
    name = request.headers.get(config.proxy_user_header, "").strip()
    if not name:
        return None
    if not _trusted_proxy(request.remote_addr, config.proxy_addresses):
        # Anyone can send the header; only the proxy's word counts.
        log.warning("ignored %s from %s, which is not in AUTH_PROXY_ADDRESSES",
                    config.proxy_user_header, describe(request.remote_addr or "?", 60))
        return None
    name = describe(name, 128)
    groups = [part.strip() for part in request.headers.get(config.proxy_groups_header, "").split(",") if part.strip()]
    mapped = role_from_groups(config, groups)
    if mapped is None:
        raise Refused(_deny(403, _("Your account {name} has no role in Shopper Insights: ask an administrator "
                                   "to add you to one of its groups.").format(name=name), prefix))
    return Identity(name, mapped[0], mapped[1], source="proxy")


def _trusted_proxy(address: str | None, networks: tuple) -> bool:
    import ipaddress

    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    return any(ip in net for net in networks)


def install(server: Flask, state: AuthState, prefix: str, update_path: str,
            output_of: Callable[[], str | None], page_of: Callable[[str], str | None]) -> None:
    """Register the gate; call before any other ``before_request`` that reads data.

    ``output_of()`` returns the ``output`` field of the current callback request (None when the
    body is not readable: the callback guard refuses it next); ``page_of(output)`` the path of
    the page whose module registered that callback, ``ROUTER`` for Dash's page router, None
    for anything else."""

    @server.before_request
    def gate() -> Response | None:
        g.pop("identity", None)
        g.pop("embed_page", None)
        if _public(request.path, prefix):
            return None
        try:
            identity = resolve(state, prefix)
        except Refused as refused:
            return refused.response
        if identity is None:
            if _is_dash_request(request.path, prefix) or request.method != "GET":
                return _deny(401, UNAUTHENTICATED, prefix)
            target = request.full_path if request.query_string else request.path
            return redirect(sign_in_url(prefix, target, state.config.mode))
        g.identity = identity
        if request.method == "POST" and request.path == update_path:
            output = output_of()
            if output is not None and not identity.can(needed := required_capability(output)):
                log.warning("refused %s a callback that needs %s", identity.role.label, needed.name.lower())
                return _deny(403, _refusal(needed), prefix)
            embedded = g.get("embed_page")
            # an embed link drives its own page's callbacks only (the router's pathname was
            # checked with the token)
            if embedded is not None and output is not None and page_of(output) not in (ROUTER, embedded):
                return _deny(403, _("This embedded link opens {page} only.").format(page=embedded), prefix)
        return None


def _refusal(needed: Capability) -> str:
    if needed is Capability.ADMIN:
        return N_("Only administrators can do this.")
    return N_("Customer- and session-level rows need the analyst role; your role shows aggregates only.")
