"""Leakage guard: a column that alone predicts the target almost perfectly is the outcome itself.

``checkout_confirmed`` is the known case (a completed payment *is* a purchase), but the guard
is generic: any candidate column whose single-feature ROC-AUC on the training split reaches
``LEAKAGE_AUC`` is excluded and reported in the card, so a future export that adds, say, an
"order id" column cannot silently produce a perfect-looking model.
"""
from __future__ import annotations

import pandas as pd
from sklearn.metrics import roc_auc_score

LEAKAGE_AUC = 0.97


def single_feature_auc(values: pd.Series, y: pd.Series) -> float:
    """ROC-AUC of one column used as a score, in whichever direction ranks better (0.5–1).

    Categories are scored by their target rate, so a code that maps one-to-one onto the
    outcome is caught too.
    """
    if not (pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values)):
        values = values.map(y.groupby(values).mean())
    auc = roc_auc_score(y, values.to_numpy(dtype=float))
    return float(max(auc, 1 - auc))


def guard(train: pd.DataFrame, target: str, candidates: tuple[str, ...],
          threshold: float = LEAKAGE_AUC) -> dict:
    """Single-feature AUC of every candidate; those at or above ``threshold`` are excluded."""
    y = train[target].astype(int)
    aucs = {c: round(single_feature_auc(train[c], y), 4) for c in candidates}
    excluded = [c for c, auc in aucs.items() if auc >= threshold]
    return {
        "rule": f"single-feature ROC-AUC >= {threshold} on the training split -> excluded",
        "threshold": threshold,
        "single_feature_auc": dict(sorted(aucs.items(), key=lambda kv: -kv[1])),
        "excluded": excluded,
        "findings": [f"{c}: alone predicts {target} with ROC-AUC {aucs[c]:.3f} "
                     f"(>= {threshold}); treated as the outcome itself and excluded" for c in excluded],
        "kept": [c for c in candidates if c not in excluded],
    }
