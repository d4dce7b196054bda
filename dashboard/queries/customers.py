"""Customers page questions: Ibis expressions over the customers table, under CustomerFilters."""
from __future__ import annotations

import ibis
import pandas as pd

from dashboard.bins import customer_bins, label_buckets
from dashboard.cache import memoized
from dashboard.filters import CUSTOMER_RANGE_COLUMNS, CustomerFilters
from dashboard.language import N_
from dashboard.queries.answers import first_row, has_table, ratio, to_frame, where_all
from dashboard.source import table
from etl.schema import CUSTOMER_SCORES, CUSTOMERS

# period names translated where shown (the figures): the cached answers hold the English
REVENUE_PERIODS = (("revenue_2m_ago", N_("2 months ago")), ("revenue_last_month", N_("Last month")),
                   ("revenue_this_month", N_("This month")))
MINUTE_PERIODS = (("minutes_last_month", N_("Last month")), ("minutes_this_month", N_("This month")))
CATEGORICAL_FEATURES = ("service_tier", "marketing_consent", "top_category")


def customer_filter(t: ibis.Table, filters: CustomerFilters, skip: str | None = None) -> ibis.Table:
    preds = []
    if filters.tiers and skip != "service_tier":
        preds.append(t.service_tier.isin(filters.tiers))
    if filters.consent is not None and skip != "marketing_consent":
        preds.append(t.marketing_consent == filters.consent)
    if filters.categories and skip != "top_category":
        preds.append(t.top_category.isin(filters.categories))
    for column, rng in filters.ranges:
        if column == skip:
            continue
        if rng.lo is not None:
            preds.append(t[column] >= rng.lo)
        if rng.hi is not None:
            preds.append(t[column] <= rng.hi)
    return where_all(t, preds)



@memoized()
def customer_kpis(filters: CustomerFilters) -> dict:
    t = customer_filter(table(CUSTOMERS), filters)
    aggs = dict(customers=t.count(), declined=t.count(where=t.activity_declined),
                mean_profit=t.profit.mean(),
                **{c: t[c].sum() for c, _ in REVENUE_PERIODS})
    at_risk = None
    if has_table(CUSTOMER_SCORES):
        s = table(CUSTOMER_SCORES)
        j = t.inner_join(s.select("customer_id", "p_decline"), "customer_id")
        at_risk = first_row(j.aggregate(at_risk=(j.p_decline * j.profit).sum()))["at_risk"] or 0.0
    row = first_row(t.aggregate(**aggs))
    return {
        "customers": row["customers"],
        "declined_share": ratio(row["declined"], row["customers"]),
        "mean_profit": row["mean_profit"],
        "revenue": {c: row[c] or 0.0 for c, _ in REVENUE_PERIODS},
        "profit_at_risk": at_risk,  # None: no model scores yet
    }


def customer_distributions(filters: CustomerFilters) -> pd.DataFrame:
    """behaviour, bucket, lo, hi, label, declined, n for every numeric feature (labelled per
    request, in the reader's number format; the counts are cached)."""
    return label_buckets(_customer_histograms(filters), customer_bins(), outcome="declined")


@memoized()
def _customer_histograms(filters: CustomerFilters) -> pd.DataFrame:
    base, bins = table(CUSTOMERS), customer_bins()
    ranged = [c for c, _ in filters.ranges]
    # one unpivoted group-by for the features without a range of their own (cheap to compile
    # and one scan), and one per ranged feature, which leaves its own range out
    t = customer_filter(base, filters)
    plain = [c for c in CUSTOMER_RANGE_COLUMNS if c not in ranged]
    long = t.select(declined=t.activity_declined, **{c: bins[c].expr(t[c]) for c in plain}).pivot_longer(
        plain, names_to="behaviour", values_to="bucket")
    parts = [long.group_by("behaviour", "bucket", "declined").aggregate(n=long.count())]
    for column in ranged:
        t = customer_filter(base, filters, skip=column)
        parts.append(t.group_by(bucket=bins[column].expr(t[column]), declined=t.activity_declined)
                     .aggregate(n=t.count()).mutate(behaviour=ibis.literal(column)))
    parts = [p.select("behaviour", "bucket", "declined", "n") for p in parts]
    frame = to_frame(ibis.union(*parts))
    # Ibis 12 compiles pivot_longer on PostgreSQL through JSONB and returns the names as JSON
    # strings ('"tenure_days"'); a column name never holds a quote
    frame["behaviour"] = frame["behaviour"].str.strip('"')
    return frame


@memoized()
def customer_categoricals(filters: CustomerFilters) -> pd.DataFrame:
    """feature, value, declined, n for service tier, consent and top category."""
    base = table(CUSTOMERS)
    parts = []
    for column in CATEGORICAL_FEATURES:
        t = customer_filter(base, filters, skip=column)
        parts.append(t.group_by(value=t[column].cast("string"), declined=t.activity_declined)
                     .aggregate(n=t.count()).mutate(feature=ibis.literal(column))
                     .select("feature", "value", "declined", "n"))
    return to_frame(ibis.union(*parts)).sort_values(["feature", "value", "declined"]).reset_index(drop=True)


@memoized()
def customer_trends(filters: CustomerFilters) -> pd.DataFrame:
    """measure (revenue|minutes), period, declined, mean — the per-period averages."""
    t = customer_filter(table(CUSTOMERS), filters)
    row = to_frame(t.group_by(declined=t.activity_declined).aggregate(
        **{c: t[c].mean() for c, _ in REVENUE_PERIODS + MINUTE_PERIODS}))
    records = []
    for measure, periods in (("revenue", REVENUE_PERIODS), ("minutes", MINUTE_PERIODS)):
        for order, (column, period) in enumerate(periods):
            for _, r in row.iterrows():
                records.append({"measure": measure, "order": order, "period": period,
                                "declined": bool(r["declined"]), "mean": float(r[column])})
    return pd.DataFrame(records, columns=["measure", "order", "period", "declined", "mean"])


@memoized()
def customer_correlations(filters: CustomerFilters) -> pd.DataFrame:
    """Square Pearson correlation matrix of the numeric features and the decline flag."""
    t = customer_filter(table(CUSTOMERS), filters)
    columns = [*CUSTOMER_RANGE_COLUMNS, "activity_declined"]
    # a boolean goes through an integer: PostgreSQL has no cast from boolean to double
    values = {c: (t[c].cast("int32") if t[c].type().is_boolean() else t[c]).cast("float64") for c in columns}
    aggs = {f"{a}__{b}": values[a].corr(values[b], how="pop")
            for i, a in enumerate(columns) for b in columns[i + 1:]}
    row = first_row(t.aggregate(**aggs))
    matrix = pd.DataFrame(1.0, index=columns, columns=columns)
    for key, value in row.items():
        a, b = key.split("__")
        matrix.loc[a, b] = matrix.loc[b, a] = float("nan") if value is None else value
    return matrix

