"""Where a sign-in may send the browser afterwards, and the link that starts one.

One check for the login form, the OIDC callback and the gate: ``next`` is followed only when
it is a path inside this app.
"""
from __future__ import annotations

from urllib.parse import quote, unquote, urlsplit


def safe_next(target: str | None, prefix: str) -> str:
    """A path inside this app, else ``prefix``: no scheme or host (``https://evil``, ``//evil``,
    ``/\\evil``), no whitespace (browsers drop tabs and turn ``/\\t/evil`` into ``//evil``),
    no ``..``, and not the sign-in routes themselves (a loop through the provider's SSO)."""
    if not isinstance(target, str) or not target or len(target) > 2000:
        return prefix
    if "\\" in target or any(ch.isspace() or not ch.isprintable() for ch in target):
        return prefix
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or target.startswith("//") or not target.startswith(prefix):
        return prefix
    path = unquote(parts.path)
    if ".." in path.split("/") or path.startswith((f"{prefix}login", f"{prefix}logout", f"{prefix}auth/oidc/")):
        return prefix
    return target


def sign_in_url(prefix: str, target: str, mode: str) -> str:
    """The sign-in that returns to ``target``: under OIDC straight to the provider (the form
    would only say "continue"), else the login form."""
    form = "login/oidc" if mode == "oidc" else "login"
    return f"{prefix}{form}?next={quote(target, safe='/')}"
