"""The rows a model is trained on: read from the warehouse, checked, capped, split.

Large warehouses (the benchmark has 10 M sessions) are never loaded whole: the model search
and fit use a stratified sample of at most ``MAX_SAMPLE_ROWS`` rows chosen in DuckDB by a
hash of the id (deterministic, independent of storage order); scoring streams every row
later (:mod:`etl.train.scoring`).
"""
from __future__ import annotations

import duckdb
import pandas as pd
from sklearn.model_selection import train_test_split

from etl.errors import ETLError
from etl.schema import ETL_RUNS
from etl.train.features import Subject

SEED = 42
HOLDOUT_SHARE = 0.25
MAX_SAMPLE_ROWS = 200_000   # train + holdout; bounds memory and fit time on any warehouse
MAX_SEARCH_ROWS = 30_000    # rows the cross-validated search sees; the final fit sees the whole split
MIN_CLASS_ROWS = 20         # fewer per class cannot fill 5 folds and a holdout meaningfully


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def check_contents(con: duckdb.DuckDBPyConnection, subject: Subject, source: str) -> dict[bool, int]:
    """Rows per class; stops on NULLs (the ETL fills blanks) or a target without both classes."""
    columns = [subject.id_column, subject.target, *subject.candidates,
               *([subject.profit] if subject.profit else [])]
    nulls = con.execute("SELECT " + ", ".join(
        f"count(*) FILTER (WHERE {_q(c)} IS NULL)" for c in columns) + f" FROM {_q(subject.table)}").fetchone()
    for column, count in zip(columns, nulls):
        if count:
            raise ETLError(source, rule="no missing values", column=column,
                           message=f"table {subject.table!r} has {count:,} NULL values in {column!r}; "
                                   "rebuild it with `python -m etl run`")
    classes = dict(con.execute(f"SELECT {_q(subject.target)}, count(*) FROM {_q(subject.table)} "
                               "GROUP BY ALL").fetchall())
    if min(classes.get(True, 0), classes.get(False, 0)) < MIN_CLASS_ROWS:
        raise ETLError(source, rule="trainable target", column=subject.target,
                       message=f"table {subject.table!r} needs at least {MIN_CLASS_ROWS} rows of each "
                               f"class to train; found {classes.get(True, 0):,} true and "
                               f"{classes.get(False, 0):,} false")
    return classes


def read_sample(con: duckdb.DuckDBPyConnection, subject: Subject, total_rows: int,
                cap: int = MAX_SAMPLE_ROWS) -> pd.DataFrame:
    """All rows, or a stratified sample of ``cap`` rows, ordered by id (so splits are reproducible)."""
    columns = [subject.id_column, subject.target, *subject.candidates,
               *([subject.profit] if subject.profit else [])]
    select = ", ".join(f"t.{_q(c)}" for c in columns)
    table, key, target = _q(subject.table), _q(subject.id_column), _q(subject.target)
    if total_rows <= cap:
        return con.execute(f"SELECT {select} FROM {table} t ORDER BY t.{key}").df()
    # the same share of each class, chosen by a hash of the id: no row-order dependence
    fraction = cap / total_rows
    return con.execute(f"""
        SELECT {select} FROM {table} t JOIN (
            SELECT {key} FROM (
                SELECT {key}, row_number() OVER (PARTITION BY {target} ORDER BY hash({key}), {key}) AS rn,
                       count(*) OVER (PARTITION BY {target}) AS class_rows
                FROM {table})
            WHERE rn <= floor(class_rows * {fraction!r})
        ) s USING ({key})
        ORDER BY t.{key}""").df()


def split(frame: pd.DataFrame, subject: Subject) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Training split and the untouched stratified holdout (25 %, fixed seed)."""
    return train_test_split(frame, test_size=HOLDOUT_SHARE, stratify=frame[subject.target],
                            random_state=SEED)


def search_rows(train: pd.DataFrame, subject: Subject, cap: int | None = None) -> pd.DataFrame:
    """The part of the training split the cross-validated search uses (all of it when small)."""
    # the cap is read when called, so a test can lower MAX_SEARCH_ROWS on a small warehouse
    cap = MAX_SEARCH_ROWS if cap is None else cap
    if len(train) <= cap:
        return train
    return train_test_split(train, train_size=cap, stratify=train[subject.target], random_state=SEED)[0]


def data_version(con: duckdb.DuckDBPyConnection) -> str:
    """Fingerprint of the ETL run that built the warehouse (raw inputs + cleaning code)."""
    row = con.execute(f"SELECT data_version FROM {_q(ETL_RUNS)} ORDER BY finished_at DESC LIMIT 1").fetchone()
    return row[0] if row else "unknown"
