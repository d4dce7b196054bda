"""The reader's language for this request, and the page layer's gettext and number formats.

Which language a request is answered in, first match wins:

1. an explicit choice for this block of code (:func:`using_lang`: reports, tests);
2. ``?lang=`` in the address (page loads; kept in the URL like the filters, so links and
   embeds carry it);
3. the ``X-Shopper-Lang`` header, which ``assets/embed.js`` sends with every Dash request
   (callbacks carry no query string; the header is the ``lang`` of the page they came from);
4. the browser's ``Accept-Language``;
5. ``DEFAULT_LANG`` (``en`` unless set).

Anything that is not one of :data:`dashboard.i18n.LANGS` is ignored at every step, so a
crafted value never reaches a catalog lookup or a cache key.

Pages and figures call :func:`_` (``from dashboard.language import _``) where they show a
string, and :func:`number` / :func:`percent` / :func:`money` for numbers. Strings defined at
import time (a module's dict of labels) are marked with :func:`dashboard.i18n.N_` and passed
through :func:`_` where they are shown.
"""
from __future__ import annotations

import contextlib
import contextvars
import functools
import os
from collections.abc import Iterator

from flask import g, has_request_context, request

from dashboard import i18n
from dashboard.i18n import LANGS, N_  # noqa: F401 - N_ re-exported for the pages

HEADER = "X-Shopper-Lang"
NAMES = {"en": "English", "es": "Español", "ru": "Русский"}   # each in its own language
_CHOSEN: contextvars.ContextVar[str | None] = contextvars.ContextVar("shopper_lang", default=None)
# The request's language, decided once when it starts (:func:`install`): a filter change calls
# _() and the number formats a few hundred times, and reading the request through Flask's
# proxies each time cost a few percent of its CPU.
_REQUEST: contextvars.ContextVar[str | None] = contextvars.ContextVar("shopper_request_lang", default=None)


def default_lang() -> str:
    """``DEFAULT_LANG`` from the environment; ValueError naming the choices when it is none of them."""
    value = os.environ.get("DEFAULT_LANG", i18n.DEFAULT_LANG).strip().lower() or i18n.DEFAULT_LANG
    return i18n.check_lang(value)


def valid(value: object) -> str | None:
    """``value`` when it names a language we have, else None."""
    if isinstance(value, str):
        value = value.strip().lower()
        if value in LANGS:
            return value
    return None


def explicit_lang() -> str | None:
    """The language the address asks for (``?lang=``), if it names one we have."""
    return valid(request.args.get("lang")) if has_request_context() else None


def _browser_lang() -> str:
    """What the browser's Accept-Language (else DEFAULT_LANG) picks, without any choice made."""
    return request.accept_languages.best_match(LANGS) or default_lang()


def _from_request() -> str:
    return explicit_lang() or valid(request.headers.get(HEADER)) or _browser_lang()


def link_lang() -> str | None:
    """The ``lang`` an in-app link must carry: the reader's language when it was chosen (not
    what the browser would pick anyway). Links drawn by a callback or by ``/_dash-layout`` see
    no ``?lang=``, only the page's header, so reading the address alone would drop the choice."""
    if not has_request_context():
        return None
    chosen = explicit_lang() or valid(request.headers.get(HEADER))
    return chosen if chosen and chosen != _browser_lang() else None


def current_lang() -> str:
    """The language this code answers in (see the module's docstring for the order)."""
    chosen = _CHOSEN.get() or _REQUEST.get()
    if chosen:
        return chosen
    if not has_request_context():
        return default_lang()
    if "shopper_lang" not in g:
        g.shopper_lang = _from_request()
    return g.shopper_lang


def install(server) -> None:
    """Decide each request's language when it starts (register before the hooks that draw
    text) and forget it when the request ends; Dash's callbacks run in a copy of the
    request's context, so they see it too."""

    @server.before_request
    def decide() -> None:
        g.shopper_lang_token = _REQUEST.set(_from_request())

    @server.teardown_request
    def forget(_exc: BaseException | None) -> None:
        token = g.pop("shopper_lang_token", None)
        if token is not None:
            try:
                _REQUEST.reset(token)
            except ValueError:      # set in another context: this thread's must not keep it
                _REQUEST.set(None)


def lang_params() -> dict[str, str]:
    """``{"lang": ...}`` for an in-app link's query when it must carry one (:func:`link_lang`)."""
    lang = link_lang()
    return {"lang": lang} if lang else {}


@contextlib.contextmanager
def using_lang(lang: str) -> Iterator[str]:
    """Answer in ``lang`` inside the block, whatever the request says."""
    token = _CHOSEN.set(i18n.check_lang(lang))
    try:
        yield lang
    finally:
        _CHOSEN.reset(token)


def _(message: str) -> str:
    """``message`` in the reader's language."""
    return i18n.translator(current_lang())(message)


def ngettext(singular: str, plural: str, count: int) -> str:
    """The form of a message for ``count`` (Russian has three)."""
    return i18n.plural_translator(current_lang())(singular, plural, count)


def number(value, digits: int | None = None) -> str:
    return i18n.format_number(value, current_lang(), digits)


def percent(value, digits: int = 1) -> str:
    return i18n.format_percent(value, current_lang(), digits)


def money(value, digits: int = 2) -> str:
    return i18n.format_money(value, current_lang(), digits)


def points(value) -> str:
    return i18n.format_points(value, current_lang())


# Plotly's own texts (the mode bar's tooltips), translated through the catalogs like ours.
PLOTLY_TEXTS = (
    N_("Download plot as a PNG"), N_("Download plot"), N_("Zoom"), N_("Pan"), N_("Box Select"),
    N_("Zoom in"), N_("Zoom out"), N_("Reset axes"), N_("Autoscale"), N_("Reset"),
    N_("Toggle Spike Lines"), N_("Show closest data on hover"), N_("Compare data on hover"),
    N_("Double-click to zoom back out"), N_("Taking snapshot - this may take a few seconds"),
    N_("Snapshot succeeded"), N_("Sorry, there was a problem downloading your snapshot!"),
)


@functools.cache
def plotly_locale(lang: str) -> dict:
    """Plotly's locale for ``lang`` (``config.locales``): month and day names, the decimal
    mark and digit grouping from CLDR (via Babel), the mode bar's texts from our catalogs.
    Axis ticks, hover numbers and dates then read like the rest of the page."""
    from babel import Locale

    locale = Locale.parse(i18n.check_lang(lang))
    symbols = locale.number_symbols["latn"]
    sunday_first = [6, 0, 1, 2, 3, 4, 5]   # CLDR counts from Monday, d3 from Sunday
    gettext = i18n.translator(lang)
    return {
        "dictionary": {text: gettext(text) for text in PLOTLY_TEXTS},
        "format": {
            "days": [locale.days["format"]["wide"][d] for d in sunday_first],
            "shortDays": [locale.days["format"]["abbreviated"][d] for d in sunday_first],
            "months": [locale.months["stand-alone"]["wide"][m] for m in range(1, 13)],
            "shortMonths": [locale.months["stand-alone"]["abbreviated"][m] for m in range(1, 13)],
            "periods": ["AM", "PM"],
            "decimal": symbols["decimal"], "thousands": symbols["group"], "grouping": [3],
            "currency": ["", ""],
            "date": "%d.%m.%Y" if lang == "ru" else ("%d/%m/%Y" if lang == "es" else "%m/%d/%Y"),
            "time": "%H:%M:%S", "dateTime": "%a %b %e %X %Y",
            "year": "%Y", "month": "%b %Y", "dayMonth": "%-d %b", "dayMonthYear": "%-d %b %Y",
        },
    }


def graph_config(base: dict) -> dict:
    """A ``dcc.Graph`` config in the reader's language (English is Plotly's own)."""
    lang = current_lang()
    if lang == i18n.DEFAULT_LANG:
        return base
    return {**base, "locale": lang, "locales": {lang: plotly_locale(lang)}}


def lazy(text: str):
    """``text`` translated when it is shown, for Dash's page registry (``register_page(title=
    lazy(...))``): the registry is filled once at import, the reader's language is known per
    request."""
    return lambda: _(text)


def page_title(name: str):
    """A page's browser title, ``Carts · Shopper Insights`` in the reader's language."""
    return lambda: f"{_(name)} · Shopper Insights"
