"""The "Show rows" drill-through of Carts and Customers on the real data: an analyst gets
exactly the rows the warehouse's SQL gives for the same filters (as many as the page's KPI
counts), a viewer gets no button and the row queries refuse them, and the CSV export has its
headers in the reader's language and is audited."""
from __future__ import annotations

import base64
import io
import json
import os
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from flask import g

from dashboard.auth.identity import Identity, Role
from dashboard.filters import CartFilters, CustomerFilters, Range

ANALYST = Identity("ana", Role.ANALYST, source="local")
VIEWER = Identity("vic", Role.VIEWER, source="local")
CART_CASES = {
    "none": (CartFilters(), "true"),
    "on-cube": (CartFilters(segments=(1,), details=True, ranges=(("items_added", Range(1, 3)),)),
                "customer_segment = 1 and product_details_viewed and items_added between 1 and 3"),
    # off the cube, and a range that is widened to whole buckets (10-14 is one bucket from 10)
    "off-cube": (CartFilters(ranges=(("cart_views", Range(1, 2)), ("pages_viewed", Range(11, 12)))),
                 "cart_views between 1 and 2 and pages_viewed between 10 and 14"),
}
CUSTOMER_CASES = {
    "none": (CustomerFilters(), "true"),
    "mixed": (CustomerFilters(tiers=("premium",), consent=True, categories=("Kitchenware", "Kids' goods"),
                              ranges=(("promo_share", Range(0.3, None)),)),
              "service_tier = 'premium' and marketing_consent and top_category in ('Kitchenware', 'Kids'' goods') "
              "and promo_share >= 0.3"),
}


@pytest.fixture
def app(dashboard_env):
    from dashboard.app import create_app

    return create_app()


@contextmanager
def acting_as(app, identity: Identity, path: str = "/"):
    with app.server.test_request_context(path):
        g.identity = identity
        yield


def sql_ids(path: str, text: str) -> list:
    with duckdb.connect(path, read_only=True) as con:
        return [r[0] for r in con.sql(text).fetchall()]


@pytest.mark.parametrize("case", CART_CASES)
def test_an_analyst_gets_the_sessions_the_sql_gives(app, dashboard_env, case):
    from dashboard.bins import cart_bins
    from dashboard.queries import cart_kpis, cart_page
    from dashboard.queries.rows import cart_row_count, cart_rows

    filters, where = CART_CASES[case]
    if case == "off-cube":   # the bucket the test's SQL assumes
        with acting_as(app, ANALYST):
            assert cart_bins()["pages_viewed"].snapped(Range(11, 12)) == Range(10, 14)
    expected = sql_ids(dashboard_env["scored"], f"select session_id from sessions where {where} order by session_id")
    with acting_as(app, ANALYST):
        rows, count = cart_rows(filters), cart_row_count(filters)
        kpi = cart_kpis(cart_page(filters)["outcomes"])["sessions"]
        first = cart_rows(filters, 200)
    assert rows.session_id.tolist() == expected and count == len(expected) == kpi and count > 0
    assert first.session_id.tolist() == expected[:200]


@pytest.mark.parametrize("case", CUSTOMER_CASES)
def test_an_analyst_gets_the_customers_the_sql_gives(app, dashboard_env, case):
    from dashboard.queries import customer_kpis
    from dashboard.queries.rows import customer_row_count, customer_rows

    filters, where = CUSTOMER_CASES[case]
    expected = sql_ids(dashboard_env["scored"],
                       f"select customer_id from customers where {where} order by customer_id")
    with acting_as(app, ANALYST):
        rows, count = customer_rows(filters), customer_row_count(filters)
        kpi = customer_kpis(filters)["customers"]
    assert rows.customer_id.tolist() == expected and count == len(expected) == kpi and count > 0


def test_a_scoped_analyst_gets_only_the_scope(app, dashboard_env):
    from dashboard.auth.identity import parse_scope
    from dashboard.queries.rows import cart_rows, customer_rows

    who = Identity("scoped", Role.ANALYST, parse_scope(["customer_segment=2", "service_tier=premium"]), source="local")
    with acting_as(app, who):
        sessions = cart_rows(CartFilters(segments=(0, 1)))   # asks outside the scope: gets the scope
        customers = customer_rows(CustomerFilters())
    assert set(sessions.customer_segment) == {2}
    assert sessions.session_id.tolist() == sql_ids(
        dashboard_env["scored"], "select session_id from sessions where customer_segment = 2 order by session_id")
    assert set(customers.service_tier) == {"premium"}


def test_a_viewer_is_refused_by_the_row_queries_and_gets_no_button(app):
    from dashboard.auth.scoping import Forbidden
    from dashboard.pages import carts, customers
    from dashboard.queries.rows import cart_row_count, cart_rows, customer_row_count, customer_rows

    with acting_as(app, VIEWER):
        for read in (lambda: cart_rows(CartFilters()), lambda: cart_row_count(CartFilters()),
                     lambda: customer_rows(CustomerFilters()), lambda: customer_row_count(CustomerFilters())):
            with pytest.raises(Forbidden):
                read()
        pages = json.dumps([carts.layout(), customers.layout()], default=str)
        assert carts.render(CartFilters(), []).rows is None
    assert "rows-open" not in pages and "rows-modal" not in pages and "rows-download" not in pages
    with acting_as(app, ANALYST):
        pages = json.dumps([carts.layout(), customers.layout()], default=str)
    assert all(f"{p}-rows-{n}" in pages for p in ("carts", "cust") for n in ("open", "modal", "download"))


def csv_of(sent: dict) -> pd.DataFrame:
    return pd.read_csv(io.StringIO(base64.b64decode(sent["content"]).decode("utf-8-sig")))


@pytest.mark.parametrize("lang, session, customer, tier", [
    ("en", "Session", "Customer", "premium"), ("es", "Sesión", "Cliente", "premium"),
    ("ru", "Сессия", "Покупатель", "премиум")])
def test_the_csv_has_the_readers_headers_and_is_audited(app, dashboard_env, lang, session, customer, tier):
    from dashboard.pages import carts, customers
    from dashboard.queries.rows import cart_row_count

    with acting_as(app, ANALYST, f"/carts?lang={lang}"):
        cart_csv = csv_of(carts.download_rows(1, "segment=1&items_added=1-3"))
        expected = cart_row_count(CartFilters(segments=(1,), ranges=(("items_added", Range(1, 3)),)))
    with acting_as(app, ANALYST, f"/customers?lang={lang}"):
        customer_csv = csv_of(customers.download_rows(1, "tier=premium"))
    assert cart_csv.columns[0] == session and len(cart_csv) == expected
    assert customer_csv.columns[0] == customer and set(customer_csv.iloc[:, 2]) == {tier}
    entries = [json.loads(line) for line in
               (Path(os.environ["STATE_DIR"]) / "audit.jsonl").read_text().splitlines()]
    exports = [e for e in entries if e["event"] == "export"][-2:]
    assert [e["details"]["page"] for e in exports] == ["/carts", "/customers"]
    assert exports[0]["details"]["rows"] == expected and exports[0]["details"]["filters"].startswith("?segment=1")
    assert exports[1]["details"]["rows"] == len(customer_csv)


def test_the_modal_shows_the_first_rows_and_the_count(app):
    from dashboard.pages import carts

    with acting_as(app, ANALYST, "/carts?lang=es"):
        body, is_open = carts.show_rows(1, "")
    text = json.dumps(body, default=str, ensure_ascii=False)
    assert is_open and "Sesión" in text and "Mostrando las primeras 200" in text
    assert text.count("Session_ID_") == 200


def test_the_gate_refuses_the_row_callbacks_to_a_viewer(app):
    """The outer wall: every callback whose outputs carry the rows needs the ROWS capability
    (dashboard/auth/gate.py ROW_OUTPUTS names their ids)."""
    from dashboard.auth.gate import required_capability
    from dashboard.auth.identity import Capability

    app.server.test_client().get("/")   # Dash registers the page callbacks on the first request
    keys = [k for k in app.callback_map if "rows-body" in k or "rows-download" in k]
    assert len(keys) == 4
    assert {k: required_capability(k) for k in keys} == {k: Capability.ROWS for k in keys}
