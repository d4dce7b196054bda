"""What a user does on the carts and what-if pages, as replayable actions.

The controls are found in the page as the server renders it (checklists, radio items and
range sliders that feed a server callback; the what-if form's numeric fields), so the actions
follow the dashboard when it changes. Each script returns the page to its initial state at its
end, so it can be cycled for as many runs as wanted and every cycle sends the same requests.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from benchmarks.dashclient import DashClient, id_key

CARTS_PATH = "/carts"
WHAT_IF_PATH = "/what-if"


@dataclass
class Action:
    label: str
    ident: Any
    prop: str
    value: Callable[[DashClient], Any]


def _server_inputs(client: DashClient) -> set[str]:
    return {d.prop_id for c in client.callbacks if c.server for d in c.inputs if not d.pattern}


def _controls(client: DashClient, kind: str, prop: str = "value") -> list[dict]:
    inputs = _server_inputs(client)
    return [client.index[k] for k, t in client.types.items()
            if t == kind and k in client.index and f"{k}.{prop}" in inputs]


def _clear_chip(key: str) -> Callable[[DashClient], Any]:
    return lambda client: (client.value(_chip_id(client, key), "n_clicks") or 0) + 1


def _chip_id(client: DashClient, key: str) -> Any:
    for ident in client.ids():
        if isinstance(ident, dict) and str(ident.get("type", "")).endswith("-clear") and ident.get("key") == key:
            return ident
    raise LookupError(f"no clear chip for {key!r} on {client.path}")


class _Chip:
    """An action target resolved when the action runs (chips exist only once filters are set)."""

    def __init__(self, key: str):
        self.key = key


def carts_script(client: DashClient) -> list[Action]:
    """Seven filter changes of the kinds a sales manager makes (customer types, product details
    viewed, items/pages/activity ranges), then "Clear all" back to the initial view."""
    if client.path != CARTS_PATH:
        client.open(CARTS_PATH)
    checklists = _controls(client, "Checklist")
    radios = _controls(client, "RadioItems")
    sliders = _controls(client, "RangeSlider")
    if not checklists or not radios or len(sliders) < 3:
        raise LookupError(f"carts page controls changed: {len(checklists)} checklists, {len(radios)} radio groups, "
                          f"{len(sliders)} range sliders")
    seg, det = checklists[0], radios[0]
    opts = [o["value"] for o in seg["options"]]
    choices = [o["value"] for o in det["options"]]  # all / yes / no
    s0, s1, s2 = sliders[:3]

    def const(v):
        return lambda client: v

    def top(s):
        return int(s["max"])

    script = [
        Action(f"{seg['id']}=[{opts[0]}]", seg["id"], "value", const([opts[0]])),
        Action(f"{det['id']}={choices[1]}", det["id"], "value", const(choices[1])),
        Action(f"{s0['id']}=1..3", s0["id"], "value", const([1, min(3, top(s0))])),
        Action(f"{seg['id']}=[{opts[0]},{opts[-1]}]", seg["id"], "value", const([opts[0], opts[-1]])),
        Action(f"{s1['id']}=2..max", s1["id"], "value", const([min(2, top(s1)), top(s1)])),
        Action(f"{det['id']}={choices[-1]}", det["id"], "value", const(choices[-1])),
        Action(f"{s2['id']}=1..max-2", s2["id"], "value", const([1, max(1, top(s2) - 2)])),
        Action("clear all (chip)", _Chip("__all__"), "n_clicks", _clear_chip("__all__")),
    ]
    return script


def off_cube_script(client: DashClient) -> list[Action]:
    """Cross-filter by selecting bars in the chart of a behaviour that has no slider (so no
    pre-aggregated cube dimension), then clear that chip."""
    if client.path != CARTS_PATH:
        client.open(CARTS_PATH)
    sliders = {str(s["id"]).rsplit("-", 1)[-1] for s in _controls(client, "RangeSlider")}
    graphs = [g for g in _controls(client, "Graph", "selectedData")
              if not any(str(g["id"]).endswith(name) for name in sliders)]
    if not graphs:
        raise LookupError("no chart selection outside the sliders' behaviours")
    graph = next((g for g in graphs if str(g["id"]).endswith("cart_views")), graphs[0])
    custom = [c for trace in graph["figure"]["data"] for c in (trace.get("customdata") or [])]
    column = custom[0][0]
    picked = [c for c in custom if c and c[0] == column][1:3]  # the 2nd and 3rd buckets

    return [
        Action(f"select {column} buckets {[p[1] for p in picked]}", graph["id"], "selectedData",
               lambda client: {"points": [{"customdata": p} for p in picked]}),
        Action(f"clear {column} (chip)", _Chip(column), "n_clicks", _clear_chip(column)),
    ]


def what_if_script(client: DashClient, subject: str, specs: dict) -> list[Action]:
    """Move two numeric features of the what-if form to ¼ and ¾ of their range and back.

    ``specs`` is the model card's ``feature_specs`` (kind, min, max per feature): the form's
    fields are the pattern-matched inputs of a server callback whose id names a feature."""
    client.open(WHAT_IF_PATH, f"?subject={subject}")
    pattern_inputs = [d for c in client.callbacks if c.server for d in c.inputs if d.pattern]
    fields = []
    for dep in pattern_inputs:
        for props in client.index.values():
            ident = props.get("id")
            if not (isinstance(ident, dict) and set(ident) == set(dep.ident)
                    and all(dep.ident[k] == ident[k] for k in ident if not isinstance(dep.ident[k], list))):
                continue
            feature = next((v for v in ident.values() if isinstance(v, str) and v in specs), None)
            spec = specs.get(feature, {})
            lo, hi = props.get("min", spec.get("min")), props.get("max", spec.get("max"))
            if (spec.get("kind") in ("int", "float") and isinstance(lo, int | float) and isinstance(hi, int | float)
                    and hi - lo >= 4 and props.get(dep.prop) is not None):  # ¼ and ¾ differ
                fields.append((props, dep.prop, lo, hi, spec["kind"] == "int"))
    if len(fields) < 2:
        raise LookupError(f"what-if form for {subject}: {len(fields)} numeric fields found")
    script = []
    for props, prop, lo, hi, whole in fields[:2]:
        original = props[prop]
        for share in (0.25, 0.75):
            value = lo + (hi - lo) * share
            value = int(round(value)) if whole else round(value, 3)
            script.append(Action(f"{id_key(props['id'])}={value}", props["id"], prop, _const(value)))
        script.append(Action(f"{id_key(props['id'])}={original} (back)", props["id"], prop, _const(original)))
    return script


def _const(value):
    return lambda client: value


def run_action(client: DashClient, action: Action):
    ident = _chip_id(client, action.ident.key) if isinstance(action.ident, _Chip) else action.ident
    return client.change(ident, action.prop, action.value(client))


def page_state(client: DashClient) -> str | None:
    """The page's canonical query string (its url-state store), '' for the initial view."""
    for ident in client.ids():
        if isinstance(ident, dict) and ident.get("type") == "url-state":
            return client.value(ident, "data")
    return None
