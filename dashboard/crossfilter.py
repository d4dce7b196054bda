"""One cross-filter mechanism for the Carts and Customers pages.

Both pages answer every filter change with one callback: a panel control changed, a bar was
clicked, bars were drag-selected or a chip's "×" was pressed. The callback turns what Dash
reports (the triggered id and property, and the inputs' values) into one typed :class:`Event`
(:func:`event`), and :func:`apply` turns the current filters and that event into the new
filters. :func:`apply` reads no Dash context and no data: what a page does with each control
and chart is declared once in its :class:`Rules` (pure functions over the filters, with the
bins they need bound in), so the whole mechanism is tested without Dash.

Component ids are ``<prefix>-<name>`` (``carts-segment``, ``cust-dist-profit``) and the chips'
pattern ids ``{"type": "<prefix>-clear", "key": <filter key>}``; :class:`Ids` builds both, so
the layout, the callback's inputs and the event parser cannot disagree.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

from dashboard.ranges import Range, event_points, range_from_points
from dashboard.language import _

F = TypeVar("F")  # CartFilters or CustomerFilters: frozen dataclasses with ``without`` / ``with_range``

CLEAR_ALL = "__all__"
Kind = Literal["panel", "click", "select", "clear"]


class NoChange(Exception):
    """The event changes nothing worth answering (the callback answers with PreventUpdate)."""


@dataclass(frozen=True)
class Event:
    """What the user did: ``kind`` of event, on the control/chart ``name`` (for ``clear``: the
    filter key, or CLEAR_ALL), with the raw value the browser sent (validated by the rules)."""

    kind: Kind
    name: str
    value: Any = None


@dataclass(frozen=True)
class Ids:
    """The component ids of one page."""

    prefix: str

    def of(self, name: str) -> str:
        return f"{self.prefix}-{name}"

    @property
    def clear_type(self) -> str:
        return f"{self.prefix}-clear"


PanelRule = Callable[[Any, Any, list[str]], Any]          # (filters, control value, problems) -> filters
PointsRule = Callable[[Any, list[list], list[str]], Any]  # (filters, event customdata, problems) -> filters


@dataclass(frozen=True)
class Rules(Generic[F]):
    """A page's cross-filtering, declared once: what each panel control, each chart click and
    each chart selection does to the filters, and which filter keys a chip may clear."""

    empty: F
    panel: Mapping[str, PanelRule] = field(default_factory=dict)    # control name -> rule
    click: Mapping[str, PointsRule] = field(default_factory=dict)   # chart name -> rule
    select: Mapping[str, PointsRule] = field(default_factory=dict)  # chart name -> rule
    clear_keys: frozenset[str] = frozenset()


def apply(filters: F, event: Event, rules: Rules[F], problems: list[str]) -> F:
    """The filters after ``event``; a message in ``problems`` for each value dropped.
    Raises :class:`NoChange` for an event the page does not know (or that changes nothing)."""
    if event.kind == "panel" and event.name in rules.panel:
        return rules.panel[event.name](filters, event.value, problems)
    if event.kind == "click" and event.name in rules.click:
        return rules.click[event.name](filters, event_points(event.value), problems)
    if event.kind == "select" and event.name in rules.select:
        return rules.select[event.name](filters, event_points(event.value), problems)
    if event.kind == "clear":
        if event.name == CLEAR_ALL:
            return rules.empty
        if event.name in rules.clear_keys:
            return filters.without(event.name)
        problems.append(_("Ignored a request to clear an unknown filter."))
        return filters
    raise NoChange


def event(ids: Ids, triggered_id: Any, prop: str, controls: Mapping[str, Any], clicks: Mapping[str, Any],
          selections: Mapping[str, Any]) -> Event:
    """The :class:`Event` for what Dash reports: ``triggered_id`` and property ``prop`` of the
    input that changed, and the values of the page's inputs (control/chart name -> value)."""
    if isinstance(triggered_id, dict):
        if triggered_id.get("type") == ids.clear_type and isinstance(triggered_id.get("key"), str):
            return Event("clear", triggered_id["key"])
        raise NoChange
    if not isinstance(triggered_id, str) or not triggered_id.startswith(ids.prefix + "-"):
        raise NoChange
    name = triggered_id.removeprefix(ids.prefix + "-")
    if prop == "selectedData" and name in selections:
        return Event("select", name, selections[name])
    if prop == "clickData" and name in clicks:
        return Event("click", name, clicks[name])
    if name in controls:
        return Event("panel", name, controls[name])
    raise NoChange


# --- rules both pages share ------------------------------------------------------------


def select_range(column: str) -> PointsRule:
    """A drag selection over a distribution chart sets its column's range (a cleared
    selection, with no points, changes nothing)."""
    def rule(filters, points: list[list], _problems: list[str]):
        rng = range_from_points(points, column)
        if rng is None:
            raise NoChange
        return filters.with_range(column, rng)

    return rule


def toggle_range(column: str, same: Callable[[Range, Range], bool], *, none_changes_nothing: bool) -> PointsRule:
    """A click on a bucket sets its column's range; a click on the bucket that already is the
    whole range clears it (``same`` compares ranges: carts compare them snapped to buckets).
    A click without a bucket: no change (``none_changes_nothing``) or the same filters again."""
    def rule(filters, points: list[list], _problems: list[str]):
        rng = range_from_points(points[:1], column)
        if rng is None:
            if none_changes_nothing:
                raise NoChange
            return filters
        current = filters.range(column)
        return filters.with_range(column, None if current is not None and same(current, rng) else rng)

    return rule


def from_dash(ids: Ids, controls: Mapping[str, Any], clicks: Mapping[str, Any],
              selections: Mapping[str, Any]) -> Event:
    """The :func:`event` of the running callback: reads Dash's callback context once (the
    only place of the mechanism that does)."""
    from dash import ctx  # here, not at the top: the rest of the module runs without Dash

    prop = ctx.triggered[0]["prop_id"].rsplit(".", 1)[-1] if ctx.triggered else ""
    return event(ids, ctx.triggered_id, prop, controls, clicks, selections)
