"""The one validation path for every value a request carries towards a query or a model.

Browser input (query strings, stores, form fields, chart events) is JSON of any shape, so
each value is checked here for its kind before anything else looks at it:

- numbers: real ``int``/``float`` (never ``bool``) or ASCII decimal text, finite, within
  ±``MAX_MAGNITUDE`` and within the caller's bounds. ASCII because ``"²".isdigit()`` is true
  while ``int("²")`` fails; the magnitude test comes before any ``float()`` because
  ``float(10**400)`` raises;
- text: a ``str``, at most ``MAX_TEXT`` characters, printable (no NUL or other control
  characters, no lone surrogates, no bidi overrides), so it can reach DuckDB's SQL parser, a
  cache key and a log line unchanged;
- choices and identifiers: text that is one of a fixed set, or matches a strict pattern.

Every function returns ``None`` for a bad value and never raises; the callers turn ``None``
into a human message.
"""
from __future__ import annotations

import math
import re
from collections.abc import Collection
from typing import Any

from dashboard.language import _, ngettext

MAX_TEXT = 200
# Far above any count, amount or duration the warehouse holds, far below float's limits: a
# number beyond it is a crafted request, not a filter.
MAX_MAGNITUDE = 1e15
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]{1,3})?")


def number(value: Any, low: float | None = None, high: float | None = None,
           whole: bool = False) -> float | int | None:
    """A finite number in [low, high] (an ``int`` when ``whole``), or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        if abs(value) > MAX_MAGNITUDE:  # compared as int: no float conversion can overflow
            return None
        found: float | int = value
    elif isinstance(value, float):
        found = value
    elif isinstance(value, str) and len(value) <= 40 and _DECIMAL.fullmatch(value.strip()):
        found = float(value.strip())
    else:
        return None
    if not math.isfinite(found) or abs(found) > MAX_MAGNITUDE:
        return None
    if whole:
        if not float(found).is_integer():
            return None
        found = int(found)
    if (low is not None and found < low) or (high is not None and found > high):
        return None
    return found


def text(value: Any, limit: int = MAX_TEXT) -> str | None:
    """A printable string of at most ``limit`` characters, or None."""
    if not isinstance(value, str) or len(value) > limit or not value.isprintable():
        return None
    return value


def scalar_text(value: Any, limit: int = MAX_TEXT) -> str | None:
    """Text for a value that may also arrive as a number (query strings, chart data), or None."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        found = number(value)
        return None if found is None else (str(int(found)) if float(found).is_integer() else repr(float(found)))
    return text(value, limit)


def first(value: Any) -> Any:
    """The first item of a list (a repeated query key), else the value itself."""
    return value[0] if isinstance(value, list | tuple) and value else value


def choice(value: Any, allowed: Collection[str]) -> str | None:
    """``value`` when it is one of ``allowed`` (strings), else None — for any JSON value."""
    found = text(value)
    return found if found is not None and found in allowed else None


def matching(value: Any, pattern: re.Pattern[str]) -> str | None:
    """Text that fully matches ``pattern``, else None."""
    found = text(value)
    return found if found is not None and pattern.fullmatch(found) else None


def describe(value: Any, limit: int = 40, *, reader: bool = False) -> str:
    """A short, printable rendering of any value for a log line, or (``reader``) for a message
    in the reader's language (logs and the audit trail stay in English)."""
    shown = value if isinstance(value, str) else _repr(value, reader)
    shown = shown if shown.isprintable() else shown.encode("unicode_escape", "backslashreplace").decode("ascii")
    return shown if len(shown) <= limit else shown[:limit - 1] + "…"


def _repr(value: Any, reader: bool) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_MAGNITUDE:
        # repr() of a 5000-digit int raises, and says nothing useful
        return _("a huge number") if reader else "a huge number"
    if isinstance(value, list | tuple | dict) and not reader:
        return f"a {type(value).__name__} of {len(value)}"
    if isinstance(value, dict):
        return ngettext("an object of {n} key", "an object of {n} keys", len(value)).format(n=len(value))
    if isinstance(value, list | tuple):
        return ngettext("a list of {n} item", "a list of {n} items", len(value)).format(n=len(value))
    return repr(value)
