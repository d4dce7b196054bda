"""Carts and Customers in Spanish and Russian: rendered inside a request with ``?lang=``, no
displayed text of the pages (component texts, options, marks, tooltips, figure titles, axis
titles, trace names, category labels, hover texts) is an English msgid of the catalog, and
numbers are in the locale's format."""
from __future__ import annotations

import re

import pytest
from babel.messages.pofile import read_po
from flask import g

from dashboard.auth.identity import Identity, Role
from dashboard.i18n import LOCALE_DIR

ANALYST = Identity("ana", Role.ANALYST, source="local")
TEXT_PROPS = ("children", "label", "placeholder", "title", "text", "headerName")
PLACEHOLDER = re.compile(r"%\{[^}]*\}|<extra>.*?</extra>")


@pytest.fixture
def app(dashboard_env):
    from dashboard.app import create_app

    return create_app()


def english(lang: str) -> set[str]:
    """The catalog's msgids whose translation into ``lang`` differs from the English."""
    with (LOCALE_DIR / lang / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        catalog = read_po(handle, locale=lang)
    out = set()
    for message in catalog:
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        out.update(i for i in ids if i and i not in strings)
    return out


def figure_texts(figure: dict) -> list[str]:
    layout = figure.get("layout", {})
    texts = [layout.get("title", {}).get("text")]
    texts += [a.get("text") for a in layout.get("annotations", [])]
    texts += [axis.get("title", {}).get("text") for key, axis in layout.items()
              if key.startswith(("xaxis", "yaxis")) and isinstance(axis, dict)]
    for trace in figure.get("data", []):
        texts.append(trace.get("name"))
        texts += [v for key in ("x", "y") for v in trace.get(key) or [] if isinstance(v, str)]
        texts.append(PLACEHOLDER.sub("", trace.get("hovertemplate") or ""))
    return [t for t in texts if isinstance(t, str) and t.strip()]


def shown_texts(node) -> list[str]:
    """Every text a reader sees in a Dash component tree (and in the figures inside it)."""
    found = []
    if isinstance(node, str):
        return [node]
    if isinstance(node, list | tuple):
        return [t for item in node for t in shown_texts(item)]
    if isinstance(node, dict):
        if "data" in node and "layout" in node:
            return figure_texts(node)
        return [t for key, value in node.items() if key in ("label", "children") for t in shown_texts(value)]
    if hasattr(node, "to_plotly_json"):
        props = node.to_plotly_json()["props"]
        for key in TEXT_PROPS:
            if key in props:
                found += shown_texts(props[key])
        if "figure" in props:
            found += figure_texts(props["figure"])
        for key in ("options", "marks"):
            value = props.get(key)
            items = value.values() if isinstance(value, dict) else (value or [])
            found += [t for item in items for t in shown_texts(item)]
    return found


FILTERS = {"carts": {"items_added": "1-3", "segment": "1", "details": "yes", "cart_views": "9-1"},
           "customers": {"tier": "premium", "consent": "no", "promo_share": "0.2-0.8", "profit": "zzz"}}


def render(app, page: str, lang: str, query: dict | None = None):
    from dashboard.pages import carts, customers

    module = carts if page == "carts" else customers
    with app.server.test_request_context(f"/{page}?lang={lang}"):
        g.identity = ANALYST
        return module.layout(**(FILTERS[page] if query is None else query))


@pytest.mark.parametrize("lang", ["es", "ru"])
@pytest.mark.parametrize("page", ["carts", "customers"])
def test_no_english_text_is_shown(app, page, lang):
    msgids = english(lang)
    texts = shown_texts(render(app, page, lang))
    assert len(texts) > 100
    assert any(t.startswith(("Se ignoró", "Пропущено")) for t in texts)   # the problems are there too
    leftovers = sorted({t.strip() for t in texts if t.strip() in msgids})
    assert not leftovers, leftovers
    # whole sentences inside longer texts (hover texts, chips) are not English either
    long_ids = [m for m in msgids if len(m) > 20 and "{" not in m]
    assert not [(t, m) for t in texts for m in long_ids if m in t]


@pytest.mark.parametrize("lang, decimal, group", [("es", ",", "."), ("ru", ",", "\xa0")])
def test_kpi_numbers_are_in_the_locales_format(app, lang, decimal, group):
    from dashboard.i18n import format_number, format_percent
    from dashboard.queries import cart_kpis, cart_page

    texts = shown_texts(render(app, "carts", lang, {}))
    with app.server.test_request_context("/"):
        g.identity = ANALYST
        from dashboard.filters import CartFilters

        kpis = cart_kpis(cart_page(CartFilters())["outcomes"])
    sessions, rate = format_number(kpis["sessions"], lang), format_percent(kpis["abandonment_rate"], lang)
    assert sessions in texts and rate in texts
    assert decimal in rate and "." not in rate.replace(decimal, "") and rate != f"{kpis['abandonment_rate']:.1%}"
    assert kpis["sessions"] < 1000 or group in sessions
