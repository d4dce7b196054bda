"""What-if form values: parsed and checked against the model card's feature specs.

Values arrive from the form, the URL or a crafted request; each is accepted only if it has
the kind the card declares (int, float, bool, category) and lies in the observed range.
"""
from __future__ import annotations

import math
from typing import Any

MAX_TEXT = 200


def parse_value(value: Any, spec: dict) -> tuple[Any, str | None]:
    """(value, None) when valid, else (None, message) — never raises."""
    kind = spec.get("kind")
    name = spec.get("label", "value")
    if value is None or value == "":
        return None, f"{name}: required."
    if kind == "bool":
        if isinstance(value, bool):
            return value, None
        text = str(value).strip().lower()[:MAX_TEXT]
        if text in ("true", "yes", "1"):
            return True, None
        if text in ("false", "no", "0"):
            return False, None
        return None, f"{name}: expected yes or no."
    if kind == "category":
        for choice in spec.get("choices", []):
            if value == choice or (isinstance(value, str) and len(value) <= MAX_TEXT and str(choice) == value):
                return choice, None
        return None, f"{name}: expected one of {', '.join(str(c) for c in spec.get('choices', []))}."
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None, f"{name}: expected a number."
    try:
        number = float(value) if not isinstance(value, str) else float(value.strip()[:MAX_TEXT])
    except ValueError:
        return None, f"{name}: expected a number."
    if not math.isfinite(number):
        return None, f"{name}: expected a finite number."
    if kind == "int":
        if not number.is_integer():
            return None, f"{name}: expected a whole number."
        number = int(number)
    low, high = spec.get("min"), spec.get("max")
    if low is not None and high is not None and not low <= number <= high:
        return None, f"{name}: must be between {low:g} and {high:g} (the range seen in training)."
    return number, None


def parse_row(values: dict[str, Any], specs: dict, features: list[str]) -> tuple[dict, dict[str, str]]:
    """(valid values by feature, message by feature) for every feature of the model."""
    row, problems = {}, {}
    for feature in features:
        value, problem = parse_value(values.get(feature), specs.get(feature, {}))
        if problem:
            problems[feature] = problem
        else:
            row[feature] = value
    return row, problems
