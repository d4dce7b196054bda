"""What each subject learns from, and the facts about its features the card publishes.

A model's input is always the raw warehouse columns listed in its card; every transformation
(log, scaling, one-hot) lives inside the fitted Pipeline, so the dashboard's what-if panel sends
raw values and gets exactly the treatment training used.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from etl.schema import (CUSTOMERS, CUSTOMERS_COLUMNS, ID_COLUMNS, SESSIONS, SESSIONS_COLUMNS,
                        TARGETS, label)


@dataclass(frozen=True)
class Derived:
    """One column an analyst would compute from two raw inputs, computed inside the Pipeline
    (so the what-if panel still sends raw values): ``numerator / denominator`` (``ratio``),
    ``numerator / denominator - 1`` (``change``: a trend between periods) or
    ``numerator - denominator`` (``difference``)."""
    name: str
    numerator: str
    denominator: str
    op: str


@dataclass(frozen=True)
class FeatureGroup:
    """Derived columns tried together, kept only on paired-CV evidence (compare.feature_experiments)."""
    name: str
    label: str
    columns: tuple[Derived, ...]

    @property
    def inputs(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(c for d in self.columns for c in (d.numerator, d.denominator)))


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
    derived: tuple[FeatureGroup, ...] = ()   # feature experiments


# What an analyst would try on the customers (issue 14): trends between periods, ratios,
# marketing intensity per tenure. Revenue and minutes are positive in the warehouse (customers
# without revenue in a month are quarantined), tenure is at least a day.
CUSTOMER_GROUPS = (
    FeatureGroup("revenue_trend", "Revenue trend", (
        Derived("revenue_change_last_month", "revenue_last_month", "revenue_2m_ago", "change"),
        Derived("revenue_change_this_month", "revenue_this_month", "revenue_last_month", "change"))),
    FeatureGroup("minutes_trend", "Minutes trend", (
        Derived("minutes_change", "minutes_this_month", "minutes_last_month", "change"),)),
    FeatureGroup("revenue_per_minute", "Revenue per minute on site", (
        Derived("revenue_per_minute_last_month", "revenue_last_month", "minutes_last_month", "ratio"),
        Derived("revenue_per_minute_this_month", "revenue_this_month", "minutes_this_month", "ratio"))),
    FeatureGroup("marketing_per_tenure", "Marketing contacts per day of tenure", (
        Derived("marketing_per_tenure_day", "marketing_6m", "tenure_days", "ratio"),)),
    FeatureGroup("marketing_trend", "Marketing trend", (
        Derived("marketing_change", "marketing_this_month", "marketing_6m", "difference"),)),
)

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
        derived=CUSTOMER_GROUPS,
    ),
}


def derive(frame: pd.DataFrame, op: str) -> np.ndarray:
    """A derived column from (numerator, denominator); module level so pickles can name it."""
    a, b = frame.iloc[:, 0].to_numpy(dtype=float), frame.iloc[:, 1].to_numpy(dtype=float)
    if op == "difference":
        out = a - b
    else:   # a what-if value of 0 must not divide by zero: the denominators are counts and money
        out = a / np.maximum(b, 1.0) - (1.0 if op == "change" else 0.0)
    return out.reshape(-1, 1)


def with_derived(prep: ColumnTransformer, groups: tuple[FeatureGroup, ...]) -> ColumnTransformer:
    """``prep`` plus one scaled column per derived feature of ``groups`` (``prep`` itself without).

    Each derived column is its own transformer over its two inputs, so the contributions can
    trace it back to them (:mod:`etl.train.contributions`).
    """
    if not groups:
        return prep
    steps = list(prep.transformers)
    for group in groups:
        for d in group.columns:
            steps.append((f"derived_{d.name}", Pipeline([
                ("derive", FunctionTransformer(derive, kw_args={"op": d.op})),
                ("scale", StandardScaler())]), [d.numerator, d.denominator]))
    return ColumnTransformer(steps)


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

