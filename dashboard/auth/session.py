"""The identity of the current request, and signing it into / out of the session cookie.

The session is Flask's signed cookie (``SECRET_KEY``): it holds the identity itself, so any
worker on any host with the same key reads it without a shared session store. Under
``AUTH=local`` the gate re-reads the user from the store on each request (cached by the
file's mtime), so removing a user or changing a role takes effect on their next click.
"""
from __future__ import annotations

import logging
import secrets
import time

from flask import g, has_request_context, session

from dashboard.auth.identity import SYSTEM, Identity

log = logging.getLogger(__name__)

_KEY = "identity"
_SIGNED_AT = "signed_at"
_SID = "sid"
STAMP = "stamp"
_REVOKED = "revoked-session:"


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


def sign_in(identity: Identity, stamp: str | None = None) -> None:
    """Start a signed session for ``identity`` (the login form, OIDC callback); ``stamp`` is
    the user store's credential stamp (AUTH=local), checked again on every request."""
    session.clear()   # a new session id for a new sign-in (no fixation of a pre-login session)
    session[_KEY] = identity.to_session()
    session[_SIGNED_AT] = int(time.time())
    session[_SID] = secrets.token_urlsafe(16)
    if stamp is not None:
        session[STAMP] = stamp
    session.permanent = True   # lifetime: SESSION_LIFETIME
    g.identity = identity


def sign_out(lifetime: int | None = None) -> None:
    """End this session. With ``lifetime`` its id is also remembered as revoked until it would
    have expired, so a copy of the cookie taken before signing out opens nothing."""
    from dashboard.cache import cache   # late: the cache keys answers by current()

    sid = session.get(_SID)
    if lifetime and isinstance(sid, str):
        try:
            kept = cache.set(_REVOKED + sid, True, timeout=lifetime)
        except Exception:  # noqa: BLE001 - the sign-out itself still happens
            kept = False
        if not kept:       # the cache turns an unreachable Redis into False (dashboard/cache.py)
            log.warning("could not remember a signed-out session (cache unreachable)")
    session.clear()
    g.pop("identity", None)


def _revoked(sid: object) -> bool:
    from dashboard.cache import cache

    if not isinstance(sid, str):
        return True     # sessions always carry one; a cookie without it is not ours
    try:
        return bool(cache.get(_REVOKED + sid))
    except Exception:  # noqa: BLE001 - an unreachable cache must not sign everyone out
        log.warning("could not check for a signed-out session (cache unreachable)")
        return False


def from_session(lifetime: int) -> Identity | None:
    """The identity of a still valid, not signed-out session cookie, or None."""
    data, signed_at = session.get(_KEY), session.get(_SIGNED_AT)
    if data is None or not isinstance(signed_at, int) or time.time() - signed_at > lifetime:
        return None
    if _revoked(session.get(_SID)):
        return None
    return Identity.from_session(data)
