"""Campaign simulator questions: the view's customers before and after a campaign.

The simulation reads the view's customer rows (scoped like every read, through
:func:`dashboard.queries.segments._segment_rows`) and runs the customers model over them; the
totals are for everyone who may see the Segments page, the customers who move are row-level
data (analysts and admins only, refused before anything is read).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from dashboard.auth.scoping import require_rows
from dashboard.cache import memoized
from dashboard.campaign import Campaign, Outcome, simulate
from dashboard.filters import SegmentView
from dashboard.models import load
from dashboard.queries.answers import to_frame
from dashboard.queries.segments import _segment_rows

MOVER_COLUMNS = ("customer_id", "p_before", "p_after", "profit", "retained")


@memoized()
def campaign_outcome(view: SegmentView, campaign: Campaign) -> Outcome:
    """Every customer of ``view`` before and after ``campaign`` (customer id order)."""
    pipeline, card = load("customers")
    features = list(card.features)
    rows = _segment_rows(view)
    frame = to_frame(rows.select("customer_id", "profit", *features).order_by("customer_id"))
    frame["profit"] = frame["profit"].fillna(0.0)    # no profit known: nothing to keep
    return simulate(lambda f: pipeline.predict_proba(f[features])[:, 1], frame, features, card.feature_specs,
                    campaign, float(card.threshold))


def campaign_movers(view: SegmentView, campaign: Campaign) -> pd.DataFrame:
    """The customers who move below the threshold, most profit retained first."""
    require_rows()
    outcome = campaign_outcome(view, campaign)
    moved = outcome.movers
    frame = pd.DataFrame({"customer_id": outcome.customer_id[moved], "p_before": outcome.before[moved],
                          "p_after": outcome.after[moved], "profit": outcome.profit[moved],
                          "retained": outcome.gain[moved]}, columns=list(MOVER_COLUMNS))
    order = np.lexsort((frame["customer_id"].to_numpy(), -frame["retained"].to_numpy()))
    return frame.iloc[order].reset_index(drop=True)
