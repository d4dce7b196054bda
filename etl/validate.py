"""Turn raw text cells into typed columns, separating rows that break a rule.

Two kinds of failure, handled differently:

* unusable input (a required column is missing, no data row) stops the run with an
  :class:`ETLError` naming file, column, row and rule;
* a bad cell (a word in a number column, an unknown label, a value out of range) rejects
  that row only: it is returned with the rule it broke and its raw cells, for the
  ``rejected_rows`` table.

Text is parsed with pyarrow compute kernels (vectorised, no Python per cell); range rules are
declared with pandera so they read as a schema and fail per row and column.
"""
from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pyarrow as pyarrow
import pyarrow.compute as pc
from pandera.errors import SchemaErrors

from etl.errors import ETLError
from etl.raw_specs import FLOAT, INT, LABEL, ColumnSpec, FileSpec
from etl.readers import RawBatch, RawSource, normalise_header

log = logging.getLogger(__name__)

REJECTION_COLUMNS = ["source_file", "source_row", "column_name", "rule", "reason"]
_NUMBER = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"


def rejections(rows: pd.DataFrame, column: str, rule: str, reason: str | pd.Series | list[str],
               ) -> pd.DataFrame:
    """Rejection records for ``rows`` (which carry ``source_file`` and ``source_row``)."""
    if isinstance(reason, pd.Series):
        reason = reason.to_numpy()
    return pd.DataFrame({"source_file": rows["source_file"].astype(str).to_numpy(),
                         "source_row": rows["source_row"].to_numpy(dtype="int64"),
                         "column_name": column, "rule": rule, "reason": reason},
                        columns=REJECTION_COLUMNS)


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


def _parse_number(text: pyarrow.Array, col: ColumnSpec) -> tuple[np.ndarray, np.ndarray, bool]:
    """Numbers with a decimal point or a decimal comma.

    Returns float values (NaN for blanks and bad cells), a 'not a number' mask, and whether
    decimal commas were seen.
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
    if col.kind == INT:
        bad |= ~np.isnan(values) & (values != np.floor(values))
    return values, bad, bool(commas)


def _parse_label(text: pyarrow.Array, col: ColumnSpec) -> tuple[np.ndarray, np.ndarray]:
    """Index of the (case-insensitive) label in the spec, -1 when unknown."""
    keys = list(col.labels)
    index = pc.index_in(pc.utf8_lower(text), value_set=pyarrow.array(keys)).to_numpy(zero_copy_only=False)
    index = np.nan_to_num(index.astype("float64"), nan=-1).astype(np.int64)
    return index, (index < 0) & (pc.utf8_length(text).to_numpy() > 0)


def _label_values(index: np.ndarray, col: ColumnSpec) -> pd.Series:
    values = list(col.labels.values())
    if all(isinstance(v, bool) for v in values):
        out = np.asarray(values, dtype="float32")[np.maximum(index, 0)]
        out[index < 0] = np.nan              # float keeps "unknown" until the row is dropped
        return pd.Series(out)
    categories = list(dict.fromkeys(values))
    codes = np.array([categories.index(v) for v in values], dtype=np.int64)[np.maximum(index, 0)]
    codes[index < 0] = -1
    return pd.Series(pd.Categorical.from_codes(codes, categories=categories))


def _range_schema(spec: FileSpec) -> pa.DataFrameSchema:
    return pa.DataFrameSchema({
        col.name: pa.Column(checks=pa.Check.in_range(col.min, col.max), nullable=True)
        for col in spec.columns if col.kind in (INT, FLOAT)
    })


def parse_batch(batch: RawBatch, source: RawSource, spec: FileSpec, headers: dict[str, str],
                ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Typed valid rows and rejections (with raw cells) of one batch; both carry file and line."""
    where = pd.DataFrame({"source_file": pd.Categorical([source.name] * batch.table.num_rows),
                          "source_row": batch.lines})
    typed: dict[str, pd.Series] = {}
    problems = [empty_rejections()]
    cells = {name: pc.utf8_trim_whitespace(batch.table[key].combine_chunks()) for name, key in headers.items()}
    all_blank = np.logical_and.reduce([pc.utf8_length(c).to_numpy() == 0 for c in cells.values()])
    problems.append(rejections(where[all_blank], "", "blank row", "every cell is blank"))
    for col in spec.columns:
        text = cells[col.name]
        blank = pc.utf8_length(text).to_numpy() == 0
        if not col.nullable and (blank & ~all_blank).any():
            problems.append(rejections(where[blank & ~all_blank], col.raw, "required value", "value is blank"))
        if col.kind in (INT, FLOAT):
            values, bad, commas = _parse_number(text, col)
            if commas and source.decimal != ",":
                source.decimal = ","
                log.info("%s: column %r uses decimal commas", source.name, col.raw)
            what = "a whole number" if col.kind == INT else "a number"
            typed[col.name] = pd.Series(values)
        elif col.kind == LABEL:
            index, bad = _parse_label(text, col)
            what = "one of: " + ", ".join(col.labels)
            typed[col.name] = _label_values(index, col)
        else:
            bad = np.zeros(len(blank), dtype=bool)
            typed[col.name] = pd.Series(text.to_numpy(zero_copy_only=False), dtype="str")
        if bad.any():
            shown = pd.Series(text.filter(pyarrow.array(bad)).to_pylist()).str.slice(0, 40)
            problems.append(rejections(where[bad], col.raw, "number" if col.kind != LABEL else "allowed labels",
                                       "'" + shown + f"' is not {what}"))
    frame = pd.DataFrame(typed)
    try:
        _range_schema(spec).validate(frame, lazy=True)
    except SchemaErrors as exc:
        cases = exc.failure_cases.dropna(subset=["index"])
        for name, group in cases.groupby("column"):
            col = spec.column(name)
            problems.append(rejections(where.loc[group["index"].astype("int64")], col.raw, "range",
                                       group["failure_case"].astype(str) + f" is outside [{col.min:g}, {col.max:g}]"))
    rejected = pd.concat(problems, ignore_index=True)
    bad_rows = where["source_row"].isin(rejected["source_row"]).to_numpy()
    if bad_rows.any():
        lookup = dict(zip(batch.lines[bad_rows], _json_rows(batch.table.filter(pyarrow.array(bad_rows)))))
        rejected["raw_values"] = rejected["source_row"].map(lookup)
    else:
        rejected["raw_values"] = pd.Series(dtype="str")
    kept = pd.concat([where, frame], axis=1)[~bad_rows]
    return _compact(kept, spec), rejected


def _compact(frame: pd.DataFrame, spec: FileSpec) -> pd.DataFrame:
    """Smallest exact types, so 10 M rows stay well inside the memory budget.

    Counts are capped far below 2**24 by their range rule, so float32 holds them exactly and
    keeps blanks (NaN) for the cleaning step to fill.
    """
    out = {"source_file": frame["source_file"], "source_row": frame["source_row"]}
    for col in spec.columns:
        series = frame[col.name]
        if col.kind == INT and col.max is not None and col.max < 2**24:
            series = series.astype("float32")
        elif col.kind == LABEL and series.dtype == "float32":
            series = series.astype(bool)
        out[col.name] = series
    return pd.DataFrame(out)


def _json_rows(table: pyarrow.Table) -> list[str]:
    return [json.dumps(r, ensure_ascii=False) for r in table.to_pylist()]


def parse_source(source: RawSource, spec: FileSpec) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Typed valid rows and rejections of a whole file; stops when no row is usable."""
    headers = locate_columns(source, spec)
    parts = [parse_batch(batch, source, spec, headers) for batch in source.batches()]
    if source.rows_read == 0:
        raise ETLError(source.name, rule="not empty", message="has a header but no data rows")
    typed = pd.concat([p[0] for p in parts], ignore_index=True)
    rejected = pd.concat([p[1] for p in parts], ignore_index=True)
    if typed.empty:
        first = rejected.iloc[0]
        raise ETLError(source.name, column=first["column_name"] or None, row=int(first["source_row"]),
                       rule=first["rule"], message=f"no usable row; the first: {first['reason']}")
    return typed, rejected


def fetch_raw_values(source: RawSource, lines: np.ndarray) -> dict[int, str]:
    """Raw cells of the given lines as JSON text (a second pass, for late rejections)."""
    wanted = np.unique(lines)
    found: dict[int, str] = {}
    for batch in source.batches():
        hit = np.isin(batch.lines, wanted)
        if hit.any():
            found.update(zip(batch.lines[hit].tolist(), _json_rows(batch.table.filter(pyarrow.array(hit)))))
    return found
