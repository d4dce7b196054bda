"""Languages: gettext catalogs through Babel, and numbers, dates and ages in the locale's format.

English is the source language (the msgids); Spanish and Russian live in standard gettext
catalogs, ``dashboard/locales/<lang>/LC_MESSAGES/messages.po``, compiled to ``messages.mo``
beside them. The reports use them now; the dashboard's pages (issue 13) reuse the same catalogs,
the same :func:`translator` and the same formatters.

**How the .mo files exist on a fresh clone**: they are committed, like the ``.po`` files they
are compiled from, so nothing has to run before the first request or report (a server may not
be allowed to write into its own package, and several gunicorn workers compiling at once
would race). ``tests/test_reports.py`` fails when a ``.mo`` does not hold exactly the
translations of its ``.po``, so a ``.po`` edited without compiling cannot be committed green.

Workflow after changing a translatable string (``_("...")`` / ``N_("...")`` in the code)::

    .venv/bin/pybabel extract -F babel.cfg -k N_ --no-location -o dashboard/locales/messages.pot .
    .venv/bin/pybabel update -i dashboard/locales/messages.pot -d dashboard/locales --no-fuzzy-matching
    (translate the new entries in each messages.po)
    .venv/bin/python -m dashboard.i18n        # compiles every .po to its .mo

Numbers go through Babel's CLDR data, so Spanish and Russian get ``88,2 %`` and ``5 181,02``
(the Russian group separator is a no-break space, as CLDR has it).
"""
from __future__ import annotations

import copy
import decimal
import functools
import gettext
import math
import sys
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from babel import Locale
from babel.dates import format_date as _babel_date
from babel.dates import format_timedelta
from babel.numbers import NumberPattern

LANGS = ("en", "es", "ru")
DEFAULT_LANG = "en"
DOMAIN = "messages"
LOCALE_DIR = Path(__file__).resolve().parent / "locales"
MISSING = "–"   # what a number that does not exist is shown as, in every language


def N_(message: str) -> str:
    """Mark a string for extraction without translating it here (it is translated where it
    is shown, with the reader's language)."""
    return message


def check_lang(lang: str) -> str:
    """``lang`` when it is one of :data:`LANGS`; ValueError naming them otherwise."""
    if lang not in LANGS:
        raise ValueError(f"a language is one of {', '.join(LANGS)}, got {lang!r}")
    return lang


class CatalogError(RuntimeError):
    """A language's compiled catalog is missing or unreadable (a broken install)."""


@functools.cache
def _translations(lang: str) -> gettext.NullTranslations:
    check_lang(lang)
    if lang == DEFAULT_LANG:
        return gettext.NullTranslations()   # the msgids are the English text
    # no fallback: a missing catalog is a broken install, not a reason to show English
    try:
        return gettext.translation(DOMAIN, LOCALE_DIR, languages=[lang])
    except OSError as exc:
        raise CatalogError(f"the {lang} catalog cannot be read ({exc}); compile it with "
                           "`python -m dashboard.i18n`") from None


def translator(lang: str) -> Callable[[str], str]:
    """The gettext function for ``lang``: ``_ = translator("es"); _("Sessions")``."""
    return _translations(lang).gettext


def plural_translator(lang: str) -> Callable[[str, str, int], str]:
    """The ngettext function for ``lang`` (Russian has three forms: 1 / 2–4 / 5+)."""
    return _translations(lang).ngettext


@functools.cache
def _locale(lang: str) -> Locale:
    return Locale.parse(check_lang(lang))


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


@functools.cache
def _pattern(lang: str, kind: str, digits: int) -> NumberPattern:
    """The locale's own decimal or percent pattern with exactly ``digits`` fraction digits
    (so Spanish keeps its ``88,2 %`` spacing and English its ``88.2%``)."""
    locale = _locale(lang)
    pattern = copy.copy((locale.percent_formats if kind == "percent" else locale.decimal_formats)[None])
    pattern.frac_prec = (digits, digits)
    return pattern


@functools.lru_cache(maxsize=65536)
def _apply(kind: str, lang: str, digits: int, text: str) -> str:
    """Babel's rendering of the number ``text`` (Babel itself reads a float through ``str``).
    Memoized: a filter change formats a few hundred numbers, most of them seen before (bucket
    shares, KPI values), and Babel takes ~4.5 µs each; the output is Babel's, unchanged."""
    return _pattern(lang, kind, digits).apply(decimal.Decimal(text), _locale(lang))


def format_number(value, lang: str, digits: int | None = None) -> str:
    """``4 158`` / ``3,47``: whole numbers without decimals unless ``digits`` says otherwise,
    other numbers with two."""
    if _missing(value):
        return MISSING
    if digits is None:
        digits = 0 if float(value).is_integer() else 2
    return _apply("decimal", lang, digits, str(value))


def format_percent(value, lang: str, digits: int = 1) -> str:
    """A share (0.882) as ``88.2%`` / ``88,2 %``."""
    if _missing(value):
        return MISSING
    return _apply("percent", lang, digits, str(value))


def format_money(value, lang: str, digits: int = 2) -> str:
    """An amount in the shop's currency (the data names none, so no symbol): ``5 181,02``."""
    if _missing(value):
        return MISSING
    return _apply("decimal", lang, digits, str(value))


def format_points(value, lang: str) -> str:
    """A change of a share in percentage points, signed: ``+1.3`` / ``−0,4``."""
    if _missing(value):
        return MISSING
    text = format_number(abs(value) * 100, lang, 1)
    return ("+" if value >= 0 else "−") + text


def format_signed_percent(value, lang: str) -> str:
    """A relative change, signed: ``+4.1%`` / ``−0,3 %``."""
    if _missing(value):
        return MISSING
    return ("+" if value >= 0 else "−") + format_percent(abs(value), lang)


def format_date(moment: datetime, lang: str) -> str:
    """``November 25, 2026`` / ``25 de noviembre de 2026`` / ``25 ноября 2026 г.``"""
    return _babel_date(moment, format="long", locale=_locale(lang))


def format_datetime(moment: datetime, lang: str) -> str:
    """The date and the local time of day (``HH:MM``), for "built at" lines."""
    local = moment.astimezone()
    return f"{format_date(local, lang)}, {local:%H:%M}"


def format_age(delta: timedelta, lang: str) -> str:
    """How long ago: ``12 days ago`` / ``hace 12 días`` / ``12 дней назад``."""
    return format_timedelta(-abs(delta), add_direction=True, locale=_locale(lang))


# --- compiling the catalogs ---------------------------------------------------------------


def po_files() -> list[Path]:
    return sorted(LOCALE_DIR.glob(f"*/LC_MESSAGES/{DOMAIN}.po"))


def compile_catalog(po: Path) -> Path:
    """Write ``po``'s ``.mo`` beside it (fuzzy entries left out, as gettext does)."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    with po.open("rb") as handle:
        catalog = read_po(handle)
    target = po.with_suffix(".mo")
    temp = target.with_suffix(".mo.tmp")
    with temp.open("wb") as handle:
        write_mo(handle, catalog, use_fuzzy=False)
    temp.replace(target)
    return target


def main() -> int:
    for po in po_files():
        print(f"compiled {compile_catalog(po).relative_to(LOCALE_DIR.parent.parent)}")
    _translations.cache_clear()
    return 0


if __name__ == "__main__":
    sys.exit(main())
