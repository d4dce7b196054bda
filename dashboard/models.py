"""Trained models as the dashboard uses them: cards, integrity-checked pipelines, predictions.

The card comes from the warehouse this request reads (:mod:`dashboard.release`), so a model
is never paired with another release's data; its pickle is loaded once per process (by
hash) after the SHA-256 check, and a retrained model arrives with the next warehouse.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from dashboard import release
from dashboard.release import RUN_TRAIN, Unavailable
from etl.errors import ETLError
from etl.settings import get_settings

SUBJECTS = ("carts", "customers")


def _card_module():
    try:
        from etl.train import card
    except ImportError as exc:  # training not installed / not written yet
        raise Unavailable(f"Model support is missing ({exc}).", RUN_TRAIN) from None
    return card


def models_dir() -> Path:
    return get_settings().models_dir


def read_card(subject: str) -> dict:
    """The card of the model that scored the data this request reads."""
    if subject not in SUBJECTS:
        raise Unavailable(f"Unknown subject {subject!r}.", RUN_TRAIN)
    return release.pinned().card(subject)


def _load_pickle(card: dict) -> object:
    try:
        return _card_module().load_pickle(models_dir(), card)
    except ETLError as exc:
        raise Unavailable(f"No usable model for {card.get('subject')}: {exc}", RUN_TRAIN) from None


def load(subject: str) -> tuple[object, dict]:
    """(fitted pipeline, card) for ``subject``; Unavailable with what to run otherwise."""
    if subject not in SUBJECTS:
        raise Unavailable(f"Unknown subject {subject!r}.", RUN_TRAIN)
    return release.model(subject, _load_pickle)


def predict(subject: str, rows: pd.DataFrame) -> pd.Series:
    """P(positive class) for each row (columns: the card's features)."""
    pipeline, card = load(subject)
    return pd.Series(pipeline.predict_proba(rows[card["features"]])[:, 1], index=rows.index)


def explain(subject: str, row: pd.DataFrame) -> pd.DataFrame:
    """feature, value, contribution for one row (log-odds towards the positive class)."""
    pipeline, card = load(subject)
    wide = _card_module().contributions(pipeline, row[card["features"]], card)
    first = wide.iloc[0]
    return pd.DataFrame({"feature": list(first.index),
                         "value": [_short(row.iloc[0][f]) for f in first.index],
                         "contribution": first.to_numpy(dtype=float)})


class _Recorder:
    """Passes ``predict_proba`` through to the pipeline and keeps its answer."""

    def __init__(self, pipeline) -> None:
        self.pipeline, self.proba = pipeline, None

    def predict_proba(self, rows):
        self.proba = self.pipeline.predict_proba(rows)
        return self.proba


def score(subject: str, row: pd.DataFrame) -> tuple[float, pd.DataFrame]:
    """(P(positive), :func:`explain` frame) for one row in a single ``predict_proba`` call: the
    contributions score the row itself as their first block, and that raw (unclipped)
    probability is the one returned."""
    pipeline, card = load(subject)
    recorder = _Recorder(pipeline)
    wide = _card_module().contributions(recorder, row[card["features"]], card)
    p = float(recorder.proba[0, 1])
    first = wide.iloc[0]
    return p, pd.DataFrame({"feature": list(first.index),
                            "value": [_short(row.iloc[0][f]) for f in first.index],
                            "contribution": first.to_numpy(dtype=float)})


def _short(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
