"""``AUTH=oidc``: sign-in through the company's OpenID Connect provider (Authlib's Flask client).

``GET {prefix}login/oidc?next=PATH`` sends the browser to the provider: authorization code
flow with ``state``, ``nonce`` and PKCE (S256). ``GET {prefix}auth/oidc/callback`` exchanges
the code at the token endpoint, verifies the ID token (signature against the provider's JWKS,
``iss``, ``aud``, ``exp``, ``iat``, ``nonce``, ``at_hash``), maps the user's groups to a role
and scope (``AUTH_GROUPS``) and signs the identity into the session.

The state, nonce, PKCE verifier and ``next`` wait in the signed session cookie between the
two requests (Authlib's default for Flask), so any worker on any host can finish a sign-in.
The provider's metadata and keys are fetched on first use: the app starts while the provider
is down, and a sign-in then gets a 502 page saying so.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Callable
from urllib.parse import urlsplit

import requests
from authlib.integrations.base_client.errors import MismatchingStateError, OAuthError
from authlib.integrations.flask_client import OAuth
from flask import Flask, Response, redirect, request, session
from joserfc.errors import JoseError
from markupsafe import escape

from dashboard.auth.identity import Identity
from dashboard.auth.redirects import safe_next, sign_in_url
from dashboard.auth.session import sign_in, sign_out
from dashboard.auth.settings import AuthConfig, AuthConfigError, is_loopback, role_from_groups
from dashboard.inputs import describe

log = logging.getLogger(__name__)

# Authlib keys the pending sign-ins in the session by this name (``_state_<name>_<state>``)
# and reads ``<NAME>_CLIENT_ID`` etc. from the Flask config: a name nobody else uses.
CLIENT = "shopper_oidc"
TIMEOUT = 10          # seconds per request to the provider: a hung provider must not hang a worker
PENDING_KEPT = 3      # sign-ins started in other tabs and kept; each costs ~300 bytes of a 4 kB cookie
MAX_NAME = 128


class _ProviderProblem(Exception):
    """The provider answered, but not as an OpenID Connect provider for this configuration."""


def install(server: Flask, config: AuthConfig, on_sign_in: Callable[[Identity], None],
            on_refused: Callable[[str, str], None], prefix: str = "/") -> None:
    """Register ``{prefix}login/oidc`` and ``{prefix}auth/oidc/callback`` on ``server``.

    ``on_sign_in(identity)`` runs after the session is signed; ``on_refused(user, reason)``
    when the provider vouched for a user that ``AUTH_GROUPS`` gives no role (both for the
    audit log). Nothing is fetched from the provider here.
    """
    issuer = config.oidc_issuer
    parts = urlsplit(issuer)
    if parts.scheme != "https" and not (parts.scheme == "http" and is_loopback(parts.hostname or "")):
        # tokens and the client secret would cross the network in clear text
        raise AuthConfigError(f"OIDC_ISSUER must be an https:// address, got {issuer!r}")
    # Authlib's debug lines print PKCE verifiers; LOG_LEVEL=DEBUG must not put them in the log
    logging.getLogger("authlib").setLevel(max(logging.INFO, logging.getLogger("authlib").getEffectiveLevel()))
    scopes = config.oidc_scopes.split()
    if "openid" not in scopes:   # without it there is no ID token, and nothing to verify
        scopes.insert(0, "openid")
    client = OAuth(server).register(
        CLIENT,
        client_id=config.oidc_client_id,
        client_secret=config.oidc_client_secret,
        server_metadata_url=f"{issuer}/.well-known/openid-configuration",
        client_kwargs={"scope": " ".join(scopes), "code_challenge_method": "S256",
                       "default_timeout": TIMEOUT},
    )
    login_path, callback_path = f"{prefix}login/oidc", f"{prefix}auth/oidc/callback"

    def metadata() -> dict:
        found = client.load_server_metadata()
        named = found.get("issuer")
        # OpenID Connect Discovery 4.3: a mismatch means another provider answered. OIDC_ISSUER
        # is kept without a trailing slash, which some providers' issuers have (Auth0).
        if not isinstance(named, str) or named.rstrip("/") != issuer:
            raise _ProviderProblem(f"its discovery document names issuer {describe(named, 80)}")
        return found

    @server.get(login_path)
    def oidc_login() -> Response:
        target = safe_next(request.args.get("next"), prefix)
        redirect_uri = request.host_url.rstrip("/") + callback_path
        try:
            metadata()
            started = client.create_authorization_url(redirect_uri)
        except Exception as exc:  # noqa: BLE001 - every failure becomes a page, see _failure
            return _failure(exc, issuer, prefix, target)
        _forget_old_pending()
        client.save_authorize_data(redirect_uri=redirect_uri, next=target, state=started["state"],
                                   nonce=started["nonce"], code_verifier=started["code_verifier"])
        return _no_store(redirect(started["url"]))

    @server.get(callback_path)
    def oidc_callback() -> Response:
        state = request.args.get("state", "")
        pending = client.framework.get_state_data(session, state) if state else None
        target = safe_next((pending or {}).get("next"), prefix)
        try:
            if request.args.get("error"):
                raise OAuthError(error=request.args["error"], description=request.args.get("error_description"))
            named = metadata()["issuer"]
            # Authlib verifies the ID token's signature, exp, iat, nonce and at_hash; iss and
            # aud are pinned here too (without them a token for another app that names this
            # one in azp would pass).
            token = client.authorize_access_token(claims_options={
                "iss": {"essential": True, "value": named},
                "aud": {"essential": True, "value": config.oidc_client_id},
                "exp": {"essential": True},
            })
            claims = token.get("userinfo")
            if not claims:   # Authlib verifies an ID token only when one came back with a nonce
                raise _ProviderProblem("its token answer holds no ID token")
            claims = _with_userinfo(client, token, dict(claims), config)
        except Exception as exc:  # noqa: BLE001 - every failure becomes a page, see _failure
            return _failure(exc, issuer, prefix, target)
        finally:
            if state:   # a state is good for one callback, whatever happened
                client.framework.clear_state_data(session, state)
        name = _user_name(claims, config.oidc_user_claim)
        groups = _groups(claims.get(config.oidc_groups_claim))
        mapped = role_from_groups(config, groups)
        if mapped is None:
            sign_out()   # whoever was signed in before, this browser now proves to be someone else
            log.warning("OIDC sign-in refused: %s is in none of the groups of AUTH_GROUPS", describe(name, MAX_NAME))
            on_refused(name, "no role for the account's groups")
            return _refusal(name, config)
        identity = Identity(name, mapped[0], mapped[1], source="oidc")
        sign_in(identity)
        on_sign_in(identity)
        return _no_store(redirect(target))


def _forget_old_pending() -> None:
    """Keep the cookie small: drop pending sign-ins beyond the newest few before adding one."""
    keys = sorted((k for k in session if k.startswith(f"_state_{CLIENT}_")),
                  key=lambda k: (session[k] or {}).get("exp", 0))
    for key in keys[:max(0, len(keys) - PENDING_KEPT + 1)]:
        session.pop(key, None)


def _with_userinfo(client, token: dict, claims: dict, config: AuthConfig) -> dict:
    """Some providers (Okta, Google) put the name or the groups only in the userinfo answer."""
    if config.oidc_groups_claim in claims and config.oidc_user_claim in claims:
        return claims
    if not client.load_server_metadata().get("userinfo_endpoint"):
        return claims
    info = client.userinfo(token=token)
    if info.get("sub") != claims.get("sub"):
        # OpenID Connect Core 5.3.2: userinfo for another subject must not be used
        raise _ProviderProblem("its userinfo answer is about another subject")
    return {**info, **claims}   # the verified ID token wins where both say something


def _user_name(claims: dict, claim: str) -> str:
    value = claims.get(claim)
    if not isinstance(value, str) or not value.strip():
        value = claims.get("sub")
    return describe(str(value).strip(), MAX_NAME)


def _groups(value) -> list[str]:
    """A list of names, or one string with the names separated by commas or spaces."""
    if isinstance(value, str):
        return [part for part in re.split(r"[,\s]+", value) if part]
    if isinstance(value, (list, tuple)):
        return [item.strip() for item in value if isinstance(item, str) and item.strip()]
    return []


def _failure(exc: Exception, issuer: str, prefix: str, target: str) -> Response:
    """One log line and a short page; never a traceback, never the exception's text unbounded."""
    detail = describe(f"{type(exc).__name__}: {exc}", 300)
    if isinstance(exc, MismatchingStateError):
        status, message = 400, ("This sign-in was not started in this browser, has expired or was already "
                                "completed.")
    elif isinstance(exc, OAuthError) and exc.error in ("invalid_client", "unauthorized_client"):
        # the provider does not accept this app's registration: no user can fix that by retrying
        status, message = 502, (f"The identity provider at {issuer} does not accept this app's registration "
                                "(OIDC_CLIENT_ID / OIDC_CLIENT_SECRET).")
        detail = describe(f"{exc.error}: {exc.description}", 300)
    elif isinstance(exc, OAuthError):
        said = describe(exc.description or exc.error or "no reason given", 200)
        status, message = 400, f"The identity provider did not sign you in: {said}."
        detail = describe(f"{exc.error}: {exc.description}", 300)
    elif isinstance(exc, JoseError):
        status, message = 400, ("The identity provider's answer could not be verified (its ID token is "
                                "invalid, expired or meant for another application).")
    elif isinstance(exc, (requests.RequestException, ValueError)):
        status, message = 502, f"The identity provider at {issuer} could not be reached or did not answer properly."
    elif isinstance(exc, (_ProviderProblem, RuntimeError)):
        status, message = 502, f"The identity provider at {issuer} is not set up as this app expects: {exc}."
    else:
        log.exception("OIDC sign-in failed unexpectedly")
        return _page("Sign-in failed", "Sign-in failed; the details are in the server log.", 500,
                     _retry(prefix, target))
    log.warning("OIDC sign-in failed (%s): %s", status, detail)
    return _page("Sign-in failed", message + " Please try again; if this persists, tell an administrator.",
                 status, _retry(prefix, target))


def _refusal(name: str, config: AuthConfig) -> Response:
    groups = ", ".join(rule.group for rule in config.groups)
    ask = f"one of the groups {groups}" if groups else "a group that has a role here"
    return _page("No access", f"Your account {name} has no role in Shopper Insights; ask an administrator "
                              f"to add you to {ask}.", 403)


def _retry(prefix: str, target: str) -> str:
    return sign_in_url(prefix, target, "oidc")


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · Shopper Insights</title>
<style>body{{font-family:system-ui,sans-serif;max-width:32rem;margin:10vh auto;padding:0 1rem;line-height:1.5}}</style>
</head><body><main><h1>{title}</h1><p>{message}</p>{link}</main></body></html>"""


def _page(title: str, message: str, status: int, retry: str | None = None) -> Response:
    link = f'<p><a href="{escape(retry)}">Try again</a></p>' if retry else ""
    html = _PAGE.format(title=escape(title), message=escape(message), link=link)
    return _no_store(Response(html, status, mimetype="text/html"))


def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response
