"""Is a callback response the old data's answer, the new data's, or a mix of both?

Used by the refresh run of ``make loadtest`` (benchmarks/refresh.py): every payload's response
was recorded beforehand on data A (old) and on data B (new), and each response the server
gives while A is being replaced by B must be one of those two exactly.

A Dash callback response is ``{"multi": true, "response": {component: {property: value}}}``
(plus ``sideUpdate`` for ``set_props``, which is where the app's error alert goes). A response
that is neither old nor new is split into those outputs, and an output equal to neither into
its values: *mixed* when each part is A's or B's and both occur (two versions of the data in
one answer), *neither* when some value matches no version (an error, a number computed from
both versions, an intermediate state, something missing).

Nothing is ignored: the old and new answers are recorded from the very files that are served
before and after the refresh, and two recordings of the same files in separate processes, and
gunicorn's answers against the test client's, are byte-identical (checked on every run, see
benchmarks/refresh.py), so no output is volatile.
"""
from __future__ import annotations

import json
from typing import Any

OLD, NEW, SAME, MIXED, NEITHER = "old", "new", "same", "mixed", "neither"
BAD = (MIXED, NEITHER)


def outputs(body: bytes | str) -> dict[str, Any] | None:
    """``{"component.property": value}`` of a Dash callback response; None if it is not one."""
    try:
        data = json.loads(body)
    except (TypeError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    flat: dict[str, Any] = {}
    for section in ("response", "sideUpdate"):
        part = data.get(section)
        if part is None:
            continue
        if not isinstance(part, dict):
            return None
        for component, props in part.items():
            if not isinstance(props, dict):
                flat[f"{section}:{component}"] = props
                continue
            for prop, value in props.items():
                flat[f"{section}:{component}.{prop}"] = value
    return flat if "response" in data else None


def classify(body: bytes | str, old: bytes | str, new: bytes | str) -> str:
    """``old`` / ``new``: the body is that answer (``same`` when both answers are equal);
    ``mixed``: every output (or, inside an output, every value) is the old or the new one, and
    both occur; ``neither``: anything else (a value no version has, a missing part, an error)."""
    body, old, new = (_text(x) for x in (body, old, new))
    if body == old or body == new:
        return SAME if old == new else (OLD if body == old else NEW)
    got, a, b = outputs(body), outputs(old), outputs(new)
    if got is None or a is None or b is None or set(got) != set(a) or set(got) != set(b):
        return NEITHER
    only_old = only_new = False
    for key, value in got.items():
        is_old, is_new = value == a[key], value == b[key]
        if not (is_old or is_new):
            if not _mixed_inside(value, a[key], b[key]):
                return NEITHER
            only_old = only_new = True  # this output alone holds values of both versions
            continue
        only_old |= is_old and not is_new
        only_new |= is_new and not is_old
    if only_old and only_new:
        return MIXED
    if only_old:
        return OLD
    return NEW if only_new else SAME  # equal as JSON, serialised differently


def _mixed_inside(value: Any, old: Any, new: Any) -> bool:
    """For an output equal to neither version as a whole: is each of its values the old or the
    new one at the same place, both occurring, and nothing missing that both versions have (e.g.
    a slider's bounds from one version, a count next to it from the other)?"""
    pa, pb, pg = dict(_leaves(old)), dict(_leaves(new)), dict(_leaves(value))
    if not set(pa) & set(pb) <= set(pg):
        return False
    has_old = has_new = False
    for at, v in pg.items():
        in_a, in_b = at in pa and pa[at] == v, at in pb and pb[at] == v
        if not (in_a or in_b):
            return False
        has_old |= in_a and not in_b
        has_new |= in_b and not in_a
    return has_old and has_new


def differing_outputs(body: bytes | str, old: bytes | str, new: bytes | str, leaves: int = 4) -> dict[str, dict]:
    """For a report: each output of ``body`` that is not the same in both answers -> its
    verdict, and for one that is neither, the first few values (leaves) that differ."""
    got, a, b = outputs(_text(body)) or {}, outputs(_text(old)) or {}, outputs(_text(new)) or {}
    out = {}
    for key in sorted(set(got) | set(a) | set(b)):
        if key not in got or key not in a or key not in b:
            out[key] = {"verdict": NEITHER, "missing_in": [n for n, d in (("answer", got), ("old", a), ("new", b))
                                                           if key not in d]}
            continue
        value = got[key]
        is_old, is_new = value == a[key], value == b[key]
        if is_old and is_new:
            continue
        entry: dict = {"verdict": OLD if is_old else NEW if is_new else
                       MIXED if _mixed_inside(value, a[key], b[key]) else NEITHER}
        if not (is_old or is_new):
            pa, pb = dict(_leaves(a[key])), dict(_leaves(b[key]))
            found = [{"at": at, "got": _short(v), "old": _short(pa.get(at)), "new": _short(pb.get(at)),
                      "is": OLD if at in pa and v == pa[at] else NEW if at in pb and v == pb[at] else NEITHER}
                     for at, v in _leaves(value) if not (at in pa and at in pb and v == pa[at] == pb[at])]
            found.sort(key=lambda leaf: leaf["is"] != NEITHER)  # the values from no version first
            entry["leaves"] = found[:leaves]
        out[key] = entry
    return out


def _leaves(value: Any, at: str = ""):
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _leaves(v, f"{at}/{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _leaves(v, f"{at}/{i}")
    else:
        yield at, value


def _short(value: Any) -> Any:
    return value if not isinstance(value, str) or len(value) <= 120 else value[:117] + "..."


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else value
