"""Selection against the seed's pipeline, bootstrap intervals, calibration: synthetic data with
known answers (issue 14)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, brier_score_loss, f1_score, roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.naive_bayes import GaussianNB
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from etl.train import calibration, compare, evaluate

CV = compare.repeated_folds(fast=False)   # 5 x 5, the real setting


def _results(*names: str) -> list[dict]:
    return [{"name": n, "label": n.replace("_", " ").capitalize(), "params": {}, "cv": {}} for n in names]


def test_corrected_interval_matches_the_formula():
    d = np.array([0.01, 0.03, -0.01, 0.02, 0.00, 0.04, 0.01, 0.02, 0.03, -0.02])
    out = compare.corrected_interval(d, test_share=0.25)
    half = stats.t.ppf(0.975, 9) * np.sqrt((1 / 10 + 0.25) * d.var(ddof=1))
    assert out["mean"] == pytest.approx(0.013)
    assert (out["low"], out["high"]) == pytest.approx((0.013 - half, 0.013 + half))
    naive = stats.t.ppf(0.975, 9) * d.std(ddof=1) / np.sqrt(10)
    assert half > 1.8 * naive     # overlapping folds: much wider than the naive paired t interval


def test_identical_models_cover_zero_and_the_baseline_wins():
    rng = np.random.default_rng(0)
    base = 0.90 + rng.normal(0, 0.02, 25)
    same = base + rng.normal(0, 0.005, 25)        # the same model up to fold noise
    chosen, selection = compare.select(_results("logistic_regression", "random_forest"), base,
                                       {"logistic_regression": base, "random_forest": same}, cv=CV, rows=1000)
    row = next(r for r in selection["candidates"] if r["name"] == "random_forest")
    assert row["difference_low"] <= 0 <= row["difference_high"]
    assert selection["chosen"] == "baseline" and chosen["params"] == compare.BASELINE["params"]
    assert chosen["name"] == "logistic_regression" and "includes zero" in selection["reason"]
    assert selection["folds"] == {"kind": "RepeatedStratifiedKFold", "splits": 5, "repeats": 5,
                                  "random_state": 42, "rows": 1000}
    assert "Nadeau-Bengio" in selection["interval"]


def test_a_clearly_better_model_is_chosen():
    rng = np.random.default_rng(1)
    base = 0.85 + rng.normal(0, 0.02, 25)
    better = base + 0.04 + rng.normal(0, 0.005, 25)
    chosen, selection = compare.select(_results("logistic_regression", "random_forest"), base,
                                       {"logistic_regression": base, "random_forest": better}, cv=CV, rows=1000)
    row = next(r for r in selection["candidates"] if r["name"] == "random_forest")
    assert row["difference_low"] > 0 and row["difference"] == pytest.approx(0.04, abs=0.005)
    assert selection["chosen"] == "candidate" and chosen["name"] == "random_forest"
    assert "above zero" in selection["reason"]


def _xor(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(n, 2)), columns=["a", "b"])
    y = ((X.a * X.b > 0) ^ (rng.random(n) < 0.1)).to_numpy(dtype=int)
    return X, y


def _make(result: dict):
    if result["name"] == "random_forest":
        return Pipeline([("scale", StandardScaler()), ("model", RandomForestClassifier(50, min_samples_leaf=5,
                                                                                       random_state=0))])
    return Pipeline([("scale", StandardScaler()),
                     ("model", LogisticRegression(solver="liblinear", **result["params"]))])


def test_paired_scores_end_to_end():
    """On XOR data a forest is far better than the seed's linear model; an identical copy of
    the baseline is not better at all."""
    X, y = _xor(400, 2)
    cv = compare.repeated_folds(fast=True)
    results = [{"name": "logistic_regression", "label": "LR", "params": dict(compare.BASELINE["params"]), "cv": {}},
               {"name": "random_forest", "label": "RF", "params": {}, "cv": {}},
               {"name": "knn", "label": "KNN", "skipped": "too many rows"}]
    base, scores = compare.paired_scores(_make, results, X, y, cv, progress=lambda _: None)
    assert len(base) == 6 and set(scores) == {"logistic_regression", "random_forest"}
    assert scores["logistic_regression"] is base     # the grid found the seed's own setting
    chosen, selection = compare.select(results, base, scores, cv=cv, rows=len(y))
    assert selection["folds"]["splits"] == 3 and selection["folds"]["repeats"] == 2
    assert chosen["name"] == "random_forest" and selection["candidates"][1]["difference_low"] > 0.2
    assert selection["candidates"][0]["difference"] == 0


def test_fast_auc_equals_sklearn_with_ties():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 500)
    p = np.round(rng.random(500) * 0.5 + 0.3 * y, 1)     # many ties
    assert evaluate._auc(y, p) == pytest.approx(roc_auc_score(y, p))


def test_bootstrap_intervals_cover_the_point_estimates_and_repeat():
    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, 600)
    p = np.clip(0.5 + 0.25 * (2 * y - 1) + rng.normal(0, 0.25, 600), 0, 1)
    ci = evaluate.bootstrap_intervals(y, p, 0.5, resamples=300)
    point = {"roc_auc": roc_auc_score(y, p), "f1": f1_score(y, p >= 0.5),
             "pr_auc": average_precision_score(y, p), "brier": brier_score_loss(y, p)}
    for metric, value in point.items():
        low, high = ci[metric]
        assert low < value < high and high - low < 0.15
    # the AUC's standard error on 600 rows is ~0.015: a 95 % interval is about 4 of them wide
    assert 0.03 < ci["roc_auc"][1] - ci["roc_auc"][0] < 0.09
    assert ci == evaluate.bootstrap_intervals(y, p, 0.5, resamples=300)
    assert ci["resamples"] == 300 and ci["level"] == 0.95


def test_reliability_of_a_calibrated_model_lies_on_the_diagonal():
    rng = np.random.default_rng(5)
    p = rng.random(20_000)
    y = (rng.random(20_000) < p).astype(int)
    curve = evaluate.reliability(y, p)
    assert len(curve) == 10 and sum(b["rows"] for b in curve) == 20_000
    for b in curve:
        assert b["low"] <= b["predicted"] <= b["high"]
        assert b["observed"] == pytest.approx(b["predicted"], abs=0.03)
    assert evaluate.reliability(np.array([0, 1]), np.array([0.0, 1.0])) == [
        {"low": 0.0, "high": 0.1, "predicted": 0.0, "observed": 0.0, "rows": 1},
        {"low": 0.9, "high": 1.0, "predicted": 1.0, "observed": 1.0, "rows": 1}]


def test_calibration_wins_for_an_overconfident_model():
    """Naive Bayes on a feature copied five times counts its evidence five times: overconfident."""
    rng = np.random.default_rng(6)
    x = rng.normal(size=1000)
    y = (rng.random(1000) < 1 / (1 + np.exp(-x))).astype(int)
    X = pd.DataFrame({f"x{i}": x for i in range(5)})
    cv = StratifiedKFold(5, shuffle=True, random_state=0)
    prep = lambda: FunctionTransformer()      # noqa: E731
    plain = calibration.search.pipeline(prep(), GaussianNB())
    oof = cross_val_predict(plain, X, y, cv=cv, method="predict_proba")[:, 1]
    method, oof_chosen, record = calibration.choose(prep, GaussianNB, X, y, cv, oof, fast=True,
                                                    progress=lambda _: None)
    assert method in ("sigmoid", "isotonic") and record["method"] == method
    assert record["cv_brier"][method] < record["cv_brier"]["none"] - 0.01
    assert brier_score_loss(y, oof_chosen) == pytest.approx(record["cv_brier"][method], abs=1e-4)
    fitted = calibration.calibrated(prep(), GaussianNB(), method, fast=True).fit(X, y)
    assert fitted.predict_proba(X.iloc[:1]).shape == (1, 2)
