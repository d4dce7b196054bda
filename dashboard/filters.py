"""Filter state ⇄ URL query string, with validation.

Every page keeps its filters in the URL (so a view is a link) and in a ``dcc.Store``. Both
arrive from the browser, so both may hold anything: the parsers here accept whatever a
request carries and return a valid filter plus a list of human messages for what they had
to drop. They never raise on bad input: every value goes through :mod:`dashboard.inputs`.

Query string keys: ``segment=0,2``, ``details=yes``, ``tier=premium``, ``consent=no``,
``category=kids-goods,home-textiles`` and, for ranges, the column name itself:
``items_added=1-5``, ``promo_share=0.5-1``, ``profit=3-`` (open above).
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import parse_qs, urlencode

from dashboard import terms
from dashboard.inputs import describe, first, matching, number
from dashboard.language import _
# Range and its parsing live in dashboard.ranges; Range and parse_range are re-exported with the
# filters they belong to
from dashboard.ranges import Range, one_text, parse_range, shown, url_number  # noqa: F401
from etl.schema import CATEGORIES, CUSTOMER_SEGMENT_TYPES, SERVICE_TIERS

CART_RANGE_COLUMNS = ("session_activity_count", "items_added", "items_removed", "cart_views",
                      "checkout_initiated", "cart_item_views", "customer_logins", "pages_viewed")
# The cart filters the pre-aggregated cube answers directly (see dashboard/cart_cube.py).
CART_CUBE_RANGES = ("items_added", "pages_viewed", "session_activity_count")
CUSTOMER_RANGE_COLUMNS = ("marketing_6m", "marketing_this_month", "tenure_days", "promo_share",
                          "categories_per_visit", "unpaid_items_quarter", "service_errors",
                          "pages_per_visit", "revenue_2m_ago", "revenue_last_month",
                          "revenue_this_month", "minutes_last_month", "minutes_this_month",
                          "profit")


def slug(name: str) -> str:
    """URL-friendly key of a category label: ``Kids' goods`` -> ``kids-goods``."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower().replace("'", "")).strip("-")


CATEGORY_SLUGS = {slug(name): name for name in CATEGORIES}
TIER_KEYS = {tier: tier for tier in SERVICE_TIERS}


def _chip(column: str, values: str) -> str:
    return _("{feature}: {value}").format(feature=terms.label(column, _), value=values)


def _range_chips(ranges: tuple[tuple[str, Range], ...]) -> list[tuple[str, str]]:
    return [(column, _chip(column, rng.label())) for column, rng in ranges]


@dataclass(frozen=True)
class CartFilters:
    segments: tuple[int, ...] = ()          # empty: every customer type
    details: bool | None = None             # product details viewed; None: either
    ranges: tuple[tuple[str, Range], ...] = ()

    def range(self, column: str) -> Range | None:
        return dict(self.ranges).get(column)

    def with_range(self, column: str, value: Range | None) -> CartFilters:
        return replace(self, ranges=_set_range(self.ranges, column, value))

    def without(self, key: str) -> CartFilters:
        if key == "segment":
            return replace(self, segments=())
        if key == "details":
            return replace(self, details=None)
        return self.with_range(key, None)

    def active(self) -> list[tuple[str, str]]:
        """(key, human text) of each active filter, for the "clear" chips."""
        chips = []
        if self.segments:
            chips.append(("segment", _chip("customer_segment",
                                           ", ".join(terms.customer_type(s, _) for s in self.segments))))
        if self.details is not None:
            chips.append(("details", _chip("product_details_viewed", terms.value("", self.details, _))))
        return chips + _range_chips(self.ranges)

    def query(self) -> dict[str, str]:
        out = {}
        if self.segments:
            out["segment"] = ",".join(str(s) for s in self.segments)
        if self.details is not None:
            out["details"] = "yes" if self.details else "no"
        out.update((column, rng.text()) for column, rng in self.ranges)
        return out


@dataclass(frozen=True)
class CustomerFilters:
    tiers: tuple[str, ...] = ()             # warehouse values: premium, standard
    consent: bool | None = None
    categories: tuple[str, ...] = ()        # warehouse values (English labels)
    ranges: tuple[tuple[str, Range], ...] = ()

    def range(self, column: str) -> Range | None:
        return dict(self.ranges).get(column)

    def with_range(self, column: str, value: Range | None) -> CustomerFilters:
        return replace(self, ranges=_set_range(self.ranges, column, value))

    def without(self, key: str) -> CustomerFilters:
        if key == "tier":
            return replace(self, tiers=())
        if key == "consent":
            return replace(self, consent=None)
        if key == "category":
            return replace(self, categories=())
        return self.with_range(key, None)

    def active(self) -> list[tuple[str, str]]:
        chips = []
        if self.tiers:
            chips.append(("tier", _chip("service_tier", ", ".join(terms.tier(t, _) for t in self.tiers))))
        if self.consent is not None:
            chips.append(("consent", _chip("marketing_consent", terms.value("", self.consent, _))))
        if self.categories:
            chips.append(("category", _chip("top_category",
                                            ", ".join(terms.category(c, _) for c in self.categories))))
        return chips + _range_chips(self.ranges)

    def query(self) -> dict[str, str]:
        out = {}
        if self.tiers:
            out["tier"] = ",".join(self.tiers)
        if self.consent is not None:
            out["consent"] = "yes" if self.consent else "no"
        if self.categories:
            out["category"] = ",".join(slug(c) for c in self.categories)
        out.update((column, rng.text()) for column, rng in self.ranges)
        return out


@dataclass(frozen=True)
class SegmentView:
    """Segments page: the chosen segment and the builder's thresholds (all optional)."""

    segment: str | None = None              # segments.segment_id; None: all customers
    min_promo: float | None = None          # promo share ≥
    min_p_decline: float | None = None      # P(decline) ≥
    min_profit: float | None = None         # average monthly profit ≥

    def query(self) -> dict[str, str]:
        out = {}
        if self.segment:
            out["segment"] = self.segment
        for key, value in (("promo", self.min_promo), ("p", self.min_p_decline), ("profit", self.min_profit)):
            if value is not None:
                out[key] = url_number(value)
        return out

    def describe(self) -> str:
        parts = []
        if self.min_promo is not None:
            parts.append(_("promo share ≥ {value}").format(value=shown(self.min_promo)))
        if self.min_p_decline is not None:
            parts.append(_("P(decline) ≥ {value}").format(value=shown(self.min_p_decline)))
        if self.min_profit is not None:
            parts.append(_("profit ≥ {value}").format(value=shown(self.min_profit)))
        return ", ".join(parts)


def query_string(*parts: Mapping[str, str]) -> str:
    """``?a=1&b=2`` from filter dicts (empty string when there is nothing to say)."""
    merged: dict[str, str] = {}
    for part in parts:
        merged.update(part)
    return "?" + urlencode(merged, safe=",-") if merged else ""


# --- parsing ---------------------------------------------------------------------------


def _items(value: Any) -> list[str] | None:
    """Comma-separated or list values as strings; None when the shape is wrong."""
    if value is None:
        return []
    if isinstance(value, list | tuple):
        if len(value) > 50:
            return None
        out = []
        for item in value:
            text = one_text(item)
            if text is None:
                return None
            out += [p for p in text.split(",") if p.strip()]
        return [p.strip() for p in out]
    text = one_text(value)
    if text is None:
        return None
    return [p.strip() for p in text.split(",") if p.strip()]


def parse_yes_no(value: Any, key: str, problems: list[str]) -> bool | None:
    if value is None or value == "" or value == "all":
        return None
    if isinstance(value, bool):
        return value
    text = one_text(value)
    if text is not None and text.lower() in ("yes", "true", "1"):
        return True
    if text is not None and text.lower() in ("no", "false", "0"):
        return False
    problems.append(_("Ignored {key}={value}: expected yes or no.").format(key=key, value=describe(value, reader=True)))
    return None


def _set_range(ranges: tuple[tuple[str, Range], ...], column: str, value: Range | None) -> tuple[tuple[str, Range], ...]:
    kept = {c: r for c, r in ranges if c != column}
    if value is not None and (value.lo is not None or value.hi is not None):
        kept[column] = value
    return tuple(sorted(kept.items()))


def _ranges(query: Mapping[str, Any], columns: Iterable[str], problems: list[str]) -> tuple[tuple[str, Range], ...]:
    found: tuple[tuple[str, Range], ...] = ()
    for column in columns:
        if column in query:
            found = _set_range(found, column, parse_range(query[column], column, problems))
    return found


def parse_segments(value: Any, problems: list[str]) -> tuple[int, ...]:
    items = _items(value)
    if items is None:
        problems.append(_("Ignored segment={value}: expected customer types such as 0,2.")
                        .format(value=describe(value, reader=True)))
        return ()
    chosen = set()
    for item in items:
        found = number(item, whole=True)
        if found in CUSTOMER_SEGMENT_TYPES:
            chosen.add(found)
        else:
            problems.append(_("Ignored customer type {value}: the types are {types}.").format(
                value=describe(item, reader=True), types=", ".join(str(s) for s in CUSTOMER_SEGMENT_TYPES)))
    return tuple(sorted(chosen)) if len(chosen) < len(CUSTOMER_SEGMENT_TYPES) else ()


def parse_choices(value: Any, key: str, allowed: Mapping[str, str], problems: list[str]) -> tuple[str, ...]:
    """Values from ``allowed`` (key -> warehouse value); keys or warehouse values accepted."""
    items = _items(value)
    if items is None:
        problems.append(_("Ignored {key}={value}: expected a comma-separated list.")
                        .format(key=key, value=describe(value, reader=True)))
        return ()
    reverse = {v.lower(): v for v in allowed.values()}
    chosen = []
    for item in items:
        found = allowed.get(item.lower()) or reverse.get(item.lower())
        if found is None:
            problems.append(_("Ignored {key} {value}: expected one of {allowed}.")
                            .format(key=key, value=describe(item, reader=True), allowed=", ".join(allowed)))
        elif found not in chosen:
            chosen.append(found)
    return tuple(sorted(chosen)) if len(chosen) < len(set(allowed.values())) else ()



def parse_cart_filters(query: Mapping[str, Any] | None) -> tuple[CartFilters, list[str]]:
    problems: list[str] = []
    query = query if isinstance(query, Mapping) else {}
    filters = CartFilters(
        segments=parse_segments(query.get("segment"), problems),
        details=parse_yes_no(query.get("details"), "details", problems),
        ranges=_ranges(query, CART_RANGE_COLUMNS, problems),
    )
    return filters, problems


def parse_customer_filters(query: Mapping[str, Any] | None) -> tuple[CustomerFilters, list[str]]:
    problems: list[str] = []
    query = query if isinstance(query, Mapping) else {}
    filters = CustomerFilters(
        tiers=parse_choices(query.get("tier"), "tier", TIER_KEYS, problems),
        consent=parse_yes_no(query.get("consent"), "consent", problems),
        categories=parse_choices(query.get("category"), "category", CATEGORY_SLUGS, problems),
        ranges=_ranges(query, CUSTOMER_RANGE_COLUMNS, problems),
    )
    return filters, problems


def parse_threshold(value: Any, key: str, low: float, high: float, problems: list[str]) -> float | None:
    if value is None or value == "":
        return None
    found = number(first(value), low, high)
    if found is None:
        problems.append(_("Ignored {key}={value}: expected a number from {low} to {high}.")
                        .format(key=key, value=describe(value, reader=True), low=shown(low), high=shown(high)))
        return None
    return float(found)


_SEGMENT_ID = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


def parse_segment_view(query: Mapping[str, Any] | None) -> tuple[SegmentView, list[str]]:
    problems: list[str] = []
    query = query if isinstance(query, Mapping) else {}
    segment = query.get("segment")
    segment_id = None
    if segment not in (None, "", "all"):
        segment_id = matching(first(segment), _SEGMENT_ID)
        if segment_id is None:
            problems.append(_("Ignored segment={value}: not a segment id.").format(value=describe(segment, reader=True)))
    view = SegmentView(
        segment=segment_id,
        min_promo=parse_threshold(query.get("promo"), "promo", 0, 1, problems),
        min_p_decline=parse_threshold(query.get("p"), "p", 0, 1, problems),
        min_profit=parse_threshold(query.get("profit"), "profit", 0, 1e9, problems),
    )
    return view, problems


# --- browser input other than the URL ---------------------------------------------------


def query_dict(text: Any) -> dict[str, str]:
    """A stored query string (``segment=0&items_added=1-5``) as a dict; garbage -> {}."""
    if not isinstance(text, str) or len(text) > 4000:
        return {}
    return {k: v[-1] for k, v in parse_qs(text.lstrip("?"), keep_blank_values=False).items()}
