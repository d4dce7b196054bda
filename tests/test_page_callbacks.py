"""The Carts and Customers callbacks called as Dash calls them: one request in, every output out."""
from __future__ import annotations

import json

import pytest


@pytest.fixture
def app(dashboard_env):
    from dashboard.app import create_app

    return create_app()


def run_callback(func, trigger: str, **inputs):
    """Call a Dash callback as Dash would, with ``trigger`` as the changed property."""
    from contextvars import copy_context

    from dash._callback_context import context_value
    from dash._utils import AttributeDict

    def call():
        context_value.set(AttributeDict(triggered_inputs=[{"prop_id": trigger, "value": None}]))
        return func(**inputs)

    return copy_context().run(call)


def page_inputs(page, state: str = "", **changed) -> dict:
    """Every input of ``page.update`` empty, except ``changed`` (control/chart name -> value,
    selections as ``select:<chart>``)."""
    controls = {name: None for name in page.CONTROLS}
    clicks = {name: None for name in page.CLICK_CHARTS}
    selections = {name: None for name in page.SELECT_CHARTS}
    for name, value in changed.items():
        if name.startswith("select:"):
            selections[name.removeprefix("select:")] = value
        elif name in clicks:
            clicks[name] = value
        else:
            controls[name] = value
    return {"controls": controls, "clicks": clicks, "selections": selections, "clear": [], "state": state}


def test_carts_callback_applies_a_click_and_clears(app):
    from dashboard.pages import carts

    click = {"points": [{"customdata": [1, 10, 20]}]}
    out = run_callback(carts.update, "carts-by-segment.clickData", **page_inputs(carts, **{"by-segment": click}))
    assert out["segment"] == [1] and out["state"] == "segment=1"
    assert "Customer type: Type 1" in json.dumps(out["chips"], default=str)
    out = run_callback(carts.update, '{"key":"segment","type":"carts-clear"}.n_clicks',
                       **page_inputs(carts, "segment=1"))
    assert out["segment"] == [] and out["state"] == ""
    # a slider on bucket indices becomes a value range in the URL
    out = run_callback(carts.update, "carts-range-items_added.value",
                       **page_inputs(carts, **{"range-items_added": [1, 3]}))
    assert out["state"] == "items_added=1-3" and out["sliders"]["items_added"] == [1, 3]
    assert set(out["distributions"]) == set(carts.CART_RANGE_COLUMNS)


def test_carts_callback_answers_garbage_with_a_message(app):
    from dashboard.pages import carts

    out = run_callback(carts.update, "carts-segment.value",
                       **page_inputs(carts, "segment=0&items_added=zzz", segment=["9", {"evil": 1}]))
    text = json.dumps(out["problems"], default=str)
    assert "Ignored" in text and out["segment"] == []


def test_a_cleared_selection_or_an_unknown_trigger_updates_nothing(app):
    from dash.exceptions import PreventUpdate

    from dashboard.pages import carts

    with pytest.raises(PreventUpdate):
        run_callback(carts.update, "carts-dist-cart_views.selectedData",
                     **page_inputs(carts, **{"select:dist-cart_views": {"points": []}}))
    with pytest.raises(PreventUpdate):
        run_callback(carts.update, "carts-nothing.value", **page_inputs(carts))


def test_customers_callback_cross_filters_by_category(app):
    from dashboard.pages import customers

    click = {"points": [{"customdata": ["Kitchenware", 3, 10]}]}
    out = run_callback(customers.update, "cust-by-category.clickData",
                       **page_inputs(customers, **{"by-category": click}))
    assert out["category"] == ["kitchenware"] and out["state"] == "category=kitchenware"


def test_off_cube_selection_gives_the_same_page_as_the_url(app):
    """A drag selection on a behaviour outside the cube renders what the link to it renders."""
    from dashboard.pages import carts

    selection = {"points": [{"customdata": ["cart_views", 1, 1]}, {"customdata": ["cart_views", 2, 2]}]}
    out = run_callback(carts.update, "carts-dist-cart_views.selectedData",
                       **page_inputs(carts, **{"select:dist-cart_views": selection}))
    assert out["state"] == "cart_views=1-2"
    from dashboard.components.view_model import values
    from dashboard.filters import parse_cart_filters

    linked = values(carts.render(*parse_cart_filters({"cart_views": "1-2"})))
    assert json.dumps(out, default=str, sort_keys=True) == json.dumps(linked, default=str, sort_keys=True)
