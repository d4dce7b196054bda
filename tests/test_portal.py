"""The portal origins derived from FRAME_ANCESTORS, and the meta tag that hands them to
assets/portal.js."""
from __future__ import annotations

import html
import json
import re

import pytest

from dashboard.config import check_frame_ancestors
from dashboard.portal import META_NAME, message_origins, meta_tag


@pytest.mark.parametrize("value, expected", [
    ("'self'", ("'self'",)),
    ("'SELF'", ("'self'",)),
    ("'none'", ()),
    # CSP ignores 'none' beside other sources
    ("'none' https://portal.example.com", ("https://portal.example.com",)),
    ("'self' https://portal.example.com", ("'self'", "https://portal.example.com")),
    ("https://Portal.Example.COM", ("https://portal.example.com",)),
    ("https://*.example.com", ("https://*.example.com",)),
    ("http://localhost:8050 http://127.0.0.1:*", ("http://localhost:8050", "http://127.0.0.1:*")),
    # default ports are never in event.origin
    ("https://portal.example.com:443 http://intranet:80", ("https://portal.example.com", "http://intranet")),
    ("https://portal.example.com:8443", ("https://portal.example.com:8443",)),
    # a path narrows framing to some pages; the origin is what a message carries
    ("https://portal.example.com/sales/dashboards", ("https://portal.example.com",)),
    # no scheme: the page's own scheme, decided in the browser
    ("portal.example.com *.corp.example", ("portal.example.com", "*.corp.example")),
    # unquoted, self is a host name like any other (as CSP reads it)
    ("self", ("self",)),
    # repeats collapse, order stays
    ("https://a.example 'self' https://a.example/x 'self'", ("https://a.example", "'self'")),
])
def test_origins_follow_the_csp_sources(value, expected):
    assert message_origins(value) == expected


@pytest.mark.parametrize("source", [
    "https:", "http:", "data:", "*", "https://*", "*://portal.example.com",
    "'unsafe-inline'", "'strict-dynamic'", "'sha256-abc'",
    "https://portal.*.com", "https://*example.com", "https://**.example.com", "https://ex_ample.com",
    "https://portal.example.com:99999", "https://portal.example.com:0", "https://-bad.example.com",
    "https://", "://portal.example.com", "https://portal.example.com:", "https://[::1]:8080",
    "https://user@portal.example.com", "javascript:alert(1)", "'self", "\"'self'\"",
])
def test_sources_that_name_no_particular_origin_or_are_garbage_are_left_out(source):
    assert message_origins(f"{source} https://ok.example") == ("https://ok.example",)


def test_the_default_setting_trusts_only_the_apps_own_origin():
    assert message_origins(check_frame_ancestors("'self'")) == ("'self'",)
    assert message_origins("") == ()


def test_the_meta_tag_carries_the_origins_and_prefix_escaped():
    tag = meta_tag("'self' https://portal.example.com", "/bi/")
    content = re.fullmatch(rf'<meta name="{META_NAME}" content="([^"<>]*)">', tag)
    assert content, tag
    assert json.loads(html.unescape(content[1])) == {"origins": ["'self'", "https://portal.example.com"],
                                                      "prefix": "/bi/"}


def test_every_page_carries_the_meta_tag(dashboard_env, monkeypatch):
    monkeypatch.setenv("FRAME_ANCESTORS", "'self' https://*.example.com")
    from dashboard.app import create_app

    client = create_app().server.test_client()
    for path in ("/", "/carts?segment=1"):
        page = client.get(path).get_data(as_text=True)
        found = re.search(rf'<meta name="{META_NAME}" content="([^"<>]*)">', page)
        assert found, path
        assert json.loads(html.unescape(found[1]))["origins"] == ["'self'", "https://*.example.com"]
