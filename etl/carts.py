"""Cleaning of cart sessions (seed 000, the original team's ``proceso_etl.py``).

Each step is a DataFrame -> DataFrame function without I/O; the typed input comes from
:func:`etl.validate.parse_source` and carries ``source_file`` / ``source_row`` so every
rejection points at a line of a file. Steps replace only the columns they change (no copy of
the whole frame), because a 10 M-session export must fit twice in the memory budget.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from etl.schema import SESSIONS_COLUMNS
from etl.typed_rows import release_freed_memory
from etl.validate import keep_rows, rejections

FILLED_WITH_MEDIAN = ("items_added", "cart_views")
WHERE = ["source_file", "source_row"]      # what a rejection needs of a row
_CONTRACT_TYPES = {"INTEGER": "int32", "BOOLEAN": "bool"}


def duplicated_values(values: pd.Series) -> np.ndarray:
    """``values.duplicated(keep="first")`` for a long text column, as a numpy mask.

    pandas hashes 10 M strings as Python objects (seconds, gigabytes). Here each value gets a
    64-bit hash computed by numpy from its Arrow bytes; values with a unique hash cannot be
    duplicates, and only the rows sharing a hash (normally none) get pandas' exact check.
    """
    hashes = np.concatenate([_hash_text(chunk) for chunk in _arrow_chunks(values)] or [np.zeros(0, np.uint64)])
    ordered = np.sort(hashes)
    shared = ordered[1:][ordered[1:] == ordered[:-1]]
    mask = np.zeros(len(values), dtype=bool)
    if len(shared):
        candidates = np.isin(hashes, shared)
        mask[candidates] = values[candidates].duplicated(keep="first").to_numpy()
    return mask


def _arrow_chunks(values: pd.Series) -> list[pa.Array]:
    arrow = pa.array(values, type=pa.string()) if values.dtype == object else pa.array(values)
    return arrow.chunks if isinstance(arrow, pa.ChunkedArray) else [arrow]


def _hash_text(text: pa.Array) -> np.ndarray:
    """A 64-bit hash of each string (equal strings, equal hashes; nulls all hash to 0)."""
    offset_type = np.int64 if pa.types.is_large_string(text.type) else np.int32
    offsets = np.frombuffer(text.buffers()[1], dtype=offset_type)[text.offset:text.offset + len(text) + 1]
    start, length = offsets[:-1].astype(np.int64), np.diff(offsets).astype(np.int64)
    raw = text.buffers()[2]
    data = np.concatenate([np.frombuffer(raw, dtype=np.uint8) if raw is not None else np.zeros(0, np.uint8),
                           np.zeros(8, np.uint8)])     # so the last 8-byte read stays inside
    words = np.ndarray((len(data) - 7,), dtype="<u8", buffer=data, strides=(1,))  # a word at every byte
    hashes = length.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    for k in range(0, int(length.max(initial=0)), 8):
        rest = np.clip(length - k, 0, 8).astype(np.uint64)
        keep = np.where(rest == 8, np.uint64(2**64 - 1), (np.uint64(1) << (rest * np.uint64(8))) - np.uint64(1))
        word = words[np.minimum(start + k, len(words) - 1)] & keep
        hashes = (hashes ^ word) * np.uint64(0xFF51AFD7ED558CCD)
        hashes ^= hashes >> np.uint64(33)
    if text.null_count:
        hashes[np.asarray(text.is_null())] = 0
    return hashes


def drop_duplicate_sessions(df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A session id seen twice keeps its first row; later ones are rejected, not merged."""
    dup = duplicated_values(df["session_id"])
    reason = "session id already seen in an earlier row"
    return (keep_rows(df, ~dup) if dup.any() else df), rejections(df[WHERE][dup], "ID", "unique id", reason)


def fill_blank_counts(df: pd.DataFrame) -> pd.DataFrame:
    """Blank item and cart-view counts (9 + 9 in the published file) get the column median.

    The median is taken over the rows being loaded, as the original team did; a blank is an
    export glitch, not a zero.
    """
    filled = {}
    for column in FILLED_WITH_MEDIAN:
        median = df[column].median()
        filled[column] = df[column].fillna(0 if pd.isna(median) else round(median))
    return df.assign(**filled)


def count_entry_page(df: pd.DataFrame) -> pd.DataFrame:
    """Pages viewed are counted from 0 in the export; entering the site is a page view.

    Widened to the contract's int32 first: the typed column may be as narrow as int8, where
    adding 1 to 127 would wrap around.
    """
    return df.assign(pages_viewed=df["pages_viewed"].astype("int32") + 1)


def quarantine_purchases_without_items(df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A purchased session with 0 items in the cart is impossible (126 rows in the real file)."""
    bad = ((~df["abandoned"].astype(bool)) & (df["items_added"] == 0)).to_numpy()
    reason = "session is marked purchased but has 0 items added to the cart"
    return keep_rows(df, ~bad), rejections(df[WHERE][bad], "No_Items_Added_InCart", "purchase without items", reason)


def to_contract(df: pd.DataFrame) -> pd.DataFrame:
    """Columns in contract order with contract types (a column already in its type is not copied)."""
    types = {c: _CONTRACT_TYPES[t] for c, t in SESSIONS_COLUMNS.items() if t in _CONTRACT_TYPES}
    return df[list(SESSIONS_COLUMNS)].astype(types)


def clean_sessions(typed: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """All carts cleaning steps in order; returns (sessions, rejections).

    Pass the typed frame without keeping another reference to it: it is released as soon as
    the steps no longer need it, so the frame is never held three times.
    """
    df, duplicates = drop_duplicate_sessions(typed)
    del typed
    df = count_entry_page(fill_blank_counts(df))
    df, impossible = quarantine_purchases_without_items(df)
    release_freed_memory()                 # the frame before the quarantine, before widening
    return to_contract(df), pd.concat([duplicates, impossible], ignore_index=True)
