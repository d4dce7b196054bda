"""The access settings, user store and audit log of the running app, kept on the Flask app.

The app factory installs them once (:func:`install`); pages and the gate reach them through
:func:`stores`, so every worker reads the same files and nothing is a module global.
"""
from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, current_app, has_app_context, has_request_context, request

from dashboard.auth.audit import AuditLog
from dashboard.auth.client import client_address
from dashboard.auth.identity import Capability
from dashboard.auth.session import current
from dashboard.auth.settings import AuthConfig
from dashboard.auth.users import UserStore

EXTENSION = "shopper_auth"


class NotInstalled(RuntimeError):
    """No app, or an app without the access stores (a page drawn outside the server)."""


@dataclass(frozen=True)
class AuthState:
    config: AuthConfig
    users: UserStore
    audit: AuditLog


def install(app: Flask, config: AuthConfig) -> AuthState:
    state = AuthState(config, UserStore(config.users_file), AuditLog(config.audit_file))
    app.extensions[EXTENSION] = state
    return state


def stores() -> AuthState:
    """The current app's :class:`AuthState`; :class:`NotInstalled` when there is none."""
    if not has_app_context():
        raise NotInstalled("access control is only available inside the running app")
    state = current_app.extensions.get(EXTENSION)
    if state is None:
        raise NotInstalled("access control is not set up in this app")
    return state


def is_admin() -> bool:
    """Whether the current request acts for an administrator. A request without an identity
    (the gate did not see it) is not one: the admin pages fail closed."""
    try:
        return current().can(Capability.ADMIN)
    except PermissionError:
        return False


def client_ip() -> str | None:
    """This request's client address (:mod:`dashboard.auth.client`), None outside a request."""
    if not has_request_context():
        return None
    state = current_app.extensions.get(EXTENSION)
    if state is None:
        return request.remote_addr
    return client_address(request.remote_addr, request.headers.getlist("X-Forwarded-For"), state.config.forwarders)


def uncached() -> None:
    """Keep this request's answer out of the response cache: the admin pages answer from the
    user store and the audit log, which change between two identical requests, and their
    buttons act, so a kept answer would be stale or replay a message for an action never run."""
    from dashboard.response_cache import keep_out   # late: that module imports the access ones

    if has_request_context():
        keep_out()
