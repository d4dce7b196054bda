"""What each subject learns from, and the facts about its features the card publishes.

A model's input is always the raw warehouse columns listed in its card; every transformation
(log, scaling, one-hot) lives inside the fitted Pipeline, so the dashboard's what-if panel sends
raw values and gets exactly the treatment training used.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from etl.schema import (CUSTOMERS, CUSTOMERS_COLUMNS, ID_COLUMNS, SESSIONS, SESSIONS_COLUMNS,
                        TARGETS, label)


@dataclass(frozen=True)
class Subject:
    name: str
    table: str
    id_column: str
    target: str
    candidates: tuple[str, ...]      # columns offered to the leakage guard and the search
    categorical: tuple[str, ...]     # one-hot encoded (codes without an order)
    log_scaled: tuple[str, ...]      # heavy-tailed counts: log1p before scaling
    collinear: tuple[tuple[str, str], ...] = ()  # (column to decide on, its collinear partner)
    profit: str | None = None        # column for the profit-aware threshold (never a feature)


_CART_COUNTS = ("session_activity_count", "items_added", "items_removed", "cart_views",
                "checkout_initiated", "checkout_confirmed", "cart_item_views", "customer_logins",
                "pages_viewed")

SUBJECTS: dict[str, Subject] = {
    "carts": Subject(
        name="carts", table=SESSIONS, id_column=ID_COLUMNS["carts"], target=TARGETS["carts"],
        candidates=tuple(c for c in SESSIONS_COLUMNS if c not in (ID_COLUMNS["carts"], TARGETS["carts"])),
        # published as 0/1/2 without labels: a code, not a quantity
        categorical=("customer_segment",),
        # counts run from 0 to several hundred (activity max 436 vs median 10); on the real
        # data log1p lifts the CV ROC-AUC of logistic regression from 0.87 to 0.89
        log_scaled=_CART_COUNTS,
    ),
    "customers": Subject(
        name="customers", table=CUSTOMERS, id_column=ID_COLUMNS["customers"],
        target=TARGETS["customers"],
        # profit is what a customer is worth, not how they behave: the seed joined it after
        # modelling, to pick whom to keep (alone it has ROC-AUC 0.50 on the real data)
        candidates=tuple(c for c in CUSTOMERS_COLUMNS
                         if c not in (ID_COLUMNS["customers"], TARGETS["customers"], "profit")),
        categorical=("service_tier", "top_category"),
        log_scaled=(),
        # the seed dropped this month's revenue for its correlation with last month's
        collinear=(("revenue_this_month", "revenue_last_month"),),
        profit="profit",
    ),
}


def kind(series: pd.Series, categorical: bool) -> str:
    """int | float | bool | category: what the what-if form must accept for the column."""
    if categorical or not (pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series)):
        return "category"
    if pd.api.types.is_bool_dtype(series):
        return "bool"
    return "int" if pd.api.types.is_integer_dtype(series) else "float"


def feature_specs(frame: pd.DataFrame, features: list[str], categorical: tuple[str, ...]) -> dict:
    """{feature: {kind, min, max | choices, label}} observed in the training rows."""
    specs = {}
    for feature in features:
        column = frame[feature]
        k = kind(column, feature in categorical)
        spec: dict = {"kind": k, "label": label(feature)}
        if k in ("category", "bool"):
            spec["choices"] = sorted(column.dropna().unique().tolist())
        else:
            spec["min"] = column.min().item()
            spec["max"] = column.max().item()
        specs[feature] = spec
    return specs


def baseline(frame: pd.DataFrame, specs: dict) -> dict:
    """The reference row contributions are measured against: median, or the most common value.

    Medians of integer columns are rounded so the reference is a row that could exist.
    """
    out = {}
    for feature, spec in specs.items():
        column = frame[feature]
        if spec["kind"] in ("category", "bool"):
            # ties resolved by sort order, so the baseline does not depend on row order
            counts = column.value_counts()
            out[feature] = sorted(counts[counts == counts.max()].index.tolist())[0]
        elif spec["kind"] == "int":
            out[feature] = int(np.round(column.median()))
        else:
            out[feature] = float(column.median())
    return out

