"""One function per question the UI asks, as Ibis expressions aggregated in the database.

Every function takes validated filters (dashboard/filters.py) and returns a small pandas
frame or dict: group-bys and histograms are binned in SQL, so the result size does not grow
with the warehouse. Results are cached per data version (dashboard/cache.py).

The questions live in one module per subject — :mod:`.carts`, :mod:`.customers`,
:mod:`.segments`, :mod:`.models` (Model and What-if pages), :mod:`.quality` (Data quality) —
and the buckets they cut histograms into in :mod:`dashboard.bins`. They are re-exported here
so that callers outside the page layer (app warm-up, health check, benchmarks, tests) keep
asking ``dashboard.queries.<question>`` without knowing the split.
"""
from __future__ import annotations

from dashboard.bins import CustomerBins, customer_bins
from dashboard.filters import CUSTOMER_RANGE_COLUMNS
from dashboard.queries.carts import (FUNNEL_STAGES, SUMMARY_MEASURES, cart_by_details, cart_by_segment,
                                     cart_distributions, cart_kpis, cart_outcomes, cart_page,
                                     effective_cart_filters)
from dashboard.queries.customers import (CATEGORICAL_FEATURES, MINUTE_PERIODS, REVENUE_PERIODS,
                                         customer_categoricals, customer_correlations, customer_distributions,
                                         customer_kpis, customer_trends)
from dashboard.queries.models import confusion, example_ids, subject_row
from dashboard.queries.quality import latest_run, rejected_sample, rejection_reasons, source_files
from dashboard.queries.segments import (AT_RISK_COLUMNS, at_risk, segment_p_decline, segment_profile,
                                        segment_summary, segments)

__all__ = [
    "AT_RISK_COLUMNS", "CATEGORICAL_FEATURES", "CUSTOMER_RANGE_COLUMNS", "FUNNEL_STAGES", "MINUTE_PERIODS",
    "REVENUE_PERIODS", "SUMMARY_MEASURES", "CustomerBins", "at_risk", "cart_by_details", "cart_by_segment",
    "cart_distributions", "cart_kpis", "cart_outcomes", "cart_page", "confusion", "customer_bins",
    "customer_categoricals", "customer_correlations", "customer_distributions", "customer_kpis",
    "customer_trends", "effective_cart_filters", "example_ids", "latest_run", "rejected_sample",
    "rejection_reasons", "segment_p_decline", "segment_profile", "segment_summary", "segments",
    "source_files", "subject_row",
]
