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

import logging

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pyarrow as pyarrow
import pyarrow.compute as pc
from pandera.errors import SchemaErrors

from etl.errors import ETLError
from etl.raw_specs import FLOAT, INT, LABEL, TEXT, ColumnSpec, FileSpec
from etl.numbers import DECIMAL_MARK, block_decimal_point, contradiction_reason, parse_number
from etl.arrow_text import holds_bytes, json_rows, trim_whitespace
from etl.readers import RawBatch, RawSource, normalise_header
from etl.typed_rows import Column, TypedRows, smallest_int, store_labels, store_numbers, typed_frame

log = logging.getLogger(__name__)

REJECTION_COLUMNS = ["source_file", "source_row", "column_name", "rule", "reason"]
# A block with a bad cell is halved until the pieces are this small, then checked cell by cell.
SMALL_BLOCK_BYTES = 2 << 20
# Text cells (identifiers) are bounded and printable.
TEXT_MAX = 256
_CONTROL = r"[\x00-\x1f\x7f]"

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


def _label_index(text: pyarrow.Array, col: ColumnSpec) -> tuple[np.ndarray, np.ndarray]:
    """Index of each (trimmed, case-insensitive) label in the spec: -1 when unknown; and blanks."""
    keys = list(col.labels)
    index = pc.index_in(pc.utf8_lower(text), value_set=pyarrow.array(keys, pyarrow.string()))
    index = np.asarray(index.fill_null(-1).to_numpy(zero_copy_only=False), dtype=np.int64)
    blank = pc.utf8_length(text).to_numpy(zero_copy_only=False) == 0
    return index, blank


# --- fast path: pyarrow converts the cells, rules are checked on whole columns -------------

def _arrow_type(col: ColumnSpec, marks: dict[str, tuple[str, int]] | None = None) -> pyarrow.DataType:
    """How pyarrow reads a column on the fast path: a number column only once its decimal mark
    is decided (``marks``), before that as text for :func:`etl.numbers.parse_number`."""
    if col.kind in (INT, FLOAT):
        return pyarrow.float64() if marks is None or col.name in marks else pyarrow.string()
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


def _typed_columns(batch: RawBatch, spec: FileSpec, headers: dict[str, str],
                   marks: dict[str, tuple[str, int]] | None = None) -> dict[str, Column] | None:
    """Storage columns of a batch pyarrow has converted, or None when any row breaks a rule.

    The rules are those of :func:`parse_batch`; None sends the block there (in pieces) to
    find which rows and why. Number columns that pyarrow read as text (their decimal mark is
    not decided yet) are parsed here, and a mark they decide is added to ``marks`` when the
    whole batch is valid.
    """
    columns: dict[str, Column] = {"source_row": smallest_int(batch.lines)}
    numbers: dict[str, np.ndarray] = {}
    blanks = []
    decided: dict[str, tuple[str, int]] = {}
    for col in spec.columns:
        cells = batch.table[headers[col.name]]
        if col.kind in (INT, FLOAT) and pyarrow.types.is_string(cells.type):
            text = trim_whitespace(cells)
            values, bad, contradicts, mark = parse_number(text, col, None, batch.lines)
            if bad.any() or contradicts.any():
                return None
            if mark:
                decided[col.name] = mark
            blank = pc.utf8_length(text).to_numpy(zero_copy_only=False) == 0
            numbers[col.name] = values
            columns[col.name] = store_numbers(values, col)
        elif col.kind in (INT, FLOAT):
            values = cells.to_numpy()                      # float64, NaN for blank cells
            nan = np.isnan(values)
            if np.count_nonzero(nan) != cells.null_count or np.isinf(values).any():
                return None                                # 'nan' / 'inf' written in a cell
            if col.kind == INT and ((np.trunc(values) != values) & ~nan).any():
                return None                                # not a whole number
            blank = nan
            numbers[col.name] = values
            columns[col.name] = store_numbers(values, col)
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
            columns[col.name] = store_labels(index, col)   # -1 (blank) only where allowed
        else:
            text = trim_whitespace(cells)
            length = pc.utf8_length(text)
            if len(text) and (pc.max(length).as_py() > int(col.max or TEXT_MAX)
                              or holds_bytes(pyarrow.chunked_array([text]), lambda b: (b < 0x20) | (b == 0x7F))):
                return None                                # too long, or a control character
            blank = length.to_numpy(zero_copy_only=False) == 0
            columns[col.name] = text
        if not col.nullable and blank.any():
            return None                                    # a required value is blank
        blanks.append(blank)
    if all(col.nullable for col in spec.columns) and np.logical_and.reduce(blanks).any():
        return None                                        # a blank row
    if not _extremes_in_range(numbers, spec):
        return None
    if marks is not None:
        marks.update(decided)
    return columns


# --- cell by cell: finds each bad cell, its rule and the raw cells of its row --------------

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
            decided = source.decimal_marks.get(col.name)
            values[col.name], bad, contradicts, mark = parse_number(text, col, decided, batch.lines)
            if mark and not decided:
                source.decimal_marks[col.name] = mark
                log.info("%s: column %r uses %r as decimal mark (from row %d)", source.name, col.raw, *mark)
            if contradicts.any():
                shown = _shown(text, contradicts)
                problems.append(rejections(where[contradicts], col.raw, DECIMAL_MARK,
                                           [contradiction_reason(cell, mark) for cell in shown]))
            what = "a whole number" if col.kind == INT else "a number"
        elif col.kind == LABEL:
            index, _ = _label_index(text, col)
            bad = (index < 0) & ~blank
            values[col.name] = index
            what = "one of: " + ", ".join(col.labels)
        else:
            bad = _bad_text(text, col)
            values[col.name] = text
            what = f"text of at most {int(col.max or TEXT_MAX)} printable characters"
        if bad.any():
            shown = pd.Series(_shown(text, bad))
            rule = {LABEL: "allowed labels", TEXT: "text"}.get(col.kind, "number")
            problems.append(rejections(where[bad], col.raw, rule, "'" + shown + f"' is not {what}"))
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
    if batch.rejected:  # lines that were not rows at all: their whole text is the raw value
        rows = sorted(batch.rejected)
        rejected = pd.concat([rejected, pd.DataFrame({
            "source_file": source.name, "source_row": np.array(rows, dtype="int64"), "column_name": "",
            "rule": [batch.rejected[r][0] for r in rows], "reason": [batch.rejected[r][1] for r in rows],
            "raw_values": [batch.rejected[r][2] for r in rows]})], ignore_index=True)
    keep = ~bad_rows
    columns: dict[str, Column] = {"source_row": smallest_int(batch.lines[keep])}
    for col in spec.columns:
        value = values[col.name]
        if col.kind in (INT, FLOAT):
            columns[col.name] = store_numbers(value[keep], col)
        elif col.kind == LABEL:
            columns[col.name] = store_labels(value[keep], col)   # -1 (blank) only where allowed
        else:
            columns[col.name] = value.filter(pyarrow.array(keep))
    return columns, rejected


def _shown(text: pyarrow.Array, mask: np.ndarray) -> list[str]:
    """The cells a message quotes, cut to 40 characters (a 10 MB cell stays in raw_values)."""
    return [cell[:40] for cell in text.filter(pyarrow.array(mask)).to_pylist()]


def _bad_text(text: pyarrow.Array, col: ColumnSpec) -> np.ndarray:
    """Text cells longer than the column allows or holding control characters (which no
    identifier has, and which would travel into every query and export)."""
    too_long = pc.greater(pc.utf8_length(text), int(col.max or TEXT_MAX))
    control = pc.match_substring_regex(text, _CONTROL)
    return np.asarray(pc.or_(too_long, control).to_numpy(zero_copy_only=False), dtype=bool)


# --- whole files ---------------------------------------------------------------------------

def parse_file(source: RawSource, spec: FileSpec) -> tuple[list[TypedRows], pd.DataFrame]:
    """Valid rows (in blocks) and rejections of a whole file; stops when no row is usable."""
    headers = locate_columns(source, spec)
    parts: list[TypedRows] = []
    problems = [empty_rejections().assign(raw_values=pd.Series(dtype="str"))]
    for block in source.blocks():
        pieces = [block]
        while pieces:
            piece = pieces.pop()
            point = block_decimal_point(source.decimal_marks)
            types = {headers[col.name]: _arrow_type(col, source.decimal_marks) for col in spec.columns}
            batch = source.parse(piece, types, point) if point is not None else None
            columns = _typed_columns(batch, spec, headers, source.decimal_marks) if batch is not None else None
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


def parse_source(source: RawSource, spec: FileSpec) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Typed valid rows and rejections of a whole file; stops when no row is usable."""
    parts, rejected = parse_file(source, spec)
    return typed_frame(parts, spec), rejected
