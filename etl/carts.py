"""Cleaning of cart sessions (seed 000, the original team's ``proceso_etl.py``).

Each step is a DataFrame -> DataFrame function without I/O; the typed input comes from
:func:`etl.validate.parse_table` with the source line number as index.
"""
from __future__ import annotations

import pandas as pd

from etl.schema import SESSIONS_COLUMNS
from etl.validate import rejections

FILLED_WITH_MEDIAN = ("items_added", "cart_views")


def drop_duplicate_sessions(df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A session id seen twice keeps its first row; later ones are rejected, not merged."""
    dup = df["session_id"].duplicated(keep="first")
    return df[~dup], rejections(df[dup], "ID", "unique id", "session id already seen in an earlier row")


def fill_blank_counts(df: pd.DataFrame) -> pd.DataFrame:
    """Blank item and cart-view counts (9 + 9 in the published file) get the column median.

    The median is taken over the rows being loaded, as the original team did; a blank is an
    export glitch, not a zero.
    """
    out = df.copy()
    for column in FILLED_WITH_MEDIAN:
        median = out[column].median()
        out[column] = out[column].fillna(0 if pd.isna(median) else round(median))
    return out


def count_entry_page(df: pd.DataFrame) -> pd.DataFrame:
    """Pages viewed are counted from 0 in the export; entering the site is a page view."""
    return df.assign(pages_viewed=df["pages_viewed"] + 1)


def quarantine_purchases_without_items(df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A purchased session with 0 items in the cart is impossible (126 rows in the real file)."""
    bad = (~df["abandoned"].astype(bool)) & (df["items_added"] == 0)
    reason = "session is marked purchased but has 0 items added to the cart"
    return df[~bad], rejections(df[bad], "No_Items_Added_InCart", "purchase without items", reason)


def to_contract(df: pd.DataFrame) -> pd.DataFrame:
    """Columns in contract order with contract types."""
    out = df[list(SESSIONS_COLUMNS)].copy()
    for column, sql_type in SESSIONS_COLUMNS.items():
        if sql_type == "INTEGER":
            out[column] = out[column].astype("int32")
        elif sql_type == "BOOLEAN":
            out[column] = out[column].astype(bool)
    return out


def clean_sessions(typed: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """All carts cleaning steps in order; returns (sessions, rejections)."""
    df, duplicates = drop_duplicate_sessions(typed)
    df = count_entry_page(fill_blank_counts(df))
    df, impossible = quarantine_purchases_without_items(df)
    return to_contract(df), pd.concat([duplicates, impossible], ignore_index=True)
