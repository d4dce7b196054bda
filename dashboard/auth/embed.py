"""Signed, expiring links that let an intranet portal frame one page without a sign-in.

``python -m dashboard embed-url --page /carts --role viewer --scope service_tier=premium``
prints ``http://host:port/carts?embed=1&token=<TOKEN>``. The token is an itsdangerous
``URLSafeTimedSerializer`` signature (key ``SECRET_KEY``, salt below) over::

    {"role": "viewer", "scope": ["service_tier=premium"], "page": "/carts",
     "jti": "<random>", "exp": <unix time>}

Nothing depends on a cookie, so a browser that blocks third-party cookies still works:
``assets/embed.js`` reads the token from the address once and sends it as ``X-Embed-Token``
on every Dash request; a page load carries it as ``token=``. The gate
(:mod:`dashboard.auth.gate`) reads it with :func:`read_claims`: the :class:`Identity` and the
one page the link opens.

``admin`` is never embedded: a link can be copied out of a portal's page source, and whoever
holds it acts with its role until it expires.
"""
from __future__ import annotations

import argparse
import hashlib
import html
import re
import secrets
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from flask import Response
from itsdangerous import BadData, BadPayload, BadSignature, TimestampSigner, URLSafeTimedSerializer
from itsdangerous.encoding import base64_decode, base64_encode

from dashboard.auth.identity import Identity, Role, Scope, parse_scope
from dashboard.language import N_, _, current_lang

SALT = "shopper-insights-embed"   # keeps these signatures apart from the session cookie's
HEADER = "X-Embed-Token"
QUERY = "token"
MIN_TTL = 60
MAX_TTL = 30 * 24 * 3600
# A token is ~200-600 characters (it grows with the scope); anything far longer is not ours,
# and is refused before it is decoded or decompressed.
MAX_TOKEN_CHARS = 4096
_TOKEN = re.compile(r"^[A-Za-z0-9_.-]+$")
# a page path of this app: no scheme or host (an open redirect), no query (that is ``query``)
_PAGE = re.compile(r"^/(?!/)[A-Za-z0-9._~/-]*$")
EMBEDDABLE = (Role.VIEWER, Role.ANALYST)

# the refusals are msgids: the frame's page (and the gate's 401) show them translated
ALTERED = N_("This embedded view's link is not valid: it was changed, cut short or signed with "
             "another key. Reload the portal page to get a new one.")
MALFORMED = N_("This embedded view's link is not valid: it is not a Shopper Insights link. "
               "Reload the portal page to get a new one.")


class EmbedTokenError(ValueError):
    """A token that gives no access. ``message`` is for the person looking at the frame;
    ``reason`` (expired | altered | malformed) is for the log and the audit."""

    def __init__(self, message: str, reason: str = "altered") -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason


@dataclass(frozen=True)
class EmbedClaims:
    """What a valid token says: who (``identity``), where it was issued for, and until when."""

    identity: Identity
    page: str
    jti: str
    issued_at: int
    expires_at: int


class _Signer(TimestampSigner):
    """itsdangerous' signer, with the signing time given instead of read from the clock."""

    def __init__(self, *args, issued_at: int | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.issued_at = issued_at

    def get_timestamp(self) -> int:
        return super().get_timestamp() if self.issued_at is None else self.issued_at


def _serializer(secret: str, issued_at: int | None = None) -> URLSafeTimedSerializer:
    # SHA-256 rather than itsdangerous' default SHA-1: no reason to pick the weaker one today
    return URLSafeTimedSerializer(secret, salt=SALT, signer=_Signer,
                                  signer_kwargs={"digest_method": hashlib.sha256, "issued_at": issued_at})


def _utc(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def make_token(secret: str, *, role: Role, scope: Scope, page: str, ttl: int, now: float | None = None) -> str:
    """A token for ``page`` acting as ``role`` within ``scope`` for ``ttl`` seconds from ``now``
    (unix time, default the clock; tests sign a link as if made earlier).

    Raises ValueError for ``admin``, a TTL outside 60 s .. 30 days, or a page that is not a
    path of this app."""
    if role not in EMBEDDABLE:
        raise ValueError(f"an embedded view is viewer or analyst, never {role.label}: "
                         "its link can be copied out of the portal's page")
    if isinstance(ttl, bool) or not isinstance(ttl, int) or not MIN_TTL <= ttl <= MAX_TTL:
        raise ValueError(f"the lifetime of an embed link is {MIN_TTL} to {MAX_TTL} seconds (30 days), got {ttl!r}")
    if not isinstance(page, str) or not _PAGE.match(page):
        raise ValueError(f"the page is a path of this app such as /carts, got {page!r}")
    issued = int(time.time() if now is None else now)
    payload = {"role": role.label, "scope": scope.text(), "page": page,
               "jti": secrets.token_urlsafe(12), "exp": issued + ttl}
    return _serializer(secret, issued).dumps(payload)


def _canonical_signature(token: str) -> bool:
    """Whether the signature part is the one encoding of its bytes.

    Base64 leaves unused bits in the last character, so two or three spellings decode to the
    same signature; without this check a changed token would still be accepted."""
    signature = token.rsplit(".", 1)[-1]
    try:
        return base64_encode(base64_decode(signature)).decode("ascii") == signature
    except BadData:
        return False


def read_claims(secret: str, token: str, now: float | None = None) -> EmbedClaims:
    """The claims of a valid token; :class:`EmbedTokenError` when it is expired, altered or
    not a token at all. ``now`` (unix time) is for tests."""
    if not isinstance(token, str) or not token:
        raise EmbedTokenError(MALFORMED, "malformed")
    if len(token) > MAX_TOKEN_CHARS or not _TOKEN.match(token) or not _canonical_signature(token):
        raise EmbedTokenError(ALTERED, "altered")
    try:
        payload, signed = _serializer(secret).loads(token, return_timestamp=True)
    except BadPayload:
        # correctly signed but not decodable: made with our key by something else
        raise EmbedTokenError(MALFORMED, "malformed") from None
    except BadSignature:
        raise EmbedTokenError(ALTERED, "altered") from None
    claims = _claims(payload, int(signed.timestamp()))
    if (time.time() if now is None else now) >= claims.expires_at:
        raise EmbedTokenError(_("This embedded view's link expired at {time}; reload the portal page to get a "
                                "new one.").format(time=_utc(claims.expires_at)), "expired")
    return claims


def _claims(payload: object, issued_at: int) -> EmbedClaims:
    def check(condition: bool) -> None:
        if not condition:   # not assert: python -O would drop the checks
            raise ValueError("not an embed payload")

    try:
        check(isinstance(payload, dict))
        role = Role.parse(payload["role"])
        scope, page, jti, exp = payload["scope"], payload["page"], payload["jti"], payload["exp"]
        check(role in EMBEDDABLE and isinstance(scope, list))
        check(isinstance(page, str) and bool(_PAGE.match(page)))
        check(isinstance(jti, str) and bool(jti) and isinstance(exp, int) and not isinstance(exp, bool))
        # a lifetime make_token would never give: the payload did not come from make_token
        check(0 < exp - issued_at <= MAX_TTL)
        identity = Identity(name="embed:" + jti[:8], role=role, scope=parse_scope(scope), source="embed")
    except (KeyError, TypeError, ValueError):
        raise EmbedTokenError(MALFORMED, "malformed") from None
    return EmbedClaims(identity=identity, page=page, jti=jti, issued_at=issued_at, expires_at=exp)


def read_token(secret: str, token: str, now: float | None = None) -> Identity:
    """The identity a valid token acts as (``source="embed"``, name ``embed:<jti[:8]>``)."""
    return read_claims(secret, token, now).identity


def token_from_request(request) -> str | None:
    """The token of a Flask request: the ``X-Embed-Token`` header (Dash's requests, sent by
    assets/embed.js), else ``token=`` in the query (a page load). None when neither is there.

    The value is returned as sent, however long: :func:`read_claims` refuses an over-long one
    as altered, so the frame shows why instead of silently falling back to no identity."""
    value = request.headers.get(HEADER) or request.args.get(QUERY)
    value = value.strip() if value else ""
    return value or None


def embed_url(base_url: str, page: str, token: str, query: str = "") -> str:
    """``base_url`` + ``page`` + ``?embed=1&<query>&token=<token>``.

    ``base_url`` includes any ``URL_PREFIX`` (``https://bi.example.com/bi/``); ``query`` is the
    page's own state (``segment=1``); an ``embed`` or ``token`` in it is dropped."""
    parts = urlsplit(base_url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"the base URL is http(s)://host[:port][/prefix/], got {base_url!r}")
    if not _PAGE.match(page):
        raise ValueError(f"the page is a path of this app such as /carts, got {page!r}")
    extra = [(k, v) for k, v in parse_qsl(query.lstrip("?"), keep_blank_values=True) if k not in ("embed", QUERY)]
    # commas stay literal: the pages write lists as segment=0,1 (assets/url_state.js)
    encoded = urlencode([("embed", "1"), *extra, (QUERY, token)], safe=",")
    return urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/") + page, encoded, ""))


_PAGE_HTML = """<!doctype html>
<html lang="{lang}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{title}</title>
<style>
body {{ font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #212529;
       background: #fff; margin: 0; display: flex; min-height: 100vh; align-items: center;
       justify-content: center; }}
main {{ max-width: 36rem; padding: 1.5rem 2rem; border: 1px solid #dee2e6; border-radius: .5rem;
       background: #f8f9fa; }}
h1 {{ font-size: 1.25rem; margin: 0 0 .75rem; }}
p {{ margin: 0; line-height: 1.5; }}
</style></head>
<body><main role="alert"><h1>{title}</h1>
<p class="embed-refusal">{message}</p></main></body></html>
"""


def expired_page(message: str) -> Response:
    """A self-contained 401 page for a frame whose token gives no access: the reason in plain
    words, no data, no script, nothing loaded from elsewhere; in the reader's language
    (``message`` a msgid, or a text already translated)."""
    title = html.escape(_("Shopper Insights: this view cannot be shown"))
    response = Response(_PAGE_HTML.format(lang=current_lang(), title=title, message=html.escape(_(message))),
                        status=401, mimetype="text/html")
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


# -- python -m dashboard embed-url ------------------------------------------------------------

def add_cli(subparsers) -> argparse.ArgumentParser:
    """Add ``embed-url`` to the dashboard CLI's subparsers; :func:`run_cli` runs it."""
    parser = subparsers.add_parser(
        "embed-url", help="print a signed, expiring link that a portal can put in an iframe",
        description="Print a link to one page that works in a portal's iframe without a sign-in "
                    "and without cookies, until it expires. Anyone holding the link sees what it "
                    "shows: give the narrowest role and scope, and the shortest lifetime the portal "
                    "can live with (it can ask for a new link on each page view).")
    parser.add_argument("--page", required=True, help="the page, e.g. /carts")
    parser.add_argument("--role", default="viewer", choices=[r.label for r in EMBEDDABLE],
                        help="viewer (aggregates, the default) or analyst (plus rows); never admin")
    parser.add_argument("--scope", action="append", default=[], metavar="COLUMN=VALUE[,VALUE]",
                        help="limit every number to these rows; repeat for several columns")
    parser.add_argument("--ttl", type=int, default=3600,
                        help=f"seconds the link works ({MIN_TTL} to {MAX_TTL}, default 3600)")
    parser.add_argument("--query", default="", help='the page\'s own state, e.g. "segment=1"')
    parser.add_argument("--base-url", default=None,
                        help="where the portal's visitors reach the app, with any URL_PREFIX "
                             "(default http://127.0.0.1:PORT from the environment)")
    parser.set_defaults(func=run_cli)   # dashboard/cli.py calls args.func(args)
    return parser


def run_cli(args: argparse.Namespace) -> int:
    from dashboard.auth.settings import AuthConfigError, get_auth_config
    from dashboard.config import get_config
    from etl.settings import get_settings

    try:
        secret = get_auth_config().secret_key
        base = args.base_url or f"http://127.0.0.1:{get_settings().port}{get_config().url_prefix}"
        token = make_token(secret, role=Role.parse(args.role), scope=parse_scope(args.scope),
                           page=args.page, ttl=args.ttl)
        url = embed_url(base, args.page, token, args.query)
    except (AuthConfigError, ValueError) as exc:
        print(f"python -m dashboard embed-url: {exc}", file=sys.stderr)
        return 2
    print(url)
    print(f"valid until {_utc(time.time() + args.ttl)}", file=sys.stderr)
    return 0
