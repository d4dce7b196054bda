"""Candidate pipelines and the cross-validated search among them.

The seed's four families (KNN, decision tree, logistic regression, SVC), each with its own
grid, plus gradient boosting and a random forest. Every candidate is one Pipeline
``prep -> model`` so scaling and one-hot encoding are fitted inside each training fold, never
on the rows that score it.

A soft-voting ensemble of the three best families was tried and left out: on the real data
it gained +0.002 CV ROC-AUC on carts (a sixth of a fold standard deviation) and lost 0.001 on
customers, while tripling the one-row what-if latency (21–26 ms under load against a 20 ms
budget; a single forest takes ~8 ms).

The search picks each family's best grid point on the mean ROC-AUC over stratified folds of
the training split only (ties go to the simpler family, the order of ``CANDIDATES``); which
family is used is decided against the seed's pipeline in :mod:`etl.train.compare`.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler
from sklearn.svm import SVC
from sklearn.tree import DecisionTreeClassifier

from etl.train.dataset import SEED

N_JOBS = 2                 # the machine this runs on has two cores; never more
FOLDS, FAST_FOLDS = 5, 3
# Above this many rows a table is "large": 3 folds and bounded forests (see folds(), _forest()).
LARGE_TABLE_ROWS = 50_000
# Above this many rows KNN and SVC are skipped: their fit grows ~n² and their prediction with
# the training size (on 20 k customers they took 40 s and 60 s of search; 10 M sessions: hours).
KERNEL_MAX_ROWS = 10_000
SCORING = {"roc_auc": "roc_auc", "pr_auc": "average_precision", "f1": "f1"}


@dataclass(frozen=True)
class Candidate:
    name: str
    label: str
    make: Callable[[bool], BaseEstimator]     # large table? -> unfitted estimator
    grid: Callable[[bool], dict]              # large table? -> grid (model parameters)
    fast_grid: dict
    small_tables_only: bool = False   # only up to KERNEL_MAX_ROWS rows in the table


def _svc(_large: bool) -> BaseEstimator:
    # searched on its decision function (ROC-AUC needs only the ranking); the fitted model
    # gets Platt-calibrated probabilities, see final_model()
    return SVC(random_state=SEED)


def _forest(large: bool) -> BaseEstimator:
    # 100 trees keep a one-row what-if prediction at ~4 ms (200 trees: ~8 ms for +0.001 AUC);
    # on large tables each tree sees a 15 k-row bootstrap (a 3-fold training part of the 30 k
    # search rows has 20 k): bounds fit time, prediction time and pickle size
    return RandomForestClassifier(n_estimators=100, random_state=SEED,
                                  max_samples=15_000 if large else None)


CANDIDATES: tuple[Candidate, ...] = (
    Candidate("logistic_regression", "Logistic regression",
              lambda _: LogisticRegression(solver="liblinear", random_state=SEED, max_iter=1000),
              # l1_ratio 0 / 1 is the seed's penalty='l2' / 'l1' (the `penalty` name is deprecated)
              lambda _: {"C": [0.01, 0.1, 1, 10], "l1_ratio": [0, 1]},
              {"C": [0.1, 1], "l1_ratio": [1]}),
    Candidate("knn", "K nearest neighbours",
              # kd-tree: a one-row what-if query takes ~1 ms instead of a threaded brute-force scan
              lambda _: KNeighborsClassifier(algorithm="kd_tree"),
              # uniform weights only: distance weighting memorises the training rows (P = 0 or 1
              # for every known customer), which makes scores and what-if on them meaningless
              lambda _: {"n_neighbors": [15, 31, 61], "weights": ["uniform"]},
              {"n_neighbors": [31], "weights": ["uniform"]}, small_tables_only=True),
    Candidate("decision_tree", "Decision tree",
              lambda _: DecisionTreeClassifier(random_state=SEED),
              lambda _: {"max_depth": [3, 5, 8], "min_samples_leaf": [5, 20]},
              {"max_depth": [5], "min_samples_leaf": [20]}),
    Candidate("svc", "Support vector machine (RBF)", _svc,
              lambda _: {"C": [0.1, 1, 10]},
              {"C": [1]}, small_tables_only=True),
    Candidate("gradient_boosting", "Gradient boosting (histogram)",
              lambda _: HistGradientBoostingClassifier(random_state=SEED, early_stopping=False,
                                                       max_iter=300),
              lambda _: {"learning_rate": [0.03, 0.1], "max_leaf_nodes": [7, 15]},
              {"learning_rate": [0.1], "max_leaf_nodes": [7], "max_iter": [100]}),
    Candidate("random_forest", "Random forest", _forest,
              lambda large: {"min_samples_leaf": [20, 50] if large else [1, 3, 10],
                             "max_features": ["sqrt", 0.5]},
              {"min_samples_leaf": [3], "max_features": ["sqrt"]}),
)


def preprocessor(features: list[str], one_hot: tuple[str, ...], log_scaled: tuple[str, ...]) -> ColumnTransformer:
    """log1p (heavy-tailed counts) -> standard scaling; one-hot for codes and booleans.

    Booleans go through the one-hot encoder (one 0/1 column with ``drop="if_binary"``) rather
    than a scaler of their own: every transformer adds ~1 ms to a one-row what-if prediction.
    """
    numeric = [f for f in features if f not in one_hot]
    logged = [f for f in numeric if f in log_scaled]
    plain = [f for f in numeric if f not in log_scaled]
    encoded = [f for f in features if f in one_hot]
    steps = []
    if logged:
        steps.append(("log", Pipeline([
            ("log1p", FunctionTransformer(np.log1p, feature_names_out="one-to-one")),
            ("scale", StandardScaler())]), logged))
    if plain:
        steps.append(("num", StandardScaler(), plain))
    if encoded:
        steps.append(("cat", OneHotEncoder(handle_unknown="ignore", drop="if_binary", sparse_output=False),
                      encoded))
    return ColumnTransformer(steps)


def pipeline(prep: ColumnTransformer, model: BaseEstimator) -> Pipeline:
    return Pipeline([("prep", prep), ("model", model)])


def folds(fast: bool, large: bool) -> StratifiedKFold:
    """5 folds; 3 in fast mode, and on large tables where the search's 30 k rows already make
    fold-to-fold noise small (and every fold costs minutes)."""
    return StratifiedKFold(n_splits=FAST_FOLDS if fast or large else FOLDS, shuffle=True, random_state=SEED)


def _summary(cv_results: dict, index: int) -> dict:
    """mean/std over the folds of each metric for one grid point."""
    return {f"{metric}_{stat}": round(float(cv_results[f"{stat}_test_{metric}"][index]), 4)
            for metric in SCORING for stat in ("mean", "std")}


def searched_model(result: dict, large: bool) -> BaseEstimator:
    """The estimator as searched (an SVC scored on its decision function): enough for ROC-AUC."""
    candidate = next(c for c in CANDIDATES if c.name == result["name"])
    return candidate.make(large).set_params(**result["params"])


def final_model(result: dict, large: bool) -> BaseEstimator:
    """The unfitted estimator of a search result (candidate family + its best parameters)."""
    model = searched_model(result, large)
    if isinstance(model, SVC):
        # Platt scaling on internal folds; monotone, so the searched ROC-AUC is unchanged
        model = CalibratedClassifierCV(model, ensemble=False)
    return model


def run_search(X: pd.DataFrame, y: pd.Series, prep: ColumnTransformer, *, fast: bool,
               table_rows: int, progress: Callable[[str], None]) -> list[dict]:
    """Every candidate's best grid point (or why it was skipped)."""
    large = table_rows > LARGE_TABLE_ROWS
    cv = folds(fast, large)
    results = []
    for candidate in CANDIDATES:
        if candidate.small_tables_only and table_rows > KERNEL_MAX_ROWS:
            results.append({"name": candidate.name, "label": candidate.label, "skipped":
                            f"table has more than {KERNEL_MAX_ROWS:,} rows"})
            progress(f"  {candidate.label:<32} skipped: table has more than {KERNEL_MAX_ROWS:,} rows")
            continue
        grid = candidate.fast_grid if fast else candidate.grid(large)
        started = time.perf_counter()
        search = GridSearchCV(pipeline(prep, candidate.make(large)),
                              {f"model__{k}": v for k, v in grid.items()},
                              scoring=SCORING, refit=False, cv=cv, n_jobs=N_JOBS, error_score="raise")
        search.fit(X, y)
        best = int(np.flatnonzero(search.cv_results_["rank_test_roc_auc"] == 1)[0])
        params = {k.removeprefix("model__"): v for k, v in search.cv_results_["params"][best].items()}
        results.append({"name": candidate.name, "label": candidate.label, "params": params,
                        "grid_points": len(search.cv_results_["params"]),
                        "cv": _summary(search.cv_results_, best),
                        "seconds": round(time.perf_counter() - started, 1)})
        progress(_line(results[-1]))
    return results


def _line(result: dict) -> str:
    cv = result["cv"]
    return (f"  {result['label'][:32]:<32} ROC-AUC {cv['roc_auc_mean']:.4f} ± {cv['roc_auc_std']:.4f}  "
            f"({result['grid_points']} settings, {result['seconds']:.1f} s)  {result['params']}")
