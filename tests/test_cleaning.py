"""Each cleaning step on tiny frames."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from etl import carts, customers
from etl.validate import keep_rows


def sessions(**overrides) -> pd.DataFrame:
    base = {
        "source_file": "carts/a.csv", "source_row": [2, 3, 4, 5],
        "session_id": ["s0", "s1", "s2", "s3"], "product_details_viewed": [True, False, True, False],
        "session_activity_count": [4.0, 38, 8, 6], "items_added": [1.0, None, 5, 0],
        "items_removed": [0.0, 0, 0, 0], "cart_views": [0.0, 2, None, 2],
        "checkout_confirmed": [0.0, 0, 1, 0], "checkout_initiated": [0.0, 0, 1, 0],
        "cart_item_views": [1.0, 2, 1, 4], "customer_logins": [0.0, 0, 0, 0],
        "pages_viewed": [0.0, 2, 0, 0], "customer_segment": [0.0, 0, 1, 0],
        "abandoned": [True, True, False, False],
    }
    base.update(overrides)
    return pd.DataFrame(base)


def test_fill_blank_counts_uses_the_median():
    filled = carts.fill_blank_counts(sessions())
    assert filled["items_added"].tolist() == [1, 1, 5, 0]   # median of 1, 5, 0
    assert filled["cart_views"].tolist() == [0, 2, 2, 2]


def test_entry_page_is_counted():
    assert carts.count_entry_page(sessions())["pages_viewed"].tolist() == [1, 3, 1, 1]


def test_purchase_without_items_is_quarantined_with_its_line():
    kept, rejected = carts.quarantine_purchases_without_items(carts.fill_blank_counts(sessions()))
    assert kept["session_id"].tolist() == ["s0", "s1", "s2"]
    assert rejected[["source_file", "source_row", "rule"]].values.tolist() == [
        ["carts/a.csv", 5, "purchase without items"]]


def test_duplicate_session_ids_keep_the_first_row():
    df = sessions(session_id=["s0", "s1", "s0", "s3"])
    out, rejected = carts.clean_sessions(df)
    assert out["session_id"].tolist() == ["s0", "s1"]   # s3 is a purchase without items
    assert set(rejected["rule"]) == {"unique id", "purchase without items"}
    assert out.dtypes["items_added"] == "int32" and out.dtypes["abandoned"] == bool


def customer_tables():
    where = {"source_file": "customers/market_file.csv"}
    market = pd.DataFrame({
        **where, "source_row": [2, 3, 4, 5], "customer_id": [1, 2, 3, 4],
        "activity_declined": [True, False, False, True], "service_tier": "standard",
        "marketing_consent": True, "marketing_6m": 3.4, "marketing_this_month": 5,
        "tenure_days": 100, "promo_share": 0.5, "top_category": "Kitchenware",
        "categories_per_visit": 2, "unpaid_items_quarter": 1, "service_errors": 0, "pages_per_visit": 5,
    })
    periods = ["revenue_2m_ago", "revenue_last_month", "revenue_this_month"]
    money = pd.DataFrame({
        "source_file": "customers/market_money.csv", "source_row": range(2, 17),
        "customer_id": [c for c in (1, 2, 3, 4, 9) for _ in periods],
        "period": periods * 5,
        "revenue": [4000, 5000, 5100, 0, 4800, 5000, 4500, 4600, 90000, 4400, 4700, 4900, 1, 1, 1],
    })
    time = pd.DataFrame({
        "source_file": "customers/market_time.csv", "source_row": range(2, 10),
        "customer_id": [1, 1, 2, 2, 3, 3, 4, 4], "period": ["minutes_last_month", "minutes_this_month"] * 4,
        "minutes": [10, 12, 11, 9, 8, 7, 13, 14],
    })
    profit = pd.DataFrame({"source_file": "customers/money.csv", "source_row": [2, 3, 4, 5],
                           "customer_id": [1, 2, 3, 4], "profit": [0.98, 4.16, 3.13, 4.87]})
    return market, money, time, profit


def test_pivot_join_and_quarantines():
    out, rejected = customers.clean_customers(*customer_tables())
    assert out["customer_id"].tolist() == [1, 4]
    assert out.loc[0, ["revenue_2m_ago", "revenue_last_month", "revenue_this_month"]].tolist() == [4000, 5000, 5100]
    assert out.loc[0, ["minutes_last_month", "minutes_this_month"]].tolist() == [10, 12]
    assert out.loc[1, "profit"] == 4.87
    rules = dict(zip(zip(rejected["source_file"], rejected["source_row"]), rejected["rule"]))
    assert rules[("customers/market_file.csv", 3)] == "active three months"      # customer 2
    assert rules[("customers/market_file.csv", 4)] == "revenue outlier"          # customer 3
    assert ("customers/market_money.csv", 14) in rules                           # id 9 unknown
    assert "revenue_2m_ago" in rejected.loc[rejected["rule"] == "active three months", "reason"].iloc[0]


def test_customer_missing_from_a_side_table_is_rejected_not_dropped():
    market, money, time, profit = customer_tables()
    out, rejected = customers.clean_customers(market, money, time[time["customer_id"] != 4], profit)
    assert 4 not in out["customer_id"].tolist()
    row = rejected[rejected["rule"] == "minutes present"]
    assert row["source_row"].tolist() == [5]
    assert "minutes_last_month" in row["reason"].iloc[0]


# --- helpers that keep 10 M-row cleaning cheap ------------------------------------------------

@pytest.mark.parametrize("make", [
    lambda v: pd.Series(v, dtype="str"),
    lambda v: pd.Series(v, dtype=object),
    lambda v: pd.Series(pa.chunked_array([pa.array(v[:3]), pa.array(["pad"] + v[3:]).slice(1)]), dtype="str"),
])
def test_duplicated_values_is_pandas_duplicated(make):
    values = ["a", "b", "a", None, None, "", "", "x" * 40, "x" * 40, "x" * 39 + "y", "Session_ID_1",
              "Session_ID_10", "Session_ID_1", "ё", "ё"]
    series = make(values)
    assert carts.duplicated_values(series).tolist() == series.duplicated(keep="first").tolist()


def test_duplicated_values_survives_hash_collisions(monkeypatch):
    monkeypatch.setattr(carts, "_hash_text", lambda text: np.zeros(len(text), np.uint64))  # all collide
    series = pd.Series(["a", "b", "a", "c", "b"], dtype="str")
    assert carts.duplicated_values(series).tolist() == [False, False, True, False, True]


def test_keep_rows_is_boolean_indexing():
    df = sessions()
    keep = np.array([True, False, True, True])
    out = keep_rows(df, keep)
    pd.testing.assert_frame_equal(out, df[keep].reset_index(drop=True))


def test_entry_page_does_not_wrap_narrow_counts():
    df = sessions(pages_viewed=np.array([127, 0, 5, 126], dtype=np.int8))
    assert carts.count_entry_page(df)["pages_viewed"].tolist() == [128, 1, 6, 127]


def test_cleaning_leaves_its_input_alone():
    df = sessions()
    before = df.copy()
    carts.clean_sessions(df)
    pd.testing.assert_frame_equal(df, before)
