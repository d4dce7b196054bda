"""The smallest change to a row that brings its predicted probability below the threshold.

Pure search over the model's own predictions (no I/O): every candidate value of every
changeable feature is scored in one ``predict`` call. Size of a change = the distance moved
as a share of the feature's observed range (a switch or a category change counts as half
the range). One feature is tried first; if none suffices, up to three are combined greedily
(each step takes the change that lowers the probability most), and the earlier changes are
then shrunk back towards the original values as far as the result stays below the threshold.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

# Facts about the past, not levers: a what-if may set them, the advice never moves them.
FIXED = frozenset({"customer_segment", "tenure_days"})
GRID = 24        # candidate values per numeric feature
MAX_STEPS = 3    # features combined at most
SWITCH_COST = 0.5


@dataclass(frozen=True)
class Change:
    feature: str
    old: object
    new: object


@dataclass(frozen=True)
class Advice:
    changes: tuple[Change, ...]
    probability: float          # after the changes
    reached: bool               # below the threshold


def _candidates(spec: dict, value) -> list:
    kind = spec.get("kind")
    if kind in ("bool", "category"):
        return [c for c in spec.get("choices", []) if c != value]
    lo, hi = spec.get("min"), spec.get("max")
    if lo is None or hi is None or hi <= lo:
        return []
    grid = np.linspace(lo, hi, GRID)
    if kind == "int":
        grid = np.unique(np.round(grid).astype(int))
        if hi - lo <= GRID:
            grid = np.arange(int(lo), int(hi) + 1)
        return [int(v) for v in grid if v != value]
    return [round(float(v), 4) for v in grid if not np.isclose(v, value)]


def _cost(spec: dict, old, new) -> float:
    if spec.get("kind") in ("bool", "category"):
        return SWITCH_COST
    span = float(spec["max"]) - float(spec["min"])
    return abs(float(new) - float(old)) / span if span else 1.0


def _variants(row: dict, specs: dict, features: list[str], skip: set[str]) -> tuple[pd.DataFrame, list[tuple[str, object]]]:
    records, moves = [], []
    for feature in features:
        if feature in FIXED or feature in skip or feature not in specs:
            continue
        for value in _candidates(specs[feature], row[feature]):
            records.append({**row, feature: value})
            moves.append((feature, value))
    return pd.DataFrame(records, columns=features), moves


def smallest_change(predict: Callable[[pd.DataFrame], np.ndarray], row: dict, specs: dict,
                    features: list[str], threshold: float, p: float | None = None) -> Advice:
    """Advice for ``row`` (a dict of feature values); ``predict`` returns P(positive) per row.
    ``p``: the row's probability when the caller already has it (saves one model call)."""
    current = dict(row)
    if p is None:
        p = float(predict(pd.DataFrame([current], columns=features))[0])
    if p < threshold:
        return Advice((), p, True)
    changed: list[str] = []
    for _ in range(MAX_STEPS):
        frame, moves = _variants(current, specs, features, set(changed))
        if not moves:
            break
        probs = np.asarray(predict(frame), dtype=float)
        below = probs < threshold
        if below.any():
            costs = np.array([_cost(specs[f], row[f], v) for f, v in moves])
            feature, value = moves[int(np.argmin(np.where(below, costs, np.inf)))]
            current[feature] = value
            changed.append(feature)
            current = _shrink(predict, row, current, changed, specs, features, threshold)
            final = float(predict(pd.DataFrame([current], columns=features))[0])
            return Advice(tuple(Change(f, row[f], current[f]) for f in changed), final, True)
        best = int(np.argmin(probs))  # no single move is enough: take the most effective one
        if probs[best] >= p:
            break
        feature, value = moves[best]
        current[feature], p = value, float(probs[best])
        changed.append(feature)
    return Advice(tuple(Change(f, row[f], current[f]) for f in changed), p, False)


def _shrink(predict, row: dict, current: dict, changed: list[str], specs: dict, features: list[str],
            threshold: float) -> dict:
    """Move each earlier change back towards the original value while staying below."""
    for feature in changed[:-1]:
        options = sorted(_candidates(specs[feature], row[feature]) + [row[feature]],
                         key=lambda v: _cost(specs[feature], row[feature], v))
        trial = pd.DataFrame([{**current, feature: v} for v in options], columns=features)
        probs = np.asarray(predict(trial), dtype=float)
        ok = np.flatnonzero(probs < threshold)
        if ok.size:
            current = {**current, feature: options[int(ok[0])]}
    return current
