"""A calibrated variant of the chosen model, kept only when it lowers the cross-validated Brier score.

The what-if panel and the stored scores show probabilities as such ("P(decline) 62 %"), so
they should mean what they say; ROC-AUC does not notice a model whose 0.7 means 0.5. Both
scikit-learn methods are tried: sigmoid (Platt, two parameters) and isotonic (monotone steps,
needs more rows). Each variant is ``prep -> CalibratedClassifierCV(model)`` whose calibrator
is fitted on inner folds of its own training rows (``ensemble=False``: one base model refitted
on all of them, so a one-row prediction costs what it did), and is scored on the same outer
folds as the plain model, so the Brier scores are paired.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.calibration import CalibratedClassifierCV
from sklearn.metrics import brier_score_loss
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import Pipeline

from etl.train import search
from etl.train.dataset import SEED

METHODS = ("sigmoid", "isotonic")
INNER_FOLDS, FAST_INNER_FOLDS = 3, 2


def calibrated(prep, model: BaseEstimator, method: str, fast: bool) -> Pipeline:
    inner = StratifiedKFold(n_splits=FAST_INNER_FOLDS if fast else INNER_FOLDS, shuffle=True, random_state=SEED)
    return search.pipeline(prep, CalibratedClassifierCV(model, method=method, cv=inner, ensemble=False))


def choose(make_prep: Callable[[], object], make_model: Callable[[], BaseEstimator], X: pd.DataFrame,
           y: np.ndarray, cv, oof_plain: np.ndarray, *, fast: bool,
           progress: Callable[[str], None]) -> tuple[str | None, np.ndarray, dict]:
    """(method or None for the plain model, its out-of-fold probabilities, the card's record)."""
    briers = {"none": float(brier_score_loss(y, oof_plain))}
    oofs = {"none": oof_plain}
    for method in METHODS:
        pipe = calibrated(make_prep(), make_model(), method, fast)
        oofs[method] = cross_val_predict(pipe, X, y, cv=cv, method="predict_proba", n_jobs=search.N_JOBS)[:, 1]
        briers[method] = float(brier_score_loss(y, oofs[method]))
    best = min(METHODS, key=lambda m: briers[m])      # sigmoid first: the simpler one on ties
    wins = briers[best] < briers["none"]
    chosen = best if wins else "none"
    progress(f"  calibration: CV Brier plain {briers['none']:.4f}, sigmoid {briers['sigmoid']:.4f}, "
             f"isotonic {briers['isotonic']:.4f} -> {chosen}")
    record = {
        "cv_brier": {k: round(v, 4) for k, v in briers.items()},
        "method": best if wins else None,
        "rule": "the calibrated variant (method with the lower CV Brier score; calibrator fitted on "
                "inner folds of each training fold) replaces the model only when its CV Brier score "
                "is lower than the uncalibrated model's on the same folds",
        "reason": (f"{best} calibration lowers the CV Brier score from {briers['none']:.4f} to "
                   f"{briers[best]:.4f}" if wins else
                   f"no calibration lowers the CV Brier score ({briers['none']:.4f}; best variant "
                   f"{best} {briers[best]:.4f})"),
    }
    return (best if wins else None), oofs[chosen], record
