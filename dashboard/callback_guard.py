"""Callback requests checked against the callback graph before Dash runs them.

Dash trusts the shape of a ``POST /_dash-update-component`` body: a missing input, an extra
one, a pattern-matching input sent as an object, an id with a bogus key or a malformed
``changedPropIds`` entry fails deep inside Dash or inside a callback (``ctx.triggered_id``
parses JSON, ``ctx.outputs_list`` is indexed), each with a traceback. The browser always
sends exactly what the graph declares, so anything else is refused here with HTTP 400 and
one log line, and the callbacks only ever see well-formed ids and the declared inputs.
Values are not judged here: each callback validates its values (dashboard/inputs.py).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from dashboard.inputs import MAX_TEXT, number, text

MAX_MATCHES = 1000  # components one pattern-matching dependency may match
MAX_LOCATION = 8000  # characters of a pathname or query string
_WILDCARDS = ("ALL", "ALLSMALLER", "MATCH")
# dcc.Location only ever sends text for these; Dash's page router calls str methods on them.
_LOCATION_PROPS = ("pathname", "search", "hash", "href")


class Malformed(ValueError):
    """The request does not have the shape the callback graph declares (message: what differs)."""


def check(body: Any, callback_map: dict, prefix: str) -> None:
    """Raise :class:`Malformed` unless ``body`` is a well-formed request for a server callback."""
    if not isinstance(body, dict):
        raise Malformed("the body is not a JSON object")
    key = body.get("output")
    spec = callback_map.get(key) if isinstance(key, str) else None
    if spec is None or "callback" not in spec:
        raise Malformed("no server callback has this output")
    _entries(body.get("inputs"), spec["inputs"], "inputs", prefix)
    _entries(body.get("state", []), spec["state"], "state", prefix)
    if not spec.get("no_output"):  # Dash ignores the outputs of a callback without any
        _outputs(body.get("outputs"), key)
    _changed(body.get("changedPropIds", []), body["inputs"])


@dataclass(frozen=True)
class _Wildcard:
    name: str  # ALL, ALLSMALLER or MATCH

    @property
    def many(self) -> bool:
        """ALL and ALLSMALLER dependencies arrive as a list of matches, MATCH as one entry."""
        return self.name != "MATCH"


def _declared(raw: str):
    """A declared id: the string itself, or a dict with :class:`_Wildcard` in wildcard places."""
    if not raw.startswith("{"):
        return raw
    return {k: _Wildcard(v[0]) if isinstance(v, list) and len(v) == 1 and v[0] in _WILDCARDS else v
            for k, v in json.loads(raw).items()}


def _many(declared) -> bool:
    return isinstance(declared, dict) and any(isinstance(v, _Wildcard) and v.many for v in declared.values())


def _entries(sent: Any, declared: list[dict], group: str, prefix: str) -> None:
    if not isinstance(sent, list) or len(sent) != len(declared):
        raise Malformed(f"{group}: expected {len(declared)} entries")
    for index, (entry, dep) in enumerate(zip(sent, declared)):
        ident = _declared(dep["id"])
        where = f"{group}[{index}]"
        if _many(ident):
            if not isinstance(entry, list) or len(entry) > MAX_MATCHES:
                raise Malformed(f"{where}: expected a list of matching components")
            for item in entry:
                _entry(item, ident, dep["property"], where, prefix)
        else:
            _entry(entry, ident, dep["property"], where, prefix)


def _entry(entry: Any, ident, prop: str, where: str, prefix: str, with_value: bool = True) -> None:
    if not isinstance(entry, dict) or entry.get("property") != prop or not _same_id(entry.get("id"), ident):
        raise Malformed(f"{where}: not the declared id and property")
    if with_value and prop in _LOCATION_PROPS and "value" in entry:
        _location(entry["value"], prop, where, prefix)


def _same_id(sent: Any, declared) -> bool:
    if isinstance(declared, str):
        return sent == declared
    if not isinstance(sent, dict) or set(sent) != set(declared):
        return False
    for key, value in declared.items():
        if isinstance(value, _Wildcard):
            if not _id_value(sent[key]):
                return False
        elif sent[key] != value:
            return False
    return True


def _id_value(value: Any) -> bool:
    """What a pattern-matching id may hold in a wildcard place: printable text, a number, a bool."""
    if isinstance(value, str):
        return text(value, MAX_TEXT) is not None
    return isinstance(value, bool) or number(value) is not None


def _location(value: Any, prop: str, where: str, prefix: str) -> None:
    if value is None:
        return
    if not isinstance(value, str) or len(value) > MAX_LOCATION:
        raise Malformed(f"{where}: a {prop} must be text")
    # Dash's router refuses (with an exception) a pathname outside the app's prefix
    if prop == "pathname" and not value.startswith(prefix.rstrip("/") or "/"):
        raise Malformed(f"{where}: the pathname is outside {prefix}")


def _outputs(sent: Any, key: str) -> None:
    parts = key[2:-2].split("...") if key.startswith("..") else [key]
    declared = [(_declared(part.rsplit(".", 1)[0]), part.rsplit(".", 1)[1]) for part in parts]
    entries = sent if key.startswith("..") else [sent]
    if not isinstance(entries, list) or len(entries) != len(declared):
        raise Malformed(f"outputs: expected {len(declared)} entries")
    for index, (entry, (ident, prop)) in enumerate(zip(entries, declared)):
        where = f"outputs[{index}]"
        if _many(ident):
            if not isinstance(entry, list) or len(entry) > MAX_MATCHES:
                raise Malformed(f"{where}: expected a list of matching components")
            for item in entry:
                _entry(item, ident, prop, where, "/", with_value=False)
        else:
            _entry(entry, ident, prop, where, "/", with_value=False)


def _changed(sent: Any, inputs: list) -> None:
    """Each changed property must be one of the request's own inputs (Dash parses these ids)."""
    if not isinstance(sent, list) or len(sent) > MAX_MATCHES:
        raise Malformed("changedPropIds: expected a list")
    present = {(_key(item["id"]), item["property"]) for entry in inputs
               for item in (entry if isinstance(entry, list) else [entry])}
    for prop_id in sent:
        if not isinstance(prop_id, str) or "." not in prop_id:
            raise Malformed("changedPropIds: expected id.property strings")
        raw, prop = prop_id.rsplit(".", 1)
        try:
            ident = json.loads(raw) if raw.startswith("{") else raw
        except (ValueError, RecursionError):
            raise Malformed("changedPropIds: an id is not valid JSON") from None
        if not isinstance(ident, str | dict) or (_key(ident), prop) not in present:
            raise Malformed("changedPropIds: not one of the request's inputs")


def _key(ident: str | dict) -> str:
    """A comparable form of an id; ``{"a": …}`` parsed from JSON dumps back within recursion limits."""
    return json.dumps(ident, sort_keys=True) if isinstance(ident, dict) else ident
