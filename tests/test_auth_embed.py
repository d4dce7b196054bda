"""Signed embed links (dashboard/auth/embed.py): what a token grants, and that nothing but an
unchanged, unexpired token made with this key grants anything."""
from __future__ import annotations

import argparse
import string
import time
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from dashboard.auth import embed
from dashboard.auth.embed import EmbedTokenError, embed_url, make_token, read_claims, read_token
from dashboard.auth.identity import Role, Scope, parse_scope

SECRET = "test-secret-" + "k" * 32
SCOPE = parse_scope(["service_tier=premium", "top_category=Kitchenware,Kids' goods", "marketing_consent=yes"])
TOKEN = make_token(SECRET, role=Role.VIEWER, scope=SCOPE, page="/carts", ttl=3600)
BASE64URL = string.ascii_letters + string.digits + "-_"


def reason(token: str, **kwargs) -> str:
    with pytest.raises(EmbedTokenError) as info:
        read_token(kwargs.pop("secret", SECRET), token, **kwargs)
    assert info.value.message == str(info.value) and info.value.message
    return info.value.reason


def test_round_trip_gives_an_embed_identity_with_the_role_and_scope():
    before = time.time()
    token = make_token(SECRET, role=Role.VIEWER, scope=SCOPE, page="/carts", ttl=3600)
    claims = read_claims(SECRET, token)
    identity = claims.identity
    assert identity.role is Role.VIEWER and identity.source == "embed"
    assert identity.name == "embed:" + claims.jti[:8] and len(claims.jti) >= 16
    assert identity.scope == SCOPE and identity.scope.values("marketing_consent") == (True,)
    assert claims.page == "/carts"
    assert claims.expires_at - claims.issued_at == 3600
    assert before - 1 <= claims.issued_at <= time.time()
    assert read_token(SECRET, token) == identity


def test_analyst_and_unscoped_round_trip_and_each_token_is_unique():
    first = make_token(SECRET, role=Role.ANALYST, scope=Scope(), page="/segments", ttl=60)
    second = make_token(SECRET, role=Role.ANALYST, scope=Scope(), page="/segments", ttl=60)
    assert first != second   # a fresh jti each time: the audit log tells two links apart
    identity = read_token(SECRET, first)
    assert identity.role is Role.ANALYST and identity.scope.unrestricted
    assert read_claims(SECRET, first).jti != read_claims(SECRET, second).jti


def test_the_lifetime_is_per_token_and_checked_against_now():
    claims = read_claims(SECRET, TOKEN)
    assert read_token(SECRET, TOKEN, now=claims.expires_at - 1).role is Role.VIEWER
    with pytest.raises(EmbedTokenError) as info:
        read_token(SECRET, TOKEN, now=claims.expires_at)
    assert info.value.reason == "expired"
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(claims.expires_at))
    assert info.value.message == (f"This embedded view's link expired at {when}; "
                                  "reload the portal page to get a new one.")
    short = make_token(SECRET, role=Role.VIEWER, scope=Scope(), page="/", ttl=60)
    assert reason(short, now=time.time() + 61) == "expired"
    assert read_token(SECRET, TOKEN, now=time.time() + 61).role is Role.VIEWER


@pytest.mark.parametrize("ttl", [59, 30 * 24 * 3600 + 1, 0, -5, True, 3600.0, "3600"])
def test_lifetimes_outside_a_minute_to_thirty_days_are_refused(ttl):
    with pytest.raises(ValueError, match="60 to 2592000 seconds"):
        make_token(SECRET, role=Role.VIEWER, scope=Scope(), page="/carts", ttl=ttl)


@pytest.mark.parametrize("ttl", [60, 30 * 24 * 3600])
def test_the_lifetime_bounds_themselves_are_allowed(ttl):
    claims = read_claims(SECRET, make_token(SECRET, role=Role.VIEWER, scope=Scope(), page="/carts", ttl=ttl))
    assert claims.expires_at - claims.issued_at == ttl


def test_admin_is_never_embedded():
    with pytest.raises(ValueError, match="never admin"):
        make_token(SECRET, role=Role.ADMIN, scope=Scope(), page="/carts", ttl=3600)
    # not even when someone with the key signs an admin payload by hand
    forged = embed._serializer(SECRET).dumps({"role": "admin", "scope": [], "page": "/carts",
                                              "jti": "abcdefgh12345678", "exp": int(time.time()) + 60})
    assert reason(forged) == "malformed"


@pytest.mark.parametrize("page", ["carts", "//evil.example.com/x", "http://evil.example.com/", "/carts?x=1", "/a b", ""])
def test_a_page_must_be_a_path_of_this_app(page):
    with pytest.raises(ValueError, match="path of this app"):
        make_token(SECRET, role=Role.VIEWER, scope=Scope(), page=page, ttl=3600)


def test_wrong_secret_is_refused_as_altered():
    assert reason(TOKEN, secret="another-secret-" + "z" * 32) == "altered"


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# half the draws at the signature's last character, where base64's spare bits are
@given(position=st.one_of(st.integers(min_value=0, max_value=len(TOKEN) - 1), st.just(len(TOKEN) - 1)),
       replacement=st.one_of(st.sampled_from(BASE64URL + "."), st.characters()))
def test_no_changed_character_verifies(position, replacement):
    assume(TOKEN[position] != replacement)
    altered = TOKEN[:position] + replacement + TOKEN[position + 1:]
    assert reason(altered) in ("altered", "malformed")


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_no_cut_insertion_or_swap_verifies(data):
    kind = data.draw(st.sampled_from(["cut", "insert", "swap", "truncate"]))
    i = data.draw(st.integers(min_value=0, max_value=len(TOKEN) - 1))
    if kind == "cut":
        altered = TOKEN[:i] + TOKEN[i + 1:]
    elif kind == "insert":
        altered = TOKEN[:i] + data.draw(st.sampled_from(BASE64URL + ".")) + TOKEN[i:]
    elif kind == "truncate":
        altered = TOKEN[:i]
    else:
        j = data.draw(st.integers(min_value=0, max_value=len(TOKEN) - 1))
        altered = "".join(TOKEN[j] if k == i else TOKEN[i] if k == j else c for k, c in enumerate(TOKEN))
    assume(altered != TOKEN)
    with pytest.raises(EmbedTokenError):
        read_token(SECRET, altered)


def test_every_other_spelling_of_the_last_character_is_refused():
    # base64 leaves spare bits in the last character: some of these decode to the very same
    # signature bytes, and only the canonical-encoding check refuses them
    for char in BASE64URL:
        if char != TOKEN[-1]:
            assert reason(TOKEN[:-1] + char) == "altered", char


def test_payloads_signed_with_the_key_but_not_made_by_make_token_are_malformed():
    sign = embed._serializer(SECRET).dumps
    now = int(time.time())
    good = {"role": "viewer", "scope": [], "page": "/carts", "jti": "abcdefgh12345678", "exp": now + 60}
    for bad in ([1, 2], "viewer", {**good, "role": "owner"}, {**good, "scope": "service_tier=premium"},
                {**good, "scope": ["colour=red"]}, {**good, "page": "https://evil.example.com/"},
                {**good, "jti": ""}, {**good, "exp": "soon"}, {**good, "exp": True},
                {**good, "exp": now + embed.MAX_TTL + 3600}, {k: v for k, v in good.items() if k != "exp"}):
        assert reason(sign(bad)) == "malformed", bad
    assert read_token(SECRET, sign(good)).name == "embed:abcdefgh"


@pytest.mark.parametrize("token", ["", "abc", "a.b.c", "....", "x" * 40, "é" * 10, "\ud800", "tok en", None, 42])
def test_garbage_is_refused_with_a_message_not_an_exception(token):
    assert reason(token) in ("altered", "malformed")


def test_a_too_long_token_is_refused_as_altered_before_it_is_decoded():
    padded = "A" * (embed.MAX_TOKEN_CHARS + 1 - len(TOKEN)) + TOKEN
    assert len(padded) == embed.MAX_TOKEN_CHARS + 1
    assert reason(padded) == "altered"
    assert reason("a." * 50_000) == "altered"


def test_token_from_request_prefers_the_header_and_falls_back_to_the_query():
    app = Flask(__name__)
    with app.test_request_context("/_dash-update-component", headers={"X-Embed-Token": TOKEN}):
        from flask import request
        assert embed.token_from_request(request) == TOKEN
    with app.test_request_context(f"/carts?embed=1&token={TOKEN}", headers={"X-Embed-Token": "header"}):
        assert embed.token_from_request(request) == "header"
    with app.test_request_context(f"/carts?embed=1&token={TOKEN}"):
        assert embed.token_from_request(request) == TOKEN
    for path, headers in (("/carts?embed=1", {}), ("/carts?token=", {"X-Embed-Token": "  "})):
        with app.test_request_context(path, headers=headers):
            assert embed.token_from_request(request) is None
    long = "A" * 5000
    with app.test_request_context("/_dash-layout", headers={"X-Embed-Token": long}):
        # handed on as sent, so the frame is told it is not valid rather than sent to /login
        assert embed.token_from_request(request) == long
        assert reason(embed.token_from_request(request)) == "altered"


def test_embed_url_puts_embed_first_the_page_state_next_and_the_token_last():
    url = embed_url("http://127.0.0.1:8050", "/carts", TOKEN, "segment=0,1&note=a b&c=x%26y")
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == ("http", "127.0.0.1:8050", "/carts")
    assert parts.query.startswith("embed=1&segment=0,1&note=a+b&c=x%26y&token=")
    assert parse_qs(parts.query) == {"embed": ["1"], "segment": ["0,1"], "note": ["a b"], "c": ["x&y"], "token": [TOKEN]}
    assert read_token(SECRET, parse_qs(parts.query)["token"][0]).scope == SCOPE


def test_embed_url_keeps_the_prefix_and_drops_a_second_embed_or_token():
    url = embed_url("https://bi.example.com/bi/", "/customers", TOKEN, "?token=evil&embed=0&tier=premium")
    assert url == f"https://bi.example.com/bi/customers?embed=1&tier=premium&token={TOKEN}"
    assert embed_url("http://h:1", "/", TOKEN) == f"http://h:1/?embed=1&token={TOKEN}"


@pytest.mark.parametrize("base", ["127.0.0.1:8050", "ftp://h/", "javascript:alert(1)", "http://"])
def test_embed_url_needs_an_http_base(base):
    with pytest.raises(ValueError, match="base URL"):
        embed_url(base, "/carts", TOKEN)


def test_expired_page_is_a_small_401_with_the_message_and_nothing_else():
    response = embed.expired_page("Link expired at <b>noon</b> & more")
    body = response.get_data(as_text=True)
    assert response.status_code == 401 and response.mimetype == "text/html"
    assert response.headers["Cache-Control"] == "no-store"
    assert "Link expired at &lt;b&gt;noon&lt;/b&gt; &amp; more" in body and "<b>" not in body
    # self-contained: no script, nothing fetched from anywhere
    assert "<script" not in body and "src=" not in body and "href=" not in body and "@import" not in body


def cli(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m dashboard")
    embed.add_cli(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(list(argv))


@pytest.fixture
def auth_env(monkeypatch, tmp_path):
    monkeypatch.setenv("AUTH", "local")
    monkeypatch.setenv("SECRET_KEY", SECRET)
    monkeypatch.setenv("STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("PORT", "8123")
    monkeypatch.delenv("URL_PREFIX", raising=False)
    monkeypatch.delenv("HOST", raising=False)


def test_cli_prints_a_working_url(auth_env, capsys):
    args = cli("embed-url", "--page", "/carts", "--scope", "service_tier=premium", "--ttl", "600",
               "--query", "segment=1")
    assert args.func is embed.run_cli
    assert embed.run_cli(args) == 0
    out, err = capsys.readouterr()
    url = out.strip()
    assert url.startswith("http://127.0.0.1:8123/carts?embed=1&segment=1&token=") and "\n" not in url
    assert "valid until" in err
    claims = read_claims(SECRET, parse_qs(urlsplit(url).query)["token"][0])
    assert claims.identity.role is Role.VIEWER and claims.identity.scope.text() == ["service_tier=premium"]
    assert claims.expires_at - claims.issued_at == 600 and claims.page == "/carts"


def test_cli_uses_the_base_url_and_the_prefix(auth_env, monkeypatch, capsys):
    monkeypatch.setenv("URL_PREFIX", "/bi/")
    assert embed.run_cli(cli("embed-url", "--page", "/", "--role", "analyst")) == 0
    assert capsys.readouterr().out.startswith("http://127.0.0.1:8123/bi/?embed=1&token=")
    assert embed.run_cli(cli("embed-url", "--page", "/model", "--base-url", "https://bi.example.com/bi")) == 0
    assert capsys.readouterr().out.startswith("https://bi.example.com/bi/model?embed=1&token=")


def test_cli_refuses_admin_bad_scopes_ttls_and_a_missing_key(auth_env, monkeypatch, capsys):
    with pytest.raises(SystemExit):
        cli("embed-url", "--page", "/carts", "--role", "admin")
    assert "invalid choice: 'admin'" in capsys.readouterr().err
    assert embed.run_cli(cli("embed-url", "--page", "/carts", "--scope", "colour=red")) == 2
    assert "scope column" in capsys.readouterr().err
    assert embed.run_cli(cli("embed-url", "--page", "/carts", "--ttl", "10")) == 2
    assert "60 to 2592000 seconds" in capsys.readouterr().err
    monkeypatch.delenv("SECRET_KEY")
    assert embed.run_cli(cli("embed-url", "--page", "/carts")) == 2
    out, err = capsys.readouterr()
    assert out == "" and "needs SECRET_KEY" in err


def test_a_link_made_earlier_is_issued_then_and_expires_on_its_own_clock():
    earlier = time.time() - 7200
    token = make_token(SECRET, role=Role.VIEWER, scope=SCOPE, page="/carts", ttl=3600, now=earlier)
    claims = read_claims(SECRET, token, now=earlier + 10)
    assert claims.issued_at == int(earlier) and claims.expires_at == int(earlier) + 3600
    with pytest.raises(EmbedTokenError) as caught:
        read_claims(SECRET, token)                      # the real clock: an hour past its end
    assert caught.value.reason == "expired"
