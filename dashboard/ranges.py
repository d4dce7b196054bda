"""Numeric ranges of the filters: the :class:`Range` value, its parsing from the URL and from
chart events (a click or a drag selection over buckets), and its text for a reader.

Split from :mod:`dashboard.filters`, which re-exports what the pages import from there.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from dashboard.inputs import describe, first, number, scalar_text
from dashboard.language import _
from dashboard.language import number as shown_number

_NUMBER = r"[0-9]+(?:\.[0-9]+)?"  # ASCII digits: \d would also take "٣", and isdigit() "²"
_RANGE = re.compile(rf"^\s*({_NUMBER})?\s*-\s*({_NUMBER})?\s*$")


@dataclass(frozen=True)
class Range:
    """Closed interval; ``None`` leaves that side open."""

    lo: float | None = None
    hi: float | None = None

    def text(self) -> str:
        return f"{url_number(self.lo)}-{url_number(self.hi)}"

    def label(self) -> str:
        """The range as the reader reads it (numbers in the reader's locale)."""
        if self.hi is None:
            return f"≥ {shown(self.lo)}"
        if self.lo is None:
            return f"≤ {shown(self.hi)}"
        return shown(self.lo) if self.lo == self.hi else f"{shown(self.lo)}–{shown(self.hi)}"


def url_number(value: float | None) -> str:
    if value is None:
        return ""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def shown(value: float | None) -> str:
    """A bound for a reader: ``1 250`` / ``0,35`` (:func:`url_number` is the URL's form)."""
    if value is None:
        return ""
    text = url_number(value)
    return shown_number(value, len(text.partition(".")[2]) if "e" not in text else 2)


def one_text(value: Any) -> str | None:
    """One printable string from a query/store value (first of a list); None for anything else."""
    return scalar_text(first(value))


def parse_range(value: Any, key: str, problems: list[str], bounds: tuple[float, float] | None = None) -> Range | None:
    """``"1-5"``, ``"3-"``, ``[1, 5]`` -> Range; garbage -> None and a message."""
    if value is None or value == "":
        return None
    if isinstance(value, list | tuple) and len(value) == 2 and all(
            v is None or (isinstance(v, int | float) and not isinstance(v, bool)) for v in value):
        ends = list(value)
    else:
        text = one_text(value)
        match = _RANGE.match(text) if text is not None else None
        if not match or (match.group(1) is None and match.group(2) is None):
            problems.append(_("Ignored {key}={value}: expected a range such as 1-5 or 3- (open above).")
                            .format(key=key, value=describe(value, reader=True)))
            return None
        ends = list(match.groups())
    lo, hi = (None if v is None else number(v) for v in ends)
    if (lo is None) != (ends[0] is None) or (hi is None) != (ends[1] is None):
        problems.append(_("Ignored {key}={value}: the range must be finite numbers of a sane size.")
                        .format(key=key, value=describe(value, reader=True)))
        return None
    if lo is not None and hi is not None and lo > hi:
        problems.append(_("Ignored {key}={value}: the lower end is above the upper end.")
                        .format(key=key, value=describe(value, reader=True)))
        return None
    if bounds is not None:
        low, high = bounds
        if (lo is not None and lo > high) or (hi is not None and hi < low):
            problems.append(_("Ignored {key}={value}: outside the data's range {low}–{high}.")
                            .format(key=key, value=describe(value, reader=True), low=shown(low), high=shown(high)))
            return None
    return Range(None if lo is None else float(lo), None if hi is None else float(hi))


def event_points(data: Any) -> list[list]:
    """The ``customdata`` lists of a Plotly click/selection event; [] for anything malformed."""
    if not isinstance(data, dict) or not isinstance(data.get("points"), list):
        return []
    points = []
    for point in data["points"][:1000]:
        custom = point.get("customdata") if isinstance(point, dict) else None
        if isinstance(custom, list) and custom and all(
                c is None or isinstance(c, str | int | float) for c in custom):
            points.append(custom)
    return points


def range_from_points(points: list[list], column: str) -> Range | None:
    """Union of the ``[column, lo, hi, …]`` buckets in ``points`` (hi None = open above)."""
    los, his = [], []
    for custom in points:
        if len(custom) < 3 or custom[0] != column:
            continue
        lo, hi = number(custom[1]), None if custom[2] is None else number(custom[2])
        if lo is None or (hi is None and custom[2] is not None):
            continue
        los.append(float(lo))
        his.append(None if hi is None else float(hi))
    if not los:
        return None
    return Range(min(los), None if any(h is None for h in his) else max(his))
