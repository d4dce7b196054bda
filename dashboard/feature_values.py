"""What-if form values: parsed and checked against the model card's feature specs.

Values arrive from the form, the URL or a crafted request; each is accepted only if it has
the kind the card declares (int, float, bool, category) and lies in the observed range.
"""
from __future__ import annotations

from typing import Any

from dashboard import terms
from dashboard.inputs import number, text
from dashboard.language import _, current_lang


def parse_value(value: Any, spec: dict, feature: str | None = None) -> tuple[Any, str | None]:
    """(value, None) when valid, else (None, message in the reader's language) — never raises.
    ``feature`` names the value in the message (else the spec's label)."""
    kind = spec.get("kind")
    name = terms.label(feature, _) if feature else spec.get("label", _("value"))
    if value is None or value == "":
        return None, _("{name}: required.").format(name=name)
    if kind == "bool":
        if isinstance(value, bool):
            return value, None
        word = (text(value) or (str(value) if number(value) is not None else "")).strip().lower()
        if word in ("true", "yes", "1"):
            return True, None
        if word in ("false", "no", "0"):
            return False, None
        return None, _("{name}: expected yes or no.").format(name=name)
    if kind == "category":
        for choice in spec.get("choices", []):
            if _same(value, choice) or (text(value) is not None and str(choice) == value):
                return choice, None
        choices = ", ".join(terms.value(feature or "", c, _) for c in spec.get("choices", []))
        return None, _("{name}: expected one of {choices}.").format(name=name, choices=choices)
    low, high = spec.get("min"), spec.get("max")
    found = number(value)
    if found is None:
        return None, _("{name}: expected a finite number.").format(name=name)
    if kind == "int":
        found = number(found, whole=True)
        if found is None:
            return None, _("{name}: expected a whole number.").format(name=name)
    else:
        found = float(found)
    if low is not None and high is not None and not low <= found <= high:
        return None, _("{name}: must be between {low} and {high} (the range seen in training).").format(
            name=name, low=terms.shown("", low, _, current_lang()), high=terms.shown("", high, _, current_lang()))
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
        value, problem = parse_value(values.get(feature), specs.get(feature, {}), feature)
        if problem:
            problems[feature] = problem
        else:
            row[feature] = value
    return row, problems
