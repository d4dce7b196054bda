"""``/login`` and ``/logout``, the session cookie's settings, and throttling of failed sign-ins.

The pages are plain HTML (no Dash): they must work before the user may load the app, and
they hold nothing but a form. Every form carries a CSRF token kept in the session; the
cookie is HttpOnly, SameSite=Lax, and Secure when the request came over HTTPS
(``COOKIE_SECURE=auto``) or always (``1``).

The pages answer in the reader's language (:mod:`dashboard.language`). A page sent here by
the gate carries the language in ``next`` (``/login?next=/carts%3Flang%3Dru``): that one
counts like a ``?lang=`` of the login page itself, and a ``?lang=`` given to the login page
is kept in its form and added to where the sign-in goes next, so the choice survives the
round trip.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
from datetime import timedelta
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

from flask import Flask, Response, g, redirect, request, session
from flask.sessions import SecureCookieSessionInterface
from markupsafe import escape

from dashboard.auth.redirects import safe_next, sign_in_url
from dashboard.auth.session import sign_in, sign_out
from dashboard.auth.state import AuthState, client_ip
from dashboard.cache import build_lock, cache
from dashboard.inputs import describe
from dashboard.language import N_, _, current_lang, explicit_lang, ngettext, using_lang, valid

log = logging.getLogger(__name__)

_CSRF = "csrf"
MAX_FIELD = 1024   # characters of a user name or password read from the form


class _Cookies(SecureCookieSessionInterface):
    """``COOKIE_SECURE=auto``: Secure exactly when this request came over HTTPS (gunicorn
    sets the scheme from X-Forwarded-Proto for the proxies in FORWARDED_ALLOW_IPS)."""

    def __init__(self, secure: str) -> None:
        self.secure = secure

    def get_cookie_secure(self, app: Flask) -> bool:
        return request.is_secure if self.secure == "auto" else self.secure == "1"


def configure_sessions(server: Flask, state: AuthState, prefix: str) -> None:
    server.secret_key = state.config.secret_key
    server.config.update(
        SESSION_COOKIE_NAME="shopper_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_PATH=prefix,
        PERMANENT_SESSION_LIFETIME=timedelta(seconds=state.config.session_lifetime),
    )
    server.session_interface = _Cookies(state.config.cookie_secure)
    if state.config.mode == "none" and not state.config.anonymous_public:
        # The operator's own machine: answer only requests addressed to loopback, so a web
        # page the operator visits cannot rebind its host name to 127.0.0.1 and read the app.
        server.config["TRUSTED_HOSTS"] = ["localhost", "127.0.0.1", "::1", "[::1]"]


def csrf_token() -> str:
    if _CSRF not in session:
        session[_CSRF] = secrets.token_urlsafe(32)
    return session[_CSRF]


def _csrf_ok() -> bool:
    sent, kept = request.form.get("csrf_token", ""), session.get(_CSRF, "")
    return bool(kept) and isinstance(sent, str) and hmac.compare_digest(sent.encode(), str(kept).encode())


# --- throttling ----------------------------------------------------------------------------
# Failures are counted per (name, address) in the shared cache, so every worker of a host (or
# every host, with Redis) sees them. A cache that does not answer lets the sign-in proceed:
# throttling is a brake on guessing, the slow password hash is the wall.

def _throttle_key(name: str, address: str) -> str:
    return "login-fail:" + hashlib.sha256(f"{name.lower()}|{address}".encode()).hexdigest()


def _failures(key: str, window: int) -> list[float]:
    try:
        times = cache.get(key) or []
    except Exception:  # noqa: BLE001
        return []
    now = time.time()
    return [t for t in times if isinstance(t, float) and now - t < window]


def _locked_for(key: str, state: AuthState) -> int:
    times = _failures(key, state.config.lockout)
    if len(times) < state.config.max_failures:
        return 0
    return int(state.config.lockout - (time.time() - times[-state.config.max_failures])) + 1


def _fail(key: str, state: AuthState) -> None:
    times = _failures(key, state.config.lockout) + [time.time()]
    try:
        cache.set(key, times[-state.config.max_failures:], timeout=state.config.lockout)
    except Exception:  # noqa: BLE001
        log.warning("could not count a failed sign-in (cache unreachable)")


def _clear(key: str) -> None:
    try:
        cache.delete(key)
    except Exception:  # noqa: BLE001
        pass


# --- pages ---------------------------------------------------------------------------------

_PAGE = """<!doctype html>
<html lang="{lang}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · Shopper Insights</title>
<style>
body{{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue","Noto Sans","Liberation Sans",Arial,sans-serif;
background:#f4f6f8;color:#212529;margin:0;font-size:1rem;line-height:1.5}}
.brand{{background:#212529;color:#fff;font-size:1.25rem;line-height:1.5;padding:.8125rem .75rem}}
main{{max-width:24rem;margin:10vh auto;background:#fff;padding:2rem;border:1px solid #dee2e6;border-radius:.5rem;
box-shadow:0 1px 2px rgba(0,0,0,.06)}}
h1{{font-size:1.5rem;font-weight:600;margin:0 0 1rem}} label{{display:block;margin:.75rem 0 .25rem;font-weight:600}}
input,button{{font-family:inherit}}
input{{width:100%;box-sizing:border-box;padding:.375rem .75rem;border:1px solid #6c757d;border-radius:.375rem;
font-size:1rem;line-height:1.5}}
button,.button{{display:inline-block;margin-top:1.25rem;padding:.375rem .75rem;background:#0d6efd;color:#fff;
border:1px solid #0d6efd;border-radius:.375rem;font-size:1rem;line-height:1.5;text-decoration:none;cursor:pointer}}
button:hover,.button:hover{{background:#0b5ed7;border-color:#0a58ca}}
:focus-visible{{outline:3px solid #E69F00;outline-offset:2px}}
.error{{background:#f8d7da;color:#58151c;border:1px solid #f1aeb5;padding:.75rem 1rem;border-radius:.375rem}}
p{{margin:0 0 1rem}} form p:last-of-type{{margin-bottom:0}} p+.button{{margin-top:0}}
@media (max-width:30rem){{main{{margin:1.5rem .75rem;padding:1.5rem}}}}
</style></head><body><div class="brand">Shopper Insights</div><main><h1>{title}</h1>{body}</main></body></html>"""


def page(title: str, body: str, status: int = 200) -> Response:
    """A page in the reader's language: ``title`` and ``body`` are translated already."""
    return Response(_PAGE.format(lang=current_lang(), title=escape(title), body=body), status, mimetype="text/html",
                    headers={"Cache-Control": "no-store"})


def _with_lang(path: str) -> str:
    """``path`` with the ``?lang=`` the address asked for, so the next page answers in it too."""
    lang = explicit_lang()
    if not lang:
        return path
    parts = urlsplit(path)
    query = [(k, v) for k, v in parse_qs(parts.query, keep_blank_values=True).items() if k != "lang"]
    pairs = [(k, v) for k, values in query for v in values] + [("lang", lang)]
    return urlunsplit(("", "", parts.path, urlencode(pairs, safe=",/"), parts.fragment))


def message_page(message: str, status: int, prefix: str) -> Response:
    """``message`` (a msgid, or a text already translated) with a link to sign in."""
    body = (f'<p>{escape(_(message))}</p>'
            f'<a class="button" href="{escape(_with_lang(prefix + "login"))}">{escape(_("Sign in"))}</a>')
    return page("Shopper Insights", body, status)


def _login_form(state: AuthState, prefix: str, next_path: str, error: str = "", status: int = 200,
                name: str = "") -> Response:
    mode = state.config.mode
    title = _("Sign in")
    if mode == "oidc":
        body = (f'<p>{escape(_("Sign in with your company account."))}</p><a class="button" '
                f'href="{escape(sign_in_url(prefix, next_path, "oidc"))}">{escape(_("Continue to sign-in"))}</a>')
        return page(title, body, status)
    if mode != "local":
        text = (_("This dashboard is signed in through the company portal: open it from there.")
                if mode == "proxy" else _("This dashboard needs no sign-in."))
        return page(title, f'<p>{escape(text)}</p><a class="button" href="{escape(_with_lang(prefix))}">'
                           f'{escape(_("Open the dashboard"))}</a>')
    alert = f'<p class="error" role="alert">{escape(_(error))}</p>' if error else ""
    body = (f'{alert}<form method="post" action="{escape(_with_lang(prefix + "login"))}">'
            f'<input type="hidden" name="csrf_token" value="{escape(csrf_token())}">'
            f'<input type="hidden" name="next" value="{escape(next_path)}">'
            f'<label for="username">{escape(_("User name"))}</label>'
            f'<input id="username" name="username" value="{escape(name)}" autocomplete="username" required'
            f'{"" if name else " autofocus"}>'
            f'<label for="password">{escape(_("Password"))}</label>'
            '<input id="password" name="password" type="password" autocomplete="current-password" required'
            f'{" autofocus" if name else ""}>'
            f'<button type="submit">{escape(title)}</button></form>')
    return page(title, body, status)


def _too_many(seconds: int) -> str:
    minutes = max(1, -(-seconds // 60))
    return ngettext("Too many failed sign-ins. Try again in {n} minute.",
                    "Too many failed sign-ins. Try again in {n} minutes.", minutes).format(n=minutes)


def _lang_of(next_path: str) -> str:
    """The language of the sign-in pages: ``?lang=`` of this address, else that of the page the
    reader was on (in ``next``), else the request's (header, Accept-Language, default)."""
    asked = parse_qs(urlsplit(next_path).query).get("lang", [None])[0]
    return explicit_lang() or valid(asked) or current_lang()


def install(server: Flask, state: AuthState, prefix: str) -> None:
    configure_sessions(server, state, prefix)

    @server.route(f"{prefix}login", methods=["GET", "POST"])
    def login() -> Response:
        next_path = safe_next(request.values.get("next"), prefix)
        with using_lang(_lang_of(next_path)):
            return _answer(next_path)

    def _answer(next_path: str) -> Response:
        """The login form, or the sign-in it posts (in the reader's language)."""
        if request.method in ("GET", "HEAD") or state.config.mode != "local":
            return _login_form(state, prefix, next_path)
        if not _csrf_ok():
            return _login_form(state, prefix, next_path, N_("The form expired; please sign in again."), 400)
        name = describe(request.form.get("username", ""), 64).strip()
        password = request.form.get("password", "")
        if not name or not password or len(password) > MAX_FIELD:
            return _login_form(state, prefix, next_path, N_("Enter your user name and password."), 400)
        key = _throttle_key(name, client_ip() or "")
        # Counted before the (slow) password check, under a lock: guesses sent in parallel
        # see each other's count; a successful sign-in forgives its own.
        with build_lock("login-" + key[-24:]):
            wait = _locked_for(key, state)
            if not wait:
                _fail(key, state)
        if wait:
            state.audit.record("sign-in-failed", name, ip=client_ip(), reason="throttled")
            return _login_form(state, prefix, next_path, _too_many(wait), 429, name)
        user = state.users.verify(name, password)
        if user is None:
            state.audit.record("sign-in-failed", name, ip=client_ip(), reason="wrong name or password")
            return _login_form(state, prefix, next_path, N_("Wrong user name or password."), 401, name)
        _clear(key)
        sign_in(user.identity(), stamp=state.users.credential_stamp(user.name))
        state.audit.record("sign-in", user.name, ip=client_ip(), source="local")
        return redirect(_with_lang(next_path))

    @server.route(f"{prefix}logout", methods=["GET", "POST"])
    def logout() -> Response:
        if request.method in ("GET", "HEAD"):   # a link must not sign anyone out (no CSRF on GET)
            body = (f'<form method="post" action="{escape(_with_lang(prefix + "logout"))}">'
                    f'<input type="hidden" name="csrf_token" value="{escape(csrf_token())}">'
                    f'<p>{escape(_("Sign out of Shopper Insights?"))}</p>'
                    f'<button type="submit">{escape(_("Sign out"))}</button></form>')
            return page(_("Sign out"), body)
        if not _csrf_ok():
            return page(_("Sign out"), f'<p>{escape(_("The form expired; please try again."))}</p>', 400)
        identity = g.get("identity")
        name = identity.name if identity is not None else session.get("identity", {}).get("name")
        sign_out(lifetime=state.config.session_lifetime)
        state.audit.record("sign-out", name, ip=client_ip())
        return page(_("Signed out"), f'<p>{escape(_("You are signed out."))}</p><a class="button" '
                                     f'href="{escape(_with_lang(prefix + "login"))}">{escape(_("Sign in again"))}</a>')
