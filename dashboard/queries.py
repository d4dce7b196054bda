"""One function per question the UI asks, as Ibis expressions aggregated in the database.

Every function takes validated filters (dashboard/filters.py) and returns a small pandas
frame or dict: group-bys and histograms are binned in SQL, so the result size does not grow
with the warehouse. Results are cached per data version (dashboard/cache.py).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import ibis
import numpy as np
import pandas as pd

from dashboard.cache import memoized
from dashboard.cart_cube import OTHER_BEHAVIOURS, Bins, Cube, build, cart_bins, cube
from dashboard.filters import (CART_CUBE_RANGES, CUSTOMER_RANGE_COLUMNS, CartFilters, CustomerFilters,
                               SegmentView)
from dashboard.source import Unavailable, table
from etl.schema import (CUSTOMER_SCORES, CUSTOMERS, CUSTOMERS_COLUMNS, ETL_RUNS, ID_COLUMNS,
                        REJECTED_ROWS, SEGMENTS, SESSION_SCORES, SESSIONS, SOURCE_FILES,
                        SUBJECT_TABLES, TARGETS)

CUSTOMER_BUCKETS = 20
FUNNEL_STAGES = (("n", "Sessions"), ("added", "Added to cart"), ("cart_viewed", "Viewed cart"),
                 ("initiated", "Checkout initiated"), ("confirmed", "Checkout confirmed"))
REVENUE_PERIODS = (("revenue_2m_ago", "2 months ago"), ("revenue_last_month", "Last month"),
                   ("revenue_this_month", "This month"))
MINUTE_PERIODS = (("minutes_last_month", "Last month"), ("minutes_this_month", "This month"))
CATEGORICAL_FEATURES = ("service_tier", "marketing_consent", "top_category")
AT_RISK_COLUMNS = ("customer_id", "p_decline", "profit", "expected_profit_at_risk", "service_tier",
                   "top_category", "promo_share", "segment", "top_reasons")


def _frame(expr: ibis.Expr) -> pd.DataFrame:
    return expr.to_pyarrow().to_pandas()


def _row(expr: ibis.Table) -> dict:
    return expr.to_pyarrow().to_pylist()[0]


def _ratio(part: float | None, whole: float | None) -> float | None:
    return None if not whole else (part or 0) / whole


# --- carts ------------------------------------------------------------------------------


def _where(t: ibis.Table, preds: list) -> ibis.Table:
    return t.filter(*preds) if preds else t


def _cart_cube(filters: CartFilters) -> Cube:
    """The cube, or — when a range is set on a behaviour that is not one of its dimensions —
    the same shapes aggregated from the sessions under those ranges."""
    extra = tuple((c, r) for c, r in filters.ranges if c not in CART_CUBE_RANGES)
    return _direct_cube(CartFilters(ranges=extra)) if extra else cube()


@memoized()
def _direct_cube(extra: CartFilters) -> Cube:
    t, bins = table(SESSIONS), cart_bins()
    preds = {}
    for column, rng in extra.ranges:
        snapped = bins[column].snapped(rng)
        pred = t[column] >= int(snapped.lo or 0)
        preds[column] = pred if snapped.hi is None else pred & (t[column] <= int(snapped.hi))
    return build(t, preds)


def _mask(columns: dict[str, np.ndarray], filters: CartFilters, skip: str | None = None,
          bins: dict[str, Bins] | None = None) -> np.ndarray:
    """Rows of a cube table inside the cube-dimension filters, except ``skip``."""
    bins = bins or cart_bins()
    keep = np.ones(len(columns["n"]), dtype=bool)
    if filters.segments and skip != "segment":
        keep &= np.isin(columns["customer_segment"], filters.segments)
    if filters.details is not None and skip != "details":
        keep &= columns["product_details_viewed"] == filters.details
    for column in CART_CUBE_RANGES:
        rng = filters.range(column)
        if rng is not None and skip != column:
            lo, hi = bins[column].indices(rng)
            bucket = columns[f"{column}_bucket"]
            keep &= (bucket >= lo) & (bucket <= hi)
    return keep


def effective_cart_filters(filters: CartFilters, bins: dict[str, Bins] | None = None) -> CartFilters:
    """The filters as applied: ranges widened to whole buckets (shown on the chips)."""
    bins = bins or cart_bins()
    out = filters
    for column, rng in filters.ranges:
        out = out.with_range(column, bins[column].snapped(rng))
    return out


SUMMARY_MEASURES = ("n", "added", "cart_viewed", "initiated", "confirmed", "items_sum")


def _cart_summary(filters: CartFilters, data: Cube | None = None,
                  bins: dict[str, Bins] | None = None) -> pd.DataFrame:
    """Sums by customer type × details viewed × outcome (≤ 12 rows) under the range filters:
    outcomes, the segment chart and the details chart are all read off this one aggregate
    (``data``: the cube for ``filters``, when the caller already has it)."""
    cells = (data or _cart_cube(filters)).cells
    keep = _mask(cells, replace(filters, segments=(), details=None), bins=bins)
    segment = cells["customer_segment"][keep].astype(np.int64)
    details = cells["product_details_viewed"][keep].astype(np.int64)
    abandoned = cells["abandoned"][keep].astype(np.int64)
    key = (segment * 2 + details) * 2 + abandoned
    size = int(key.max()) + 1 if key.size else 0
    sums = {m: np.bincount(key, weights=cells[m][keep], minlength=size) for m in SUMMARY_MEASURES}
    present = np.flatnonzero(sums["n"]) if size else np.array([], dtype=np.int64)
    return pd.DataFrame({"customer_segment": present // 4, "product_details_viewed": (present // 2 % 2).astype(bool),
                         "abandoned": (present % 2).astype(bool),
                         **{m: sums[m][present].astype(np.int64) for m in SUMMARY_MEASURES}})


def _summary_rows(filters: CartFilters, skip: str | None = None,
                  summary: pd.DataFrame | None = None) -> pd.DataFrame:
    rows = _cart_summary(filters) if summary is None else summary
    if filters.segments and skip != "segment":
        rows = rows[rows.customer_segment.isin(filters.segments)]
    if filters.details is not None and skip != "details":
        rows = rows[rows.product_details_viewed == filters.details]
    return rows


def cart_outcomes(filters: CartFilters, summary: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per outcome: sessions and the funnel counts (columns of FUNNEL_STAGES), items.
    ``summary``: :func:`_cart_summary` of ``filters``, when the caller already has it."""
    sums = _summary_rows(filters, summary=summary).groupby("abandoned")[list(SUMMARY_MEASURES)].sum()
    # both outcomes always present, so figures and KPIs need no special case
    full = sums.reindex([False, True], fill_value=0).fillna(0).astype("int64")
    return full.rename_axis("abandoned").reset_index()


def cart_kpis(outcomes: pd.DataFrame) -> dict:
    """Headline numbers from :func:`cart_outcomes` (no query)."""
    total = outcomes.sum(numeric_only=True)
    abandoned = int(outcomes.loc[outcomes.abandoned, "n"].sum())
    sessions = int(total["n"])
    return {
        "sessions": sessions,
        "abandonment_rate": _ratio(abandoned, sessions),
        "conversion_rate": _ratio(sessions - abandoned, sessions),
        "items_per_cart": _ratio(total["items_sum"], sessions),
        "checkout_completion": _ratio(total["confirmed"], total["initiated"]),
    }


def cart_by_segment(filters: CartFilters, summary: pd.DataFrame | None = None) -> pd.DataFrame:
    """Sessions per customer type and outcome (every other filter applied)."""
    rows = _summary_rows(filters, skip="segment", summary=summary)
    return (rows.groupby(["customer_segment", "abandoned"], as_index=False)["n"].sum()
            .sort_values(["customer_segment", "abandoned"]).reset_index(drop=True))


def cart_by_details(filters: CartFilters, summary: pd.DataFrame | None = None) -> pd.DataFrame:
    rows = _summary_rows(filters, skip="details", summary=summary)
    return (rows.groupby(["product_details_viewed", "abandoned"], as_index=False)["n"].sum()
            .sort_values(["product_details_viewed", "abandoned"]).reset_index(drop=True))


def _histogram(bucket: np.ndarray, abandoned: np.ndarray, n: np.ndarray, behaviour: str) -> pd.DataFrame:
    key = bucket.astype(np.int64) * 2 + abandoned.astype(np.int64)
    counts = np.bincount(key, weights=n, minlength=0) if key.size else np.zeros(0)
    present = np.flatnonzero(counts)
    return pd.DataFrame({"behaviour": behaviour, "bucket": present // 2, "abandoned": (present % 2).astype(bool),
                         "n": counts[present].astype(np.int64)})


def cart_distributions(filters: CartFilters, data: Cube | None = None,
                       bins: dict[str, Bins] | None = None) -> pd.DataFrame:
    """behaviour, bucket, lo, hi, label, abandoned, n — one histogram per behaviour.

    A behaviour's own range is left out of its histogram, so its chart still shows what
    lies outside the selection (the selected buckets are highlighted instead).
    """
    data, bins = data or _cart_cube(filters), bins or cart_bins()
    parts = []
    for column in CART_CUBE_RANGES:
        keep = _mask(data.cells, filters, skip=column, bins=bins)
        parts.append(_histogram(data.cells[f"{column}_bucket"][keep], data.cells["abandoned"][keep],
                                data.cells["n"][keep], column))
    keep = _mask(data.hist, filters, bins=bins)
    for index, behaviour in enumerate(OTHER_BEHAVIOURS):
        mine = keep & (data.hist["behaviour"] == index)
        parts.append(_histogram(data.hist["bucket"][mine], data.hist["abandoned"][mine], data.hist["n"][mine],
                                behaviour))
    return _label_buckets(pd.concat(parts, ignore_index=True), bins)


def cart_page(filters: CartFilters) -> dict:
    """Everything the Carts page asks for ``filters``, with the bins, the cube and the summary
    each computed once: effective filters, outcomes, the unfiltered outcomes (baseline),
    by segment, by details, distributions."""
    bins = cart_bins()
    data = _cart_cube(filters)
    summary = _cart_summary(filters, data, bins)
    base = CartFilters()
    return {
        "bins": bins,
        "effective": effective_cart_filters(filters, bins),
        "outcomes": cart_outcomes(filters, summary),
        "base_outcomes": cart_outcomes(base, summary if filters == base else _cart_summary(base, cube(), bins)),
        "by_segment": cart_by_segment(filters, summary),
        "by_details": cart_by_details(filters, summary),
        "distributions": cart_distributions(filters, data, bins),
    }


def _label_buckets(frame: pd.DataFrame, bins: dict) -> pd.DataFrame:
    """Add each bucket's bounds, short label and full range text (bins: Bins or CustomerBins)."""
    frame = frame.sort_values(["behaviour", "bucket", "abandoned"]).reset_index(drop=True)
    bounds = [bins[b].bounds(int(i)) for b, i in zip(frame.behaviour, frame.bucket)]
    frame["lo"] = [lo for lo, _ in bounds]
    frame["hi"] = [hi for _, hi in bounds]
    frame["label"] = [bins[b].label(int(i)) for b, i in zip(frame.behaviour, frame.bucket)]
    frame["range_text"] = [bins[b].range_text(int(i)) for b, i in zip(frame.behaviour, frame.bucket)]
    return frame


# --- customers --------------------------------------------------------------------------


@dataclass(frozen=True)
class CustomerBins:
    """Buckets of a customer feature: unit steps for small integer scales, else equal widths."""

    start: float
    width: float
    count: int
    integer: bool
    low: float    # observed minimum and maximum, for sliders
    high: float

    def expr(self, column: ibis.Value) -> ibis.Value:
        return ((column - self.start) / self.width).floor().clip(lower=0, upper=self.count - 1).cast("int32")

    def bounds(self, index: int) -> tuple[float, float]:
        lo = self.start + index * self.width
        return lo, lo + self.width - (1 if self.integer and self.width >= 1 else 0)

    @property
    def digits(self) -> int:
        return 0 if self.width >= 1 else -math.floor(math.log10(self.width))

    def label(self, index: int) -> str:
        """Short axis label: the bucket's lower edge (integers: the whole range)."""
        lo, hi = self.bounds(index)
        if self.integer and self.width >= 1:
            return f"{lo:,.0f}" if lo == hi else f"{lo:,.0f}–{hi:,.0f}"
        return f"{lo:,.{self.digits}f}"

    def range_text(self, index: int) -> str:
        lo, hi = self.bounds(index)
        if self.integer and self.width >= 1:
            return self.label(index)
        return f"{lo:,.{self.digits}f}–{hi:,.{self.digits}f}"


@memoized()
def customer_bins() -> dict[str, CustomerBins]:
    t = table(CUSTOMERS)
    stats = _row(t.aggregate(**{f"{c}__min": t[c].min() for c in CUSTOMER_RANGE_COLUMNS},
                             **{f"{c}__max": t[c].max() for c in CUSTOMER_RANGE_COLUMNS}))
    bins = {}
    for column in CUSTOMER_RANGE_COLUMNS:
        lo, hi = float(stats[f"{column}__min"] or 0), float(stats[f"{column}__max"] or 0)
        integer = CUSTOMERS_COLUMNS[column] in ("INTEGER", "BIGINT")
        if integer and hi - lo < 2 * CUSTOMER_BUCKETS:
            width = 1.0 if hi - lo < CUSTOMER_BUCKETS else 2.0
        else:
            width = _nice((hi - lo) / CUSTOMER_BUCKETS) if hi > lo else 1.0
            lo = math.floor(lo / width) * width
        count = max(1, int(math.floor((hi - lo) / width)) + 1)
        bins[column] = CustomerBins(start=lo, width=width, count=count, integer=integer,
                                    low=float(stats[f"{column}__min"] or 0), high=hi)
    return bins


def _nice(step: float) -> float:
    """Round a bin width up to 1, 2, 2.5 or 5 × a power of ten, for readable edges."""
    power = 10 ** math.floor(math.log10(step))
    return next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= step)


def _customer_filter(t: ibis.Table, filters: CustomerFilters, skip: str | None = None) -> ibis.Table:
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
    return _where(t, preds)


def _has(name: str) -> bool:
    try:
        table(name)
    except Unavailable:
        return False
    return True


@memoized()
def customer_kpis(filters: CustomerFilters) -> dict:
    t = _customer_filter(table(CUSTOMERS), filters)
    aggs = dict(customers=t.count(), declined=t.count(where=t.activity_declined),
                mean_profit=t.profit.mean(),
                **{c: t[c].sum() for c, _ in REVENUE_PERIODS})
    at_risk = None
    if _has(CUSTOMER_SCORES):
        s = table(CUSTOMER_SCORES)
        j = t.inner_join(s.select("customer_id", "p_decline"), "customer_id")
        at_risk = _row(j.aggregate(at_risk=(j.p_decline * j.profit).sum()))["at_risk"] or 0.0
    row = _row(t.aggregate(**aggs))
    return {
        "customers": row["customers"],
        "declined_share": _ratio(row["declined"], row["customers"]),
        "mean_profit": row["mean_profit"],
        "revenue": {c: row[c] or 0.0 for c, _ in REVENUE_PERIODS},
        "profit_at_risk": at_risk,  # None: no model scores yet
    }


@memoized()
def customer_distributions(filters: CustomerFilters) -> pd.DataFrame:
    """behaviour, bucket, lo, hi, label, declined, n for every numeric feature."""
    base, bins = table(CUSTOMERS), customer_bins()
    ranged = [c for c, _ in filters.ranges]
    # one unpivoted group-by for the features without a range of their own (cheap to compile
    # and one scan), and one per ranged feature, which leaves its own range out
    t = _customer_filter(base, filters)
    plain = [c for c in CUSTOMER_RANGE_COLUMNS if c not in ranged]
    long = t.select(abandoned=t.activity_declined, **{c: bins[c].expr(t[c]) for c in plain}).pivot_longer(
        plain, names_to="behaviour", values_to="bucket")
    parts = [long.group_by("behaviour", "bucket", "abandoned").aggregate(n=long.count())]
    for column in ranged:
        t = _customer_filter(base, filters, skip=column)
        parts.append(t.group_by(bucket=bins[column].expr(t[column]), abandoned=t.activity_declined)
                     .aggregate(n=t.count()).mutate(behaviour=ibis.literal(column)))
    parts = [p.select("behaviour", "bucket", "abandoned", "n") for p in parts]
    out = _frame(ibis.union(*parts))
    out = _label_buckets(out, bins)
    return out.rename(columns={"abandoned": "declined"})


@memoized()
def customer_categoricals(filters: CustomerFilters) -> pd.DataFrame:
    """feature, value, declined, n for service tier, consent and top category."""
    base = table(CUSTOMERS)
    parts = []
    for column in CATEGORICAL_FEATURES:
        t = _customer_filter(base, filters, skip=column)
        parts.append(t.group_by(value=t[column].cast("string"), declined=t.activity_declined)
                     .aggregate(n=t.count()).mutate(feature=ibis.literal(column))
                     .select("feature", "value", "declined", "n"))
    return _frame(ibis.union(*parts)).sort_values(["feature", "value", "declined"]).reset_index(drop=True)


@memoized()
def customer_trends(filters: CustomerFilters) -> pd.DataFrame:
    """measure (revenue|minutes), period, declined, mean — the per-period averages."""
    t = _customer_filter(table(CUSTOMERS), filters)
    row = _frame(t.group_by(declined=t.activity_declined).aggregate(
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
    t = _customer_filter(table(CUSTOMERS), filters)
    columns = [*CUSTOMER_RANGE_COLUMNS, "activity_declined"]
    values = {c: t[c].cast("float64") for c in columns}
    aggs = {f"{a}__{b}": values[a].corr(values[b], how="pop")
            for i, a in enumerate(columns) for b in columns[i + 1:]}
    row = _row(t.aggregate(**aggs))
    matrix = pd.DataFrame(1.0, index=columns, columns=columns)
    for key, value in row.items():
        a, b = key.split("__")
        matrix.loc[a, b] = matrix.loc[b, a] = float("nan") if value is None else value
    return matrix


# --- segments ---------------------------------------------------------------------------


@memoized()
def segments() -> pd.DataFrame:
    s = table(SEGMENTS)
    return _frame(s.order_by(s.kind, ibis.desc("mean_p_decline")))


def _segment_rows(view: SegmentView) -> ibis.Table:
    """Scored customers joined with their features, restricted to the view."""
    s = table(CUSTOMER_SCORES)
    c = table(CUSTOMERS)
    j = s.inner_join(c, "customer_id")
    preds = []
    if view.segment:
        preds.append((j.segment == view.segment) | (j.cluster == view.segment))
    if view.min_promo is not None:
        preds.append(j.promo_share >= view.min_promo)
    if view.min_p_decline is not None:
        preds.append(j.p_decline >= view.min_p_decline)
    if view.min_profit is not None:
        preds.append(j.profit >= view.min_profit)
    return _where(j, preds)


@memoized()
def segment_summary(view: SegmentView) -> dict:
    j = _segment_rows(view)
    row = _row(j.aggregate(customers=j.count(), mean_p_decline=j.p_decline.mean(),
                           total_profit=j.profit.sum(), at_risk=j.expected_profit_at_risk.sum(),
                           declined=j.count(where=j.activity_declined)))
    return {**row, "declined_share": _ratio(row["declined"], row["customers"])}


@memoized()
def segment_p_decline(view: SegmentView, buckets: int = 20) -> pd.DataFrame:
    """Histogram of P(decline) in the view: bucket (0..buckets-1), lo, hi, declined, n."""
    j = _segment_rows(view)
    bucket = (j.p_decline * buckets).floor().clip(lower=0, upper=buckets - 1).cast("int32")
    out = _frame(j.group_by(bucket=bucket, declined=j.activity_declined).aggregate(n=j.count())
                 .order_by("bucket", "declined"))
    out["lo"] = out.bucket / buckets
    out["hi"] = (out.bucket + 1) / buckets
    return out


@memoized()
def segment_profile(view: SegmentView) -> pd.DataFrame:
    """feature, segment mean, overall mean, ratio — what sets the view apart."""
    j, everyone = _segment_rows(view), table(CUSTOMERS)
    mine = _row(j.aggregate(**{c: j[c].mean() for c in CUSTOMER_RANGE_COLUMNS}))
    overall = _row(everyone.aggregate(**{c: everyone[c].mean() for c in CUSTOMER_RANGE_COLUMNS}))
    frame = pd.DataFrame({"feature": list(CUSTOMER_RANGE_COLUMNS),
                          "segment": [mine[c] for c in CUSTOMER_RANGE_COLUMNS],
                          "overall": [overall[c] for c in CUSTOMER_RANGE_COLUMNS]})
    frame["ratio"] = frame.segment / frame.overall.where(frame.overall != 0)
    return frame


@memoized()
def at_risk(view: SegmentView, limit: int | None = 500) -> pd.DataFrame:
    """The view's customers ranked by P(decline), highest first (``limit=None``: all)."""
    j = _segment_rows(view)
    ranked = j.select(*AT_RISK_COLUMNS).order_by(ibis.desc("p_decline"), "customer_id")
    return _frame(ranked.limit(limit) if limit else ranked)


# --- model evaluation -------------------------------------------------------------------


@memoized()
def confusion(subject: str, threshold: float) -> dict:
    """Holdout confusion counts at ``threshold`` (tp, fp, fn, tn)."""
    scores = table(SESSION_SCORES if subject == "carts" else CUSTOMER_SCORES)
    facts = table(SUBJECT_TABLES[subject])
    key, target = ID_COLUMNS[subject], TARGETS[subject]
    p = "p_abandon" if subject == "carts" else "p_decline"
    j = scores.filter(scores.in_holdout).inner_join(facts.select(key, target), key)
    predicted, actual = j[p] >= threshold, j[target]
    return _row(j.aggregate(tp=j.count(where=predicted & actual), fp=j.count(where=predicted & ~actual),
                            fn=j.count(where=~predicted & actual), tn=j.count(where=~predicted & ~actual)))


# --- what-if ----------------------------------------------------------------------------


@memoized()
def subject_row(subject: str, row_id: str | int) -> dict | None:
    """One session or customer by id, as a dict of warehouse columns; None when absent."""
    t = table(SUBJECT_TABLES[subject])
    key = ID_COLUMNS[subject]
    found = t.filter(t[key] == row_id).limit(1).to_pyarrow().to_pylist()
    return found[0] if found else None


@memoized()
def example_ids(subject: str, limit: int = 8) -> list:
    """A few real ids to start from: the highest-risk scored rows when there are scores."""
    key = ID_COLUMNS[subject]
    scores_name = SESSION_SCORES if subject == "carts" else CUSTOMER_SCORES
    if _has(scores_name):
        s = table(scores_name)
        p = "p_abandon" if subject == "carts" else "p_decline"
        return s.order_by(ibis.desc(p), key).limit(limit)[key].to_pyarrow().to_pylist()
    t = table(SUBJECT_TABLES[subject])
    return t.order_by(key).limit(limit)[key].to_pyarrow().to_pylist()


# --- data quality -----------------------------------------------------------------------


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
    return _frame(f.mutate(rows_kept=f.rows_read - f.rows_rejected)
                  .select("subject", "source_file", "rows_read", "rows_kept", "rows_rejected",
                          "encoding", "separator", "decimal")
                  .order_by("subject", "source_file"))


@memoized()
def rejection_reasons() -> pd.DataFrame:
    run_id = latest_run()["run_id"]
    r = table(REJECTED_ROWS)
    r = r.filter(r.run_id == run_id)
    return _frame(r.group_by("subject", "source_file", "rule", "reason").aggregate(rows=r.count())
                  .order_by(ibis.desc("rows"), "subject", "source_file", "rule"))


@memoized()
def rejected_sample(limit: int = 200) -> pd.DataFrame:
    run_id = latest_run()["run_id"]
    r = table(REJECTED_ROWS)
    return _frame(r.filter(r.run_id == run_id)
                  .select("subject", "source_file", "source_row", "column_name", "rule", "reason", "raw_values")
                  .order_by("subject", "source_file", "source_row").limit(limit))
