""""Why this customer": the largest contributions towards decline, as a short sentence.

e.g. "many unpaid items (7), promo share 0.9, few pages per visit (3)". The contributions are
the exact ones of :mod:`etl.train.contributions` (they add up to the model's log-odds), so the
reasons name the features that raise this row's risk most; a feature is phrased by whether
the row's value lies above or below the typical value (``card["baseline"]``).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from etl.schema import label

# feature -> (phrase when above the baseline, phrase when below); {} is the row's value
PHRASES: dict[str, tuple[str, str]] = {
    "unpaid_items_quarter": ("many unpaid items ({})", "few unpaid items ({})"),
    "promo_share": ("promo share {}", "promo share {}"),
    "pages_per_visit": ("many pages per visit ({})", "few pages per visit ({})"),
    "categories_per_visit": ("many categories per visit ({})", "few categories per visit ({})"),
    "minutes_last_month": ("long time on site last month ({} min)", "little time on site last month ({} min)"),
    "minutes_this_month": ("long time on site this month ({} min)", "little time on site this month ({} min)"),
    "marketing_6m": ("many marketing contacts ({}/month)", "few marketing contacts ({}/month)"),
    "marketing_this_month": ("many marketing contacts this month ({})", "few marketing contacts this month ({})"),
    "service_errors": ("many service errors ({})", "few service errors ({})"),
    "tenure_days": ("registered long ago ({} days)", "registered recently ({} days)"),
    "revenue_2m_ago": ("high revenue two months ago ({})", "low revenue two months ago ({})"),
    "revenue_last_month": ("high revenue last month ({})", "low revenue last month ({})"),
    "revenue_this_month": ("high revenue this month ({})", "low revenue this month ({})"),
}
TOP = 3


def format_value(value) -> str:
    """A cell as short text: floats to two decimals, the rest as they are."""
    if isinstance(value, (float, np.floating)):
        return f"{round(float(value), 2):g}"
    return str(value)


def phrase(feature: str, value, baseline) -> str:
    """One reason, e.g. 'few pages per visit (3)', 'no marketing consent', 'top category: Kitchenware'."""
    if isinstance(value, (bool, np.bool_)):
        return ("" if value else "no ") + label(feature).lower()
    if isinstance(value, str):
        return f"{label(feature).lower()}: {value}"
    above, below = PHRASES.get(feature, (f"high {label(feature).lower()} ({{}})",
                                         f"low {label(feature).lower()} ({{}})"))
    return (above if value > baseline else below).format(format_value(value))


def top_reasons(contrib: pd.DataFrame, values: pd.DataFrame, baseline: dict, top: int = TOP) -> list[str]:
    """Per row: the ``top`` largest positive contributions as one comma-separated sentence."""
    features = list(contrib.columns)
    c = contrib.to_numpy()
    order = np.argsort(-c, axis=1, kind="stable")[:, :top]
    rows = values[features].to_numpy(dtype=object)
    out = []
    for i, picks in enumerate(order):
        reasons = [phrase(features[j], rows[i, j], baseline[features[j]]) for j in picks if c[i, j] > 0]
        out.append(", ".join(reasons) if reasons else "nothing raises the risk above a typical customer")
    return out
