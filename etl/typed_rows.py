"""Valid rows in compact storage types, joined column by column into one frame.

Each block of a file yields its valid rows as :class:`TypedRows` in the smallest exact type
of each kind of column (narrow integers, float32 counts, booleans, category codes, Arrow
text); :func:`typed_frame` joins them at the end, taking each column out of the parts as it
goes, so memory stays near one copy of the typed data.
"""
from __future__ import annotations

import ctypes
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow

from etl.raw_specs import INT, LABEL, TEXT, ColumnSpec, FileSpec

_INT_TYPES = (np.int8, np.int16, np.int32, np.int64)

Column = np.ndarray | pyarrow.Array


@dataclass
class TypedRows:
    """Valid rows of consecutive lines of one file, as columns in their storage types.

    ``columns`` holds ``source_row`` and every spec column: numpy arrays (numbers, booleans,
    category codes) or a pyarrow string array (text).
    """

    source_file: str
    columns: dict[str, Column]

    def __len__(self) -> int:
        return len(self.columns["source_row"])


def smallest_int(values: np.ndarray) -> np.ndarray:
    """Whole numbers in the narrowest integer type that holds them all (float64 if none does)."""
    if len(values) == 0:
        return values.astype(np.int8)
    low, high = values.min(), values.max()
    for dtype in _INT_TYPES:
        info = np.iinfo(dtype)
        if info.min <= low and high <= info.max:
            return values.astype(dtype)
    return values


def store_numbers(values: np.ndarray, col: ColumnSpec) -> np.ndarray:
    """Float64 values (NaN for blanks) of valid rows in their storage type.

    Required whole numbers take the narrowest integer type of their values; blanks allowed,
    counts stay float (NaN) for the cleaning step to fill, as float32 when the range rule
    keeps them below 2**24 (exact there).
    """
    if col.kind == INT and not col.nullable:
        return smallest_int(values)
    if col.kind == INT and col.max is not None and col.max < 2**24 and (col.min or 0) > -2**24:
        return values.astype(np.float32)
    return values


def _label_values(col: ColumnSpec) -> list:
    return list(col.labels.values())


def is_flag(col: ColumnSpec) -> bool:
    return all(isinstance(v, bool) for v in _label_values(col))


def categories(col: ColumnSpec) -> list:
    return list(dict.fromkeys(_label_values(col)))


def store_labels(index: np.ndarray, col: ColumnSpec) -> np.ndarray:
    """Label indexes (-1 for blank) of valid rows: booleans, or category codes.

    Yes/no labels become bool (float32 with NaN when blanks are allowed); other labels
    become codes of :func:`categories` (-1 for blank).
    """
    values = _label_values(col)
    if is_flag(col):
        flags = np.asarray(values, dtype=bool)[np.maximum(index, 0)]
        if not col.nullable:
            return flags
        out = flags.astype(np.float32)
        out[index < 0] = np.nan
        return out
    labels = categories(col)
    codes = np.array([labels.index(v) for v in values], dtype=np.int16)[np.maximum(index, 0)]
    codes[index < 0] = -1
    return codes


try:  # glibc only; other C libraries return freed memory as they see fit
    _LIBC = ctypes.CDLL("libc.so.6")
    _LIBC.malloc_trim.argtypes = [ctypes.c_size_t]
except (OSError, AttributeError):
    _LIBC = None


def release_freed_memory() -> None:
    """Hand memory freed so far back to the OS, before a step that allocates a lot.

    Arrow's allocator and glibc's malloc (numpy) keep freed pages for reuse; after reading or
    filtering 10 M rows that is hundreds of MB the next step, and the peak RSS, would carry.
    """
    pyarrow.default_memory_pool().release_unused()
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


def typed_frame(parts: list[TypedRows], spec: FileSpec) -> pd.DataFrame:
    """All valid rows as one DataFrame: ``source_file``, ``source_row`` and the spec columns.

    Joined column by column, taking each column out of the parts as it goes, so the peak is
    one copy of the data plus one column. Text columns are not copied at all (Arrow chunks).
    """
    files = list(dict.fromkeys(p.source_file for p in parts))
    codes = np.repeat([files.index(p.source_file) for p in parts], [len(p) for p in parts])
    out: dict[str, object] = {"source_file": pd.Categorical.from_codes(codes, categories=files)}
    for name in ["source_row"] + [col.name for col in spec.columns]:
        pieces = [p.columns.pop(name) for p in parts]
        col = spec.column(name) if name != "source_row" else None
        if col is not None and col.kind == TEXT:
            out[name] = pd.Series(pyarrow.chunked_array(pieces, type=pyarrow.string()), dtype="str")
        elif col is not None and col.kind == LABEL and not is_flag(col):
            out[name] = pd.Categorical.from_codes(np.concatenate(pieces), categories=categories(col))
        else:
            out[name] = np.concatenate(pieces)
        del pieces
    return pd.DataFrame(out, copy=False)
