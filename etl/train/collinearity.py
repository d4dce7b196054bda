"""Keep or drop a column that is collinear with another one, decided on evidence.

The seed dropped ``revenue_this_month`` because it correlates with last month's revenue. Here
the decision is measured on the training split: correlation and variance inflation factor
(how collinear), and the paired cross-validated ROC-AUC of two reference models with and
without the column (whether it adds information). The column is kept only if some reference
model gains at least ``MIN_GAIN`` ROC-AUC and more than two standard errors of its paired fold
differences (a gain that is both real and worth having); otherwise it is dropped, because two
near-duplicate columns split a linear model's weight between them and muddle the
per-customer "why" explanations without improving predictions.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score

from etl.train.dataset import SEED
from etl.train.search import N_JOBS, pipeline, preprocessor

MIN_GAIN = 0.002
# the seed's winning model, and a non-linear one that can use interactions the linear one cannot
REFERENCE_MODELS = {
    "logistic_regression": lambda: LogisticRegression(solver="liblinear", C=1, l1_ratio=1,
                                                      random_state=SEED),
    "random_forest": lambda: RandomForestClassifier(n_estimators=100, min_samples_leaf=3,
                                                    random_state=SEED),
}


def vif(frame: pd.DataFrame, column: str, others: list[str]) -> float:
    """Variance inflation factor: 1 / (1 - R²) of ``column`` regressed on ``others``."""
    r2 = LinearRegression().fit(frame[others], frame[column]).score(frame[others], frame[column])
    return float(np.inf) if r2 >= 1 else 1 / (1 - r2)


def decide(train: pd.DataFrame, target: str, column: str, partner: str, features: list[str],
           one_hot: tuple[str, ...], log_scaled: tuple[str, ...], cv: StratifiedKFold) -> dict:
    """Evidence and the keep/drop decision for ``column`` (``features`` includes it)."""
    numeric = [f for f in features if f not in one_hot]
    without = [f for f in features if f != column]
    y = train[target].astype(int)
    evidence: dict = {
        "pearson_r_with_partner": round(float(train[column].corr(train[partner])), 3),
        "vif": round(vif(train.astype({f: float for f in numeric}), column,
                         [f for f in numeric if f != column]), 2),
        "cv_roc_auc": {},
    }
    keep = False
    for name, make in REFERENCE_MODELS.items():
        scores = {}
        for label, columns in (("with", features), ("without", without)):
            model = pipeline(preprocessor(columns, one_hot, log_scaled), make())
            scores[label] = cross_val_score(model, train[columns], y, scoring="roc_auc", cv=cv,
                                            n_jobs=N_JOBS)
        gain = scores["with"] - scores["without"]
        stderr = float(np.std(gain, ddof=1) / np.sqrt(len(gain)))
        evidence["cv_roc_auc"][name] = {"with": round(float(scores["with"].mean()), 4),
                                        "without": round(float(scores["without"].mean()), 4),
                                        "gain": round(float(gain.mean()), 4),
                                        "gain_stderr": round(stderr, 4)}
        keep = keep or (gain.mean() >= MIN_GAIN and gain.mean() > 2 * stderr)
    summary = "; ".join(f"{n}: {e['with']:.4f} with vs {e['without']:.4f} without "
                        f"(gain {e['gain']:+.4f} ± {e['gain_stderr']:.4f})"
                        for n, e in evidence["cv_roc_auc"].items())
    reason = (f"{column} vs {partner}: r = {evidence['pearson_r_with_partner']}, "
              f"VIF = {evidence['vif']}; CV ROC-AUC {summary}. ")
    reason += (f"Kept: a reference model gains >= {MIN_GAIN} and > 2 standard errors." if keep else
               f"Dropped: no gain of {MIN_GAIN} beyond fold noise, and collinear columns blur the "
               "explanations.")
    return {"feature": column, "partner": partner, "decision": "keep" if keep else "drop",
            "reason": reason, "evidence": evidence}
