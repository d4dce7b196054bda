"""Turn raw text cells into typed columns, separating rows that break a rule.

Two kinds of failure, handled differently:

* unusable input (a required column is missing, no data row) stops the run with an
  :class:`ETLError` naming file, column, row and rule;
* a bad cell (a word in a number column, an unknown label, a value out of range) rejects
  that row only: it is returned with the rule it broke and its raw cells, for the
  ``rejected_rows`` table.

Each block of a file is first parsed with pyarrow converting the cells itself (numbers as
float64, labels dictionary-encoded): the fast path, for blocks where every row is valid. The
same rules are then checked on whole columns; range rules are declared with pandera and
checked on each column's smallest and largest value (``in_range`` holds for every value iff
it holds for those two). A block where anything fails is halved until the failing pieces are
small, and those pieces go through :func:`parse_batch`, which parses text cells with pyarrow
compute kernels and finds each bad cell, its rule and the row's raw cells. Both paths accept
exactly the same values: pyarrow's CSV converter and ``cast`` share one number parser.

Valid rows are kept per block in compact storage types (:class:`TypedRows`) and joined column
by column at the end (:func:`typed_frame`), so memory stays near one copy of the typed data.
"""
from __future__ import annotations

import ctypes
import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pyarrow as pyarrow
import pyarrow.compute as pc
from pandera.errors import SchemaErrors

from etl.errors import ETLError
from etl.raw_specs import FLOAT, INT, LABEL, TEXT, ColumnSpec, FileSpec
from etl.readers import RawBatch, RawSource, json_rows, normalise_header, trim_whitespace

log = logging.getLogger(__name__)

REJECTION_COLUMNS = ["source_file", "source_row", "column_name", "rule", "reason"]
_NUMBER = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"
# A block with a bad cell is halved until the pieces are this small, then checked cell by cell.
SMALL_BLOCK_BYTES = 2 << 20
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


def rejections(rows: pd.DataFrame, column: str, rule: str, reason: str | pd.Series | list[str],
               ) -> pd.DataFrame:
    """Rejection records for ``rows`` (which carry ``source_file`` and ``source_row``)."""
    if isinstance(reason, pd.Series):
        reason = reason.to_numpy()
    return pd.DataFrame({"source_file": rows["source_file"].astype(str).to_numpy(),
                         "source_row": rows["source_row"].to_numpy(dtype="int64"),
                         "column_name": column, "rule": rule, "reason": reason},
                        columns=REJECTION_COLUMNS)


def keep_rows(df: pd.DataFrame, keep: np.ndarray) -> pd.DataFrame:
    """``df[keep]`` for large frames: each column filtered by the boolean mask on its own.

    pandas filters an Arrow text column with ``take``, which first joins all its chunks (a
    copy of every string, seconds at 10 M rows); masking each column's array filters Arrow
    text chunk by chunk. The result is numbered 0..n-1 (rows are identified by ``source_row``).
    """
    return pd.DataFrame({name: df[name].array[keep] for name in df.columns}, copy=False)


def empty_rejections() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="int64" if c == "source_row" else "str")
                         for c in REJECTION_COLUMNS})


def locate_columns(source: RawSource, spec: FileSpec) -> dict[str, str]:
    """Map each spec column to the file's header cell; a missing column stops the run."""
    found = {}
    for col in spec.columns:
        key = normalise_header(col.raw)
        if key not in source.header:
            raise ETLError(source.name, column=col.raw, rule="required column",
                           message=f"is missing; the header has {source.header}")
        found[col.name] = key
    source.extra_columns = [c for c in source.header if c not in found.values()]
    if source.extra_columns:
        log.info("%s: ignoring extra columns %s", source.name, source.extra_columns)
    return found


# --- storage types: the smallest exact type of each kind of column -------------------------

def _smallest_int(values: np.ndarray) -> np.ndarray:
    """Whole numbers in the narrowest integer type that holds them all (float64 if none does)."""
    if len(values) == 0:
        return values.astype(np.int8)
    low, high = values.min(), values.max()
    for dtype in _INT_TYPES:
        info = np.iinfo(dtype)
        if info.min <= low and high <= info.max:
            return values.astype(dtype)
    return values


def _store_numbers(values: np.ndarray, col: ColumnSpec) -> np.ndarray:
    """Float64 values (NaN for blanks) of valid rows in their storage type.

    Required whole numbers take the narrowest integer type of their values; blanks allowed,
    counts stay float (NaN) for the cleaning step to fill, as float32 when the range rule
    keeps them below 2**24 (exact there).
    """
    if col.kind == INT and not col.nullable:
        return _smallest_int(values)
    if col.kind == INT and col.max is not None and col.max < 2**24 and (col.min or 0) > -2**24:
        return values.astype(np.float32)
    return values


def _label_values(col: ColumnSpec) -> list:
    return list(col.labels.values())


def _is_flag(col: ColumnSpec) -> bool:
    return all(isinstance(v, bool) for v in _label_values(col))


def _categories(col: ColumnSpec) -> list:
    return list(dict.fromkeys(_label_values(col)))


def _store_labels(index: np.ndarray, col: ColumnSpec) -> np.ndarray:
    """Label indexes (-1 for blank) of valid rows: booleans, or category codes.

    Yes/no labels become bool (float32 with NaN when blanks are allowed); other labels
    become codes of :func:`_categories` (-1 for blank).
    """
    values = _label_values(col)
    if _is_flag(col):
        flags = np.asarray(values, dtype=bool)[np.maximum(index, 0)]
        if not col.nullable:
            return flags
        out = flags.astype(np.float32)
        out[index < 0] = np.nan
        return out
    categories = _categories(col)
    codes = np.array([categories.index(v) for v in values], dtype=np.int16)[np.maximum(index, 0)]
    codes[index < 0] = -1
    return codes


def _label_index(text: pyarrow.Array, col: ColumnSpec) -> tuple[np.ndarray, np.ndarray]:
    """Index of each (trimmed, case-insensitive) label in the spec: -1 when unknown; and blanks."""
    keys = list(col.labels)
    index = pc.index_in(pc.utf8_lower(text), value_set=pyarrow.array(keys, pyarrow.string()))
    index = np.asarray(index.fill_null(-1).to_numpy(zero_copy_only=False), dtype=np.int64)
    blank = pc.utf8_length(text).to_numpy(zero_copy_only=False) == 0
    return index, blank


# --- fast path: pyarrow converts the cells, rules are checked on whole columns -------------

def _arrow_type(col: ColumnSpec) -> pyarrow.DataType:
    if col.kind in (INT, FLOAT):
        return pyarrow.float64()
    if col.kind == LABEL:
        return pyarrow.dictionary(pyarrow.int32(), pyarrow.string())
    return pyarrow.string()


def _range_schema(spec: FileSpec) -> pa.DataFrameSchema:
    return pa.DataFrameSchema({
        col.name: pa.Column(checks=pa.Check.in_range(col.min, col.max), nullable=True)
        for col in spec.columns if col.kind in (INT, FLOAT)
    })


def _extremes_in_range(numbers: dict[str, np.ndarray], spec: FileSpec) -> bool:
    """Whether pandera's range rules hold for every value: checked on each column's extremes."""
    extremes = {}
    for name, values in numbers.items():
        finite = values[~np.isnan(values)] if np.isnan(values).any() else values
        extremes[name] = [finite.min(), finite.max()] if len(finite) else [np.nan, np.nan]
    try:
        _range_schema(spec).validate(pd.DataFrame(extremes, dtype="float64"), lazy=True)
    except SchemaErrors:
        return False
    return True


def _typed_columns(batch: RawBatch, spec: FileSpec, headers: dict[str, str]) -> dict[str, Column] | None:
    """Storage columns of a batch pyarrow has converted, or None when any row breaks a rule.

    The rules are those of :func:`parse_batch`; None sends the block there (in pieces) to
    find which rows and why.
    """
    columns: dict[str, Column] = {"source_row": _smallest_int(batch.lines)}
    numbers: dict[str, np.ndarray] = {}
    blanks = []
    for col in spec.columns:
        cells = batch.table[headers[col.name]]
        if col.kind in (INT, FLOAT):
            values = cells.to_numpy()                      # float64, NaN for blank cells
            nan = np.isnan(values)
            if np.count_nonzero(nan) != cells.null_count or np.isinf(values).any():
                return None                                # 'nan' / 'inf' written in a cell
            if col.kind == INT and ((np.trunc(values) != values) & ~nan).any():
                return None                                # not a whole number
            blank = nan
            numbers[col.name] = values
            columns[col.name] = _store_numbers(values, col)
        elif col.kind == LABEL:
            index, blank = [], []
            for chunk in cells.chunks:                     # labels are looked up once per distinct cell
                words, empty = _label_index(pc.utf8_trim_whitespace(chunk.dictionary), col)
                codes = chunk.indices.to_numpy(zero_copy_only=False)
                index.append(words[codes]); blank.append(empty[codes])
            index = np.concatenate(index) if index else np.zeros(0, np.int64)
            blank = np.concatenate(blank) if blank else np.zeros(0, bool)
            if (index[~blank] < 0).any():
                return None                                # a label that is not allowed
            columns[col.name] = _store_labels(index, col)   # -1 (blank) only where allowed
        else:
            text = trim_whitespace(cells)
            blank = pc.utf8_length(text).to_numpy(zero_copy_only=False) == 0
            columns[col.name] = text
        if not col.nullable and blank.any():
            return None                                    # a required value is blank
        blanks.append(blank)
    if all(col.nullable for col in spec.columns) and np.logical_and.reduce(blanks).any():
        return None                                        # a blank row
    if not _extremes_in_range(numbers, spec):
        return None
    return columns


# --- cell by cell: finds each bad cell, its rule and the raw cells of its row --------------

def _parse_number(text: pyarrow.Array, col: ColumnSpec) -> tuple[np.ndarray, np.ndarray, bool]:
    """Numbers with a decimal point or a decimal comma.

    Returns float values (NaN for blanks and bad cells), a 'not a number' mask, and whether
    decimal commas were seen. 'nan' and 'inf' are not numbers: a count cannot be either.
    """
    commas = pc.any(pc.match_substring(text, ",")).as_py()
    if commas:
        comma_only = pc.and_(pc.match_substring(text, ","), pc.invert(pc.match_substring(text, ".")))
        text = pc.if_else(comma_only, pc.replace_substring(text, ",", "."), text)
    blank = pc.equal(pc.utf8_length(text), 0)
    try:  # fast path: every non-blank cell is a number
        values = pc.cast(pc.if_else(blank, None, text), pyarrow.float64()).to_numpy(zero_copy_only=False)
        bad = np.zeros(len(values), dtype=bool)
    except pyarrow.ArrowInvalid:
        valid = pc.match_substring_regex(text, _NUMBER)
        values = pc.cast(pc.if_else(valid, text, None), pyarrow.float64()).to_numpy(zero_copy_only=False)
        bad = ~valid.to_numpy(zero_copy_only=False) & ~blank.to_numpy(zero_copy_only=False)
    bad |= ~np.isfinite(values) & ~blank.to_numpy(zero_copy_only=False)
    if col.kind == INT:
        bad |= ~np.isnan(values) & (values != np.floor(values))
    values = np.where(bad, np.nan, values)   # a bad cell is reported once, not also as out of range
    return values, bad, bool(commas)


def parse_batch(batch: RawBatch, source: RawSource, spec: FileSpec, headers: dict[str, str],
                ) -> tuple[dict[str, Column], pd.DataFrame]:
    """Storage columns of the valid rows and rejections (with raw cells) of a text batch."""
    where = pd.DataFrame({"source_file": pd.Categorical.from_codes(np.zeros(len(batch.lines), np.int8),
                                                                   [source.name]),
                          "source_row": batch.lines})
    problems = [empty_rejections()]
    cells = {name: pc.utf8_trim_whitespace(batch.table[key].combine_chunks()) for name, key in headers.items()}
    all_blank = np.logical_and.reduce([pc.utf8_length(c).to_numpy() == 0 for c in cells.values()])
    problems.append(rejections(where[all_blank], "", "blank row", "every cell is blank"))
    values: dict[str, object] = {}
    for col in spec.columns:
        text = cells[col.name]
        blank = pc.utf8_length(text).to_numpy() == 0
        if not col.nullable and (blank & ~all_blank).any():
            problems.append(rejections(where[blank & ~all_blank], col.raw, "required value", "value is blank"))
        if col.kind in (INT, FLOAT):
            values[col.name], bad, commas = _parse_number(text, col)
            if commas and source.decimal != ",":
                source.decimal = ","
                log.info("%s: column %r uses decimal commas", source.name, col.raw)
            what = "a whole number" if col.kind == INT else "a number"
        elif col.kind == LABEL:
            index, _ = _label_index(text, col)
            bad = (index < 0) & ~blank
            values[col.name] = index
            what = "one of: " + ", ".join(col.labels)
        else:
            bad = np.zeros(len(blank), dtype=bool)
            values[col.name] = text
        if bad.any():
            shown = pd.Series(text.filter(pyarrow.array(bad)).to_pylist()).str.slice(0, 40)
            problems.append(rejections(where[bad], col.raw, "number" if col.kind != LABEL else "allowed labels",
                                       "'" + shown + f"' is not {what}"))
    numbers = pd.DataFrame({c.name: values[c.name] for c in spec.columns if c.kind in (INT, FLOAT)})
    try:
        _range_schema(spec).validate(numbers, lazy=True)
    except SchemaErrors as exc:
        cases = exc.failure_cases.dropna(subset=["index"])
        for name, group in cases.groupby("column"):
            col = spec.column(name)
            problems.append(rejections(where.loc[group["index"].astype("int64")], col.raw, "range",
                                       group["failure_case"].astype(str) + f" is outside [{col.min:g}, {col.max:g}]"))
    rejected = pd.concat(problems, ignore_index=True)
    bad_rows = np.isin(batch.lines, rejected["source_row"].to_numpy())
    if bad_rows.any():
        raw = pd.Series(json_rows(batch.table.filter(pyarrow.array(bad_rows))), index=batch.lines[bad_rows], dtype="str")
        rejected["raw_values"] = rejected["source_row"].map(raw)
    else:
        rejected["raw_values"] = pd.Series(dtype="str")
    keep = ~bad_rows
    columns: dict[str, Column] = {"source_row": _smallest_int(batch.lines[keep])}
    for col in spec.columns:
        value = values[col.name]
        if col.kind in (INT, FLOAT):
            columns[col.name] = _store_numbers(value[keep], col)
        elif col.kind == LABEL:
            columns[col.name] = _store_labels(value[keep], col)   # -1 (blank) only where allowed
        else:
            columns[col.name] = value.filter(pyarrow.array(keep))
    return columns, rejected


# --- memory --------------------------------------------------------------------------------

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


# --- whole files ---------------------------------------------------------------------------

def parse_file(source: RawSource, spec: FileSpec) -> tuple[list[TypedRows], pd.DataFrame]:
    """Valid rows (in blocks) and rejections of a whole file; stops when no row is usable."""
    headers = locate_columns(source, spec)
    types = {headers[col.name]: _arrow_type(col) for col in spec.columns}
    parts: list[TypedRows] = []
    problems = [empty_rejections().assign(raw_values=pd.Series(dtype="str"))]
    for block in source.blocks():
        pieces = [block]
        while pieces:
            piece = pieces.pop()
            batch = source.parse(piece, types)
            columns = _typed_columns(batch, spec, headers) if batch is not None else None
            if columns is not None:
                parts.append(TypedRows(source.name, columns))
                continue
            halves = piece.split() if len(piece.data) > SMALL_BLOCK_BYTES else None
            if halves:
                pieces.extend(reversed(halves))           # the first half is parsed first
                continue
            columns, rejected = parse_batch(source.parse(piece), source, spec, headers)
            parts.append(TypedRows(source.name, columns))
            problems.append(rejected)
    if source.rows_read == 0:
        raise ETLError(source.name, rule="not empty", message="has a header but no data rows")
    rejected = pd.concat(problems, ignore_index=True)
    if sum(len(p) for p in parts) == 0:
        first = rejected.iloc[0]
        raise ETLError(source.name, column=first["column_name"] or None, row=int(first["source_row"]),
                       rule=first["rule"], message=f"no usable row; the first: {first['reason']}")
    return parts, rejected


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
        elif col is not None and col.kind == LABEL and not _is_flag(col):
            out[name] = pd.Categorical.from_codes(np.concatenate(pieces), categories=_categories(col))
        else:
            out[name] = np.concatenate(pieces)
        del pieces
    return pd.DataFrame(out, copy=False)


def parse_source(source: RawSource, spec: FileSpec) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Typed valid rows and rejections of a whole file; stops when no row is usable."""
    parts, rejected = parse_file(source, spec)
    return typed_frame(parts, spec), rejected
