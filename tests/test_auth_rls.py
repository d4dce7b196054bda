"""Row-level security on the real data: a scoped user's every number equals the unscoped
number filtered by that scope, a request cannot widen the scope, a subject the scope does not
cover shows a notice and no number, and no cache serves one identity's answer to another.

The pages' render functions and the queries run inside a request of the real app, with the
identity the sign-in gate would set (``flask.g.identity``); the expected numbers come from the
unscoped identity with the equivalent filters, and from the warehouse itself (DuckDB SQL).
"""
from __future__ import annotations

import json
import re
from contextlib import contextmanager

import duckdb
import pandas as pd
import pytest
from flask import g

from dashboard.auth.identity import Identity, Role, parse_scope
from dashboard.filters import CartFilters, CustomerFilters, Range, SegmentView

ADMIN = Identity("admin", Role.ADMIN, source="local")
# scope -> (the carts filters, the customers filters) an unscoped user sets to see the same rows
SCOPES = {
    "customer_segment=2": (CartFilters(segments=(2,)), None),
    "customer_segment=0,2": (CartFilters(segments=(0, 2)), None),
    "service_tier=premium": (None, CustomerFilters(tiers=("premium",))),
    "top_category=Kids' goods": (None, CustomerFilters(categories=("Kids' goods",))),
    "service_tier=premium;marketing_consent=yes": (None, CustomerFilters(tiers=("premium",), consent=True)),
    "customer_segment=1;service_tier=standard": (CartFilters(segments=(1,)), CustomerFilters(tiers=("standard",))),
}
CART_SCOPES = [k for k, (carts, _) in SCOPES.items() if carts is not None]
CUSTOMER_SCOPES = [k for k, (_, customers) in SCOPES.items() if customers is not None]


def scoped(text: str, role: Role = Role.ANALYST) -> Identity:
    return Identity("scoped", role, parse_scope(text.split(";")), source="local")


def where(text: str, subject: str) -> str:
    """The SQL condition of scope ``text`` on the table of ``subject``."""
    parts = []
    for item in text.split(";"):
        column, _, values = item.partition("=")
        if (column == "customer_segment") != (subject == "carts"):
            continue
        if column == "marketing_consent":
            parts.append("marketing_consent" if values == "yes" else "not marketing_consent")
        elif column == "customer_segment":
            parts.append(f"customer_segment in ({values})")
        else:
            quoted = ", ".join("'" + v.replace("'", "''") + "'" for v in values.split(","))
            parts.append(f"{column} in ({quoted})")
    return " and ".join(parts)


@pytest.fixture
def app(dashboard_env):
    from dashboard.app import create_app

    return create_app()


@contextmanager
def acting_as(app, identity: Identity):
    """A request of ``app`` by ``identity`` (what the gate sets), with the release pinned."""
    with app.server.test_request_context("/"):
        g.identity = identity
        yield


def sql(path: str, text: str):
    with duckdb.connect(path, read_only=True) as con:
        return con.sql(text).df()


def same_frame(a: pd.DataFrame, b: pd.DataFrame, by: list[str] | None = None) -> None:
    if by:
        a, b = a.sort_values(by).reset_index(drop=True), b.sort_values(by).reset_index(drop=True)
    pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True), check_exact=False, rtol=1e-9)


def text(value) -> str:
    return json.dumps(value, default=str, sort_keys=True, ensure_ascii=False)


def kpi_values(cards) -> list[str]:
    """The headline values of KPI cards (their comparison lines compare with each user's own base)."""
    return re.findall(r"children='([^']*)', className='kpi-value'", text(cards))


# --- carts ---------------------------------------------------------------------------------

CART_FILTERS = [CartFilters(), CartFilters(details=True, ranges=(("items_added", Range(1, 3)),)),
                CartFilters(ranges=(("cart_views", Range(1, 2)),))]   # the last one off the cube


@pytest.mark.parametrize("scope", CART_SCOPES)
@pytest.mark.parametrize("extra", CART_FILTERS, ids=["none", "on-cube", "off-cube"])
def test_carts_numbers_are_the_unscoped_ones_filtered_by_the_scope(app, dashboard_env, scope, extra):
    from dashboard.pages import carts
    from dashboard.queries import cart_page

    scope_filters = SCOPES[scope][0]
    with acting_as(app, scoped(scope)):
        mine, page = carts.render(extra, []), cart_page(extra)
    with acting_as(app, ADMIN):
        theirs = carts.render(CartFilters(segments=scope_filters.segments, details=extra.details,
                                          ranges=extra.ranges), [])
        expected = cart_page(CartFilters(segments=scope_filters.segments, details=extra.details, ranges=extra.ranges))
        everything = cart_page(CartFilters(segments=scope_filters.segments))
    same_frame(page["outcomes"], expected["outcomes"])
    same_frame(page["base_outcomes"], everything["outcomes"])   # the baseline: the whole scope
    same_frame(page["by_details"], expected["by_details"])
    same_frame(page["distributions"], expected["distributions"])
    allowed = expected["by_segment"].customer_segment.isin(scope_filters.segments)
    same_frame(page["by_segment"], expected["by_segment"][allowed])  # never a bar of another type
    for field in ("funnel", "by_details", "distributions"):
        assert text(getattr(mine, field)) == text(getattr(theirs, field)), field
    where_sql = where(scope, "carts")
    total = sql(dashboard_env["scored"], f"select count(*) n from sessions where {where_sql}").n[0]
    assert int(page["base_outcomes"].n.sum()) == total


@pytest.mark.parametrize("scope", CART_SCOPES)
def test_overview_carts_section_is_the_filtered_one(app, scope):
    from dashboard.pages import overview

    with acting_as(app, scoped(scope, Role.VIEWER)):
        mine = overview.render_carts(CartFilters(details=False), [])
    with acting_as(app, ADMIN):
        theirs = overview.render_carts(CartFilters(segments=SCOPES[scope][0].segments, details=False), [])
    assert text(mine.funnel) == text(theirs.funnel)


def test_a_cart_filter_outside_the_scope_gets_the_scope_and_a_message(app, dashboard_env):
    from dashboard.pages import carts
    from dashboard.queries import cart_outcomes, cart_page

    with acting_as(app, scoped("customer_segment=2")):
        problems: list[str] = []
        asked = carts.render(CartFilters(segments=(0,)), problems)       # as from ?segment=0
        direct = cart_outcomes(CartFilters(segments=(0,)))              # a query asked for type 0 alone
        mixed = cart_page(CartFilters(segments=(0, 2)))
    with acting_as(app, ADMIN):
        two = carts.render(CartFilters(segments=(2,)), [])
        only_two = cart_page(CartFilters(segments=(2,)))
    assert any("customer type 0" in p and "Customer type: 2" in p for p in problems), problems
    assert kpi_values(asked.kpis) == kpi_values(two.kpis) and text(asked.funnel) == text(two.funnel)
    assert asked.segment == [2]                  # never an empty "every type"
    assert int(direct.n.sum()) == 0               # type 0's numbers never come out
    same_frame(mixed["outcomes"], only_two["outcomes"])


# --- customers -----------------------------------------------------------------------------


@pytest.mark.parametrize("scope", CUSTOMER_SCOPES)
def test_customer_numbers_are_the_unscoped_ones_filtered_by_the_scope(app, dashboard_env, scope):
    from dashboard.pages import customers
    from dashboard.queries import (customer_categoricals, customer_correlations, customer_distributions,
                                   customer_kpis, customer_trends)

    wanted = SCOPES[scope][1]
    extra = CustomerFilters(ranges=(("promo_share", Range(0.2, None)),))
    with acting_as(app, scoped(scope, Role.VIEWER)):
        mine = {f: (customer_kpis(f), customer_distributions(f), customer_trends(f), customer_correlations(f),
                    customer_categoricals(f)) for f in (CustomerFilters(), extra)}
        view = customers.render(extra, [])
    with acting_as(app, ADMIN):
        theirs = {f: (customer_kpis(g), customer_distributions(g), customer_trends(g), customer_correlations(g),
                      customer_categoricals(g))
                  for f, g in ((CustomerFilters(), wanted), (extra, CustomerFilters(
                      tiers=wanted.tiers, consent=wanted.consent, categories=wanted.categories, ranges=extra.ranges)))}
        other = customers.render(CustomerFilters(tiers=wanted.tiers, consent=wanted.consent,
                                                 categories=wanted.categories, ranges=extra.ranges), [])
    limited = {"service_tier": [str(v) for v in wanted.tiers], "top_category": list(wanted.categories),
               "marketing_consent": [] if wanted.consent is None else [str(wanted.consent).lower()]}
    for f in mine:
        (kpis, dist, trends, corr, cats), (kpis2, dist2, trends2, corr2, cats2) = mine[f], theirs[f]
        assert kpis["customers"] == kpis2["customers"] and kpis["customers"] > 0
        for key in ("declined_share", "mean_profit", "profit_at_risk"):
            assert kpis[key] == pytest.approx(kpis2[key], rel=1e-9), key
        same_frame(dist, dist2)
        same_frame(trends, trends2, by=["measure", "order", "declined"])
        same_frame(corr, corr2)
        keep = pd.Series(True, index=cats2.index)
        for feature, values in limited.items():   # a limited feature's chart: only the scope's values
            if values:
                keep &= ~((cats2.feature == feature) & ~cats2.value.isin(values))
        same_frame(cats, cats2[keep], by=["feature", "value", "declined"])
    for field in ("distributions", "correlations"):
        assert text(getattr(view, field)) == text(getattr(other, field)), field
    n = sql(dashboard_env["scored"], f"select count(*) n from customers where {where(scope, 'customers')}").n[0]
    assert mine[CustomerFilters()][0]["customers"] == n


def test_a_customer_filter_outside_the_scope_gets_the_scope_and_a_message(app):
    from dashboard.pages import customers, overview

    with acting_as(app, scoped("service_tier=premium;marketing_consent=yes", Role.VIEWER)):
        problems: list[str] = []
        asked = customers.render(CustomerFilters(tiers=("standard",), consent=False), problems)
        section = overview.render_customers(CustomerFilters(tiers=("standard",)), [])
    with acting_as(app, ADMIN):
        premium = customers.render(CustomerFilters(tiers=("premium",), consent=True), [])
        premium_section = overview.render_customers(CustomerFilters(tiers=("premium",), consent=True), [])
    assert any("service tier standard" in p for p in problems) and any("marketing consent no" in p for p in problems)
    assert asked.tier == ["premium"] and asked.consent == "yes"
    assert text(asked.distributions) == text(premium.distributions)
    assert kpi_values(section.kpis) == kpi_values(premium_section.kpis)


# --- segments, model, what-if, data quality ------------------------------------------------


@pytest.mark.parametrize("scope", CUSTOMER_SCOPES)
def test_segment_numbers_and_rows_come_from_the_scope(app, dashboard_env, scope):
    from dashboard.pages import segments as page
    from dashboard.queries import at_risk, confusion, example_ids, segment_profile, segment_summary, segments

    cond = where(scope, "customers")
    frame = sql(dashboard_env["scored"], f"select s.*, c.* exclude (customer_id) from customer_scores s "
                                         f"join customers c using (customer_id) where {cond}")
    with acting_as(app, scoped(scope)):
        table, summary = segments(), segment_summary(SegmentView())
        rows, profile = at_risk(SegmentView(), None), segment_profile(SegmentView())
        counts, examples = confusion("customers", 0.5), example_ids("customers", 5)
        view = page.render(SegmentView(), [])
    expected = pd.concat([frame.groupby(column).agg(customers=("customer_id", "size"), mean_p_decline=("p_decline", "mean"),
                                                    total_profit=("profit", "sum")).assign(kind=kind)
                          for kind, column in (("rule", "segment"), ("cluster", "cluster"))])
    got = table.set_index("segment_id")[["customers", "mean_p_decline", "total_profit", "kind"]]
    same_frame(got.sort_index(), expected.rename_axis("segment_id").sort_index().astype(got.dtypes.to_dict()))
    assert not table.description.str.contains("Stands out by").any() and not table.offer.str.contains("log-odds").any()
    assert summary["customers"] == len(frame) and summary["total_profit"] == pytest.approx(frame.profit.sum())
    assert summary["mean_p_decline"] == pytest.approx(frame.p_decline.mean())
    assert set(rows.customer_id) == set(frame.customer_id) and list(rows.p_decline) == sorted(rows.p_decline, reverse=True)
    overall = profile.set_index("feature")["overall"]
    assert overall["profit"] == pytest.approx(frame.profit.mean())
    holdout = frame[frame.in_holdout]
    assert counts["tp"] == int(((holdout.p_decline >= 0.5) & holdout.activity_declined).sum())
    assert sum(counts.values()) == len(holdout)
    assert set(examples) <= set(frame.customer_id)
    assert {r["customer_id"] for r in view.rows} <= set(frame.customer_id) and view.rows


@pytest.mark.parametrize("scope", CART_SCOPES)
def test_cart_model_numbers_and_examples_come_from_the_scope(app, dashboard_env, scope):
    from dashboard.queries import confusion, example_ids

    frame = sql(dashboard_env["scored"], "select s.*, c.abandoned from session_scores s join sessions c "
                                         f"using (session_id) where {where(scope, 'carts')}")
    with acting_as(app, scoped(scope)):
        counts, examples = confusion("carts", 0.4), example_ids("carts", 8)
    holdout = frame[frame.in_holdout]
    assert counts == {"tp": int(((holdout.p_abandon >= 0.4) & holdout.abandoned).sum()),
                      "fp": int(((holdout.p_abandon >= 0.4) & ~holdout.abandoned).sum()),
                      "fn": int(((holdout.p_abandon < 0.4) & holdout.abandoned).sum()),
                      "tn": int(((holdout.p_abandon < 0.4) & ~holdout.abandoned).sum())}
    assert examples == frame.sort_values(["p_abandon", "session_id"], ascending=[False, True]).session_id[:8].tolist()


def test_rows_outside_the_scope_cannot_be_started_from(app, dashboard_env):
    from dashboard.queries import subject_row

    outside = int(sql(dashboard_env["scored"], "select min(customer_id) i from customers where service_tier <> 'premium'").i[0])
    session = sql(dashboard_env["scored"], "select min(session_id) i from sessions where customer_segment <> 2").i[0]
    with acting_as(app, scoped("service_tier=premium;customer_segment=2")):
        assert subject_row("customers", outside) is None and subject_row("carts", session) is None
    with acting_as(app, ADMIN):
        assert subject_row("customers", outside)["customer_id"] == outside


# --- subjects a scope does not cover -------------------------------------------------------


@pytest.mark.parametrize("scope, hidden", [("service_tier=premium", "carts"), ("customer_segment=2", "customers")])
def test_a_subject_the_scope_does_not_cover_shows_a_notice_and_no_number(app, scope, hidden):
    from dashboard.auth.scoping import Forbidden
    from dashboard.pages import carts, customers, data_quality, model, overview, segments, what_if
    from dashboard.queries import cart_outcomes, confusion, customer_kpis, segments as segment_table
    from dashboard.source import table
    from etl.schema import SESSION_SCORES, SESSIONS

    name = "cart sessions" if hidden == "carts" else "customers"
    notice = "cannot be limited that way, so they are not shown"
    with acting_as(app, scoped(scope, Role.VIEWER)):
        reads = ([lambda: cart_outcomes(CartFilters()), lambda: table(SESSIONS), lambda: table(SESSION_SCORES)]
                 if hidden == "carts" else [lambda: customer_kpis(CustomerFilters()), segment_table])
        for read in [*reads, lambda: confusion(hidden, 0.5)]:
            with pytest.raises(Forbidden, match=name):
                read()
        pages = [model.layout(subject=hidden), what_if.layout(subject=hidden)]
        pages += [carts.layout()] if hidden == "carts" else [customers.layout(), segments.layout()]
        for layout in pages:
            shown = text(layout.to_plotly_json())
            assert notice in shown and name in shown and '"figure"' not in shown and "kpi-value" not in shown
        front = text(overview.layout().to_plotly_json())
        assert front.count(notice) == 1 and "kpi-value" in front       # the other subject is there
        # whole files and runs cannot be limited to a scope: not shown to a scoped user at all
        assert "cannot be limited to your access" in text(data_quality.layout().to_plotly_json())


@pytest.mark.parametrize("scope, shown", [("service_tier=premium", "customers"), ("customer_segment=2", "carts")])
def test_model_and_what_if_open_on_the_subject_the_scope_shows(app, scope, shown):
    from dashboard.pages import model, what_if

    notice = "cannot be limited that way, so they are not shown"
    with acting_as(app, scoped(scope, Role.VIEWER)):
        for layout in (model.layout(), what_if.layout()):   # no ?subject= in the link
            page = text(layout.to_plotly_json())
            assert notice not in page and "could not be drawn" not in page, shown


# --- caches --------------------------------------------------------------------------------


def test_the_query_cache_never_serves_one_identitys_answer_to_another(app):
    from dashboard.cache import cache
    from dashboard.queries import customer_kpis, segments

    premium = scoped("service_tier=premium")
    for order in ((ADMIN, premium), (premium, ADMIN)):
        with app.server.app_context():
            cache.clear()
        answers = {}
        for identity in (*order, *order):     # the second round is served from the cache
            with acting_as(app, identity):
                rules = segments().query("kind == 'rule'")     # every customer is in one rule segment
                answers.setdefault(identity, []).append((customer_kpis(CustomerFilters())["customers"],
                                                         int(rules.customers.sum())))
        with acting_as(app, ADMIN):
            expected = customer_kpis(CustomerFilters(tiers=("premium",)))["customers"]
        assert answers[premium] == [(expected, expected)] * 2
        assert answers[ADMIN][0] == answers[ADMIN][1] and answers[ADMIN][0][0] > expected


def test_the_response_cache_keys_answers_by_identity(app, monkeypatch):
    from tests.dashboard_generators import page_paths, post_json, router, router_body, server_callbacks

    client = identity_client(app, monkeypatch)
    route = router(server_callbacks(client))
    body = router_body(route, "/customers", "")
    assert "/customers" in page_paths()
    for first, second in (("admin", "viewer;service_tier=premium"), ("viewer;service_tier=standard", "admin")):
        one = post_json(client.as_(first), body)
        two = post_json(client.as_(second), body)
        assert one.get_data() != two.get_data()
        for who, before in ((first, one), (second, two)):
            again = post_json(client.as_(who), body)
            assert again.headers["X-Response-Cache"] == "hit" and again.get_data() == before.get_data()


class identity_client:  # noqa: N801 - used like a function
    """The app's test client with the identity of each request chosen by the test: the gate's
    ``resolve`` reads it from a test-only header (``ROLE[;COLUMN=VALUES...]``), so the rest of
    the gate (its refusals), the request guard and the response cache run as in production."""

    HEADER = "X-Test-Identity"

    def __init__(self, app, monkeypatch) -> None:
        from dashboard.auth import gate
        from flask import request

        def resolve(_state, _prefix):
            role, *scope = request.headers.get(self.HEADER, "admin").split(";")
            return Identity("tester", Role.parse(role), parse_scope(scope), source="local")

        monkeypatch.setattr(gate, "resolve", resolve)
        self.client = app.server.test_client()
        self.who = "admin"
        assert self.client.get("/").status_code == 200   # Dash registers the page callbacks now

    def as_(self, who: str) -> identity_client:
        self.who = who
        return self

    def post(self, *args, **kwargs):
        kwargs.setdefault("headers", {})[self.HEADER] = self.who
        return self.client.post(*args, **kwargs)

    def get(self, *args, **kwargs):
        kwargs.setdefault("headers", {})[self.HEADER] = self.who
        return self.client.get(*args, **kwargs)


def test_no_filters_says_all_rows_of_the_access_for_a_scoped_user(app):
    from dashboard.components.filter_panel import chips

    with acting_as(app, scoped("service_tier=premium", Role.VIEWER)):
        assert "every row your access includes" in text(chips("cust", [])[0].to_plotly_json())
    with acting_as(app, ADMIN):
        assert "showing everything" in text(chips("cust", [])[0].to_plotly_json())
