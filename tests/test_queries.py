"""Dashboard queries against a warehouse built by the real ETL, checked with plain SQL."""
from __future__ import annotations

import os
import shutil

import duckdb
import pytest
from flask import Flask

from dashboard import queries as q
from dashboard.cache import cache, init_cache
from dashboard.bins import Bins, cart_bins
from dashboard.config import get_config
from dashboard.filters import (CART_RANGE_COLUMNS, CartFilters, CustomerFilters, Range, SegmentView,
                               parse_cart_filters)
from dashboard.source import Unavailable


def sql(path: str, text: str):
    with duckdb.connect(path, read_only=True) as con:
        return con.sql(text).fetchall()


@pytest.fixture
def app_context(dashboard_env):
    """Queries inside a Flask app with the filesystem cache, as in production."""
    app = Flask(__name__)
    init_cache(app, get_config())
    with app.app_context():
        yield app


def test_cart_outcomes_match_sql(dashboard_env):
    path = dashboard_env["scored"]
    outcomes = q.cart_outcomes(CartFilters())
    expected = dict(sql(path, "select abandoned, count(*) from sessions group by all"))
    assert dict(zip(outcomes.abandoned, outcomes.n)) == expected
    kpis = q.cart_kpis(outcomes)
    total, abandoned, items = sql(path, "select count(*), count_if(abandoned), sum(items_added) from sessions")[0]
    assert kpis["sessions"] == total
    assert kpis["abandonment_rate"] == pytest.approx(abandoned / total)
    assert kpis["conversion_rate"] == pytest.approx(1 - abandoned / total)
    assert kpis["items_per_cart"] == pytest.approx(items / total)


def test_cart_filters_are_applied_in_sql(dashboard_env):
    path = dashboard_env["scored"]
    filters, problems = parse_cart_filters({"segment": "0,2", "details": "no", "items_added": "1-5"})
    assert problems == []
    outcomes = q.cart_outcomes(filters)
    expected = sql(path, "select count(*) from sessions where customer_segment in (0, 2) "
                         "and not product_details_viewed and items_added between 1 and 5")[0][0]
    assert int(outcomes.n.sum()) == expected
    # the segment chart ignores its own filter (cross-filter) but honours the others
    by_segment = q.cart_by_segment(filters)
    assert set(by_segment.customer_segment) == {0, 1, 2}
    expected_1 = sql(path, "select count(*) from sessions where customer_segment = 1 "
                           "and not product_details_viewed and items_added between 1 and 5")[0][0]
    assert int(by_segment.loc[by_segment.customer_segment == 1, "n"].sum()) == expected_1


def test_distributions_cover_every_behaviour_and_exclude_their_own_range(dashboard_env):
    filters = CartFilters(ranges=(("items_added", Range(2, 3)),))
    dist = q.cart_distributions(filters)
    assert set(dist.behaviour) == set(CART_RANGE_COLUMNS)
    total = int(q.cart_outcomes(CartFilters()).n.sum())
    filtered = int(q.cart_outcomes(filters).n.sum())
    # the items histogram is not cut by the items range; every other one is
    assert int(dist.loc[dist.behaviour == "items_added", "n"].sum()) == total
    assert int(dist.loc[dist.behaviour == "cart_views", "n"].sum()) == filtered
    assert {"lo", "hi", "label", "range_text"} <= set(dist.columns)


def test_cube_and_direct_paths_agree(dashboard_env):
    """A range on a behaviour outside the cube is answered from the sessions table; the
    shapes and the counts must be those the cube gives for the same sessions."""
    path = dashboard_env["scored"]
    filters = CartFilters(segments=(1,), ranges=(("cart_views", Range(1, 2)),))
    dist = q.cart_distributions(filters)
    expected = sql(path, "select count(*) from sessions where customer_segment = 1 and cart_views between 1 and 2")[0][0]
    assert int(dist.loc[dist.behaviour == "items_added", "n"].sum()) == expected
    # cart_views' own histogram is not cut by its own range
    all_segment_1 = sql(path, "select count(*) from sessions where customer_segment = 1")[0][0]
    assert int(dist.loc[dist.behaviour == "cart_views", "n"].sum()) == all_segment_1
    assert int(q.cart_outcomes(filters).n.sum()) == expected


def test_bins_snap_ranges_to_whole_buckets():
    bins = Bins((0, 1, 2, 3, 4, 5, 6, 8, 10, 15))
    assert bins.indices(Range(1, 5)) == (1, 5)
    assert bins.snapped(Range(7, 9)) == Range(6.0, 9.0)
    assert bins.snapped(Range(12, None)) == Range(10.0, None)
    assert bins.label(0) == "0" and bins.label(6) == "6–7" and bins.label(9) == "≥15"


def test_cart_bins_start_with_unit_buckets(dashboard_env):
    bins = cart_bins()
    assert bins["items_added"].edges[:3] == (0, 1, 2)
    assert all(b.edges == tuple(sorted(b.edges)) for b in bins.values())


def test_customer_queries_match_sql(dashboard_env):
    path = dashboard_env["scored"]
    filters = CustomerFilters(tiers=("premium",), categories=("Kids' goods",), ranges=(("promo_share", Range(0.3, None)),))
    kpis = q.customer_kpis(filters)
    where = "service_tier = 'premium' and top_category = 'Kids'' goods' and promo_share >= 0.3"
    n, declined, profit = sql(path, f"select count(*), count_if(activity_declined), avg(profit) from customers where {where}")[0]
    assert kpis["customers"] == n
    assert kpis["declined_share"] == pytest.approx(declined / n)
    assert kpis["mean_profit"] == pytest.approx(profit)
    at_risk = sql(path, f"select sum(p_decline * profit) from customers join customer_scores using (customer_id) where {where}")[0][0]
    assert kpis["profit_at_risk"] == pytest.approx(at_risk)
    dist = q.customer_distributions(filters)
    assert set(dist.behaviour) == set(q.CUSTOMER_RANGE_COLUMNS)
    assert int(dist.loc[dist.behaviour == "tenure_days", "n"].sum()) == n
    cats = q.customer_categoricals(filters)
    assert set(cats.feature) == set(q.CATEGORICAL_FEATURES)
    trends = q.customer_trends(filters)
    assert set(trends.measure) == {"revenue", "minutes"}
    corr = q.customer_correlations(CustomerFilters())
    assert corr.shape[0] == corr.shape[1] == len(q.CUSTOMER_RANGE_COLUMNS) + 1
    r = sql(path, "select corr(revenue_last_month, revenue_this_month) from customers")[0][0]
    assert corr.loc["revenue_last_month", "revenue_this_month"] == pytest.approx(r, abs=1e-9)


def test_segment_queries(dashboard_env):
    path = dashboard_env["scored"]
    view = SegmentView(segment="promo_risk_high_profit", min_profit=3.0)
    summary = q.segment_summary(view)
    expected = sql(path, "select count(*) from customer_scores join customers using (customer_id) "
                         "where segment = 'promo_risk_high_profit' and profit >= 3")[0][0]
    assert summary["customers"] == expected
    rows = q.at_risk(view, 10)
    assert list(rows.p_decline) == sorted(rows.p_decline, reverse=True)
    assert len(q.at_risk(view, None)) == expected
    assert set(q.segments().kind) == {"rule", "cluster"}
    assert int(q.segment_p_decline(view).n.sum()) == expected
    assert len(q.segment_profile(view)) == len(q.CUSTOMER_RANGE_COLUMNS)


def test_confusion_counts_the_holdout(dashboard_env):
    path = dashboard_env["scored"]
    counts = q.confusion("customers", 0.5)
    holdout = sql(path, "select count(*) from customer_scores where in_holdout")[0][0]
    assert sum(counts.values()) == holdout
    tp = sql(path, "select count(*) from customer_scores join customers using (customer_id) "
                   "where in_holdout and p_decline >= 0.5 and activity_declined")[0][0]
    assert counts["tp"] == tp


def test_data_quality_queries(dashboard_env):
    run = q.latest_run()
    files = q.source_files()
    assert (files.rows_read == files.rows_kept + files.rows_rejected).all()
    assert int(files.rows_read.sum()) == run["rows_in"]
    reasons = q.rejection_reasons()
    assert int(reasons.rows.sum()) == run["rows_rejected"]
    assert len(q.rejected_sample(5)) <= 5


def test_what_if_rows(dashboard_env):
    ids = q.example_ids("customers", 3)
    assert len(ids) == 3
    row = q.subject_row("customers", ids[0])
    assert row["customer_id"] == ids[0]
    assert q.subject_row("customers", -1) is None


def test_missing_warehouse_says_what_to_run(monkeypatch, tmp_path):
    monkeypatch.setenv("WAREHOUSE_URL", str(tmp_path / "none.duckdb"))
    with pytest.raises(Unavailable) as info:
        q.cart_outcomes(CartFilters())
    assert info.value.command == "python -m etl run"


def test_missing_scores_say_to_train(dashboard_env, monkeypatch):
    monkeypatch.setenv("WAREHOUSE_URL", dashboard_env["plain"])
    with pytest.raises(Unavailable) as info:
        q.segments()
    assert info.value.command == "python -m etl train"
    assert q.customer_kpis(CustomerFilters())["profit_at_risk"] is None


def test_cache_is_keyed_by_data_version(app_context, dashboard_env, tmp_path, monkeypatch):
    """A rebuilt warehouse is picked up without a restart and never served from the cache."""
    copy = tmp_path / "copy.duckdb"
    shutil.copyfile(dashboard_env["plain"], copy)
    monkeypatch.setenv("WAREHOUSE_URL", str(copy))
    before = q.cart_outcomes(CartFilters())
    assert q.cart_outcomes(CartFilters()).equals(before)  # served from the cache
    # publish a new warehouse the way the ETL does: a new file renamed over the old one
    staged = tmp_path / "staged.duckdb"
    shutil.copyfile(copy, staged)
    with duckdb.connect(str(staged)) as con:
        con.execute("delete from sessions where customer_segment = 2")
    os.replace(staged, copy)
    after = q.cart_outcomes(CartFilters())
    assert int(after.n.sum()) < int(before.n.sum())
    cache.clear()


def test_cart_bins_are_held_per_release(dashboard_env, monkeypatch, tmp_path):
    """One query per published warehouse, not one per call; a new publish recomputes them."""
    import os
    import shutil

    from dashboard import bins as bins_module

    served = tmp_path / "served.duckdb"
    shutil.copyfile(dashboard_env["scored"], served)
    monkeypatch.setenv("WAREHOUSE_URL", str(served))
    calls = []
    shared = bins_module._shared_cart_bins
    monkeypatch.setattr(bins_module, "_shared_cart_bins", lambda: calls.append(1) or shared())
    first = cart_bins()
    assert cart_bins() is first and len(calls) == 1
    shutil.copyfile(dashboard_env["scored"], tmp_path / "new.duckdb")
    os.replace(tmp_path / "new.duckdb", served)                  # a publish: a new file, same data
    assert cart_bins() == first and cart_bins() is not first and len(calls) == 2
    assert cart_bins() is cart_bins() and len(calls) == 2


def test_one_request_reads_one_release_whatever_is_published_meanwhile(dashboard_env, monkeypatch, tmp_path):
    """A publish in the middle of a request changes nothing for it; the next request sees it."""
    import os
    import shutil

    from dashboard.app import create_app
    from dashboard.source import data_version

    served = tmp_path / "served.duckdb"
    shutil.copyfile(dashboard_env["scored"], served)
    monkeypatch.setenv("WAREHOUSE_URL", str(served))
    from flask import g

    from dashboard.auth.identity import SYSTEM

    app = create_app()
    with app.server.test_request_context("/"):
        g.identity = SYSTEM     # what the sign-in gate sets (test_request_context runs no hooks)
        before, outcomes = data_version(), q.cart_outcomes(CartFilters())
        shutil.copyfile(dashboard_env["plain"], tmp_path / "new.duckdb")   # new data, no models
        os.replace(tmp_path / "new.duckdb", served)
        assert data_version() == before and q.cart_outcomes(CartFilters()).equals(outcomes)
        assert q.customer_kpis(CustomerFilters()) is not None              # still reads the old file
    with app.server.test_request_context("/"):
        g.identity = SYSTEM
        assert data_version() != before


def test_cart_page_matches_the_separate_queries(dashboard_env):
    filters = CartFilters(segments=(0,), details=True,
                          ranges=(("items_added", Range(1, 3)), ("cart_views", Range(1, None))))
    for f in (CartFilters(), filters):
        page = q.cart_page(f)
        assert page["effective"] == q.effective_cart_filters(f)
        assert page["outcomes"].equals(q.cart_outcomes(f))
        assert page["base_outcomes"].equals(q.cart_outcomes(CartFilters()))
        assert page["by_segment"].equals(q.cart_by_segment(f))
        assert page["by_details"].equals(q.cart_by_details(f))
        assert page["distributions"].equals(q.cart_distributions(f))
