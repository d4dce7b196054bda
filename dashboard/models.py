"""Trained models as the dashboard uses them: cards, integrity-checked pipelines, predictions.

The card comes from the warehouse this request reads (:mod:`dashboard.release`), so a model
is never paired with another release's data; its pickle is loaded once per process (by
hash) after the SHA-256 check, and a retrained model arrives with the next warehouse.
"""
from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from dashboard import release, terms
from dashboard.language import N_, _, number
from dashboard.release import RUN_TRAIN, Unavailable
from etl.errors import ETLError
from etl.settings import get_settings

SUBJECTS = ("carts", "customers")


def _card_module():
    try:
        from etl.train import card
    except ImportError as exc:  # training not installed / not written yet
        raise Unavailable(_("Model support is missing ({error}).").format(error=exc), RUN_TRAIN) from None
    return card


def models_dir() -> Path:
    return get_settings().models_dir


@dataclass(frozen=True)
class ModelCard:
    """A model card (written by etl.train.card) as the dashboard reads it: typed fields with
    the defaults the pages show for a card that lacks one, and ``raw``, the card itself, for
    the training code's functions that take it (pickle check, contributions)."""

    subject: str
    threshold: float | None                  # None: a card without one (the pages say so)
    features: tuple[str, ...]
    sha256: str
    feature_specs: Mapping[str, dict] = field(default_factory=dict)
    baseline: Mapping[str, Any] = field(default_factory=dict)
    data_version: str | None = None
    model_version: str | None = None
    trained_at: str | None = None
    estimator_label: str | None = None
    chosen_candidate: str | None = None      # name of the candidate the search kept
    holdout: Mapping[str, float] = field(default_factory=dict)    # roc_auc, pr_auc, f1, brier, rows, positives
    cv: Mapping[str, float] = field(default_factory=dict)         # roc_auc_mean, roc_auc_std, …
    curves: Mapping[str, dict] = field(default_factory=dict)      # roc: fpr/tpr, pr: precision/recall
    profit_curve: tuple = ()
    leakage_excluded: tuple[str, ...] = ()
    candidates: tuple[dict, ...] = ()
    permutation_importance: tuple[dict, ...] = ()
    # the training rows' distribution per feature (etl.train.card.feature_distributions);
    # empty for cards written before drift was recorded (dashboard.drift says to retrain)
    feature_distributions: Mapping[str, dict] = field(default_factory=dict)
    # issue 14; all empty for cards trained before it (the pages then show bare numbers)
    holdout_ci: Mapping[str, Any] = field(default_factory=dict)   # metric: [low, high], level, resamples
    selection: Mapping[str, Any] = field(default_factory=dict)    # paired repeated CV vs the seed's pipeline
    calibration: Mapping[str, Any] = field(default_factory=dict)  # cv_brier, method, reliability bins
    contributions: Mapping[str, Any] = field(default_factory=dict)    # how the drivers are computed
    feature_experiments: Mapping[str, Any] = field(default_factory=dict)  # derived features tried
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_dict(cls, card: Mapping[str, Any]) -> ModelCard:
        metrics, estimator = card.get("metrics") or {}, card.get("estimator") or {}
        return cls(
            subject=card.get("subject", ""),
            threshold=None if card.get("threshold") is None else float(card["threshold"]),
            features=tuple(card.get("features") or ()), sha256=card.get("sha256", ""),
            feature_specs=card.get("feature_specs") or {}, baseline=card.get("baseline") or {},
            data_version=card.get("data_version"), model_version=card.get("model_version"),
            trained_at=card.get("trained_at"), estimator_label=estimator.get("label"),
            chosen_candidate=estimator.get("candidate"), holdout=metrics.get("holdout") or {},
            cv=metrics.get("cv") or {}, curves=card.get("curves") or {},
            profit_curve=tuple(card.get("profit_curve") or ()),
            leakage_excluded=tuple((card.get("leakage") or {}).get("excluded") or ()),
            candidates=tuple(card.get("candidates") or ()),
            permutation_importance=tuple(card.get("permutation_importance") or ()),
            feature_distributions=card.get("feature_distributions") or {},
            holdout_ci=metrics.get("holdout_ci") or {}, selection=card.get("selection") or {},
            calibration=card.get("calibration") or {}, contributions=card.get("contributions") or {},
            feature_experiments=card.get("feature_experiments") or {}, raw=card)

    def interval(self, metric: str) -> tuple[float, float] | None:
        """The holdout metric's 95 % bootstrap interval, None when the card has none."""
        bounds = self.holdout_ci.get(metric)
        return (float(bounds[0]), float(bounds[1])) if bounds else None


# card["contributions"] (etl.train.contributions) in the reader's words
METHODS = {"tree_shap": N_("TreeSHAP (exact Shapley values of the trees)"),
           "linear": N_("the exact linear decomposition (coefficient × difference from the typical row)"),
           "sampled_shapley": N_("sampled Shapley values (feature orderings from the typical row)")}
BASES = {"tree_shap": N_("the model's average over its training rows"),
         "linear": N_("the model's output for the typical row (medians and most common values)"),
         "sampled_shapley": N_("the model's output for the typical row (medians and most common values)")}
OUTPUTS = {"model": N_("the model's log-odds"),
           "calibrated": N_("the calibrated model's log-odds (sigmoid calibration is linear in the log-odds)"),
           "uncalibrated": N_("the uncalibrated model's log-odds (isotonic calibration has steps that cannot "
                              "be split, so the probability shown is not split exactly)")}
CAVEATS = {"rescaled": N_("The trees' contributions to the probability are rescaled to log-odds (the "
                          "probability clipped to 0.1–99.9 %): the sum is exact, the split between features "
                          "proportional."),
           "sampled": N_("The split between features is a sampled estimate; the sum is exact."),
           "shared": N_("A derived feature's contribution is shared among the columns it is computed from.")}


def explanation(card: ModelCard) -> str | None:
    """How the drivers of a prediction are computed and what they add up to; None for a card
    trained before contributions were exact (the pages then say nothing)."""
    record = card.contributions
    if record.get("kind") not in METHODS or record.get("explains") not in OUTPUTS:
        return None
    method, base, output = METHODS[record["kind"]], BASES[record["kind"]], OUTPUTS[record["explains"]]
    text = _("Contributions: {method}. Starting point ({value} log-odds): {base}. Starting point plus "
             "contributions equals {output} exactly.").format(
        method=_(method), base=_(base), value=number(record.get("base_value"), 2), output=_(output))
    caveat = CAVEATS.get(record.get("attribution"))
    return text + (" " + _(caveat) if caveat else "")


def read_card(subject: str) -> ModelCard:
    """The card of the model that scored the data this request reads (typed once per release)."""
    if subject not in SUBJECTS:
        raise Unavailable(_("Unknown subject {subject}.").format(subject=repr(subject)), RUN_TRAIN)
    pinned = release.pinned()
    return pinned.derived(f"model-card:{subject}", lambda: ModelCard.from_dict(pinned.card(subject)))


class Fitted:
    """A fitted pipeline and its explainer, built on first use (parsing a tree ensemble takes
    tens of ms, and importing shap seconds; one row then takes a few ms). Held per release by
    :func:`dashboard.release.model` in place of the bare pipeline, so the explainer lives and
    goes with the model it explains."""

    def __init__(self, pipeline, card: Mapping[str, Any]) -> None:
        self.pipeline, self._card, self._explainer = pipeline, card, None
        self._lock = threading.Lock()

    def explainer(self):
        with self._lock:        # threads asking at once build it once
            if self._explainer is None:
                self._explainer = _card_module().explainer(self.pipeline, self._card)
            return self._explainer


def _load_pickle(card: dict) -> Fitted:
    try:
        return Fitted(_card_module().load_pickle(models_dir(), card), card)
    except ETLError as exc:
        raise Unavailable(_("No usable model for {subject}: {error}").format(
            subject=terms.subject(str(card.get("subject")), _).lower(), error=exc), RUN_TRAIN) from None


def _fitted(subject: str) -> tuple[Fitted, ModelCard]:
    if subject not in SUBJECTS:
        raise Unavailable(_("Unknown subject {subject}.").format(subject=repr(subject)), RUN_TRAIN)
    fitted, _digest = release.model(subject, _load_pickle)
    return fitted, read_card(subject)


def load(subject: str) -> tuple[object, ModelCard]:
    """(fitted pipeline, card) for ``subject``; Unavailable with what to run otherwise."""
    fitted, card = _fitted(subject)
    return fitted.pipeline, card


def score(subject: str, row: pd.DataFrame) -> tuple[float, pd.DataFrame]:
    """(P(positive), frame of feature, value, contribution) for one row, from one transform and
    one prediction: the probability is the pipeline's own, the contributions add up to the
    log-odds the card names (``card["contributions"]``)."""
    fitted, card = _fitted(subject)
    explained = fitted.explainer().explain(row[list(card.features)])
    p = float(explained.probability[0])
    first = explained.contributions.iloc[0]
    # the row's own values: the figure words them in the reader's language
    return p, pd.DataFrame({"feature": list(first.index),
                            "value": [row.iloc[0][f] for f in first.index],
                            "contribution": first.to_numpy(dtype=float)})
