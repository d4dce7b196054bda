"""Numbers as exports write them, with the decimal mark decided once per column and file.

Russian and Spanish Excel write ``0,98``, others ``0.98``. A cell such as ``4,971`` means 4.971
in the first and 4971 in the second, so it is never guessed from the cell alone: the first
rows of a column (in file order) that hold numbers with exactly one kind of mark decide the
column's mark by majority, and every cell that uses the other one is rejected with rule
``decimal mark``, naming the first row with the column's mark. Cells with both marks (``1.234,5``) are not
numbers: thousands separators are not accepted.

The fast path of :mod:`etl.validate` lets pyarrow convert the columns that have decided with
their mark (:func:`block_decimal_point`) and reads the undecided ones as text through
:func:`parse_number`, so both paths accept exactly the same cells and a mark is decided by
the cells that contain it, wherever the blocks fall.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from etl.arrow_text import holds_bytes
from etl.raw_specs import INT, ColumnSpec

NUMBER = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"
DECIMAL_MARK = "decimal mark"
_NAMES = {",": "a decimal comma", ".": "a decimal point"}


def block_decimal_point(marks: dict[str, tuple[str, int]]) -> str | None:
    """pyarrow's decimal point for the columns that have decided (the others are read as text
    and go through :func:`parse_number`), or None when they use different marks (then every
    block is checked cell by cell)."""
    used = {mark for mark, _ in marks.values()}
    if len(used) > 1:
        return None
    return used.pop() if used else "."


def parse_number(text: pa.Array, col: ColumnSpec, decided: tuple[str, int] | None, lines: np.ndarray,
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[str, int] | None]:
    """Float values of trimmed text cells (NaN for blanks and bad cells).

    Returns the values, a 'not a number' mask, a 'contradicts the column's decimal mark'
    mask, and the column's mark (decided here when ``decided`` is None and a cell shows one).
    'nan' and 'inf' are not numbers: a count cannot be either.
    """
    contradicts = np.zeros(len(text), bool)
    if holds_bytes(pa.chunked_array([text]), lambda b: (b == ord(",")) | (b == ord("."))):
        comma = pc.match_substring(text, ",")
        point = pc.match_substring(text, ".")
        swapped = pc.replace_substring(text, ",", ".")
        with_comma = _mask(pc.and_(pc.and_(comma, pc.invert(point)), pc.match_substring_regex(swapped, NUMBER)))
        with_point = _mask(pc.and_(pc.and_(point, pc.invert(comma)), pc.match_substring_regex(text, NUMBER)))
        if decided is None and (with_comma.any() or with_point.any()):
            commas, points = int(with_comma.sum()), int(with_point.sum())
            if commas == points:      # a tie: the first cell with a mark
                first = np.flatnonzero(with_comma | with_point)[0]
                mark = "," if with_comma[first] else "."
            else:
                mark = "," if commas > points else "."
            decided = (mark, int(lines[np.flatnonzero(with_comma if mark == "," else with_point)[0]]))
        mark = decided[0] if decided else None
        if mark == ",":
            contradicts = with_point
            text = pc.if_else(pa.array(with_comma), swapped, text)
        elif mark == ".":
            contradicts = with_comma
    blank = _mask(pc.equal(pc.utf8_length(text), 0))
    try:  # fast path: every non-blank cell is a number
        values = pc.cast(pc.if_else(pa.array(blank), None, text), pa.float64()).to_numpy(zero_copy_only=False)
        bad = np.zeros(len(values), dtype=bool)
    except pa.ArrowInvalid:
        valid = pc.match_substring_regex(text, NUMBER)
        values = pc.cast(pc.if_else(valid, text, None), pa.float64()).to_numpy(zero_copy_only=False)
        bad = ~_mask(valid) & ~blank
    bad |= ~np.isfinite(values) & ~blank
    if col.kind == INT:
        bad |= ~np.isnan(values) & (values != np.floor(values))
    bad &= ~contradicts
    values = np.where(bad | contradicts, np.nan, values)   # a bad cell is reported once, not also as out of range
    return values, bad, contradicts, decided


def contradiction_reason(cell: str, decided: tuple[str, int]) -> str:
    mark, line = decided
    other = "," if mark == "." else "."
    return f"'{cell}' uses {_NAMES[other]}; this column uses {_NAMES[mark]} (decided at row {line})"


def _mask(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    return np.asarray(pc.fill_null(values, False).to_numpy(zero_copy_only=False), dtype=bool)
