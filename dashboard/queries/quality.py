"""Data quality questions: the last ETL run, its source files and its rejected rows."""
from __future__ import annotations

import ibis
import pandas as pd

from dashboard.cache import memoized
from dashboard.queries.answers import to_frame
from dashboard.source import Unavailable, table
from etl.schema import ETL_RUNS, REJECTED_ROWS, SOURCE_FILES


@memoized()
def latest_run() -> dict:
    runs = table(ETL_RUNS)
    found = runs.order_by(ibis.desc("finished_at")).limit(1).to_pyarrow().to_pylist()
    if not found:
        raise Unavailable("The warehouse has no ETL run.", "python -m etl run")
    return found[0]


@memoized()
def source_files() -> pd.DataFrame:
    run_id = latest_run()["run_id"]
    f = table(SOURCE_FILES)
    f = f.filter(f.run_id == run_id)
    return to_frame(f.mutate(rows_kept=f.rows_read - f.rows_rejected)
                  .select("subject", "source_file", "rows_read", "rows_kept", "rows_rejected",
                          "encoding", "separator", "decimal")
                  .order_by("subject", "source_file"))


@memoized()
def rejection_reasons() -> pd.DataFrame:
    run_id = latest_run()["run_id"]
    r = table(REJECTED_ROWS)
    r = r.filter(r.run_id == run_id)
    return to_frame(r.group_by("subject", "source_file", "rule", "reason").aggregate(rows=r.count())
                  .order_by(ibis.desc("rows"), "subject", "source_file", "rule"))


@memoized()
def rejected_sample(limit: int = 200) -> pd.DataFrame:
    run_id = latest_run()["run_id"]
    r = table(REJECTED_ROWS)
    return to_frame(r.filter(r.run_id == run_id)
                  .select("subject", "source_file", "source_row", "column_name", "rule", "reason", "raw_values")
                  .order_by("subject", "source_file", "source_row").limit(limit))

