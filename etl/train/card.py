"""Model cards, the training rows' feature distributions, integrity-checked model loading, and
the explainer of a loaded model.

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
    """(pickle, card) of a subject as published; the pickle is the one the card names."""
    card = Path(models_dir) / f"{subject}.json"
    try:
        named = json.loads(card.read_text(encoding="utf-8")).get("pickle")
    except (OSError, ValueError, AttributeError):
        named = None
    return Path(models_dir) / _safe_name(named or f"{subject}.pkl"), card


def pickle_name(subject: str, digest: str) -> str:
    """Pickles are named by their content: publishing one never overwrites another, so a
    reader holding an older card (through an older warehouse) still finds its pickle."""
    return f"{subject}-{digest[:16]}.pkl"


def _safe_name(name: str) -> str:
    """A card names a file in the models folder, never a path elsewhere."""
    if Path(name).name != name or not name.endswith(".pkl"):
        raise ETLError(name, rule="model card readable", message="names a pickle outside the models folder")
    return name


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
    """(fitted Pipeline, card) as published in ``models_dir``; see :func:`load_pickle`."""
    card = read_card(models_dir, subject)
    return load_pickle(models_dir, card), card


def load_pickle(models_dir: Path, card: dict):
    """The fitted Pipeline a card names, after checking its SHA-256 against the card.

    Side effect: OpenMP is limited to one thread in the calling process (see below).
    """
    path = Path(models_dir) / _safe_name(card.get("pickle") or f"{card['subject']}.pkl")
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
    return model


def explainer(pipeline, card: dict):
    """The exact contributions of ``pipeline`` (:class:`etl.train.contributions.Explainer`):
    build it once per fitted model and keep it beside the pipeline, then ``explain`` rows."""
    # imported here: it brings scikit-learn's model classes (and shap for trees), which the
    # card readers of the dashboard do not need
    from etl.train.contributions import Explainer

    return Explainer(pipeline, card["features"], card["baseline"])


# --- what the training rows looked like, for drift (dashboard.drift) ----------------------
# Small on purpose (it lives in the card): at most 2 * DISTRIBUTION_BINS numbers per numeric
# feature and 2 * MAX_CATEGORIES + 2 per categorical one, shares rounded to SHARE_DIGITS decimals.
DISTRIBUTION_BINS = 10
MAX_CATEGORIES = 20
SHARE_DIGITS = 6


def feature_distributions(frame: pd.DataFrame, specs: dict) -> dict:
    """{feature: distribution over ``frame``} for every feature of ``specs`` (their kinds).

    Numeric: ``edges`` are the distinct deciles (inverted CDF, so each is an observed value;
    ties collapse, so a column with few values gets few bins); bin i holds
    ``edges[i-1] < x <= edges[i]``, the first is open below and the last (``x > edges[-1]``)
    open above, so today's values outside the training range still land somewhere.
    ``shares`` has len(edges) + 1 entries. Categorical and bool: the
    MAX_CATEGORIES most common ``categories`` (count, then text, so ties do not depend on row
    order) with their ``shares``, and ``other`` for the rest. Both record the ``missing`` share.
    """
    out = {}
    for feature, spec in specs.items():
        column = frame[feature]
        if spec["kind"] in ("category", "bool"):
            out[feature] = _categorical_distribution(column)
        else:
            out[feature] = _numeric_distribution(column, integer=spec["kind"] == "int")
    return out


def _share(count, total: int) -> float:
    return round(float(count) / max(total, 1), SHARE_DIGITS)


def _numeric_distribution(column: pd.Series, integer: bool) -> dict:
    values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=float)
    present = values[~np.isnan(values)]
    edges: list = []
    if len(present):
        # arange, not linspace: linspace's 0.30000000000000004 makes the inverted CDF take the
        # value after the 30 % one
        levels = np.arange(1, DISTRIBUTION_BINS) / DISTRIBUTION_BINS
        deciles = np.quantile(present, levels, method="inverted_cdf")
        # kept exact, not rounded: a rounded edge would move the observed value it stands for
        # (often a tie of many rows) into the next bin
        edges = sorted({int(v) if integer else float(v) for v in deciles if np.isfinite(v)})
    counts = np.bincount(np.searchsorted(np.asarray(edges, dtype=float), present, side="left"),
                         minlength=len(edges) + 1)
    return {"kind": "numeric", "edges": edges, "shares": [_share(c, len(values)) for c in counts],
            "missing": _share(len(values) - len(present), len(values))}


def _categorical_distribution(column: pd.Series) -> dict:
    counts = column.value_counts(dropna=True)
    ranked = sorted(((v.item() if isinstance(v, np.generic) else v, int(c)) for v, c in counts.items()),
                    key=lambda vc: (-vc[1], str(vc[0])))
    kept = ranked[:MAX_CATEGORIES]
    return {"kind": "categorical", "categories": [v for v, _ in kept],
            "shares": [_share(c, len(column)) for _, c in kept],
            "other": _share(sum(c for _, c in ranked[MAX_CATEGORIES:]), len(column)),
            "missing": _share(int(column.isna().sum()), len(column))}


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def write(folder: Path, subject: str, model, card: dict) -> dict:
    """Pickle ``model`` and write its card (completed with sha256, model_version and the
    pickle's name) into ``folder``."""
    blob = pickle.dumps(model, protocol=5)
    digest = hashlib.sha256(blob).hexdigest()
    card = {**card, "sha256": digest, "model_version": digest[:12], "pickle": pickle_name(subject, digest)}
    (Path(folder) / card["pickle"]).write_bytes(blob)
    paths(folder, subject)[1].write_text(card_json(card), encoding="utf-8")
    return card


def card_json(card: dict) -> str:
    return json.dumps(card, indent=1, ensure_ascii=False, default=_json_default)


def publish_pickle(folder: Path, models_dir: Path, card: dict) -> None:
    """Move a card's pickle into ``models_dir``; safe at any time (a new name, see
    :func:`pickle_name`), so it is done before the warehouse that names it is published."""
    os.replace(Path(folder) / card["pickle"], Path(models_dir) / card["pickle"])


def publish_card(folder: Path, models_dir: Path, subject: str, keep: int = 3) -> None:
    """Replace ``models/<subject>.json`` (atomic rename), then delete all but the ``keep``
    newest pickles of the subject: readers pinned to an older warehouse for a moment still
    find theirs."""
    os.replace(paths(folder, subject)[1], Path(models_dir) / f"{subject}.json")
    pickles = sorted(Path(models_dir).glob(f"{subject}-*.pkl"), key=lambda p: p.stat().st_mtime_ns, reverse=True)
    for old in pickles[keep:]:
        old.unlink(missing_ok=True)
    (Path(models_dir) / f"{subject}.pkl").unlink(missing_ok=True)    # the unversioned name of older releases
