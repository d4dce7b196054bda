"""Reading Ibis answers into Python, shared by the query modules of :mod:`dashboard.queries`."""
from __future__ import annotations

import ibis
import pandas as pd

from dashboard.source import Unavailable, table


def to_frame(expr: ibis.Expr) -> pd.DataFrame:
    return expr.to_pyarrow().to_pandas()


def first_row(expr: ibis.Table) -> dict:
    return expr.to_pyarrow().to_pylist()[0]


def ratio(part: float | None, whole: float | None) -> float | None:
    return None if not whole else (part or 0) / whole


def where_all(t: ibis.Table, preds: list) -> ibis.Table:
    return t.filter(*preds) if preds else t


def has_table(name: str) -> bool:
    """Whether the warehouse holds table ``name`` (scores exist only after training)."""
    try:
        table(name, scoped=False)   # existence only: no row is read
    except Unavailable:
        return False
    return True
