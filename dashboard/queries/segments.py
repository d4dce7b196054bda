"""Segments page questions: scored customers joined with their features, under a SegmentView.

Every table read is restricted to the user's scope (:func:`dashboard.source.table`; the
``segments`` totals are recomputed over the scoped customers there). The at-risk list is
row-level data: analysts and admins only, refused before the query cache is asked."""
from __future__ import annotations

import ibis
import pandas as pd

from dashboard.auth.scoping import require_rows
from dashboard.cache import memoized
from dashboard.filters import CUSTOMER_RANGE_COLUMNS, SegmentView
from dashboard.queries.answers import first_row, ratio, to_frame, where_all
from dashboard.source import table
from etl.schema import CUSTOMER_CONTRIBUTIONS, CUSTOMER_SCORES, CUSTOMERS, SEGMENTS

AT_RISK_COLUMNS = ("customer_id", "p_decline", "profit", "expected_profit_at_risk", "service_tier",
                   "top_category", "promo_share", "segment", "top_reasons")
REASONS = 3      # reasons per customer, as training's top_reasons


@memoized()
def segments() -> pd.DataFrame:
    s = table(SEGMENTS)
    return to_frame(s.order_by(s.kind, ibis.desc("mean_p_decline")))


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
    return where_all(j, preds)


@memoized()
def segment_summary(view: SegmentView) -> dict:
    j = _segment_rows(view)
    row = first_row(j.aggregate(customers=j.count(), mean_p_decline=j.p_decline.mean(),
                           total_profit=j.profit.sum(), at_risk=j.expected_profit_at_risk.sum(),
                           declined=j.count(where=j.activity_declined)))
    return {**row, "declined_share": ratio(row["declined"], row["customers"])}


@memoized()
def segment_p_decline(view: SegmentView, buckets: int = 20) -> pd.DataFrame:
    """Histogram of P(decline) in the view: bucket (0..buckets-1), lo, hi, declined, n."""
    j = _segment_rows(view)
    bucket = (j.p_decline * buckets).floor().clip(lower=0, upper=buckets - 1).cast("int32")
    out = to_frame(j.group_by(bucket=bucket, declined=j.activity_declined).aggregate(n=j.count())
                 .order_by("bucket", "declined"))
    out["lo"] = out.bucket / buckets
    out["hi"] = (out.bucket + 1) / buckets
    return out


@memoized()
def segment_profile(view: SegmentView) -> pd.DataFrame:
    """feature, segment mean, overall mean, ratio — what sets the view apart."""
    j, everyone = _segment_rows(view), table(CUSTOMERS)
    mine = first_row(j.aggregate(**{c: j[c].mean() for c in CUSTOMER_RANGE_COLUMNS}))
    overall = first_row(everyone.aggregate(**{c: everyone[c].mean() for c in CUSTOMER_RANGE_COLUMNS}))
    frame = pd.DataFrame({"feature": list(CUSTOMER_RANGE_COLUMNS),
                          "segment": [mine[c] for c in CUSTOMER_RANGE_COLUMNS],
                          "overall": [overall[c] for c in CUSTOMER_RANGE_COLUMNS]})
    frame["ratio"] = frame.segment / frame.overall.where(frame.overall != 0)
    return frame


def at_risk(view: SegmentView, limit: int | None = 500) -> pd.DataFrame:
    """The view's customers ranked by P(decline), highest first (``limit=None``: all)."""
    require_rows()
    return _at_risk(view, limit)


@memoized()
def _at_risk(view: SegmentView, limit: int | None) -> pd.DataFrame:
    j = _segment_rows(view)
    ranked = j.select(*AT_RISK_COLUMNS).order_by(ibis.desc("p_decline"), "customer_id")
    return to_frame(ranked.limit(limit) if limit else ranked)



def at_risk_reasons(view: SegmentView, limit: int | None = 500) -> pd.DataFrame:
    """customer_id, feature, value, contribution: the ``REASONS`` largest contributions towards
    decline of each customer :func:`at_risk` lists, largest first. The stored ``top_reasons``
    are English sentences; these parts let a page word them in the reader's language."""
    require_rows()
    return _at_risk_reasons(view, limit)


@memoized()
def _at_risk_reasons(view: SegmentView, limit: int | None) -> pd.DataFrame:
    j = _segment_rows(view)
    ranked = j.select("customer_id", "p_decline").order_by(ibis.desc("p_decline"), "customer_id")
    ids = (ranked.limit(limit) if limit else ranked).select("customer_id")
    c = table(CUSTOMER_CONTRIBUTIONS)
    mine = c.filter(c.contribution > 0).semi_join(ids, "customer_id")
    rank = ibis.row_number().over(group_by=mine.customer_id, order_by=[ibis.desc(mine.contribution), mine.feature])
    top = mine.mutate(rank=rank).filter(ibis._.rank < REASONS)
    return to_frame(top.select("customer_id", "feature", "value", "contribution")
                    .order_by("customer_id", ibis.desc("contribution"), "feature"))
