"""Per-row, per-feature contributions that add up exactly to the model's output in log-odds.

For every explained row ``base_value + sum(contributions) == output(row)``, where the output
is the log-odds the card names (``card["contributions"]``), up to float rounding (~1e-14).

* Tree models (gradient boosting, random forest, decision tree): TreeSHAP (``shap``,
  ``tree_path_dependent``) on the pipeline's preprocessed columns: exact Shapley values of the
  trees' raw output, where a missing feature is averaged over the training rows that reached
  each node; ``base_value`` is the model's expected output over its training rows.
* Logistic regression: ``coef × (z − z_reference)`` per preprocessed column, exact, against the
  reference row ``card["baseline"]`` (the training split's medians / most common values):
  ``base_value`` is the output at the reference row, and a feature at its reference value
  contributes 0.
* Columns are summed back to the feature they come from (one-hot columns, log/scale steps); a
  sum keeps additivity. A derived column (``features.FeatureGroup``: a trend or ratio of two
  raw inputs) is shared among its inputs in proportion to the size of their exact Shapley
  values in its change from the reference row.
* Calibration (``CalibratedClassifierCV(..., ensemble=False)``): sigmoid calibration is affine
  in the base model's output, ``logit(p) = −(a·f + b)``, so −a × the base model's contributions
  add up exactly to the calibrated log-odds. Isotonic calibration is a step function with no
  additive split: the uncalibrated model's log-odds are explained, and the card says so.
* A base model whose raw output is a probability (forest, tree; uncalibrated or isotonic): the
  output is the log-odds of that probability clipped to [0.001, 0.999]; the probability SHAP
  values are rescaled per row by ``(L(p) − base_value) / sum(phi)``: still exactly additive,
  but the split between features is proportional, not a Shapley value of the log-odds.
* Anything else (KNN, SVC): sampled Shapley values against the reference row. Each of
  ``2 × ORDERING_PAIRS`` feature orderings is a path from the reference row to the row, one
  feature switched per step; the steps of a path telescope, so the contributions add up
  exactly, while the split between features is a sampled estimate.
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import product
from math import factorial

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (ExtraTreesClassifier, GradientBoostingClassifier,
                              HistGradientBoostingClassifier, RandomForestClassifier)
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder
from sklearn.tree import DecisionTreeClassifier

from etl.train.dataset import SEED

# Models such as KNN and forests output exact 0 and 1; clipping bounds their log-odds at ±6.9
# so contributions stay finite instead of jumping by ~40 when p leaves 0 or 1.
P_CLIP = 1e-3
ORDERING_PAIRS = 4            # sampled Shapley values: 4 random orderings and their reverses
SAMPLED_BATCH = 200_000       # hybrid rows per predict_proba call (bounds memory)
LOG_ODDS_TREES = (HistGradientBoostingClassifier, GradientBoostingClassifier)   # raw output: log-odds
PROBABILITY_TREES = (RandomForestClassifier, ExtraTreesClassifier, DecisionTreeClassifier)
OUTPUTS = {"model": "log-odds of the model",
           "calibrated": "log-odds of the calibrated model (sigmoid calibration is affine in the log-odds)",
           "uncalibrated": "log-odds of the uncalibrated model (isotonic calibration is a step function: "
                           "the calibrated probability is not split)"}
REFERENCES = {"tree_shap": "the training rows (each tree's node counts): base_value is the expected output",
              "linear": "the reference row card['baseline'] (medians and most common values of the training "
                        "split): base_value is the output there",
              "sampled_shapley": "the reference row card['baseline'] (medians and most common values of the "
                                 "training split): base_value is the output there"}


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, P_CLIP, 1 - P_CLIP)
    return np.log(p / (1 - p))


@dataclass(frozen=True)
class Explanation:
    contributions: pd.DataFrame   # rows x features, log-odds
    base_value: float             # where the contributions start from (REFERENCES: average or reference row)
    probability: np.ndarray       # P(positive) of each row as the pipeline predicts it


class Explainer:
    """Exact contributions of one fitted pipeline; build it once per fitted model (a tree
    ensemble is parsed once, ~40 ms), then :meth:`explain` costs a few ms per call."""

    def __init__(self, pipeline: Pipeline, features: list[str], reference: dict) -> None:
        self.pipeline, self.features = pipeline, list(features)
        self.reference = pd.DataFrame([{f: reference[f] for f in self.features}])
        last = pipeline[-1]
        self.calibration, self.derived = None, []
        if isinstance(last, CalibratedClassifierCV) and len(last.calibrated_classifiers_) == 1:
            fitted = last.calibrated_classifiers_[0]
            last, self.calibration = fitted.estimator, (last.method, fitted.calibrators[0])
        self.model = last
        self.kind = ("linear" if isinstance(last, LogisticRegression) else
                     "tree_shap" if isinstance(last, LOG_ODDS_TREES + PROBABILITY_TREES) else "sampled_shapley")
        prep = pipeline.named_steps.get("prep")
        if self.kind != "sampled_shapley":
            columns = _column_map(prep, self.features) if len(pipeline) == 2 else None
            if columns is None:
                self.kind = "sampled_shapley"     # a pipeline shape whose columns cannot be traced back
            else:
                self.prep, (self.summing, self.derived) = prep, columns
                self.z_reference = prep.transform(self.reference)
        if self.kind == "tree_shap":
            self._tree = _tree_explainer(last)
        elif self.kind == "sampled_shapley":
            self.calibration = None               # the whole pipeline is explained as it predicts
            rng = np.random.default_rng(SEED)
            orders = np.array([rng.permutation(len(self.features)) for _ in range(ORDERING_PAIRS)])
            self.orders = np.vstack([orders, orders[:, ::-1]])
        self.base_value = (float(self.output(self.reference)[0]) if self.kind == "sampled_shapley"
                           else float(self._from_raw(np.array([self._raw_base()]))[0]))

    # --- what the card says ------------------------------------------------------------
    @property
    def explains(self) -> str:
        method = self.calibration[0] if self.calibration else None
        return {"sigmoid": "calibrated", "isotonic": "uncalibrated"}.get(method, "model")

    @property
    def probability_output(self) -> bool:
        """The explained output is the log-odds of a (clipped) probability, not a native log-odds."""
        return self.kind == "sampled_shapley" or (
            isinstance(self.model, PROBABILITY_TREES) and self.explains != "calibrated")

    def record(self) -> dict:
        """``card["contributions"]``."""
        attribution = ("sampled" if self.kind == "sampled_shapley" else
                       "rescaled" if self.probability_output else "shared" if self.derived else "exact")
        method = {"tree_shap": "TreeSHAP (tree_path_dependent)",
                  "linear": "exact linear decomposition: coefficient x (transformed value - reference)",
                  "sampled_shapley": f"sampled Shapley values ({2 * ORDERING_PAIRS} feature orderings "
                                     "from the reference row)"}[self.kind]
        output = OUTPUTS[self.explains]
        if self.probability_output:
            output += f", from the probability clipped to [{P_CLIP}, {1 - P_CLIP}]"
        notes = {"exact": "each contribution is the feature's exact Shapley value",
                 "rescaled": "the trees' probability contributions are rescaled per row to the log-odds: "
                             "the sum is exact, the split between features proportional",
                 "sampled": "the sum is exact (each ordering's steps telescope); the split between "
                            "features is a sampled estimate",
                 "shared": "exact Shapley values of the preprocessed columns; a derived column's is shared "
                           "among its inputs"}
        record = {"method": method, "kind": self.kind, "output": output, "explains": self.explains,
                  "probability_clipped": self.probability_output, "attribution": attribution,
                  "additive": True, "base_value": self.base_value, "reference": REFERENCES[self.kind],
                  "description": f"base_value + sum(contributions) = {output}; {notes[attribution]}"}
        if self.derived:
            record["derived_features"] = ("a derived column's contribution is shared among its inputs in "
                                          "proportion to the size of their Shapley values in its change "
                                          "from the reference row")
        return record

    # --- explaining rows ----------------------------------------------------------------
    def explain(self, frame: pd.DataFrame) -> Explanation:
        """Contributions and P(positive) of every row of ``frame``: one transform and one
        prediction, as many as ``pipeline.predict_proba`` alone."""
        index, frame = frame.index, frame[self.features].reset_index(drop=True)
        if self.kind == "sampled_shapley":
            phi, probability = self._sampled(frame)
            return Explanation(pd.DataFrame(phi, index=index, columns=self.features), self.base_value, probability)
        z = self.prep.transform(frame)
        probability = self.pipeline[-1].predict_proba(z)[:, 1]
        phi_z = self._raw_contributions(z)
        if self.explains == "calibrated":             # sigmoid: logit(p) = -(a * raw + b), exact
            phi_z = -self.calibration[1].a_ * phi_z
        elif self.probability_output:
            raw = probability if self.calibration is None else self.model.predict_proba(z)[:, 1]
            total = phi_z.sum(axis=1)
            # rows whose probability contributions cancel: any finite factor keeps the (zero) sum
            safe = np.where(np.abs(total) > 1e-12, total, 1.0)
            phi_z = phi_z * ((logit(raw) - self.base_value) / safe)[:, None]
        phi = phi_z @ self.summing
        for column, inputs, transformer, names in self.derived:
            phi[:, inputs] += phi_z[:, [column]] * _shapley_shares(transformer, names, frame, self.reference)
        return Explanation(pd.DataFrame(phi, index=index, columns=self.features), self.base_value, probability)

    def output(self, frame: pd.DataFrame) -> np.ndarray:
        """The explained log-odds of every row, from the model alone (not from contributions)."""
        frame = frame[self.features]
        if self.kind == "sampled_shapley":
            return logit(self.pipeline.predict_proba(frame)[:, 1])
        return self._from_raw(self._raw_output(self.prep.transform(frame)))

    def _raw_output(self, z: np.ndarray) -> np.ndarray:
        """The base model's own output: log-odds (decision function) or P(positive)."""
        if isinstance(self.model, PROBABILITY_TREES):
            return self.model.predict_proba(z)[:, 1]
        return self.model.decision_function(z)

    def _from_raw(self, raw: np.ndarray) -> np.ndarray:
        if self.explains == "calibrated":
            calibrator = self.calibration[1]
            return -(calibrator.a_ * raw + calibrator.b_)
        return logit(raw) if self.probability_output else np.asarray(raw, dtype=float)

    def _raw_base(self) -> float:
        """The base model's raw output at the reference row, as its contributions measure it."""
        if self.kind == "linear":
            return float(self.model.decision_function(self.z_reference)[0])
        base = np.ravel(self._tree.expected_value)
        return float(base[1] if isinstance(self.model, PROBABILITY_TREES) else base[0])

    def _raw_contributions(self, z: np.ndarray) -> np.ndarray:
        """Per preprocessed column, in the base model's raw output."""
        if self.kind == "linear":
            return (z - self.z_reference) * self.model.coef_[0]
        phi = np.asarray(self._tree.shap_values(z, check_additivity=False), dtype=float)
        # probability trees give one set of values per class: keep P(positive)
        return phi[..., 1] if isinstance(self.model, PROBABILITY_TREES) else phi

    def _sampled(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """(contributions, probability) of every row."""
        orders, k = self.orders, len(self.features)
        rank = np.argsort(orders, axis=1)                      # rank[o, j]: step at which j switches
        switched = rank[:, None, :] < np.arange(k + 1)[None, :, None]     # ordering x step x feature
        per_row = len(orders) * (k + 1)
        chunk = max(1, SAMPLED_BATCH // per_row)
        phis, probabilities = [], []
        for start in range(0, len(frame), chunk):
            part = frame.iloc[start:start + chunk]
            n = len(part)
            hybrid = pd.DataFrame({f: np.where(switched[None, :, :, j], part[f].to_numpy()[:, None, None],
                                               self.reference[f].iloc[0]).reshape(-1)
                                   for j, f in enumerate(self.features)})
            p = self.pipeline.predict_proba(hybrid)[:, 1].reshape(n, len(orders), k + 1)
            steps = np.diff(logit(p), axis=2)                  # steps[:, o, t]: feature orders[o, t]
            phis.append(np.take_along_axis(steps, np.broadcast_to(rank, (n, *rank.shape)), axis=2).mean(axis=1))
            probabilities.append(p[:, 0, k])                 # the last step of every path is the row
        return np.vstack(phis or [np.zeros((0, k))]), np.concatenate(probabilities or [np.zeros(0)])


def _tree_explainer(model: BaseEstimator):
    import shap   # imported here: ~2.5 s, and only tree models need it

    # tree_path_dependent, not interventional: shap's interventional code keeps thresholds and
    # leaf values in float32, so a row within float32 rounding of a split (35 of 1,296 real
    # customers for a forest) goes the other way than scikit-learn sends it, and additivity
    # breaks by a whole leaf. The path-dependent recursion compares in float64 as sklearn does.
    return shap.TreeExplainer(model, feature_perturbation="tree_path_dependent", model_output="raw")


def _column_map(prep, features: list[str]):
    """(matrix summing the preprocessed columns into ``features``, derived columns as
    (column, input indices, fitted transformer, input names)); None for a shape not traced."""
    if not isinstance(prep, ColumnTransformer):
        return None
    width = sum(s.stop - s.start for s in prep.output_indices_.values())
    summing, derived = np.zeros((width, len(features))), []
    for name, transformer, columns in prep.transformers_:
        span, columns = prep.output_indices_[name], list(columns)
        if span.stop == span.start:
            continue                                   # dropped columns: the model never sees them
        if any(c not in features for c in columns):
            return None
        encoder = transformer[-1] if isinstance(transformer, Pipeline) else transformer
        if isinstance(encoder, OneHotEncoder):
            dropped = encoder.drop_idx_ if encoder.drop_idx_ is not None else [None] * len(columns)
            widths = [len(c) - (d is not None) for c, d in zip(encoder.categories_, dropped)]
        elif span.stop - span.start == len(columns):
            widths = [1] * len(columns)
        elif span.stop - span.start == 1:
            derived.append((span.start, [features.index(c) for c in columns], transformer, columns))
            continue
        else:
            return None
        if sum(widths) != span.stop - span.start:
            return None
        at = span.start
        for column, w in zip(columns, widths):
            summing[at:at + w, features.index(column)] = 1
            at += w
    return summing, derived


def _shapley_shares(transformer, names: list[str], frame: pd.DataFrame, reference: pd.DataFrame) -> np.ndarray:
    """Per row, each input's share of a derived column: the size of its exact Shapley value in
    the column's change from the reference row, over their sum (shares are in [0, 1] and add
    up to 1, so additivity holds and opposite moves cannot blow up; even when nothing moved)."""
    k, n = len(names), len(frame)
    values = {}
    for mask in product((False, True), repeat=k):
        hybrid = pd.DataFrame({c: frame[c].to_numpy() if on else np.repeat(reference[c].to_numpy(), n)
                               for c, on in zip(names, mask)})
        values[mask] = transformer.transform(hybrid)[:, 0]
    size = np.zeros((n, k))
    for i in range(k):
        for mask in values:
            if not mask[i]:
                m = sum(mask)
                weight = factorial(m) * factorial(k - m - 1) / factorial(k)
                size[:, i] += weight * (values[mask[:i] + (True,) + mask[i + 1:]] - values[mask])
    size = np.abs(size)
    total = size.sum(axis=1, keepdims=True)
    return np.where(total > 0, size / np.where(total > 0, total, 1), 1 / k)
