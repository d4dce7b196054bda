"""Dashboard behaviour without a browser: filters ⇄ URL, callbacks called directly and through
Dash's HTTP endpoint with crafted payloads, headers, sub-path, missing data and models."""
from __future__ import annotations

import io
import json

import numpy as np
import openpyxl
import pandas as pd
import pytest

from dashboard.config import check_frame_ancestors, normalise_prefix
from dashboard.counterfactual import smallest_change
from dashboard.feature_values import parse_row, parse_value
from dashboard.filters import (CartFilters, Range, parse_cart_filters, parse_customer_filters,
                               parse_segment_view, query_dict, query_string)
from dashboard.ranges import event_points, range_from_points

# --- filters and the URL -------------------------------------------------------------------


def test_cart_filters_round_trip_through_the_query_string():
    query = {"segment": "2,0", "details": "yes", "items_added": "1-5", "pages_viewed": "3-", "embed": "1"}
    filters, problems = parse_cart_filters(query)
    assert problems == []
    assert filters == CartFilters(segments=(0, 2), details=True,
                                  ranges=(("items_added", Range(1, 5)), ("pages_viewed", Range(3, None))))
    again, _ = parse_cart_filters(query_dict(query_string(filters.query())))
    assert again == filters


def test_customer_filters_accept_slugs_and_labels():
    filters, problems = parse_customer_filters({"tier": "premium", "consent": "no",
                                                "category": "kids-goods,Home textiles", "profit": "3-5.5"})
    assert problems == []
    assert filters.categories == ("Home textiles", "Kids' goods")
    assert filters.range("profit") == Range(3, 5.5)
    assert parse_customer_filters(query_dict(query_string(filters.query())))[0] == filters


@pytest.mark.parametrize("query", [
    {"segment": "7"}, {"segment": ["0", {"x": 1}]}, {"details": "maybe"}, {"items_added": "5-1"},
    {"items_added": "abc"}, {"items_added": "1e309-2"}, {"segment": "x" * 5000}, {"pages_viewed": [{"a": 1}]},
])
def test_garbage_in_the_url_gives_messages_not_exceptions(query):
    filters, problems = parse_cart_filters(query)
    assert problems and all(isinstance(p, str) for p in problems)
    assert isinstance(filters, CartFilters)


@pytest.mark.parametrize("value", [None, 3, "x", [], {"points": "no"}, {"points": [{"customdata": {"a": 1}}]},
                                   {"points": [None, 5, {"customdata": ["items_added", "zero", None]}]}])
def test_chart_events_are_validated(value):
    assert range_from_points(event_points(value), "items_added") is None


def test_chart_selection_becomes_a_range():
    points = event_points({"points": [{"customdata": ["items_added", 2, 3, "2–3"]},
                                      {"customdata": ["items_added", 4, None, "≥4"]}]})
    assert range_from_points(points, "items_added") == Range(2, None)


def test_segment_view_from_url():
    view, problems = parse_segment_view({"segment": "promo_risk_high_profit", "promo": "0.5", "p": "2", "profit": "x"})
    assert view.segment == "promo_risk_high_profit" and view.min_promo == 0.5
    assert len(problems) == 2 and view.min_p_decline is None and view.min_profit is None
    assert parse_segment_view({"segment": "<script>"})[1]


def test_settings_are_checked():
    assert normalise_prefix("bi") == "/bi/" and normalise_prefix("/") == "/"
    with pytest.raises(ValueError):
        normalise_prefix("/bi/../x y")
    assert check_frame_ancestors("'self'  https://portal.example.com") == "'self' https://portal.example.com"
    with pytest.raises(ValueError):
        check_frame_ancestors("'self'; script-src *")


# --- what-if -------------------------------------------------------------------------------

SPECS = {"a": {"kind": "int", "min": 0, "max": 10, "label": "A"},
         "b": {"kind": "float", "min": 0.0, "max": 1.0, "label": "B"},
         "c": {"kind": "bool", "choices": [False, True], "label": "C"},
         "d": {"kind": "category", "choices": [0, 1, 2], "label": "D"}}


def test_feature_values_are_validated_against_the_card():
    row, problems = parse_row({"a": "3", "b": 0.5, "c": "true", "d": "2"}, SPECS, list(SPECS))
    assert row == {"a": 3, "b": 0.5, "c": True, "d": 2} and problems == {}
    row, problems = parse_row({"a": 11, "b": "nan", "c": "maybe", "d": 9}, SPECS, list(SPECS))
    assert row == {} and set(problems) == {"a", "b", "c", "d"}
    assert parse_value(2.5, SPECS["a"])[1] == "A: expected a whole number."
    assert parse_value({"x": 1}, SPECS["b"])[0] is None


def test_smallest_change_finds_the_cheapest_single_move():
    features = ["a", "b", "c", "d"]

    def predict(frame: pd.DataFrame) -> np.ndarray:  # risk grows with a and b
        return (0.05 * frame["a"] + 0.5 * frame["b"]).to_numpy(dtype=float)

    advice = smallest_change(predict, {"a": 8, "b": 0.8, "c": True, "d": 1}, SPECS, features, threshold=0.7)
    assert advice.reached and advice.probability < 0.7
    assert len(advice.changes) == 1 and advice.changes[0].feature in ("a", "b")
    assert smallest_change(predict, {"a": 0, "b": 0.1, "c": True, "d": 1}, SPECS, features, 0.7).changes == ()


def test_smallest_change_combines_features_when_one_is_not_enough():
    features = ["a", "b"]

    def predict(frame):
        return (0.05 * frame["a"] + 0.5 * frame["b"]).to_numpy(dtype=float)

    advice = smallest_change(predict, {"a": 10, "b": 1.0}, SPECS, features, threshold=0.2)
    assert advice.reached and {c.feature for c in advice.changes} == {"a", "b"}


# --- callbacks called directly -------------------------------------------------------------


@pytest.fixture
def app(dashboard_env):
    from dashboard.app import create_app

    return create_app()


def test_export_is_exactly_the_filtered_list(app):
    from dashboard.pages import segments
    from dashboard.queries import at_risk

    view, _ = parse_segment_view({"segment": "risk_high_profit", "profit": "3"})
    frame = segments.export_frame(view)
    assert len(frame) == len(at_risk(view, None))
    csv = pd.read_csv(io.BytesIO(segments.export_bytes(frame, "csv")), encoding="utf-8-sig")
    assert list(csv["Customer"]) == list(frame["Customer"])
    book = openpyxl.load_workbook(io.BytesIO(segments.export_bytes(frame, "xlsx")))
    sheet = book.active
    assert sheet.max_row == len(frame) + 1 and sheet.cell(1, 1).value == "Customer"


def test_what_if_prediction_and_advice(app):
    from dashboard.pages import what_if
    from dashboard.queries import example_ids, subject_row

    customer = example_ids("customers", 1)[0]
    row = subject_row("customers", customer)
    out = what_if.render_prediction("customers", row, customer)
    assert out.problems is None
    assert out.gauge["data"][0]["type"] == "indicator"  # figures are plain dicts
    assert len(out.contributions["data"][0]["y"]) > 5
    bad = what_if.render_prediction("customers", {**row, "promo_share": 7}, customer)
    assert "Share of promo purchases" in json.dumps(bad.problems, default=str)


# --- the app over HTTP ---------------------------------------------------------------------

PAGES = ["/", "/carts", "/customers", "/segments", "/what-if", "/model", "/data-quality"]


def layouts(app_module_paths=PAGES) -> dict:
    import dash

    return {p["path"]: p["layout"] for p in dash.page_registry.values()}


def text_of(component) -> str:
    return json.dumps(component.to_plotly_json(), default=lambda o: o.to_plotly_json()
                      if hasattr(o, "to_plotly_json") else str(o))


def test_every_page_is_served_with_the_frame_policy(app):
    client = app.server.test_client()
    for path in PAGES + ["/no-such-page"]:
        response = client.get(path)
        assert response.status_code == 200, path
        assert response.headers["Content-Security-Policy"] == "frame-ancestors 'self'"
        assert "X-Frame-Options" not in response.headers
    assert client.get("/_dash-layout").status_code == 200


def test_every_layout_renders_with_data_and_models(app):
    for path, layout in layouts().items():
        text = text_of(layout())
        assert "could not be drawn" not in text and "Not available yet" not in text, path


def test_layouts_say_what_to_run_without_models(dashboard_env, monkeypatch, tmp_path):
    monkeypatch.setenv("WAREHOUSE_URL", dashboard_env["plain"])
    monkeypatch.setenv("MODELS_DIR", str(tmp_path / "no-models"))
    from dashboard.app import create_app

    create_app()
    pages = layouts()
    for path in ("/segments", "/what-if", "/model"):
        assert "python -m etl train" in text_of(pages[path]()), path
    assert "Not available yet" not in text_of(pages["/carts"]())


def test_layouts_say_what_to_run_without_a_warehouse(dashboard_env, monkeypatch, tmp_path):
    monkeypatch.setenv("WAREHOUSE_URL", str(tmp_path / "missing.duckdb"))
    from dashboard.app import create_app

    app = create_app()
    import dash

    # the admin pages and the report archive read no warehouse
    admin = {p["path"] for p in dash.page_registry.values() if p.get("admin")} | {"/reports"}
    for path, layout in layouts().items():
        if path != "/404" and path not in admin:
            assert "python -m etl run" in text_of(layout()), path
    assert app.server.test_client().get("/carts").status_code == 200


def test_deep_links_pre_set_the_filters(app):
    page = layouts()["/carts"](segment="1", items_added="2-3", details="no")
    text = text_of(page)
    assert "Customer type: Type 1" in text and "Items added to cart: 2" in text and "Ignored" not in text
    assert "Ignored" in text_of(layouts()["/carts"](segment="banana"))


def callback_body(app, key_part: str, values: dict, changed: str) -> dict:
    key = next(k for k in app.callback_map if key_part in k)
    spec = app.callback_map[key]
    outputs = spec["output"] if isinstance(spec["output"], list) else [spec["output"]]

    def entry(item):
        raw = item["id"]
        if raw.startswith("{") and "ALL" in raw:  # a wildcard input: a list of matches
            return []
        ident = json.loads(raw) if raw.startswith("{") else raw
        return {"id": ident, "property": item["property"], "value": values.get(f"{raw}.{item['property']}")}

    listed = [{"id": o.component_id, "property": o.component_property} for o in outputs]
    return {"output": key, "outputs": listed if isinstance(spec["output"], list) else listed[0],
            "inputs": [entry(i) for i in spec["inputs"]], "state": [entry(s) for s in spec["state"]],
            "changedPropIds": [changed]}


def test_crafted_callback_requests_get_a_message_never_a_500(app):
    client = app.server.test_client()
    client.get("/")  # Dash registers the page callbacks on the first request
    body = callback_body(app, "carts-segment.value", {"carts-segment.value": {"$gt": ""},
                                                      '{"page":"carts","type":"url-state"}.data': ["x"] * 3},
                         "carts-segment.value")
    response = client.post("/_dash-update-component", json=body)
    assert response.status_code == 200
    assert "Ignored" in response.get_data(as_text=True)
    # a click carrying something that is not a chart point
    body = callback_body(app, "carts-segment.value", {"carts-by-segment.clickData": {"points": [[1, 2]]}},
                         "carts-by-segment.clickData")
    assert client.post("/_dash-update-component", json=body).status_code in (200, 204)
    body = callback_body(app, "seg-download", {'{"page":"segments","type":"url-state"}.data': "segment=%00"},
                         "seg-export-csv.n_clicks")
    assert client.post("/_dash-update-component", json=body).status_code == 200
    body = callback_body(app, "model-problems", {"model-threshold.value": "NaN",
                                                 "model-subject.data": "../../etc"}, "model-threshold.value")
    response = client.post("/_dash-update-component", json=body)
    assert response.status_code == 200 and "Ignored" in response.get_data(as_text=True)
    for garbage in ({"output": "nope"}, {"nothing": 1}, []):
        assert client.post("/_dash-update-component", json=garbage).status_code == 400
    assert client.post("/_dash-update-component", data="not json",
                       content_type="application/json").status_code == 400


def test_sub_path_and_frame_ancestors_from_the_environment(dashboard_env, monkeypatch):
    monkeypatch.setenv("URL_PREFIX", "/bi")
    monkeypatch.setenv("FRAME_ANCESTORS", "'self' https://portal.example.com")
    from dashboard.app import create_app

    app = create_app()
    client = app.server.test_client()
    response = client.get("/bi/carts?embed=1")
    assert response.status_code == 200
    assert response.headers["Content-Security-Policy"] == "frame-ancestors 'self' https://portal.example.com"
    html = response.get_data(as_text=True)
    assert "/bi/assets/embed.js" in html and "/bi/_dash-component-suites/" in html
    assert client.get("/bi/_dash-layout").status_code == 200
    assert client.get("/carts").status_code == 404


def test_no_data_is_read_when_the_app_is_created(monkeypatch, tmp_path):
    monkeypatch.setenv("WAREHOUSE_URL", str(tmp_path / "missing.duckdb"))
    monkeypatch.setenv("CACHE_DIR", str(tmp_path / "cache"))
    from dashboard.app import create_app

    assert create_app().server is not None  # a missing warehouse is a page message, not a crash


# --- models, cache, warm-up ----------------------------------------------------------------


def test_a_tampered_model_is_refused_and_a_retrained_one_picked_up(dashboard_env, monkeypatch, tmp_path):
    import shutil

    from dashboard import models
    from dashboard.app import create_app
    from dashboard.source import Unavailable
    from etl.train.card import paths

    folder = tmp_path / "models"
    shutil.copytree(dashboard_env["models"], folder)
    monkeypatch.setenv("MODELS_DIR", str(folder))
    pickle = paths(folder, "customers")[0]
    with open(pickle, "ab") as handle:
        handle.write(b"tampered")
    server = create_app().server                    # a process of its own: nothing loaded yet
    with server.test_request_context("/"):
        with pytest.raises(Unavailable) as info:
            models.load("customers")
        assert info.value.command == "python -m etl train" and "integrity" in info.value.message
        assert models.load("carts")[1].subject == "carts"        # the other model still loads
    shutil.copyfile(dashboard_env["models"] / pickle.name, pickle)
    with server.test_request_context("/"):
        pipeline, card = models.load("customers")
        assert card.sha256 == models.read_card("customers").sha256 and hasattr(pipeline, "predict_proba")


def test_an_unreachable_redis_cache_degrades_to_uncached(dashboard_env, monkeypatch):
    monkeypatch.setenv("CACHE_REDIS_URL", "redis://127.0.0.1:1/0")
    from dashboard.app import create_app
    from dashboard.queries import cart_outcomes

    app = create_app()
    with app.server.app_context():
        assert int(cart_outcomes(CartFilters()).n.sum()) > 0


def test_warm_up_fills_the_cache_in_the_background(app):
    from dashboard.app import warm_up

    thread = warm_up(app.server)
    thread.join(timeout=60)
    assert not thread.is_alive()


def test_what_if_scores_once_and_advises_separately(app):
    from dashboard.models import load, score
    from dashboard.pages import what_if
    from dashboard.queries import example_ids, subject_row

    rows = {}
    for subject in ("customers", "carts"):
        pipeline, card = load(subject)
        start = example_ids(subject, 1)[0]
        row = subject_row(subject, start)
        frame = pd.DataFrame([{f: row[f] for f in card.features}], columns=list(card.features))
        p, drivers = score(subject, frame)
        assert p == pipeline.predict_proba(frame)[0, 1]  # exactly the single-row prediction
        assert len(drivers) == len(card.features)
        out = what_if.render_prediction(subject, row, start)
        assert out.p == p and not hasattr(out, "advice")
        advice = json.dumps(what_if.render_advice(subject, row, p), default=str)
        assert advice == json.dumps(what_if.render_advice(subject, row), default=str)
        assert "below" in advice or "threshold" in advice
        rows[subject] = row
    bad = what_if.render_advice("customers", {**rows["customers"], "promo_share": 7})
    assert "Fix the highlighted values" in json.dumps(bad, default=str)


def test_what_if_advice_is_its_own_callback_and_answers_garbage(app):
    client = app.server.test_client()
    client.get("/")
    key = next(k for k in app.callback_map if k == "wi-advice.children")
    spec = app.callback_map[key]
    field = {"id": {"type": "wi-feature", "name": "promo_share"}, "property": "value", "value": {"$x": 1}}
    body = {"output": key, "outputs": {"id": "wi-advice", "property": "children"},
            "inputs": [[field]], "state": [{"id": "wi-subject", "property": "data", "value": "../x"}],
            "changedPropIds": ['{"name":"promo_share","type":"wi-feature"}.value']}
    assert len(spec["inputs"]) == 1
    response = client.post("/_dash-update-component", json=body)
    assert response.status_code == 200
    assert "Fix the highlighted values" in response.get_data(as_text=True)
    gauge = next(k for k in app.callback_map if "wi-gauge.figure" in k)
    assert "wi-advice" not in gauge
