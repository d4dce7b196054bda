"""Metrics, curves and decision thresholds: pure functions of labels and probabilities.

Thresholds are chosen on out-of-fold predictions of the training split; the holdout only
reports how they fare.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import rankdata
from sklearn.inspection import permutation_importance
from sklearn.metrics import (average_precision_score, brier_score_loss, f1_score,
                             precision_recall_curve, precision_score, recall_score, roc_auc_score,
                             roc_curve)
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline

from etl.train.dataset import SEED

CURVE_POINTS = 200
PROFIT_GRID = np.round(np.linspace(0, 1, 101), 2)
PERMUTATION_ROWS = 20_000   # holdout rows used for permutation importance on large warehouses
# the default cost of one retention offer, as a share of the median customer's monthly profit
DEFAULT_OFFER_COST_SHARE = 0.25


def _r(value: float) -> float:
    return round(float(value), 4)


def metrics(y: np.ndarray, p: np.ndarray, threshold: float) -> dict:
    """ROC-AUC, F1, PR-AUC, Brier (and the confusion-based rates) at ``threshold``."""
    predicted = p >= threshold
    return {"roc_auc": _r(roc_auc_score(y, p)), "f1": _r(f1_score(y, predicted)),
            "pr_auc": _r(average_precision_score(y, p)), "brier": _r(brier_score_loss(y, p)),
            "precision": _r(precision_score(y, predicted, zero_division=0)),
            "recall": _r(recall_score(y, predicted)),
            "accuracy": _r(np.mean(predicted == y)), "threshold": _r(threshold),
            "rows": int(len(y)), "positives": int(np.sum(y))}


def cv_metrics(y: np.ndarray, oof: np.ndarray, fold_of_row: np.ndarray) -> dict:
    """Per-fold metrics of out-of-fold probabilities, as mean and std (F1 at 0.5)."""
    per_fold = [{"roc_auc": roc_auc_score(y[m], oof[m]), "pr_auc": average_precision_score(y[m], oof[m]),
                 "brier": brier_score_loss(y[m], oof[m]), "f1": f1_score(y[m], oof[m] >= 0.5)}
                for m in (fold_of_row == k for k in np.unique(fold_of_row))]
    out: dict = {"folds": len(per_fold), "f1_threshold": 0.5}
    for metric in ("roc_auc", "pr_auc", "brier", "f1"):
        values = [f[metric] for f in per_fold]
        out[f"{metric}_mean"], out[f"{metric}_std"] = _r(np.mean(values)), _r(np.std(values))
    return out


def f1_threshold(y: np.ndarray, p: np.ndarray) -> float:
    """The cut-off that maximises F1 on (out-of-fold) predictions."""
    precision, recall, thresholds = precision_recall_curve(y, p)
    f1 = np.divide(2 * precision * recall, precision + recall,
                   out=np.zeros_like(precision), where=(precision + recall) > 0)
    return _r(thresholds[int(np.argmax(f1[:-1]))])


def profit_curve(y: np.ndarray, p: np.ndarray, profit: np.ndarray, offer_cost: float) -> list[dict]:
    """Retained profit of offering to everyone with p >= t, for t on a 0.01 grid.

    Assumes an offer keeps a customer who would otherwise decline (their monthly profit is
    retained) and costs ``offer_cost`` whoever receives it: sum over p >= t of
    (declined * profit - offer_cost).
    """
    gain = y * profit - offer_cost
    order = np.argsort(-p, kind="stable")
    p_sorted, cumulative = p[order], np.concatenate([[0.0], np.cumsum(gain[order])])
    # rows with p >= t are a prefix of the sorted order
    taken = np.searchsorted(-p_sorted, -PROFIT_GRID, side="right")
    return [{"threshold": float(t), "expected_retained_profit": round(float(cumulative[k]), 2)}
            for t, k in zip(PROFIT_GRID, taken)]


def retained_profit(y: np.ndarray, p: np.ndarray, profit: np.ndarray, offer_cost: float,
                    threshold: float) -> float:
    """The profit-curve quantity at one exact cut-off."""
    offered = p >= threshold
    return round(float(np.sum(y[offered] * profit[offered]) - offer_cost * offered.sum()), 2)


def best_profit_threshold(curve: list[dict]) -> float:
    """The highest-profit cut-off; the larger one on ties (fewer offers for the same profit)."""
    best = max(point["expected_retained_profit"] for point in curve)
    return max(point["threshold"] for point in curve if point["expected_retained_profit"] == best)


def _downsample(n: int) -> np.ndarray:
    return np.unique(np.linspace(0, n - 1, min(n, CURVE_POINTS)).round().astype(int))


def curves(y: np.ndarray, p: np.ndarray) -> dict:
    """Holdout ROC and precision-recall curves, at most ``CURVE_POINTS`` points each."""
    fpr, tpr, thresholds = roc_curve(y, p)
    keep = _downsample(len(fpr))
    precision, recall, _ = precision_recall_curve(y, p)
    keep_pr = _downsample(len(precision))
    return {"roc": {"fpr": [_r(v) for v in fpr[keep]], "tpr": [_r(v) for v in tpr[keep]],
                    # roc_curve's first threshold is +inf ("predict nothing"); JSON has no inf
                    "thresholds": [_r(min(v, 1.0)) for v in thresholds[keep]]},
            "pr": {"precision": [_r(v) for v in precision[keep_pr]],
                   "recall": [_r(v) for v in recall[keep_pr]]}}


def permutation(model: Pipeline, X: pd.DataFrame, y: pd.Series, *, repeats: int) -> list[dict]:
    """Drop in holdout ROC-AUC when one raw column is shuffled, per feature, largest first."""
    if len(X) > PERMUTATION_ROWS:
        X, _, y, _ = train_test_split(X, y, train_size=PERMUTATION_ROWS, stratify=y, random_state=SEED)
    result = permutation_importance(model, X, y, scoring="roc_auc", n_repeats=repeats,
                                    random_state=SEED, n_jobs=1)
    rows = [{"feature": f, "importance_mean": _r(m), "importance_std": _r(s)}
            for f, m, s in zip(X.columns, result.importances_mean, result.importances_std)]
    return sorted(rows, key=lambda r: -r["importance_mean"])


BOOTSTRAP_RESAMPLES, FAST_BOOTSTRAP_RESAMPLES = 1000, 200
RELIABILITY_BINS = 10


def _auc(y: np.ndarray, p: np.ndarray) -> float:
    """ROC-AUC as the Mann-Whitney statistic with mid-ranks (ties count one half); what
    roc_auc_score computes, ~20x faster inside a 1000-fold loop."""
    ranks = rankdata(p)
    positives = int(y.sum())
    negatives = len(y) - positives
    return (ranks[y == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives)


def bootstrap_intervals(y: np.ndarray, p: np.ndarray, threshold: float, *, resamples: int,
                        level: float = 0.95) -> dict:
    """Percentile bootstrap intervals of the holdout ROC-AUC, F1 (at ``threshold``), PR-AUC and
    Brier score. Rows are resampled within each class, so every resample has the holdout's
    class balance (and both classes, which ROC-AUC needs); fixed seed, so reruns agree."""
    y, p = np.asarray(y, dtype=int), np.asarray(p, dtype=float)
    rng = np.random.default_rng(SEED)
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    values: dict[str, list[float]] = {"roc_auc": [], "f1": [], "pr_auc": [], "brier": []}
    for _ in range(resamples):
        rows = np.concatenate([rng.choice(pos, len(pos)), rng.choice(neg, len(neg))])
        yb, pb = y[rows], p[rows]
        predicted = pb >= threshold
        tp = int(np.sum(predicted & (yb == 1)))
        values["roc_auc"].append(_auc(yb, pb))
        values["f1"].append(2 * tp / (predicted.sum() + len(pos)) if predicted.sum() + len(pos) else 0.0)
        values["pr_auc"].append(average_precision_score(yb, pb))
        values["brier"].append(float(np.mean((pb - yb) ** 2)))
    tail = (1 - level) / 2 * 100
    out: dict = {metric: [_r(np.percentile(v, tail)), _r(np.percentile(v, 100 - tail))]
                 for metric, v in values.items()}
    return {**out, "level": level, "resamples": resamples, "seed": SEED,
            "method": "percentile bootstrap of the holdout rows, resampled within each class"}


def reliability(y: np.ndarray, p: np.ndarray, bins: int = RELIABILITY_BINS) -> list[dict]:
    """Reliability curve: per non-empty bin of equal width in predicted probability, the mean
    predicted probability, the observed positive rate and the number of rows."""
    y, p = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    index = np.minimum((p * bins).astype(int), bins - 1)     # p = 1 goes to the last bin
    out = []
    for b in range(bins):
        inside = index == b
        if inside.any():
            out.append({"low": _r(b / bins), "high": _r((b + 1) / bins), "predicted": _r(p[inside].mean()),
                        "observed": _r(y[inside].mean()), "rows": int(inside.sum())})
    return out
