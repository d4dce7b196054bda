"""Out-of-fold probabilities for every row of the training split.

The final model is fitted on the whole training split, so its own prediction for a training row
is in-sample (optimistic: a forest has seen the row's label). The stored score of a training row
is therefore an out-of-fold one. The search rows (at most ``dataset.MAX_SEARCH_ROWS``) already
have theirs from the search's cross-validation; when the training split is larger, the other
rows get theirs here: ``FOLDS`` stratified folds over the whole training split, a clone of the
final (chosen, possibly calibrated) model fitted on the other folds predicts the held-out fold's
rows that are outside the search sample. On a split no larger than the search sample this
costs nothing.
"""
from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.model_selection import StratifiedKFold
from sklearn.utils.parallel import Parallel, delayed

from etl.train import search
from etl.train.dataset import SEED

FOLDS = 3   # each fold fits on two thirds of the split: ~2x the final fit's time in all


def folds() -> StratifiedKFold:
    return StratifiedKFold(n_splits=FOLDS, shuffle=True, random_state=SEED)


def _fold(model, X: pd.DataFrame, y: np.ndarray, fit_idx: np.ndarray, predict_idx: np.ndarray) -> np.ndarray:
    if len(predict_idx) == 0:
        return np.empty(0)
    fitted = clone(model).fit(X.iloc[fit_idx], y[fit_idx])
    return fitted.predict_proba(X.iloc[predict_idx])[:, 1]


def training_oof(model, X: pd.DataFrame, y: np.ndarray, ids: np.ndarray, search_oof: pd.Series, *,
                 search_folds: int, progress: Callable[[str], None]) -> tuple[pd.Series, dict]:
    """(out-of-fold P(positive) of every training row by id, the card's ``scoring`` record).

    ``X``/``y``/``ids`` are the whole training split; ``search_oof`` is the search rows'
    out-of-fold probability by id (kept as it is: thresholds and CV metrics come from it).
    """
    outside = ~pd.Index(ids).isin(search_oof.index)
    n_outside = int(outside.sum())
    record = {"training_rows": "out-of-fold",
              "search_rows": {"rows": len(search_oof), "folds": search_folds,
                              "source": "the search's cross-validation of the chosen model"},
              "rows_outside_search": n_outside, "folds": FOLDS if n_outside else None,
              "other_rows": "holdout and rows outside the training split: the final model",
              "rule": "training rows outside the search sample: a clone of the final model fitted on "
                      f"the other {FOLDS - 1} of {FOLDS} stratified folds of the whole training split "
                      f"(random_state {SEED}) predicts them"}
    if not n_outside:
        return search_oof, record
    started = time.perf_counter()
    progress(f"  out-of-fold scores for {n_outside:,} training rows outside the search sample, "
             f"{FOLDS}-fold")
    splits = [(fit_idx, test_idx[outside[test_idx]]) for fit_idx, test_idx in folds().split(X, y)]
    parts = Parallel(n_jobs=search.N_JOBS)(delayed(_fold)(model, X, y, fit_idx, predict_idx)
                                           for fit_idx, predict_idx in splits)
    p = np.empty(len(ids))
    for (_, predict_idx), part in zip(splits, parts):
        p[predict_idx] = part
    record["seconds"] = round(time.perf_counter() - started, 1)
    progress(f"  out-of-fold scores done ({record['seconds']:.1f} s)")
    extra = pd.Series(p[outside], index=np.asarray(ids)[outside])
    return pd.concat([search_oof, extra]), record
