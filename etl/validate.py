"""Turn a raw text table into typed columns, separating rows that break a rule.

Two kinds of failure, handled differently:

* unusable input (a required column is missing) stops the run with an :class:`ETLError`;
* a bad cell (a word in a number column, an unknown label, a value out of range) rejects
  that row only: it is returned with the rule it broke, for the ``rejected_rows`` table.

Range rules are declared with pandera so they read as a schema, and failures come back
per row and column.
"""
from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors

from etl.errors import ETLError
from etl.raw_specs import FLOAT, INT, LABEL, ColumnSpec, FileSpec
from etl.readers import RawTable, normalise_header

log = logging.getLogger(__name__)

REJECTION_COLUMNS = ["source_file", "source_row", "column_name", "rule", "reason"]


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


def locate_columns(raw: RawTable, spec: FileSpec) -> dict[str, str]:
    """Map each spec column to the file's header cell; a missing column stops the run."""
    found = {}
    for col in spec.columns:
        key = normalise_header(col.raw)
        if key not in raw.frame.columns:
            raise ETLError(raw.name, column=col.raw, rule="required column",
                           message=f"is missing; the header has {list(raw.frame.columns)}")
        found[col.name] = key
    extra = set(raw.frame.columns) - set(found.values())
    if extra:
        log.info("%s: ignoring extra columns %s", raw.name, sorted(extra))
    return found


def _parse_number(text: pd.Series, col: ColumnSpec) -> tuple[pd.Series, pd.Series, bool]:
    """Numbers with a decimal point or a decimal comma.

    Returns the values, a 'not a number' mask, and whether decimal commas were seen.
    """
    commas = bool(text.str.contains(",", regex=False).any())
    if commas:
        text = text.where(text.str.contains(".", regex=False), text.str.replace(",", ".", regex=False))
    values = pd.to_numeric(text, errors="coerce").astype("float64")
    bad = (text != "") & values.isna()
    if col.kind == INT:
        bad |= values.notna() & (values != np.floor(values))
    return values, bad, commas


def _range_schema(spec: FileSpec) -> pa.DataFrameSchema:
    return pa.DataFrameSchema({
        col.name: pa.Column(float, pa.Check.in_range(col.min, col.max), nullable=True)
        for col in spec.columns if col.kind in (INT, FLOAT)
    })


def parse_table(raw: RawTable, spec: FileSpec) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Typed frame of the valid rows and the rejections; both carry source file and line.

    Records the decimal mark it met on ``raw.decimal`` for the source-file report.
    """
    headers = locate_columns(raw, spec)
    where = pd.DataFrame({"source_file": pd.Categorical([raw.name] * len(raw.frame)),
                          "source_row": raw.frame.index.to_numpy()}, index=raw.frame.index)
    typed: dict[str, pd.Series] = {}
    problems = [empty_rejections()]
    for col in spec.columns:
        text = raw.frame[headers[col.name]].astype("str").str.strip()
        blank = text == ""
        if not col.nullable and blank.any():
            problems.append(rejections(where[blank], col.raw, "required value", "value is blank"))
        if col.kind in (INT, FLOAT):
            values, bad, commas = _parse_number(text, col)
            if commas:
                raw.decimal = ","
                log.info("%s: column %r uses decimal commas", raw.name, col.raw)
            what = "a whole number" if col.kind == INT else "a number"
            problems.append(rejections(where[bad], col.raw, "number",
                                       "'" + text[bad].str.slice(0, 40) + f"' is not {what}"))
        elif col.kind == LABEL:
            values = text.str.casefold().map(col.labels)
            bad = ~blank & values.isna()
            allowed = ", ".join(sorted({k for k in col.labels}))
            problems.append(rejections(where[bad], col.raw, "allowed labels",
                                       "'" + text[bad].str.slice(0, 40) + f"' is not one of: {allowed}"))
        else:
            values = text
        typed[col.name] = values
    frame = pd.DataFrame(typed, index=raw.frame.index)
    try:
        _range_schema(spec).validate(frame, lazy=True)
    except SchemaErrors as exc:
        cases = exc.failure_cases.dropna(subset=["index"])
        raw_names = {c.name: c.raw for c in spec.columns}
        for name, group in cases.groupby("column"):
            col = spec.column(name)
            problems.append(rejections(
                where.loc[group["index"].astype("int64")], raw_names[name], "range",
                group["failure_case"].astype(str) + f" is outside [{col.min:g}, {col.max:g}]"))
    rejected = pd.concat(problems, ignore_index=True)
    kept = frame.drop(index=rejected["source_row"].unique())
    return pd.concat([where.loc[kept.index], kept], axis=1).reset_index(drop=True), rejected


def raw_values(raw: RawTable, rows: pd.Series) -> list[str]:
    """The raw cells of each rejected row of ``raw``, as JSON text, so nothing is lost."""
    cells = raw.frame.loc[rows.to_numpy()]
    return [json.dumps(r, ensure_ascii=False) for r in cells.to_dict("records")]
