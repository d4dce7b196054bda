"""Access settings, read from the environment at call time (never at import).

| variable | default | meaning |
|---|---|---|
| ``AUTH`` | ``none`` | ``none``, ``local``, ``oidc`` or ``proxy`` (README "Access") |
| ``AUTH_ALLOW_ANONYMOUS`` | (unset) | ``1``: allow ``AUTH=none`` on a non-loopback ``HOST`` (a banner says so) |
| ``ANONYMOUS_ROLE`` | ``admin`` on loopback, else ``viewer`` | the role of every visitor under ``AUTH=none`` |
| ``SECRET_KEY`` | generated in ``STATE_DIR`` for ``AUTH=none`` | signs sessions, CSRF and embed tokens; required otherwise |
| ``STATE_DIR`` | ``data/state`` | users, audit log and the generated key: kept apart from the warehouse, so a rebuild keeps them |
| ``SESSION_LIFETIME`` | ``28800`` | seconds a sign-in lasts |
| ``COOKIE_SECURE`` | ``auto`` | ``auto`` (Secure when the request came over HTTPS), ``1`` or ``0`` |
| ``LOGIN_MAX_FAILURES`` / ``LOGIN_LOCKOUT`` | ``5`` / ``900`` | failed sign-ins per name and address before a pause of that many seconds |
| ``AUTH_GROUPS`` | (unset) | ``oidc``/``proxy``: ``GROUP:ROLE[:COLUMN=VALUE...]`` entries separated by ``;`` |
| ``AUTH_DEFAULT_ROLE`` | (unset) | ``oidc``/``proxy``: role of a user in none of those groups (unset: refused) |
| ``AUTH_PROXY_ADDRESSES`` | (required for ``proxy``) | proxies trusted to send the user header: IPs or CIDRs, comma-separated |
| ``FORWARDED_ALLOW_IPS`` | ``127.0.0.1,::1`` | balancers (IPs or CIDRs) whose ``X-Forwarded-For`` names the client for the sign-in throttle and the audit log; gunicorn reads the same variable for ``X-Forwarded-Proto``. ``*`` (any peer) is not used for the client: the peer is counted, since a client reaching the app directly could name itself |
| ``AUTH_PROXY_USER_HEADER`` / ``AUTH_PROXY_GROUPS_HEADER`` | ``X-Forwarded-User`` / ``X-Forwarded-Groups`` | headers the proxy sets (groups comma-separated) |
| ``OIDC_ISSUER`` | (required for ``oidc``) | the provider; its ``/.well-known/openid-configuration`` is read |
| ``OIDC_CLIENT_ID`` / ``OIDC_CLIENT_SECRET`` | (required for ``oidc``) | this app's registration at the provider |
| ``OIDC_SCOPES`` | ``openid profile email`` | scopes asked for |
| ``OIDC_USER_CLAIM`` / ``OIDC_GROUPS_CLAIM`` | ``preferred_username`` / ``groups`` | claims that name the user and their groups |
"""
from __future__ import annotations

import ipaddress
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from dashboard.auth.identity import Role, Scope, parse_scope
from etl.settings import PROJECT_ROOT, get_settings

MODES = ("none", "local", "oidc", "proxy")
USERS_FILE, AUDIT_FILE = "users.json", "audit.jsonl"   # in STATE_DIR


class AuthConfigError(ValueError):
    """A setting that makes the server unsafe or unable to start; the message says which and why."""


@dataclass(frozen=True)
class GroupRule:
    group: str
    role: Role
    scope: Scope


@dataclass(frozen=True)
class AuthConfig:
    mode: str
    secret_key: str
    state_dir: Path
    anonymous_role: Role
    anonymous_public: bool            # AUTH=none on a non-loopback address, allowed on purpose
    session_lifetime: int
    cookie_secure: str                # auto | 1 | 0
    max_failures: int
    lockout: int
    groups: tuple[GroupRule, ...]
    default_role: Role | None
    proxy_addresses: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
    # the balancers whose X-Forwarded-For names the client (None: any peer); dashboard/auth/client.py
    forwarders: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] | None
    proxy_user_header: str
    proxy_groups_header: str
    oidc_issuer: str
    oidc_client_id: str
    oidc_client_secret: str
    oidc_scopes: str
    oidc_user_claim: str
    oidc_groups_claim: str

    @property
    def users_file(self) -> Path:
        return self.state_dir / USERS_FILE

    @property
    def audit_file(self) -> Path:
        return self.state_dir / AUDIT_FILE


def is_loopback(host: str) -> bool:
    host = host.strip().strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name that is not "localhost" may resolve anywhere


def _int(name: str, default: int, low: int = 1) -> int:
    raw = os.environ.get(name, "").strip() or str(default)
    if not re.fullmatch(r"[0-9]{1,9}", raw) or int(raw) < low:
        raise AuthConfigError(f"{name} must be a whole number of at least {low}, got {raw!r}")
    return int(raw)


def parse_groups(text: str) -> tuple[GroupRule, ...]:
    """``"bi-admins:admin; premium-sales:viewer:service_tier=premium"`` -> rules."""
    rules = []
    for entry in filter(None, (part.strip() for part in re.split(r"[;\n]", text))):
        group, _, rest = entry.partition(":")
        role, *scope = rest.split(":")
        if not group.strip() or not role.strip():
            raise AuthConfigError(f"AUTH_GROUPS: an entry is GROUP:ROLE[:COLUMN=VALUE...], got {entry!r}")
        try:
            rules.append(GroupRule(group.strip(), Role.parse(role), parse_scope([s for s in scope if s.strip()])))
        except ValueError as exc:
            raise AuthConfigError(f"AUTH_GROUPS entry {entry!r}: {exc}") from None
    return tuple(rules)


def _networks(text: str, variable: str = "AUTH_PROXY_ADDRESSES") -> tuple:
    nets = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        try:
            nets.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise AuthConfigError(f"{variable}: {item!r} is not an IP address or network") from None
    return tuple(nets)


def _forwarders(text: str) -> tuple | None:
    """FORWARDED_ALLOW_IPS, read as gunicorn reads it (its default when unset; ``*``: any peer,
    returned as None, for which dashboard/auth/client.py reads no header), so the app and the
    server trust the same balancers."""
    return None if text.strip() == "*" else _networks(text, "FORWARDED_ALLOW_IPS")


def _secret(mode: str, state_dir: Path) -> str:
    given = os.environ.get("SECRET_KEY", "").strip()
    if given:
        if len(given) < 16:
            raise AuthConfigError("SECRET_KEY must be at least 16 characters (e.g. `python -c 'import secrets; print(secrets.token_hex(32))'`)")
        return given
    if mode != "none":
        raise AuthConfigError(f"AUTH={mode} needs SECRET_KEY (the same on every worker and host): "
                              "`python -c 'import secrets; print(secrets.token_hex(32))'`")
    # the embedded default: one key per installation, kept beside the users and the audit log
    path = state_dir / "secret_key"
    state_dir.mkdir(parents=True, exist_ok=True)
    try:
        with open(path, "x", encoding="ascii") as handle:   # the first process to start writes it
            os.chmod(path, 0o600)
            handle.write(secrets.token_hex(32))
    except FileExistsError:
        pass
    return path.read_text(encoding="ascii").strip()


def state_dir() -> Path:
    """``STATE_DIR``: all the command line needs to manage users (not the server's key)."""
    state = Path(os.environ.get("STATE_DIR", "data/state")).expanduser()
    return state if state.is_absolute() else PROJECT_ROOT / state


def check_open_access(mode: str, hosts: list[str]) -> None:
    """``AUTH=none`` serves loopback addresses only, unless AUTH_ALLOW_ANONYMOUS=1 says otherwise.
    gunicorn.conf.py calls this with the addresses it really binds (``-b`` included)."""
    public = [h for h in hosts if not is_loopback(h)]
    if mode == "none" and public and os.environ.get("AUTH_ALLOW_ANONYMOUS", "").strip() != "1":
        raise AuthConfigError(f"refusing to serve without sign-in on {public[0]}: set AUTH=local, oidc or proxy, "
                              "bind HOST=127.0.0.1, or set AUTH_ALLOW_ANONYMOUS=1 to open it to anyone on purpose")


def get_auth_config() -> AuthConfig:
    mode = os.environ.get("AUTH", "none").strip().lower() or "none"
    if mode not in MODES:
        raise AuthConfigError(f"AUTH must be one of {', '.join(MODES)}, got {mode!r}")
    state = state_dir()
    host = get_settings().host
    public = mode == "none" and not is_loopback(host)
    check_open_access(mode, [host])
    anonymous = os.environ.get("ANONYMOUS_ROLE", "").strip() or ("viewer" if public else "admin")
    default_role = os.environ.get("AUTH_DEFAULT_ROLE", "").strip()
    secure = os.environ.get("COOKIE_SECURE", "auto").strip().lower() or "auto"
    if secure not in ("auto", "1", "0"):
        raise AuthConfigError(f"COOKIE_SECURE must be auto, 1 or 0, got {secure!r}")
    try:
        anonymous_role = Role.parse(anonymous)
        default = Role.parse(default_role) if default_role else None
    except ValueError as exc:
        raise AuthConfigError(f"ANONYMOUS_ROLE / AUTH_DEFAULT_ROLE: {exc}") from None
    config = AuthConfig(
        mode=mode, secret_key=_secret(mode, state), state_dir=state,
        anonymous_role=anonymous_role, anonymous_public=public,
        session_lifetime=_int("SESSION_LIFETIME", 8 * 3600, 60), cookie_secure=secure,
        max_failures=_int("LOGIN_MAX_FAILURES", 5), lockout=_int("LOGIN_LOCKOUT", 900),
        groups=parse_groups(os.environ.get("AUTH_GROUPS", "")), default_role=default,
        proxy_addresses=_networks(os.environ.get("AUTH_PROXY_ADDRESSES", "")),
        forwarders=_forwarders(os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")),
        proxy_user_header=os.environ.get("AUTH_PROXY_USER_HEADER", "X-Forwarded-User").strip(),
        proxy_groups_header=os.environ.get("AUTH_PROXY_GROUPS_HEADER", "X-Forwarded-Groups").strip(),
        oidc_issuer=os.environ.get("OIDC_ISSUER", "").strip().rstrip("/"),
        oidc_client_id=os.environ.get("OIDC_CLIENT_ID", "").strip(),
        oidc_client_secret=os.environ.get("OIDC_CLIENT_SECRET", "").strip(),
        oidc_scopes=os.environ.get("OIDC_SCOPES", "openid profile email").strip(),
        oidc_user_claim=os.environ.get("OIDC_USER_CLAIM", "preferred_username").strip(),
        oidc_groups_claim=os.environ.get("OIDC_GROUPS_CLAIM", "groups").strip(),
    )
    if mode == "proxy" and not config.proxy_addresses:
        raise AuthConfigError("AUTH=proxy needs AUTH_PROXY_ADDRESSES: the addresses of the proxies allowed to name the user")
    if mode == "oidc" and not (config.oidc_issuer and config.oidc_client_id and config.oidc_client_secret):
        raise AuthConfigError("AUTH=oidc needs OIDC_ISSUER, OIDC_CLIENT_ID and OIDC_CLIENT_SECRET")
    return config


def role_from_groups(config: AuthConfig, groups: list[str]) -> tuple[Role, Scope] | None:
    """The highest role among the user's mapped groups, within the scopes of the groups that
    grant that role (their union; unscoped when one of them is); None when no group is mapped
    and there is no default role.

    Only the groups that grant the role decide its scope: a user in ``staff:viewer`` and
    ``premium-analysts:analyst:service_tier=premium`` is an analyst of premium customers, not
    an analyst of everyone (the unscoped viewer group must not lift the analyst group's scope).
    """
    matched = [rule for rule in config.groups if rule.group in groups]
    if not matched:
        return (config.default_role, Scope()) if config.default_role else None
    role = max(rule.role for rule in matched)
    granting = [rule for rule in matched if rule.role == role]
    if any(rule.scope.unrestricted for rule in granting):
        return role, Scope()
    return role, parse_scope([item for rule in granting for item in rule.scope.text()])
