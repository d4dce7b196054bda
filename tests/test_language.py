"""The reader's language: ?lang=, the X-Shopper-Lang header of Dash requests, Accept-Language,
DEFAULT_LANG; <html lang>; the response cache keeps languages apart; Plotly's locale from CLDR.
Real app on the real (or generated) warehouse, Flask's test client."""
from __future__ import annotations

import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dashboard import i18n
from dashboard.language import HEADER, current_lang, plotly_locale, using_lang, valid


@pytest.fixture
def app(dashboard_env):
    from dashboard.app import create_app

    return create_app()


def _html_lang(response) -> str:
    text = response.get_data(as_text=True)
    start = text.index("<html")
    return text[start:text.index(">", start) + 1]


@pytest.mark.parametrize(("query", "headers", "expected"), [
    ("", {}, "en"),
    ("?lang=es", {}, "es"),
    ("?lang=ru", {"Accept-Language": "es"}, "ru"),             # the address wins
    ("", {"Accept-Language": "ru-RU,ru;q=0.9,en;q=0.5"}, "ru"),
    ("", {"Accept-Language": "de-DE,es;q=0.8"}, "es"),         # the best one we have
    ("", {"Accept-Language": "de, fr"}, "en"),                  # none we have: the default
    ("?lang=de", {"Accept-Language": "es"}, "es"),              # an unknown choice is ignored
    ("?lang=%3Cscript%3E", {}, "en"),
])
def test_the_page_declares_the_language_it_is_drawn_in(app, query, headers, expected):
    response = app.server.test_client().get(f"/carts{query}", headers=headers)
    assert response.status_code == 200
    assert _html_lang(response) == f'<html lang="{expected}">'


def test_default_lang_comes_from_the_environment_and_is_checked(dashboard_env, monkeypatch):
    from dashboard.app import create_app

    monkeypatch.setenv("DEFAULT_LANG", "ru")
    client = create_app().server.test_client()
    assert _html_lang(client.get("/")) == '<html lang="ru">'
    assert _html_lang(client.get("/", headers={"Accept-Language": "es"})) == '<html lang="es">'
    monkeypatch.setenv("DEFAULT_LANG", "klingon")
    with pytest.raises(ValueError, match="en, es, ru"):
        create_app()


def test_callbacks_answer_in_the_language_of_their_page(app):
    """A Dash request has no query string: the header the page's script sends decides."""
    from dashboard.components.shell import navbar
    from dashboard.auth.identity import Identity, Role

    with app.server.test_request_context("/_dash-update-component", method="POST", headers={HEADER: "ru"}):
        assert current_lang() == "ru"
        assert "Русский" in json.dumps(navbar(Identity("x", Role.VIEWER, source="none")).to_plotly_json(),
                                      default=lambda c: c.to_plotly_json(), ensure_ascii=False)
    with app.server.test_request_context("/_dash-update-component", method="POST",
                                         headers={HEADER: "xx", "Accept-Language": "es"}):
        assert current_lang() == "es"


def test_using_lang_wins_over_the_request_and_is_undone(app):
    with app.server.test_request_context("/?lang=es"):
        with using_lang("ru"):
            assert current_lang() == "ru"
        assert current_lang() == "es"
    with pytest.raises(ValueError):
        with using_lang("xx"):
            pass


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.text(max_size=12), st.sampled_from(["EN", " es ", "ru\n", "Es", "r u"]), st.none(),
                 st.integers()))
def test_only_a_language_we_have_is_ever_taken(value):
    found = valid(value)
    assert found is None or found in i18n.LANGS
    if isinstance(value, str) and value.strip().lower() in i18n.LANGS:
        assert found == value.strip().lower()


def test_the_response_cache_keeps_languages_apart(app):
    """The same callback request in two languages is two answers, neither served for the other."""
    from benchmarks.dashclient import DashClient

    body = DashClient(app).open("/carts", "").requests[0].body   # opening /carts, in English
    client = app.server.test_client()
    answers = {}
    for lang in i18n.LANGS:
        first = client.post("/_dash-update-component", json=body, headers={HEADER: lang})
        again = client.post("/_dash-update-component", json=body, headers={HEADER: lang})
        assert first.headers["X-Response-Cache"] == ("hit" if lang == "en" else "miss")
        assert again.headers["X-Response-Cache"] == "hit"
        answers[lang] = again.get_data(as_text=True)
    assert re.search("[а-яё]", answers["ru"], re.IGNORECASE) and not re.search("[а-яё]", answers["en"])
    assert len(set(answers.values())) == 3


@pytest.mark.parametrize("lang", ["es", "ru"])
def test_plotly_locale_comes_from_cldr(lang):
    locale = plotly_locale(lang)["format"]
    assert len(locale["months"]) == 12 and len(locale["days"]) == 7
    assert locale["decimal"] == ","
    assert locale["thousands"] == {"es": ".", "ru": "\xa0"}[lang]
    assert locale["months"][0].lower() == {"es": "enero", "ru": "январь"}[lang]
    assert locale["days"][0].lower() == {"es": "domingo", "ru": "воскресенье"}[lang]   # d3 starts on Sunday


def test_links_drawn_by_dash_requests_keep_a_chosen_language(app):
    """/_dash-layout and callbacks see no ?lang=, only the page's header: the navigation must
    still carry a language the reader chose, and not one the browser picks anyway."""
    from dashboard.language import link_lang

    client = app.server.test_client()
    chosen = client.get("/_dash-layout", headers={HEADER: "ru", "Accept-Language": "en"}).get_data(as_text=True)
    assert 'carts?lang=ru"' in chosen and 'customers?lang=ru"' in chosen   # Dash writes "/" as \u002f
    browser = client.get("/_dash-layout", headers={HEADER: "ru", "Accept-Language": "ru"}).get_data(as_text=True)
    assert 'carts"' in browser and "carts?lang" not in browser and "customers?lang" not in browser
    with app.server.test_request_context("/_dash-update-component", method="POST", headers={HEADER: "es"}):
        assert link_lang() == "es"
    with app.server.test_request_context("/carts?lang=en"):
        assert link_lang() is None   # English is what this browser (no Accept-Language) gets anyway


@settings(max_examples=300, deadline=None)
@given(value=st.one_of(st.floats(allow_nan=False, allow_infinity=False, min_value=-1e12, max_value=1e12),
                       st.integers(min_value=-10**12, max_value=10**12)),
       lang=st.sampled_from(i18n.LANGS), digits=st.integers(min_value=0, max_value=3))
def test_memoized_number_formats_are_babels_own(value, lang, digits):
    """The formats are memoized by the number's text; what they give must stay Babel's output."""
    locale = i18n._locale(lang)
    assert i18n.format_number(value, lang, digits) == i18n._pattern(lang, "decimal", digits).apply(value, locale)
    assert i18n.format_percent(value, lang, digits) == i18n._pattern(lang, "percent", digits).apply(value, locale)
