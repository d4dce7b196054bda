"""Who is asking: a role, a row-level scope, and where the identity came from.

Roles are ordered: each one may do everything the ones before it may.

* ``viewer``  — aggregates only: KPIs, charts, segment sizes and profiles, model quality.
* ``analyst`` — plus customer- and session-level rows (at-risk lists, exports, what-if from a
  real id, the raw cells of rejected rows).
* ``admin``   — plus user management, the audit log and "refresh data now".

A :class:`Scope` limits which rows a user's every query reads, per column:
``service_tier=premium`` keeps premium customers only. Several values of one column are
alternatives (``top_category=Kitchenware,Kids' goods``); different columns must all hold.
A subject (carts or customers) none of whose columns the scope names is not shown at all to a
scoped user: a scope is a promise that the user sees nothing outside it, and an unscoped
subject would break it.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from dashboard.language import _
from etl.schema import CATEGORIES, CUSTOMER_SEGMENT_TYPES, SERVICE_TIERS


class Role(enum.IntEnum):
    VIEWER = 1
    ANALYST = 2
    ADMIN = 3

    @classmethod
    def parse(cls, value: Any) -> Role:
        if isinstance(value, str) and value.strip().upper() in cls.__members__:
            return cls[value.strip().upper()]
        raise ValueError(_("a role is one of {roles}, got {value}").format(roles=", ".join(ROLE_NAMES),
                                                                           value=repr(value)))

    @property
    def label(self) -> str:
        return self.name.lower()


ROLE_NAMES = tuple(role.label for role in Role)


class Capability(enum.Enum):
    """What a request may need; :func:`Identity.can` decides."""

    AGGREGATES = Role.VIEWER
    ROWS = Role.ANALYST      # customer ids, session ids, raw cells, exports
    ADMIN = Role.ADMIN       # users, audit log, refresh


# column -> (subject it restricts, allowed values as stored in the warehouse)
def _yes_no(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("yes", "true", "1", "да", "sí", "si"):
        return True
    if lowered in ("no", "false", "0", "нет"):
        return False
    raise ValueError(_("marketing_consent is yes or no, got {value}").format(value=repr(value)))


def _one_of(column: str, allowed: tuple) -> Any:
    by_text = {str(v).lower(): v for v in allowed}

    def parse(value: str) -> Any:
        found = by_text.get(value.strip().lower())
        if found is None:
            raise ValueError(_("{column} is one of {values}, got {value}").format(
                column=column, values=", ".join(str(v) for v in allowed), value=repr(value)))
        return found

    return parse


SCOPE_COLUMNS: dict[str, tuple[str, Any]] = {
    "customer_segment": ("carts", _one_of("customer_segment", tuple(CUSTOMER_SEGMENT_TYPES))),
    "service_tier": ("customers", _one_of("service_tier", tuple(SERVICE_TIERS))),
    "top_category": ("customers", _one_of("top_category", tuple(CATEGORIES))),
    "marketing_consent": ("customers", _yes_no),
}


@dataclass(frozen=True)
class Scope:
    """Allowed values per column, sorted so that equal scopes compare and hash equal."""

    columns: tuple[tuple[str, tuple], ...] = ()

    @property
    def unrestricted(self) -> bool:
        return not self.columns

    def values(self, column: str) -> tuple | None:
        """The allowed values of ``column``, or None when the scope does not limit it."""
        return dict(self.columns).get(column)

    def limits(self, subject: str) -> dict[str, tuple]:
        """The columns of ``subject`` (carts or customers) this scope limits."""
        return {c: v for c, v in self.columns if SCOPE_COLUMNS[c][0] == subject}

    def shows(self, subject: str) -> bool:
        """Whether a user with this scope may see ``subject`` at all (see the module doc)."""
        return self.unrestricted or bool(self.limits(subject))

    def text(self) -> list[str]:
        """``["service_tier=premium", ...]``: the form the CLI and the user store use."""
        return [f"{c}={','.join(_value_text(v) for v in values)}" for c, values in self.columns]

    def key(self) -> str:
        """A stable string for cache keys ("" when unrestricted)."""
        return ";".join(self.text())

    def label(self) -> str:
        from etl.schema import label
        return "; ".join(f"{label(c)}: {', '.join(_value_text(v) for v in values)}" for c, values in self.columns)


def _value_text(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def parse_scope(items: list[str] | tuple[str, ...]) -> Scope:
    """``["service_tier=premium", "top_category=Kitchenware,Kids' goods"]`` -> :class:`Scope`.

    Raises ValueError naming the item and what is wrong. Repeating a column adds values.
    """
    found: dict[str, set] = {}
    for item in items:
        if not isinstance(item, str) or "=" not in item:
            raise ValueError(_("a scope is COLUMN=VALUE[,VALUE...], got {item}").format(item=repr(item)))
        column, _equals, raw = item.partition("=")
        column = column.strip()
        if column not in SCOPE_COLUMNS:
            raise ValueError(_("a scope column is one of {columns}, got {column}").format(
                columns=", ".join(SCOPE_COLUMNS), column=repr(column)))
        parse = SCOPE_COLUMNS[column][1]
        # category labels hold no commas, so a comma always separates values
        values = [parse(v) for v in raw.split(",") if v.strip()]
        if not values:
            raise ValueError(_("scope {item} names no value").format(item=repr(item)))
        found.setdefault(column, set()).update(values)
    return Scope(tuple(sorted((c, tuple(sorted(v, key=str))) for c, v in found.items())))


@dataclass(frozen=True)
class Identity:
    """The person (or embedding portal) behind a request."""

    name: str
    role: Role
    scope: Scope = field(default_factory=Scope)
    source: str = "local"     # none | local | oidc | proxy | embed | system

    def can(self, capability: Capability) -> bool:
        return self.role >= capability.value

    def key(self) -> str:
        """What an answer may depend on (not the name: two viewers with one scope share answers)."""
        return f"{self.role.label}|{self.scope.key()}"

    def to_session(self) -> dict:
        return {"name": self.name, "role": self.role.label, "scope": self.scope.text(), "source": self.source}

    @classmethod
    def from_session(cls, data: Any) -> Identity | None:
        """The identity a signed session holds, or None when it is not one (an old format)."""
        try:
            return cls(name=str(data["name"]), role=Role.parse(data["role"]),
                       scope=parse_scope(list(data.get("scope") or [])), source=str(data["source"]))
        except (KeyError, TypeError, ValueError):
            return None


# Code that runs outside a request (CLI, warm-up, benchmarks, unit tests of the queries) reads
# everything: it is the operator, not a visitor.
SYSTEM = Identity(name="system", role=Role.ADMIN, source="system")
