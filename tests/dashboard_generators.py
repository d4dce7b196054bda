"""Request generators for tests/test_dashboard_fuzz.py, built from the app itself.

The callback graph comes from ``GET /_dash-dependencies``; valid values, concrete
pattern-matching ids, chart ``customdata`` and candidate query keys are harvested from the pages
the app renders (and the pages their own links lead to). The strategies then break those
requests: values of one class of troublesome input at a time (``NASTY``), fully random JSON,
and missing, extra, renamed or malformed parts. Nothing here names a page or a callback.
"""
from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from urllib.parse import quote

from hypothesis import strategies as st

UPDATE = "/_dash-update-component"


def post_json(client, body):
    """Serialised here (not by the test client) so NaN, Infinity and lone surrogates go out
    as JSON escapes exactly as a crafted request would send them."""
    data = json.dumps(body, ensure_ascii=True, allow_nan=True)
    return client.post(UPDATE, data=data, content_type="application/json")


# --- the callback graph, read from the app -------------------------------------------------

WILDCARDS = ('["ALL"]', '["MATCH"]', '["ALLSMALLER"]')


def parse_id(raw: str):
    return json.loads(raw) if raw.startswith("{") else raw


def is_pattern(raw: str) -> bool:
    return raw.startswith("{") and any(w in raw for w in WILDCARDS)


def split_outputs(key: str) -> list[tuple[str, str]]:
    """``..a.x...b.y..`` (several outputs) or ``a.x`` -> [(id, property), ...]."""
    parts = key[2:-2].split("...") if key.startswith("..") else [key]
    return [tuple(part.rsplit(".", 1)) for part in parts]


def id_text(ident) -> str:
    """The id as Dash writes it in ``changedPropIds`` (keys sorted, no spaces)."""
    return json.dumps(ident, sort_keys=True, separators=(",", ":"), ensure_ascii=False) \
        if isinstance(ident, dict) else str(ident)


def server_callbacks(client) -> list[dict]:
    deps = client.get("/_dash-dependencies").get_json()
    found = [d for d in deps if not d.get("clientside_function")]
    assert found, "no server callbacks found"
    return found


def matches(pattern: dict, ident) -> bool:
    return isinstance(ident, dict) and set(ident) == set(pattern) and all(
        isinstance(v, list) or ident[k] == v for k, v in pattern.items())


class Harvest:
    """What the rendered pages hold: values by (id, property), pattern-matching ids, chart
    ``customdata``, short words (candidate values) and candidate query keys (the parts of
    component ids, the keys of the query strings the pages write, the columns in chart data)."""

    def __init__(self) -> None:
        self.values: dict[tuple[str, str], list] = {}
        self.ids: list[dict] = []
        self.customdata: list[list] = []
        self.words: set[str] = set()
        self.keys: set[str] = set()
        self.page_keys: dict[str, list[str]] = {}  # path -> the keys its own page holds

    def walk(self, node) -> None:
        if isinstance(node, dict):
            props = node.get("props") if isinstance(node.get("props"), dict) else None
            if props is not None and "id" in props:
                self.component(props)
            if isinstance(node.get("customdata"), list):
                for row in node["customdata"][:50]:
                    if isinstance(row, list):
                        self.customdata.append(row)
                        self.keys.update(c for c in row if isinstance(c, str) and c.isidentifier())
            for value in node.values():
                self.walk(value)
        elif isinstance(node, list):
            for value in node[:500]:
                self.walk(value)
        elif isinstance(node, str) and 0 < len(node) <= 40 and node.replace("_", "").replace("-", "").isalnum():
            self.words.add(node)
        elif isinstance(node, str) and "=" in node and len(node) < 2000:  # a query string in a store or link
            for pair in node.split("?")[-1].split("&"):
                if pair.split("=", 1)[0].isidentifier():
                    self.keys.add(pair.split("=", 1)[0])

    def component(self, props: dict) -> None:
        ident = props["id"]
        if isinstance(ident, dict):
            self.ids.append(ident)
        parts = [str(v) for v in ident.values()] if isinstance(ident, dict) else [str(ident)]
        for part in parts:
            self.keys.update(p for p in part.split("-")[1:] if p.isidentifier() and p != "label")
        for prop, value in props.items():
            if prop not in ("id", "children"):
                self.values.setdefault((id_text(ident), prop), []).append(value)


def router(callbacks: list[dict]) -> dict:
    return next(c for c in callbacks if any(i["property"] == "pathname" for i in c["inputs"]))


def page_paths() -> list[str]:
    import dash

    return sorted(p["path"] for p in dash.page_registry.values())


def router_body(route: dict, pathname, search) -> dict:
    entries = []
    for item in route["inputs"]:
        value = {"pathname": pathname, "search": search}.get(item["property"])
        entries.append({"id": parse_id(item["id"]), "property": item["property"], "value": value})
    outputs = [{"id": i, "property": p} for i, p in split_outputs(route["output"])]
    return {"output": route["output"], "outputs": outputs if len(outputs) > 1 else outputs[0],
            "inputs": entries, "state": [], "changedPropIds": [f"{entries[0]['id']}.{entries[0]['property']}"]}


def harvest_pages(client, callbacks: list[dict]) -> Harvest:
    harvest = Harvest()
    harvest.walk(client.get("/_dash-layout").get_json())
    route = router(callbacks)
    for path in page_paths():
        response = post_json(client, router_body(route, path, ""))
        assert response.status_code == 200, path
        harvest.walk(response.get_json())
        page = Harvest()
        page.walk(response.get_json())
        harvest.page_keys[path] = sorted(page.keys) or ["x"]
    # The pages' own links with a query (tabs such as ?subject=…) show more valid values; their
    # pattern-matching ids are left out so that a valid request stays one page's request.
    linked = Harvest()
    links = sorted({v for (_, prop), values in harvest.values.items() if prop == "href"
                    for v in values if isinstance(v, str) and "?" in v})
    for link in links[:20]:
        path, search = link.split("?", 1)
        if path in page_paths():
            linked.walk(post_json(client, router_body(route, path, "?" + search)).get_json())
    for key, values in linked.values.items():
        harvest.values.setdefault(key, []).extend(v for v in values if v not in harvest.values[key])
    harvest.words |= linked.words
    harvest.customdata += linked.customdata
    for item in route["inputs"]:  # a location's valid values are the registered paths
        harvest.values[(item["id"], "pathname")] = page_paths()
        harvest.values[(item["id"], "search")] = [""]
    return harvest


def entry_for(item: dict, harvest: Harvest, with_value: bool = True):
    """A valid request entry for a declared input/state/output (a list for ALL patterns)."""
    raw, prop = item["id"], item["property"]
    if is_pattern(raw):
        pattern = json.loads(raw)
        concrete = [i for i in harvest.ids if matches(pattern, i)]
        unique = list({id_text(i): i for i in concrete}.values())
        entries = []
        for ident in unique:
            entry = {"id": ident, "property": prop}
            if with_value:
                entry["value"] = (harvest.values.get((id_text(ident), prop)) or [None])[0]
            entries.append(entry)
        return entries
    entry = {"id": parse_id(raw), "property": prop}
    if with_value:
        entry["value"] = (harvest.values.get((raw, prop)) or [None])[0]
    return entry


def valid_body(callback: dict, harvest: Harvest) -> dict:
    outputs = [entry_for({"id": i, "property": p}, harvest, with_value=False)
               for i, p in split_outputs(callback["output"])]
    inputs = [entry_for(i, harvest) for i in callback["inputs"]]
    state = [entry_for(s, harvest) for s in callback["state"]]
    changed = []
    for entry in inputs:  # the first input that exists on a page triggers it
        first = entry[0] if isinstance(entry, list) and entry else entry
        if isinstance(first, dict):
            changed = [f"{id_text(first['id'])}.{first['property']}"]
            break
    return {"output": callback["output"],
            "outputs": outputs if callback["output"].startswith("..") else outputs[0],
            "inputs": inputs, "state": state, "changedPropIds": changed}


# --- generated values ----------------------------------------------------------------------
# Classes of troublesome values. Each generated request stresses one class across many of its
# values (besides fully random JSON), so every class meets every input many times.

NASTY = {
    "unicode digits": ["²", "①", "٣", "12²", "1-²", "²-5", "0,²", "①,1", "Ⅻ", "１２", "𝟘", "٣-٥"],
    "huge numbers": [10**400, -10**400, 2**63, 2**64 + 1, -(2**63) - 1, 1e308, -1e308, 123456789012345678901234567890,
                     "1e400", "-1e400", "9" * 400, "9" * 400 + "-", "1e308-1e309", "0-" + "9" * 400],
    "non-finite": [float("nan"), float("inf"), float("-inf"), "NaN", "nan", "Infinity", "-inf", "inf-inf"],
    "edge numbers": [5e-324, -0.0, 0, 1, -1, 0.5, 1e-9, "-0", "+1", "1.", ".5", "0x10", "1_000", "-5", "1-", "-"],
    "control characters": ["\x00", "a\x00b", "0\x00", "1-5\x00", "\x00-\x00", "\r\n", "x\nINFO forged log line",
                           "\x1b[31mred", "\x7f", "\t1", "Session_ID_1\x00"],
    "unicode tricks": ["\u202e1-5", "\u200f", "\u200b", "e\u0301", "\u0301", "\ud800", "\udfff", "a\ud83d",
                       "\U0001F600" * 50, "\ufeff1", "\u00a0"],
    "long text": ["x" * 5000, "€" * 3000, "1," * 2000, "a-" * 1000],
    "injection": ["' OR 1=1 --", "\"; DROP TABLE sessions; --", "%00", "%", "../../etc/passwd",
                  "<script>alert(1)</script>", "{\"a\":1}", "[1,2]", "${7*7}", "%s%s%n"],
    "near-valid": ["", " ", "null", "true", "all", "__all__", "0,2", "1-5", "yes", "no", "customers", "carts",
                   "None", "0", "1"],
    "containers": [[], {}, [[]], [{}], ["a", "b"], {"$gt": ""}, {"points": []}, [None], [1, 2, 3], {"0": 1}],
}
ALL_NASTY = [v for values in NASTY.values() for v in values]
NUMBERS = [v for v in ALL_NASTY if isinstance(v, int | float)]
JSON_KEYS = st.one_of(st.sampled_from(["points", "customdata", "id", "type", "name", "key", "page", "value",
                                       "$gt", "__proto__", "", "\x00", "²"]), st.text(max_size=8))


@dataclass(frozen=True)
class Vocab:
    words: tuple[str, ...]      # what the app renders
    theme: tuple                # the values of the class this request stresses


def text_strategy() -> st.SearchStrategy:
    return st.one_of(
        st.sampled_from([v for v in ALL_NASTY if isinstance(v, str)]),
        st.text(st.characters(exclude_categories=()), max_size=30),  # every category, surrogates too
        st.text(st.characters(codec="ascii"), max_size=12),
        st.builds(lambda a, b: f"{a}-{b}", st.sampled_from(NUMBERS), st.sampled_from(NUMBERS)),
    )


def atoms(vocab: Vocab) -> st.SearchStrategy:
    themed = st.sampled_from(vocab.theme)
    return st.one_of(
        themed, themed, themed, themed, themed, st.sampled_from(ALL_NASTY), st.none(), st.booleans(),
        st.integers(min_value=-10**30, max_value=10**30), st.floats(allow_nan=True, allow_infinity=True),
        text_strategy(), st.sampled_from(vocab.words),
    )


def json_values(vocab: Vocab) -> st.SearchStrategy:
    return st.recursive(atoms(vocab), lambda inner: st.one_of(
        st.lists(inner, max_size=5), st.dictionaries(JSON_KEYS, inner, max_size=5)), max_leaves=12)


@st.composite
def mutated(draw, value, vocab: Vocab):
    """``value`` with some leaves (or the whole of it) replaced by generated values.

    Hypothesis prefers small choices (0, the first branch), so 0 always means "generated value
    of this request's class" throughout: those are the values most likely to break things."""
    if draw(st.integers(0, 4)) == 4:
        return draw(json_values(vocab))
    if isinstance(value, list):
        if not value or draw(st.integers(0, 3)) == 3:  # an empty or a longer list of generated items
            return [*value[:20], *draw(st.lists(atoms(vocab), min_size=1, max_size=3))]
        return [draw(mutated(v, vocab)) for v in value[:20]]
    if isinstance(value, dict):
        return {k: draw(mutated(v, vocab)) for k, v in list(value.items())[:20]}
    return value if draw(st.integers(0, 3)) == 3 else draw(atoms(vocab))


@st.composite
def chart_event(draw, harvest: Harvest, vocab: Vocab):
    """A Plotly click/selection event whose points carry mutated real ``customdata``."""
    rows = harvest.customdata or [[None]]
    points = draw(st.lists(st.builds(lambda row: {"customdata": row, "x": 0, "y": 0},
                                     mutated(draw(st.sampled_from(rows)), vocab)), max_size=4))
    extra = draw(st.dictionaries(JSON_KEYS, atoms(vocab), max_size=2))
    return {"points": points, **extra}


def value_strategy(valid, harvest: Harvest, vocab: Vocab) -> st.SearchStrategy:
    return st.one_of(atoms(vocab), mutated(valid, vocab), mutated(valid, vocab), json_values(vocab),
                     chart_event(harvest, vocab))


MALFORMED_IDS = ["", "{", "{\"a\":", "{}", "[]", "null", "1", "..", ".", "x.y", "\x00", "²", "{\"type\":1}",
                 "{\"type\":\"x\",\"key\":[\"ALL\"]}", "_pages_location", "a" * 3000]
MALFORMED_CHANGED = ["", ".", "..", "x", "value", "{.value", "{\"a\":.value", "{\"type\":\"x\"}.value",
                     "nope.value", "\x00.value", "².n_clicks", "[1].value", "null.value", "{}.value",
                     "{\"key\":{\"$ne\":1},\"type\":\"x\"}.n_clicks"]


@st.composite
def payloads(draw, callback: dict, harvest: Harvest, others: list[str], theme: str):
    """One generated request body for ``callback``: its values (many from the class ``theme``),
    and often its structure, broken."""
    vocab = Vocab(tuple(sorted(harvest.words | harvest.keys)) or ("x",), tuple(NASTY[theme]))
    body = copy.deepcopy(valid_body(callback, harvest))
    triggers = [f"{id_text(item['id'])}.{item['property']}" for entry in body["inputs"]
                for item in (entry if isinstance(entry, list) else [entry])]
    trigger = draw(st.sampled_from(triggers)) if triggers else None
    if trigger:  # any input may be the one the user touched; its value is always generated
        body["changedPropIds"] = [trigger]
    for group in ("inputs", "state"):
        for index, entry in enumerate(body[group]):
            items = entry if isinstance(entry, list) else [entry]
            for item in items:
                seen = harvest.values.get((id_text(item["id"]), item["property"])) or []
                if len(seen) > 1:  # start from any value the pages showed for it
                    item["value"] = draw(st.sampled_from(seen))
                touched = f"{id_text(item['id'])}.{item['property']}" == trigger
                if touched or draw(st.integers(0, 1 if group == "state" else 3)) == 0:
                    item["value"] = draw(value_strategy(item.get("value"), harvest, vocab))
            if isinstance(entry, list) and draw(st.integers(0, 3)) == 3:  # a pattern input, generated
                body[group][index] = draw(st.lists(st.fixed_dictionaries({
                    "id": st.one_of(st.dictionaries(JSON_KEYS, atoms(vocab), max_size=3),
                                    st.sampled_from(MALFORMED_IDS)),
                    "property": st.sampled_from([entry[0]["property"] if entry else "value", "value", "x"]),
                    "value": json_values(vocab)}), max_size=3))
    if draw(st.integers(0, 3)) == 3:
        body["changedPropIds"] = draw(st.one_of(
            st.lists(st.sampled_from(MALFORMED_CHANGED), min_size=1, max_size=2),
            st.lists(text_strategy(), max_size=2), json_values(vocab)))
    if draw(st.integers(0, 2)) == 2:
        body = draw(structural(body, vocab, others))
    return body


@st.composite
def structural(draw, body: dict, vocab: Vocab, others: list[str]):
    """Missing, extra, renamed and malformed parts of a request body (one change)."""
    body = copy.deepcopy(body)
    kind = draw(st.sampled_from(["drop", "extra", "rename", "malformed-id", "pattern-object", "bogus-key",
                                 "property", "not-a-list", "entry-type", "output-key", "top-level", "drop-key"]))
    if kind == "top-level":
        return draw(st.one_of(json_values(vocab), st.just({k: v for k, v in body.items() if k != "inputs"})))
    if kind == "drop-key":
        body.pop(draw(st.sampled_from(sorted(body))), None)
        return body
    if kind == "output-key":
        body["output"] = draw(st.one_of(st.sampled_from(others), text_strategy(), json_values(vocab)))
        return body
    group = draw(st.sampled_from(["inputs", "state", "outputs"]))
    single = not isinstance(body[group], list)  # one output is sent as an object
    entries = [body[group]] if single else body[group]
    items = [item for entry in entries for item in (entry if isinstance(entry, list) else [entry])
             if isinstance(item, dict)]
    if kind == "drop" and entries:
        entries.pop(draw(st.integers(0, len(entries) - 1)))
    elif kind == "extra":
        entries.append({"id": draw(st.sampled_from(vocab.words)), "property": "value",
                        "value": draw(json_values(vocab))})
    elif kind == "rename" and items:
        item = items[draw(st.integers(0, len(items) - 1))]
        item["id"] = f"{item['id']}-renamed" if isinstance(item["id"], str) else {**item["id"], "type": "renamed"}
    elif kind == "malformed-id" and items:
        items[draw(st.integers(0, len(items) - 1))]["id"] = draw(st.one_of(st.sampled_from(MALFORMED_IDS),
                                                                          json_values(vocab)))
    elif kind == "pattern-object":  # an ALL input sent as one object instead of a list
        for index, entry in enumerate(entries):
            if isinstance(entry, list):
                entries[index] = entry[0] if entry else {"id": {"type": "x", "name": "y"}, "property": "value"}
    elif kind == "bogus-key":
        for item in items:
            if isinstance(item["id"], dict):
                item["id"] = {**item["id"], draw(JSON_KEYS): draw(atoms(vocab))}
    elif kind == "property" and items:
        items[0]["property"] = draw(st.one_of(text_strategy(), json_values(vocab)))
    elif kind == "not-a-list":
        body[group] = draw(json_values(vocab))
        return body
    elif kind == "entry-type" and entries:
        entries[0] = draw(json_values(vocab))
    body[group] = entries[0] if single and len(entries) == 1 else entries
    return body


def query_encode(text: str) -> str:
    return quote(text, safe="", errors="surrogatepass")


@st.composite
def query_strings(draw, page_keys: list[str], keys: list[str], words: list[str], theme: str):
    """Every key the page itself holds (some given twice, which makes their value a list) and a
    few others, so each request tries one class of values on every filter of the page."""
    theme = [str(v) for v in NASTY[theme] if not isinstance(v, list | dict)] or ["", "[]"]
    themed = st.sampled_from(theme)
    numbers = [str(n) for n in NUMBERS]
    value = st.one_of(themed, themed, themed, st.sampled_from(words), text_strategy(),
                      st.builds(lambda a, b: f"{a}-{b}", st.sampled_from(numbers + theme + ["", "1"]),
                                st.sampled_from(numbers + theme + ["", "2"])),
                      st.builds(",".join, st.lists(st.one_of(themed, st.sampled_from(words)), max_size=3)))
    own = draw(st.fixed_dictionaries({key: value for key in page_keys}))
    pairs = list(own.items()) + draw(st.lists(st.tuples(st.sampled_from(page_keys), value), max_size=3))
    pairs += draw(st.lists(st.tuples(st.one_of(st.sampled_from(keys), text_strategy()), value), max_size=3))
    pairs = draw(st.permutations(pairs))
    query = "&".join(f"{query_encode(k)}={query_encode(v)}" for k, v in pairs)
    raw = draw(st.sampled_from(["", "&&", "&=", "&=x", "&x", "&%zz=%", "&a=1&a=2&a=3", "&embed=1"]))
    return "?" + query + raw
