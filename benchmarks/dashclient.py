"""A headless stand-in for the Dash renderer: the callback requests a browser would send.

Everything is derived from the running app (``app.callback_map`` and the page layouts as the
server sends them), not from hard-coded ids, so the benchmark follows the dashboard as it
changes:

* :meth:`DashClient.open` asks the server for a page exactly as the browser's router does (the
  ``_pages_location`` → ``_pages_content`` callback) and keeps the returned component tree as
  the "browser state";
* :meth:`DashClient.change` sets one property (what a user does to a control), then sends every
  server callback that the change triggers, with the inputs and states read from the current
  tree (pattern-matching ``ALL`` inputs are expanded over the components present), applies each
  response to the tree and follows the chain: callbacks whose inputs are outputs of an earlier
  one, and callbacks of newly rendered components that do not prevent their initial call.

What it does not do: clientside callbacks run in the browser and cost no request, so they are
not run; if a server callback ever depends on a clientside one's output, :class:`DashClient`
raises instead of silently measuring less than the browser would trigger.

Every request is checked: HTTP 200 (or 204 when the callback declined to update), a JSON body,
and no error message set by ``dashboard.app._on_error`` (``app-error``) or the 400 handler.
"""
from __future__ import annotations

import copy
import json
import time
from dataclasses import dataclass, field
from typing import Any

WILDCARDS = ("ALL", "MATCH", "ALLSMALLER")
ERROR_MARKERS = ("could not be updated", "could not read this request", "could not answer")


def id_key(ident: Any) -> str:
    """Dash's string form of a component id (``dash._utils.stringify_id``)."""
    if isinstance(ident, dict):
        return json.dumps(ident, sort_keys=True, separators=(",", ":"))
    return str(ident)


def _parse_id(text: str) -> Any:
    return json.loads(text) if text.startswith("{") else text


def _is_pattern(ident: Any) -> bool:
    return isinstance(ident, dict) and any(isinstance(v, list) and v and v[0] in WILDCARDS
                                           for v in ident.values())


def _matches(pattern: dict, ident: Any) -> bool:
    if not isinstance(ident, dict) or set(ident) != set(pattern):
        return False
    for key, want in pattern.items():
        if isinstance(want, list) and want and want[0] in WILDCARDS:
            if want[0] != "ALL":
                raise NotImplementedError(f"{want[0]} wildcards are not replayed (only ALL is used)")
            continue
        if ident[key] != want:
            return False
    return True


@dataclass(frozen=True)
class Dep:
    """One input, state or output of a callback: (id, property); id may be a pattern."""

    ident: Any
    prop: str

    @property
    def pattern(self) -> bool:
        return _is_pattern(self.ident)

    @property
    def prop_id(self) -> str:
        return f"{id_key(self.ident)}.{self.prop}"


@dataclass
class Callback:
    key: str
    outputs: list[Dep]
    inputs: list[Dep]
    state: list[Dep]
    server: bool
    prevent_initial_call: bool
    multi: bool


@dataclass
class Request:
    """One callback request as sent, with its timing and outcome."""

    callback: str
    body: dict
    status: int
    ms: float
    size: int
    url: str
    chained: bool = False


@dataclass
class Interaction:
    """Everything one user action sent (the changed property and the chain it set off)."""

    action: str
    requests: list[Request] = field(default_factory=list)

    @property
    def total_ms(self) -> float:  # requests one after the other (a browser may overlap some)
        return sum(r.ms for r in self.requests)

    @property
    def max_ms(self) -> float:
        return max((r.ms for r in self.requests), default=0.0)


class CallbackError(AssertionError):
    pass


def _deps(items: list) -> list[Dep]:
    out = []
    for item in items:
        if isinstance(item, dict):
            out.append(Dep(_parse_id(item["id"]), item["property"]))
        else:  # dash.dependencies.Output/Input objects
            out.append(Dep(item.component_id, item.component_property))
    return out


def callbacks_of(app) -> list[Callback]:
    """The app's callbacks (server and clientside); call after the first request, which is when
    Dash registers the pages' callbacks."""
    prevent = {c["output"]: bool(c.get("prevent_initial_call")) for c in app._callback_list}
    found = []
    for key, spec in app.callback_map.items():
        outputs = spec["output"] if isinstance(spec["output"], list) else [spec["output"]]
        multi = key.startswith("..") and key.endswith("..")
        if isinstance(spec["output"], str):  # older Dash: the key string only
            parts = key[2:-2].split("...") if multi else [key]
            outputs = [{"id": p.rsplit(".", 1)[0], "property": p.rsplit(".", 1)[1]} for p in parts]
        found.append(Callback(key=key, outputs=_deps(outputs), inputs=_deps(spec["inputs"]),
                              state=_deps(spec["state"]), server="callback" in spec,
                              prevent_initial_call=prevent.get(key, False), multi=multi))
    return found


class DashClient:
    """One simulated browser tab on a Dash app, over any Flask-test-client-like ``client``
    (``post(url, json=...)``/``get(url)`` returning ``status_code``, ``data``, ``get_json()``)."""

    def __init__(self, app, client=None, prefix: str | None = None, timer=time.perf_counter):
        self.app = app
        self.client = client or app.server.test_client()
        self.prefix = prefix if prefix is not None else app.config.requests_pathname_prefix
        self.timer = timer
        self.client.get(self.prefix)  # Dash registers page callbacks on its first request
        self.callbacks = callbacks_of(app)
        self.shell = self._get_json(self.prefix + "_dash-layout")
        self.tree: Any = None
        self.index: dict[str, dict] = {}
        self.types: dict[str, str] = {}
        self._changed: set[str] = set()
        self.path = None

    # --- the component tree ---------------------------------------------------------------

    def _get_json(self, url: str) -> Any:
        response = self.client.get(url)
        if response.status_code != 200:
            raise CallbackError(f"GET {url}: HTTP {response.status_code}")
        return json.loads(response.data)

    def _walk(self, node: Any, out: dict[str, dict]) -> None:
        if isinstance(node, list):
            for item in node:
                self._walk(item, out)
            return
        if not isinstance(node, dict) or "props" not in node or "type" not in node:
            return
        props = node["props"]
        if "id" in props:
            out[id_key(props["id"])] = props
            self.types[id_key(props["id"])] = node["type"]
        for value in props.values():
            if isinstance(value, dict | list):
                self._walk(value, out)

    def _reindex(self) -> set[str]:
        fresh: dict[str, dict] = {}
        self._walk(self.tree, fresh)
        new = set(fresh) - set(self.index)
        self.index = fresh
        return new

    def value(self, ident: Any, prop: str, default: Any = None) -> Any:
        return self.index.get(id_key(ident), {}).get(prop, default)

    def props(self, ident: Any) -> dict:
        return self.index[id_key(ident)]

    def ids(self) -> list[Any]:
        return [p["id"] for p in self.index.values()]

    # --- requests -------------------------------------------------------------------------

    def _entry(self, dep: Dep, with_value: bool) -> dict | list:
        def one(props: dict) -> dict:
            item = {"id": props["id"], "property": dep.prop}
            if with_value and dep.prop in props:  # an unset property is undefined in the browser
                item["value"] = props[dep.prop]
            return item

        if dep.pattern:
            return [one(p) for p in self.index.values() if _matches(dep.ident, p.get("id"))]
        props = self.index.get(id_key(dep.ident))
        if props is None:  # not on this page (suppress_callback_exceptions): sent without a value
            return {"id": dep.ident, "property": dep.prop}
        return one(props)

    def body(self, cb: Callback, changed: list[str]) -> dict:
        outputs = [self._entry(o, with_value=False) for o in cb.outputs]
        return {"output": cb.key, "outputs": outputs if cb.multi else outputs[0],
                "inputs": [self._entry(i, True) for i in cb.inputs],
                "state": [self._entry(s, True) for s in cb.state],
                "changedPropIds": changed}

    def post(self, cb: Callback, changed: list[str], chained: bool = False) -> Request:
        body = self.body(cb, changed)
        url = self.prefix + "_dash-update-component"
        started = self.timer()
        response = self.client.post(url, json=body)
        ms = (self.timer() - started) * 1000
        request = Request(cb.key, body, response.status_code, ms, len(response.data), url, chained)
        check_response(response.status_code, response.data, cb.key)
        if response.status_code == 200:
            self._apply(json.loads(response.data))
        return request

    def _apply(self, payload: dict) -> None:
        updates = dict(payload.get("response") or {})
        for key, props in (payload.get("sideUpdate") or {}).items():
            updates.setdefault(key, {}).update(props)
        self._changed = set()
        for key, props in updates.items():
            target = self.index.get(id_key(_parse_id(key)))
            if target is None:
                continue
            for prop, val in props.items():
                target[prop] = val
                self._changed.add(f"{id_key(target['id'])}.{prop}")

    def _triggered_by(self, prop_ids: set[str], exclude: str | None = None) -> list[tuple[Callback, list[str]]]:
        found = []
        for cb in self.callbacks:
            if cb.key == exclude:
                continue
            hits = []
            for dep in cb.inputs:
                if dep.pattern:
                    hits += [p for p in prop_ids if p.rsplit(".", 1)[1] == dep.prop
                             and p.startswith("{") and _matches(dep.ident, json.loads(p.rsplit(".", 1)[0]))]
                elif dep.prop_id in prop_ids:
                    hits.append(dep.prop_id)
            if hits:
                found.append((cb, hits))
        return found

    def _run_chain(self, interaction: Interaction, pending: list[tuple[Callback, list[str]]],
                   chained: bool) -> None:
        rounds = 0
        while pending:
            rounds += 1
            if rounds > 10:
                raise CallbackError("callback chain longer than 10 rounds (a loop?)")
            following: list[tuple[Callback, list[str]]] = []
            for cb, changed in pending:
                if not cb.server:
                    # clientside: no request; make sure no server callback waits on its outputs
                    outs = {o.prop_id for o in cb.outputs if not o.pattern}
                    downstream = [c.key for c, _ in self._triggered_by(outs) if c.server]
                    if downstream:
                        raise CallbackError(f"clientside {cb.key} feeds server callbacks {downstream}; "
                                            "the benchmark cannot replay that chain")
                    continue
                request = self.post(cb, changed, chained=chained)
                interaction.requests.append(request)
                if request.status != 200:
                    continue
                changed_props = set(self._changed)
                new_ids = self._reindex()
                # a callback does not trigger itself (Dash allows outputs that are own inputs)
                following += self._triggered_by(changed_props, exclude=cb.key)
                if new_ids:
                    new_props = {f"{i}.{d.prop}" for i in new_ids for c in self.callbacks for d in c.inputs}
                    following += [(c, hits) for c, hits in self._triggered_by(new_props)
                                  if not c.prevent_initial_call and c.key != cb.key]
            pending, chained = _dedupe(following), True

    # --- user actions ---------------------------------------------------------------------

    def open(self, path: str, search: str = "") -> Interaction:
        """Navigate to ``path`` as the router does; the page tree becomes the current state."""
        router = next(c for c in self.callbacks if c.server and any(
            d.ident == "_pages_location" and d.prop == "pathname" for d in c.inputs))
        self.tree = copy.deepcopy(self.shell)
        self._reindex()
        location = self.index.get("_pages_location")
        if location is not None:
            location["pathname"], location["search"] = self.prefix.rstrip("/") + path, search
        self.path = path
        interaction = Interaction(f"open {path}{search}")
        self._run_chain(interaction, [(router, ["_pages_location.pathname"])], chained=False)
        return interaction

    def change(self, ident: Any, prop: str, value: Any) -> Interaction:
        """Set ``ident.prop`` to ``value`` (as a user does) and send what that triggers."""
        key = id_key(ident)
        if key not in self.index:
            raise CallbackError(f"no component {key} on {self.path}")
        self.index[key][prop] = value
        prop_id = f"{key}.{prop}"
        interaction = Interaction(f"{prop_id} = {json.dumps(value, ensure_ascii=False)[:60]}")
        pending = self._triggered_by({prop_id})
        if not any(c.server for c, _ in pending):
            raise CallbackError(f"changing {prop_id} triggers no server callback")
        self._run_chain(interaction, pending, chained=False)
        return interaction


def _dedupe(items: list[tuple[Callback, list[str]]]) -> list[tuple[Callback, list[str]]]:
    merged: dict[str, tuple[Callback, list[str]]] = {}
    for cb, hits in items:
        if cb.key in merged:
            merged[cb.key][1].extend(h for h in hits if h not in merged[cb.key][1])
        else:
            merged[cb.key] = (cb, list(hits))
    return list(merged.values())


def check_response(status: int, data: bytes, what: str) -> None:
    """HTTP 200/204, JSON, and no error message from the app."""
    if status not in (200, 204):
        raise CallbackError(f"{what[:80]}: HTTP {status}: {data[:200]!r}")
    if status == 204:
        return
    text = data.decode("utf-8", errors="replace")
    try:
        payload = json.loads(text)
    except ValueError:
        raise CallbackError(f"{what[:80]}: response is not JSON: {text[:200]!r}") from None
    if "app-error" in (payload.get("sideUpdate") or {}):
        raise CallbackError(f"{what[:80]}: the app reported an error: {text[:300]}")
    lowered = text.lower()
    for marker in ERROR_MARKERS:
        if marker in lowered:
            raise CallbackError(f"{what[:80]}: error message in the response ({marker!r})")
