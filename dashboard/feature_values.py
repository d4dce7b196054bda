"""What-if form values: parsed and checked against the model card's feature specs.

Values arrive from the form, the URL or a crafted request; each is accepted only if it has
the kind the card declares (int, float, bool, category) and lies in the observed range.
"""
from __future__ import annotations

from typing import Any

from dashboard.inputs import number, text


def parse_value(value: Any, spec: dict) -> tuple[Any, str | None]:
    """(value, None) when valid, else (None, message) — never raises."""
    kind = spec.get("kind")
    name = spec.get("label", "value")
    if value is None or value == "":
        return None, f"{name}: required."
    if kind == "bool":
        if isinstance(value, bool):
            return value, None
        word = (text(value) or (str(value) if number(value) is not None else "")).strip().lower()
        if word in ("true", "yes", "1"):
            return True, None
        if word in ("false", "no", "0"):
            return False, None
        return None, f"{name}: expected yes or no."
    if kind == "category":
        for choice in spec.get("choices", []):
            if _same(value, choice) or (text(value) is not None and str(choice) == value):
                return choice, None
        return None, f"{name}: expected one of {', '.join(str(c) for c in spec.get('choices', []))}."
    low, high = spec.get("min"), spec.get("max")
    found = number(value)
    if found is None:
        return None, f"{name}: expected a finite number."
    if kind == "int":
        found = number(found, whole=True)
        if found is None:
            return None, f"{name}: expected a whole number."
    else:
        found = float(found)
    if low is not None and high is not None and not low <= found <= high:
        return None, f"{name}: must be between {low:g} and {high:g} (the range seen in training)."
    return found, None


def _same(value: Any, choice: Any) -> bool:
    """Equal and of the same kind: ``True == 1`` in Python, but a category 1 is not "yes"."""
    if isinstance(value, bool) or isinstance(choice, bool):
        return value is choice
    if isinstance(value, int | float) and isinstance(choice, int | float):
        return number(value) is not None and value == choice
    return isinstance(value, str) and isinstance(choice, str) and value == choice


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
