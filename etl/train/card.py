"""Model cards and integrity-checked model loading; imported by the dashboard.

Kept light on purpose: numpy, pandas, threadpoolctl and the standard library only (the fitted
Pipeline brings scikit-learn in when it is unpickled).

A pickle runs code when it is loaded, so :func:`load_model` hashes the file's bytes and
unpickles those same bytes only if the SHA-256 equals the one recorded in the card.
"""
from __future__ import annotations

import hashlib
import json
import os
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from etl.errors import ETLError

REQUIRED_KEYS = ("subject", "features", "sha256", "threshold", "baseline")
_RETRAIN = "run `python -m etl train`"


def paths(models_dir: Path, subject: str) -> tuple[Path, Path]:
    """(pickle, card) of a subject."""
    return Path(models_dir) / f"{subject}.pkl", Path(models_dir) / f"{subject}.json"


def read_card(models_dir: Path, subject: str) -> dict:
    """The subject's model card; a clear ETLError when it is missing or unreadable."""
    path = paths(models_dir, subject)[1]
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ETLError(str(path), rule="model card present",
                       message=f"no model card for {subject!r}; {_RETRAIN}") from None
    except (OSError, ValueError) as exc:
        raise ETLError(str(path), rule="model card readable",
                       message=f"cannot be read ({exc}); {_RETRAIN}") from None
    missing = [k for k in REQUIRED_KEYS if not isinstance(card, dict) or k not in card]
    if missing:
        raise ETLError(str(path), rule="model card readable",
                       message=f"lacks {missing[0]!r}; {_RETRAIN}")
    return card


def load_model(models_dir: Path, subject: str):
    """(fitted Pipeline, card), after checking the pickle's SHA-256 against the card.

    Side effect: OpenMP is limited to one thread in the calling process (see below).
    """
    card = read_card(models_dir, subject)
    path = paths(models_dir, subject)[0]
    try:
        blob = path.read_bytes()
    except OSError:
        raise ETLError(str(path), rule="model present", message=f"cannot be read; {_RETRAIN}") from None
    digest = hashlib.sha256(blob).hexdigest()
    if digest != card["sha256"]:
        raise ETLError(str(path), rule="model integrity",
                       message=f"SHA-256 {digest[:12]}… differs from the card's {card['sha256'][:12]}…; "
                               f"refusing to unpickle it (a pickle runs code when loaded); {_RETRAIN}")
    model = pickle.loads(blob)
    # The what-if panel predicts one row at a time: an OpenMP thread team (gradient boosting,
    # k-means) only adds start-up and contention cost there (measured under load: 140 ms -> 25 ms
    # for one row). Limits OpenMP (not BLAS, not DuckDB) to one thread in this process.
    threadpool_limits(limits=1, user_api="openmp")
    return model, card


# Models such as KNN and trees output exact 0 and 1; clipping bounds their log-odds at ±6.9 so
# contributions stay finite and comparable instead of jumping by ~40 when p leaves 0 or 1.
P_CLIP = 1e-3


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, P_CLIP, 1 - P_CLIP)
    return np.log(p / (1 - p))


def contributions(pipeline, frame: pd.DataFrame, card: dict) -> pd.DataFrame:
    """Per-row, per-feature contribution to the log-odds of the positive class.

    Baseline occlusion: a feature's contribution is logit(p(row)) - logit(p(row with that
    feature set to the card's baseline value)). For an additive model (logistic regression
    on per-feature transforms) this is exact: the contributions sum to
    logit(p(row)) - logit(p(baseline)). For other models it is the effect of moving that one
    feature to its typical value, other features held, and interactions are not split.
    Probabilities are clipped to [0.001, 0.999] first (``P_CLIP``; exactness holds inside it).
    All variants are scored in one ``predict_proba`` call, so one row takes a few ms.
    """
    features, base = card["features"], card["baseline"]
    n, k = len(frame), len(features)
    columns = {}
    for j, feature in enumerate(features):
        values = np.tile(frame[feature].to_numpy(), k + 1)
        values[(j + 1) * n:(j + 2) * n] = base[feature]   # block j + 1: feature j at baseline
        columns[feature] = values
    logit = _logit(pipeline.predict_proba(pd.DataFrame(columns))[:, 1])
    occluded = logit[n:].reshape(k, n).T
    return pd.DataFrame(logit[:n, None] - occluded, index=frame.index, columns=features)


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def write(folder: Path, subject: str, model, card: dict) -> dict:
    """Pickle ``model`` and write its card (completed with sha256/model_version) into ``folder``."""
    blob = pickle.dumps(model, protocol=5)
    digest = hashlib.sha256(blob).hexdigest()
    card = {**card, "sha256": digest, "model_version": digest[:12]}
    pkl, js = paths(folder, subject)
    pkl.write_bytes(blob)
    js.write_text(json.dumps(card, indent=1, ensure_ascii=False, default=_json_default), encoding="utf-8")
    return card


def publish(folder: Path, models_dir: Path, subject: str) -> None:
    """Move a subject's pickle and card from ``folder`` into ``models_dir`` (atomic renames).

    Between the two renames a reader may see the new pickle with the old card; the hash
    check then refuses to load it rather than pairing a model with the wrong card.
    """
    for source, target in zip(paths(folder, subject), paths(models_dir, subject)):
        os.replace(source, target)
