"""The one validation path (dashboard/inputs.py) and the request shape check
(dashboard/callback_guard.py), each bug class of issue 8 with its own example.

The generated requests of tests/test_dashboard_fuzz.py cover the same classes through the
app; these name each class so a regression says which one came back."""
from __future__ import annotations

import json
import math
import re

import pytest

from dashboard.feature_values import parse_value
from dashboard.filters import parse_cart_filters, parse_range, parse_segment_view, parse_threshold
from dashboard.ranges import range_from_points
from dashboard.inputs import MAX_MAGNITUDE, choice, describe, matching, number, scalar_text, text

# --- numbers -------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["²", "①", "٣", "１２", "Ⅻ", "12²", "𝟘"])
def test_digits_that_isdigit_accepts_but_int_refuses_are_not_numbers(value):
    assert number(value) is None and number(value, whole=True) is None
    filters, problems = parse_cart_filters({"segment": value})
    assert filters.segments == () and problems


@pytest.mark.parametrize("value", [10**400, -10**400, 2**64, "1e400", "9" * 400, 1e308, float("inf"),
                                   float("nan"), "NaN", "Infinity", "1e99999"])
def test_numbers_beyond_float_or_sane_range_are_refused_without_overflow(value):
    assert number(value) is None
    assert parse_threshold(value, "t", 0, 1, problems := []) is None and problems
    assert range_from_points([["items_added", value, None]], "items_added") is None
    assert parse_value(value, {"kind": "float", "min": 0, "max": 1, "label": "X"})[0] is None
    assert parse_range([value, 1], "x", problems := []) is None and problems


def test_numbers_that_are_valid_pass_with_their_kind():
    assert number("0.5", 0, 1) == 0.5 and number(" 3 ", whole=True) == 3 and number(-0.0) == 0
    assert number(2.0, whole=True) == 2 and isinstance(number(2.0, whole=True), int)
    assert number(True) is None and number("1_000") is None and number("0x10") is None
    assert number(MAX_MAGNITUDE) == MAX_MAGNITUDE and number(int(MAX_MAGNITUDE) + 1) is None
    assert number(2.5, whole=True) is None and number(5, 0, 4) is None
    assert math.copysign(1, parse_threshold("-0", "t", -1, 1, [])) in (1, -1)


# --- text ----------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["a\x00b", "\x00", "x\ny", "\x1b[31m", "\ud800", "\u202e1-5", "a" * 201, 5, None,
                                   ["a"], {"a": 1}])
def test_text_is_printable_bounded_and_a_string(value):
    assert text(value) is None


def test_scalar_text_accepts_numbers_but_not_huge_ones():
    assert scalar_text(3) == "3" and scalar_text(2.5) == "2.5" and scalar_text("ok") == "ok"
    assert scalar_text(10**400) is None and scalar_text(True) is None


@pytest.mark.parametrize("value", [["carts"], {"carts": 1}, 1, None, "carts\x00", "Carts"])
def test_a_list_or_dict_where_a_store_holds_a_string_is_not_a_choice(value):
    assert choice(value, ("carts", "customers")) is None


def test_identifiers_match_their_pattern_whole():
    pattern = re.compile(r"[a-z_]{1,10}")
    assert matching("risk_high", pattern) == "risk_high"
    assert matching("risk_high\n", pattern) is None and matching("x" * 11, pattern) is None
    assert parse_segment_view({"segment": "promo\x00"})[1]


def test_describe_is_short_and_printable_whatever_it_gets():
    for value in (10**5000, "\x00" * 10_000, "\ud800", {"a": [1] * 10_000}, b"\xff", float("nan")):
        shown = describe(value)
        assert len(shown) <= 40 and shown.isprintable()


# --- what-if ids: a NUL byte never reaches DuckDB ------------------------------------------


def test_what_if_start_ids_are_checked_before_any_query(dashboard_env):
    from dashboard.app import create_app

    create_app()  # the page modules register themselves with an app
    from dashboard.pages.what_if import _start_id, _subject

    assert _start_id("carts", "Session_ID_1\x00") is None
    assert _start_id("carts", " Session_ID_1 ") == "Session_ID_1"
    assert _start_id("customers", "²") is None and _start_id("customers", "215349") == 215349
    assert _start_id("customers", 10**400) is None and _start_id("customers", "-5") is None
    assert _subject([["carts"]]) == "customers" and _subject({"carts": 1}) == "customers"
    assert _subject("carts") == "carts"


def test_a_nul_byte_in_a_session_id_gives_a_message_through_http(dashboard_env):
    from dashboard.app import create_app

    app = create_app()
    client = app.server.test_client()
    client.get("/")
    key = next(k for k in app.callback_map if "wi-start-msg" in k)
    fields = [{"id": {"type": "wi-feature", "name": "items_added"}, "property": "value"}]
    body = {"output": key, "outputs": [fields, {"id": "wi-start-msg", "property": "children"}],
            "inputs": [{"id": "wi-load", "property": "n_clicks", "value": 1},
                       {"id": "wi-start", "property": "n_submit", "value": None}],
            "state": [{"id": "wi-start", "property": "value", "value": "Session_ID_1\x00' OR 1=1"},
                      {"id": "wi-subject", "property": "data", "value": "carts"}],
            "changedPropIds": ["wi-load.n_clicks"]}
    response = client.post("/_dash-update-component", json=body)
    assert response.status_code == 200 and "Enter an id to start from" in response.get_data(as_text=True)


# --- request shapes ------------------------------------------------------------------------


@pytest.fixture
def guarded(dashboard_env):
    """(app, client, a valid body for the Carts callback)."""
    from dashboard.app import create_app

    app = create_app()
    client = app.server.test_client()
    client.get("/")
    key = next(k for k in app.callback_map if "carts-chips" in k)
    spec = app.callback_map[key]
    outputs = [{"id": json.loads(o.component_id) if isinstance(o.component_id, str) and o.component_id[:1] == "{"
                else o.component_id, "property": o.component_property} for o in spec["output"]]

    def entry(item):
        if "ALL" in item["id"]:
            return []
        ident = json.loads(item["id"]) if item["id"].startswith("{") else item["id"]
        return {"id": ident, "property": item["property"], "value": None}

    body = {"output": key, "outputs": outputs, "inputs": [entry(i) for i in spec["inputs"]],
            "state": [entry(s) for s in spec["state"]], "changedPropIds": ["carts-segment.value"]}
    return app, client, body


def _post(client, body):
    return client.post("/_dash-update-component", data=json.dumps(body), content_type="application/json")


def test_a_well_formed_request_passes_the_guard(guarded):
    _, client, body = guarded
    assert _post(client, body).status_code == 200


@pytest.mark.parametrize("change", [
    "pattern-as-object", "bogus-key", "changed-malformed", "changed-not-an-input", "changed-not-a-string",
    "missing-input", "extra-input", "renamed-input", "output-shape", "state-as-list-of-lists",
])
def test_malformed_requests_are_refused_with_one_warning_line(guarded, change, caplog):
    _, client, body = guarded
    clear = next(i for i, e in enumerate(body["inputs"]) if isinstance(e, list))
    if change == "pattern-as-object":
        body["inputs"][clear] = {"id": {"type": "carts-clear", "key": "segment"}, "property": "n_clicks", "value": 1}
    elif change == "bogus-key":
        body["inputs"][clear] = [{"id": {"type": "carts-clear", "key": "segment", "$where": 1},
                                  "property": "n_clicks", "value": 1}]
    elif change == "changed-malformed":
        body["changedPropIds"] = ['{"key":.n_clicks']
    elif change == "changed-not-an-input":
        body["changedPropIds"] = ["carts-kpis.children"]
    elif change == "changed-not-a-string":
        body["changedPropIds"] = [7]
    elif change == "missing-input":
        body["inputs"].pop(0)
    elif change == "extra-input":
        body["inputs"].append({"id": "x", "property": "value", "value": 1})
    elif change == "renamed-input":
        body["inputs"][0]["id"] = "carts-segment2"
    elif change == "output-shape":
        body["outputs"] = body["outputs"][0]
    elif change == "state-as-list-of-lists":
        body["state"] = [[body["state"][0]]]
    with caplog.at_level("WARNING"):
        response = _post(client, body)
    assert response.status_code == 400
    records = [r for r in caplog.records if r.levelname != "DEBUG"]
    assert len(records) == 1 and records[0].levelname == "WARNING" and not records[0].exc_info
    assert "\n" not in records[0].getMessage()


@pytest.mark.parametrize("pathname", [None, 5, ["/"], {"a": 1}, "carts", "/x" * 5000])
def test_the_page_router_gets_text_paths_only(guarded, pathname):
    app, client, _ = guarded
    key = next(k for k in app.callback_map if "_pages_content" in k)
    body = {"output": key, "outputs": [{"id": "_pages_content", "property": "children"},
                                       {"id": "_pages_store", "property": "data"}],
            "inputs": [{"id": "_pages_location", "property": "pathname", "value": pathname},
                       {"id": "_pages_location", "property": "search", "value": ""}],
            "changedPropIds": ["_pages_location.pathname"]}
    response = _post(client, body)
    assert response.status_code == (200 if pathname is None else 400)
    body["inputs"][0]["value"], body["inputs"][1]["value"] = "/carts", {"segment": 1}
    assert _post(client, body).status_code == 400
