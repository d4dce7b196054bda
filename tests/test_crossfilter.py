"""The cross-filter mechanism of Carts and Customers, without Dash: events in, filters out."""
from __future__ import annotations

import pytest

from dashboard.bins import Bins, CustomerBins
from dashboard.crossfilter import CLEAR_ALL, Event, Ids, NoChange, apply, event
from dashboard.filters import CART_CUBE_RANGES, CART_RANGE_COLUMNS, CUSTOMER_RANGE_COLUMNS, CartFilters, \
    CustomerFilters, Range
from dashboard.controls import carts, customers

EDGES = (0, 1, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30, 50)
CART_BINS = {c: Bins(EDGES) for c in CART_RANGE_COLUMNS}
CUSTOMER_BINS = {c: CustomerBins(start=0.0, width=0.05, count=20, integer=False, low=0.0, high=1.0)
                 for c in CUSTOMER_RANGE_COLUMNS}
CART_RULES, CUSTOMER_RULES = carts.rules(CART_BINS), customers.rules(CUSTOMER_BINS)


def points(*customdata) -> dict:
    return {"points": [{"customdata": list(c)} for c in customdata]}


def run(filters, ev, rules):
    problems: list[str] = []
    return apply(filters, ev, rules, problems), problems


def test_every_declared_control_and_chart_has_a_rule():
    for page, rules in ((carts, CART_RULES), (customers, CUSTOMER_RULES)):
        assert set(rules.panel) == set(page.CONTROLS)
        assert set(rules.click) == set(page.CLICK_CHARTS)
        assert set(rules.select) == set(page.SELECT_CHARTS)


def test_events_are_parsed_from_what_dash_reports():
    ids = Ids("carts")
    controls, clicks, selections = {"segment": [1]}, {"by-segment": points([1])}, {"dist-cart_views": None}
    assert event(ids, "carts-segment", "value", controls, clicks, selections) == Event("panel", "segment", [1])
    assert event(ids, "carts-by-segment", "clickData", controls, clicks, selections) == \
        Event("click", "by-segment", points([1]))
    assert event(ids, "carts-dist-cart_views", "selectedData", controls, clicks, selections).kind == "select"
    assert event(ids, {"type": "carts-clear", "key": "segment"}, "n_clicks", controls, clicks, selections) == \
        Event("clear", "segment")
    for trigger in ("cust-tier", "carts-unknown", {"type": "cust-clear", "key": "x"}, None, 3):
        with pytest.raises(NoChange):
            event(ids, trigger, "value", controls, clicks, selections)


def test_a_click_on_a_customer_type_filters_and_a_second_clears():
    once, problems = run(CartFilters(), Event("click", "by-segment", points([1, 10, 20])), CART_RULES)
    assert once == CartFilters(segments=(1,)) and not problems
    again, _ = run(once, Event("click", "by-segment", points([1, 10, 20])), CART_RULES)
    assert again == CartFilters()


def test_a_slider_on_bucket_indices_becomes_a_value_range():
    out, _ = run(CartFilters(), Event("panel", "range-items_added", [1, 3]), CART_RULES)
    assert out.range("items_added") == Range(1.0, 3.0)
    whole, _ = run(out, Event("panel", "range-items_added", [0, len(EDGES) - 1]), CART_RULES)
    assert whole.range("items_added") is None


def test_a_bucket_click_toggles_and_a_selection_sets_a_range():
    column = "cart_views"
    click = Event("click", f"dist-{column}", points([column, 6, 7]))
    once, _ = run(CartFilters(), click, CART_RULES)
    assert once.range(column) == Range(6.0, 7.0)
    assert run(once, click, CART_RULES)[0].range(column) is None                # same bucket: cleared
    chosen, _ = run(CartFilters(), Event("select", f"dist-{column}", points([column, 1, 1], [column, 2, 3])),
                    CART_RULES)
    assert chosen.range(column) == Range(1.0, 3.0)
    with pytest.raises(NoChange):                                                   # a cleared selection
        run(chosen, Event("select", f"dist-{column}", {"points": []}), CART_RULES)
    # a click without a bucket: the carts keep their filters, the customers change nothing
    assert run(chosen, Event("click", f"dist-{column}", None), CART_RULES)[0] == chosen
    with pytest.raises(NoChange):
        run(CustomerFilters(), Event("click", "dist-profit", None), CUSTOMER_RULES)


def test_chips_clear_one_filter_or_all_and_unknown_keys_are_reported():
    filters = CartFilters(segments=(1,), details=True, ranges=(("cart_views", Range(1, 2)),))
    assert run(filters, Event("clear", "details"), CART_RULES)[0] == CartFilters(
        segments=(1,), ranges=(("cart_views", Range(1, 2)),))
    assert run(filters, Event("clear", CLEAR_ALL), CART_RULES)[0] == CartFilters()
    same, problems = run(filters, Event("clear", "nonsense"), CART_RULES)
    assert same == filters and problems == ["Ignored a request to clear an unknown filter."]


def test_garbage_values_give_messages_not_exceptions():
    out, problems = run(CartFilters(segments=(0,)), Event("panel", "segment", ["9", {"evil": 1}]), CART_RULES)
    assert out.segments == () and problems and all(p.startswith("Ignored") for p in problems)
    out, problems = run(CustomerFilters(), Event("click", "by-tier", points(["gold"])), CUSTOMER_RULES)
    assert out == CustomerFilters() and problems


def test_customer_charts_cross_filter_by_category_tier_and_consent():
    by_category, _ = run(CustomerFilters(), Event("click", "by-category", points(["Kitchenware", 3, 10])),
                         CUSTOMER_RULES)
    assert by_category.categories == ("Kitchenware",)
    assert run(by_category, Event("click", "by-category", points(["Kitchenware"])), CUSTOMER_RULES)[0] \
        == CustomerFilters()
    tier, _ = run(CustomerFilters(), Event("click", "by-tier", points(["premium"])), CUSTOMER_RULES)
    assert tier.tiers == ("premium",)
    consent, _ = run(CustomerFilters(), Event("click", "by-consent", points(["true"])), CUSTOMER_RULES)
    assert consent.consent is True
    ranged, _ = run(CustomerFilters(), Event("panel", "range-promo_share", [0.25, 1.0]), CUSTOMER_RULES)
    assert ranged.range("promo_share") == Range(0.25, None)


def test_the_cube_sliders_are_the_carts_range_controls():
    assert {c for c in CART_CUBE_RANGES} == {n.removeprefix("range-") for n in carts.CONTROLS if n.startswith("range-")}
