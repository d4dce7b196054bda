"""The identity of the current request, and signing it into / out of the session cookie.

The session is Flask's signed cookie (``SECRET_KEY``): it holds the identity itself, so any
worker on any host with the same key reads it without a shared session store. Under
``AUTH=local`` the gate re-reads the user from the store on each request (cached by the
file's mtime), so removing a user or changing a role takes effect on their next click.
"""
from __future__ import annotations

import time

from flask import g, has_request_context, session

from dashboard.auth.identity import SYSTEM, Identity

_KEY = "identity"
_SIGNED_AT = "signed_at"


def current() -> Identity:
    """Who the current request acts for; outside a request (CLI, warm-up, tests of the
    queries) the operator, who reads everything."""
    if not has_request_context():
        return SYSTEM
    identity = g.get("identity")
    # The gate sets it before any view or callback runs; a request it did not see (it was
    # refused) never reaches a query, so a missing identity is a bug: read nothing.
    if identity is None:
        raise PermissionError("no identity for this request")
    return identity


def sign_in(identity: Identity) -> None:
    """Start a signed session for ``identity`` (the login form, OIDC callback)."""
    session.clear()   # a new session id for a new sign-in (no fixation of a pre-login session)
    session[_KEY] = identity.to_session()
    session[_SIGNED_AT] = int(time.time())
    session.permanent = True   # lifetime: SESSION_LIFETIME
    g.identity = identity


def sign_out() -> None:
    session.clear()
    g.pop("identity", None)


def from_session(lifetime: int) -> Identity | None:
    """The identity of a still valid session cookie, or None."""
    data, signed_at = session.get(_KEY), session.get(_SIGNED_AT)
    if data is None or not isinstance(signed_at, int) or time.time() - signed_at > lifetime:
        return None
    return Identity.from_session(data)
