"""Trained models as the dashboard uses them: cards, integrity-checked pipelines, predictions.

A loaded pipeline is kept per worker process and keyed by its card file's mtime and size, so
a retrained model is picked up on the next request (no restart) and never mixed with an old
card. That is a per-process cache of a file, not per-user state.
"""
from __future__ import annotations

import threading
from pathlib import Path

import pandas as pd

from dashboard.source import RUN_TRAIN, Unavailable
from etl.errors import ETLError
from etl.settings import get_settings

SUBJECTS = ("carts", "customers")
_lock = threading.Lock()
_loaded: dict[str, tuple[str, object, dict]] = {}


def _card_module():
    try:
        from etl.train import card
    except ImportError as exc:  # training not installed / not written yet
        raise Unavailable(f"Model support is missing ({exc}).", RUN_TRAIN) from None
    return card


def models_dir() -> Path:
    return get_settings().models_dir


def card_stamp(subject: str) -> str:
    """Changes whenever the card is rewritten; 'none' when there is no card."""
    try:
        stat = (models_dir() / f"{subject}.json").stat()
    except OSError:
        return "none"
    return f"{stat.st_mtime_ns:x}-{stat.st_size:x}"


def read_card(subject: str) -> dict:
    if subject not in SUBJECTS:
        raise Unavailable(f"Unknown subject {subject!r}.", RUN_TRAIN)
    try:
        return _card_module().read_card(models_dir(), subject)
    except ETLError as exc:
        raise Unavailable(f"No usable model for {subject}: {exc}", RUN_TRAIN) from None


def load(subject: str) -> tuple[object, dict]:
    """(fitted pipeline, card) for ``subject``; Unavailable with what to run otherwise."""
    stamp = card_stamp(subject)
    with _lock:
        held = _loaded.get(subject)
        if held is not None and held[0] == stamp:
            return held[1], held[2]
    try:
        pipeline, card = _card_module().load_model(models_dir(), subject)
    except ETLError as exc:
        raise Unavailable(f"No usable model for {subject}: {exc}", RUN_TRAIN) from None
    with _lock:
        _loaded[subject] = (stamp, pipeline, card)
    return pipeline, card


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
