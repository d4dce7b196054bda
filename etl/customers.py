"""Cleaning of "One Click" customers (seed 002): four raw tables into one row per customer.

Each step is a DataFrame -> DataFrame function without I/O. Typed inputs come from
:func:`etl.validate.parse_table` (labels and typos are already normalised there) and carry
``source_file`` / ``source_row`` so every rejection points at a line of a file.
"""
from __future__ import annotations

import pandas as pd

from etl.raw_specs import REVENUE_PERIODS
from etl.schema import CUSTOMERS_COLUMNS
from etl.validate import rejections

REVENUE_COLUMNS = list(dict.fromkeys(REVENUE_PERIODS.values()))
MINUTES_COLUMNS = ["minutes_last_month", "minutes_this_month"]
# A month's revenue above this multiple of that month's median is an entry error
# (the published file has one: 106,862 against a median of ~5,000).
OUTLIER_FACTOR = 10


def _flagged(flags: pd.DataFrame, prefix: str) -> list[str]:
    """One sentence per row naming the flagged columns, e.g. 'no revenue in revenue_2m_ago'."""
    return [prefix + ", ".join(c for c, hit in zip(flags.columns, row) if hit) for row in flags.to_numpy()]


def drop_duplicate_ids(df: pd.DataFrame, raw_column: str, keys: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The first row of a key wins; later rows are rejected, never merged or summed."""
    dup = df.duplicated(subset=keys, keep="first")
    return df[~dup], rejections(df[dup], raw_column, "unique id",
                                f"{' + '.join(keys)} already seen in an earlier row")


def drop_unknown_customers(df: pd.DataFrame, known: pd.Series) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rows of the side tables whose id is not in market_file cannot be attached to anyone."""
    unknown = ~df["customer_id"].isin(known)
    return df[~unknown], rejections(df[unknown], "id", "known customer", "id is not in market_file.csv")


def pivot_periods(long: pd.DataFrame, value: str) -> pd.DataFrame:
    """One row per customer, one column per period (``period`` holds the English column name)."""
    wide = long.pivot(index="customer_id", columns="period", values=value)
    wide.columns.name = None
    return wide


def attach(customers: pd.DataFrame, wide: pd.DataFrame, columns: list[str], what: str,
           ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Left-join ``wide`` and reject customers that lack any of ``columns`` in it."""
    merged = customers.join(wide.reindex(columns=columns), on="customer_id")
    missing = merged[columns].isna().any(axis=1)
    reason = _flagged(merged.loc[missing, columns].isna(), f"no {what} for ")
    return merged[~missing], rejections(merged[missing], "id", f"{what} present", reason)


def quarantine_inactive(df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The seed keeps only customers with revenue in all three months (3 fail in the real data)."""
    zero = (df[REVENUE_COLUMNS] <= 0)
    bad = zero.any(axis=1)
    reason = _flagged(zero[bad], "no revenue in ")
    return df[~bad], rejections(df[bad], "id", "active three months", reason)


def quarantine_revenue_outliers(df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Revenue above ``OUTLIER_FACTOR`` x the month's median is quarantined (1 in the real data)."""
    limits = df[REVENUE_COLUMNS].median() * OUTLIER_FACTOR
    over = df[REVENUE_COLUMNS].gt(limits)
    bad = over.any(axis=1)
    reason = _flagged(over[bad], f"over {OUTLIER_FACTOR}x the month's median revenue: ")
    return df[~bad], rejections(df[bad], "id", "revenue outlier", reason)


def to_contract(df: pd.DataFrame) -> pd.DataFrame:
    out = df[list(CUSTOMERS_COLUMNS)].copy()
    for column, sql_type in CUSTOMERS_COLUMNS.items():
        if sql_type in ("INTEGER", "BIGINT"):
            out[column] = out[column].astype("int64" if sql_type == "BIGINT" else "int32")
        elif sql_type == "BOOLEAN":
            out[column] = out[column].astype(bool)
        elif sql_type == "DOUBLE":
            out[column] = out[column].astype("float64")
        else:
            out[column] = out[column].astype(str)
    return out.reset_index(drop=True)


def clean_customers(market: pd.DataFrame, money: pd.DataFrame, time: pd.DataFrame,
                    profit: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """All customer cleaning steps in order; returns (customers, rejections)."""
    found = []
    market, rej = drop_duplicate_ids(market, "id", ["customer_id"]); found.append(rej)
    known = market["customer_id"]
    sides = {}
    for name, frame, keys in (("revenue", money, ["customer_id", "period"]),
                              ("minutes", time, ["customer_id", "period"]),
                              ("profit", profit, ["customer_id"])):
        frame, rej = drop_unknown_customers(frame, known); found.append(rej)
        frame, rej = drop_duplicate_ids(frame, "id", keys); found.append(rej)
        sides[name] = frame
    df = market
    df, rej = attach(df, pivot_periods(sides["revenue"], "revenue"), REVENUE_COLUMNS, "revenue"); found.append(rej)
    df, rej = attach(df, pivot_periods(sides["minutes"], "minutes"), MINUTES_COLUMNS, "minutes"); found.append(rej)
    df, rej = attach(df, sides["profit"].set_index("customer_id")[["profit"]], ["profit"], "profit"); found.append(rej)
    df, rej = quarantine_inactive(df); found.append(rej)
    df, rej = quarantine_revenue_outliers(df); found.append(rej)
    return to_contract(df), pd.concat(found, ignore_index=True)
