"""Data quality questions: the last ETL run, its source files and its rejected rows.

The run and its files are model-level facts every user reads; counts of rejected rows by
reason too. The raw cells of rejected rows are row-level data (analysts and admins) that no
scope can be applied to (a row the ETL rejected has no trustworthy customer or session), so a
scoped user never reads them."""
from __future__ import annotations

import ibis
import pandas as pd

from dashboard import terms
from dashboard.auth.scoping import RAW_CELLS_NOTE, Forbidden, can_read_rows, require_rows
from dashboard.auth.session import current
from dashboard.cache import memoized
from dashboard.language import N_, _
from dashboard.queries.answers import to_frame
from dashboard.source import Unavailable, table
from etl.schema import ETL_RUNS, REJECTED_ROWS, SOURCE_FILES


# The run, its files and the counts by reason are the same for every user (model-level facts,
# no row of a customer or session): read unscoped and cached once for all (the public health
# check reads the run too, without any identity). Their texts are translated outside the
# cached functions (the cache is shared by readers of every language).


@memoized(shared=True)
def latest_run() -> dict:
    runs = table(ETL_RUNS, scoped=False)
    found = runs.order_by(ibis.desc("finished_at")).limit(1).to_pyarrow().to_pylist()
    if not found:
        raise Unavailable(N_("The warehouse has no ETL run."), "python -m etl run")
    return found[0]


WHOLE_FILES_NOTE = N_("Data quality describes whole source files and ETL runs, which cannot be limited to your "
                      "access, so it is not shown to you.")


def require_whole_warehouse() -> None:
    """Files, runs and rejection counts cover every row: not for a user limited by a scope."""
    if not current().scope.unrestricted:
        raise Forbidden(_(WHOLE_FILES_NOTE))


def source_files() -> pd.DataFrame:
    require_whole_warehouse()
    return _source_files()


@memoized(shared=True)
def _source_files() -> pd.DataFrame:
    run_id = latest_run()["run_id"]
    f = table(SOURCE_FILES, scoped=False)
    f = f.filter(f.run_id == run_id)
    return to_frame(f.mutate(rows_kept=f.rows_read - f.rows_rejected)
                  .select("subject", "source_file", "rows_read", "rows_kept", "rows_rejected",
                          "encoding", "separator", "decimal")
                  .order_by("subject", "source_file"))


def rejection_reasons() -> pd.DataFrame:
    """Rejected rows counted by reason. The ETL's reasons quote the offending cell ("'+7 912…'
    is not a whole number"), which is a raw cell: those who may read raw cells get the
    reasons as written, everyone else the counts by rule and column with a generic reason
    (in the reader's language)."""
    require_whole_warehouse()
    if reads_raw_cells():
        return _reasons_as_written()
    counted = _reasons_by_column().copy()
    counted["reason"] = [_generic_reason(rule, column) for rule, column in zip(counted["rule"], counted["column_name"])]
    return counted.drop(columns="column_name")[["subject", "source_file", "rule", "reason", "rows"]]


def _generic_reason(rule: str, column: str | None) -> str:
    if column:
        return _("{rule} in column {column}").format(rule=terms.rule(rule, _), column=column)
    return _("{rule} (whole row)").format(rule=terms.rule(rule, _))


def reads_raw_cells() -> bool:
    """Whether the reader gets the ETL's reasons as written (English, quoting raw cells)."""
    return can_read_rows() and current().scope.unrestricted


@memoized(shared=True)
def _reasons_as_written() -> pd.DataFrame:
    run_id = latest_run()["run_id"]
    r = table(REJECTED_ROWS, scoped=False)   # counted, never shown row by row
    r = r.filter(r.run_id == run_id)
    return to_frame(r.group_by("subject", "source_file", "rule", "reason").aggregate(rows=r.count())
                  .order_by(ibis.desc("rows"), "subject", "source_file", "rule"))


@memoized(shared=True)
def _reasons_by_column() -> pd.DataFrame:
    run_id = latest_run()["run_id"]
    r = table(REJECTED_ROWS, scoped=False)
    r = r.filter(r.run_id == run_id)
    return to_frame(r.group_by("subject", "source_file", "rule", "column_name").aggregate(rows=r.count())
                    .order_by(ibis.desc("rows"), "subject", "source_file", "rule"))


def rejected_sample(limit: int = 200) -> pd.DataFrame:
    require_rows(RAW_CELLS_NOTE)
    if not current().scope.unrestricted:
        raise Forbidden(_("Rejected rows cannot be attributed to your access scope, so their raw cells are not "
                          "shown."))
    return _rejected_sample(limit)


@memoized()
def _rejected_sample(limit: int) -> pd.DataFrame:
    run_id = latest_run()["run_id"]
    r = table(REJECTED_ROWS)
    return to_frame(r.filter(r.run_id == run_id)
                  .select("subject", "source_file", "source_row", "column_name", "rule", "reason", "raw_values")
                  .order_by("subject", "source_file", "source_row").limit(limit))

