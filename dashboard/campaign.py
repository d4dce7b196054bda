"""Campaign simulator: change actionable features for every customer of a segment and see who
the customers model then expects to keep.

Pure functions (no I/O): the caller passes the segment's feature rows, the model's
``predict`` and the card's feature specs. Definitions, as the Segments page states them:

* **targeted**: every customer of the view (the action is applied to all of them);
* an action adds a change to a feature (``promo_share`` in percentage points, the others in
  the feature's own unit) and the result is clipped to the range the model saw in training
  (the model knows nothing beyond it; an int feature stays whole);
* **before / after**: the model's P(decline) for today's values and for the changed values
  (both from the model, so an empty action changes nothing; the stored P(decline) of
  training customers is out-of-fold and may differ slightly);
* **moves below the threshold**: before ≥ the card's decision threshold, after below it;
* **expected customers kept**: Σ (before − after);
* **retained profit**: the fall of "Profit at risk" (P(decline) × average monthly profit, the
  product's definition in etl/train/scoring.py): Σ (before − after) × monthly profit, i.e.
  one month of profit;
* **net** = retained profit − cost per customer × targeted;
* its 95 % interval: percentile bootstrap over customers (1000 resamples, fixed seed). It says
  how much the result depends on which customers happen to be in the segment, not how wrong
  the model may be.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from dashboard.inputs import describe, first, number
from dashboard.language import _
from dashboard.ranges import shown, url_number


@dataclass(frozen=True)
class Lever:
    """An actionable feature: the change a campaign may ask for, in the lever's unit."""

    low: float
    high: float
    step: float
    scale: float = 1.0      # lever unit -> feature unit (promo share: points -> share)
    whole: bool = True


# Features marketing or service can act on; facts about the past (tenure, revenue, minutes)
# and the customer's own choices (tier, consent, category) are not levers.
LEVERS: dict[str, Lever] = {
    "promo_share": Lever(-50, 50, 5, 0.01),
    "marketing_this_month": Lever(-2, 2, 1),
    "marketing_6m": Lever(-3, 3, 0.5, whole=False),
    "service_errors": Lever(-5, 5, 1),
    "unpaid_items_quarter": Lever(-5, 5, 1),
}
PREFIX = "act_"          # URL key of a lever: act_<feature>
COST = "cost"            # URL key of the cost per targeted customer
MAX_COST = 1_000_000
RESAMPLES = 1000
SEED = 20240614
LEVEL = 0.95


@dataclass(frozen=True)
class Campaign:
    """The campaign's definition: (feature, change in the lever's unit) and the cost per customer."""

    actions: tuple[tuple[str, float], ...] = ()   # sorted by feature, no zero changes
    cost: float = 0.0

    def query(self) -> dict[str, str]:
        out = {PREFIX + feature: url_number(change) for feature, change in self.actions}
        if self.cost:
            out[COST] = url_number(self.cost)
        return out

    def changes(self) -> dict[str, float]:
        """feature -> change in the feature's own unit."""
        return {feature: change * LEVERS[feature].scale for feature, change in self.actions}

    def value(self, feature: str) -> float:
        return dict(self.actions).get(feature, 0)


def parse_campaign(query: Mapping[str, Any] | None, features: tuple[str, ...] | None = None
                   ) -> tuple[Campaign, list[str]]:
    """A campaign from the URL or the form (anything a request may carry), and a message for
    every value that had to be ignored. ``features``: the model's, when known (a lever the
    model does not use is ignored)."""
    problems: list[str] = []
    query = query if isinstance(query, Mapping) else {}
    actions = []
    for feature, lever in LEVERS.items():
        raw = query.get(PREFIX + feature)
        if raw is None or raw == "":
            continue
        key = PREFIX + feature
        if features is not None and feature not in features:
            problems.append(_("Ignored {key}: the model does not use this feature.").format(key=key))
            continue
        value = number(first(raw), lever.low, lever.high, whole=lever.whole)
        if value is None and lever.whole and number(first(raw), lever.low, lever.high) is not None:
            problems.append(_("Ignored {key}={value}: expected a whole number from {low} to {high}.").format(
                key=key, value=describe(raw, reader=True), low=shown(lever.low), high=shown(lever.high)))
        elif value is None:
            problems.append(_("Ignored {key}={value}: expected a number from {low} to {high}.").format(
                key=key, value=describe(raw, reader=True), low=shown(lever.low), high=shown(lever.high)))
        elif value:
            actions.append((feature, float(value)))
    cost = 0.0
    raw = query.get(COST)
    if raw is not None and raw != "":
        found = number(first(raw), 0, MAX_COST)
        if found is None:
            problems.append(_("Ignored {key}={value}: expected a number from {low} to {high}.").format(
                key=COST, value=describe(raw, reader=True), low=shown(0), high=shown(MAX_COST)))
        else:
            cost = float(found)
    return Campaign(tuple(sorted(actions)), cost), problems


def apply_actions(frame: pd.DataFrame, changes: Mapping[str, float], specs: Mapping[str, dict]) -> pd.DataFrame:
    """A copy of ``frame`` with every change added, clipped to the feature's training range
    (whole numbers stay whole)."""
    out = frame.copy()
    for feature, change in changes.items():
        if not change or feature not in out.columns:
            continue
        spec = specs.get(feature) or {}
        values = out[feature].astype(float) + change
        values = values.clip(lower=spec.get("min"), upper=spec.get("max"))
        out[feature] = values.round().astype(out[feature].dtype) if spec.get("kind") == "int" else values.round(6)
    return out


@dataclass(frozen=True)
class Outcome:
    """The simulated campaign, per customer (arrays in the frame's order) and in total."""

    customer_id: np.ndarray
    profit: np.ndarray
    before: np.ndarray
    after: np.ndarray
    threshold: float
    cost: float

    @property
    def targeted(self) -> int:
        return len(self.before)

    @property
    def movers(self) -> np.ndarray:
        """Customers at or above the threshold before and below it after."""
        return (self.before >= self.threshold) & (self.after < self.threshold)

    @property
    def at_risk_before(self) -> int:
        return int((self.before >= self.threshold).sum())

    @property
    def at_risk_after(self) -> int:
        return int((self.after >= self.threshold).sum())

    @property
    def kept(self) -> float:
        """Expected customers kept: Σ (before − after)."""
        return float((self.before - self.after).sum())

    @property
    def gain(self) -> np.ndarray:
        """Per customer: the fall of profit at risk, (before − after) × monthly profit."""
        return (self.before - self.after) * self.profit

    @property
    def retained(self) -> float:
        return float(self.gain.sum())

    @property
    def net(self) -> float:
        return self.retained - self.cost * self.targeted

    def interval(self) -> tuple[float, float]:
        return bootstrap_interval(self.gain, self.cost)


def simulate(predict: Callable[[pd.DataFrame], np.ndarray], frame: pd.DataFrame, features: list[str],
             specs: Mapping[str, dict], campaign: Campaign, threshold: float) -> Outcome:
    """``frame``: customer_id, profit and the model's features; ``predict`` returns P(decline)
    per row. Both predictions in one call (half the model's overhead on a big segment)."""
    n = len(frame)
    if n == 0:   # a segment (or builder) with no customer: nobody to target, nothing to predict
        both = np.empty(0, dtype=float)
    else:
        changed = apply_actions(frame[features], campaign.changes(), specs)
        both = np.asarray(predict(pd.concat([frame[features], changed], ignore_index=True)), dtype=float)
    return Outcome(customer_id=frame["customer_id"].to_numpy(), profit=frame["profit"].to_numpy(dtype=float),
                   before=both[:n], after=both[n:], threshold=float(threshold), cost=campaign.cost)


def bootstrap_interval(gain: np.ndarray, cost: float, resamples: int = RESAMPLES, seed: int = SEED,
                       level: float = LEVEL) -> tuple[float, float]:
    """Percentile interval of Σ gain − cost × n over customers resampled with replacement
    (n fixed, so the cost shifts the interval; resampled in blocks to bound memory)."""
    gain = np.asarray(gain, dtype=float)
    n = len(gain)
    if n == 0:
        return 0.0, 0.0
    rng = np.random.default_rng(seed)
    block = max(1, min(resamples, 2_000_000 // n))
    totals = []
    for start in range(0, resamples, block):
        picks = rng.integers(0, n, size=(min(block, resamples - start), n))
        totals.append(gain[picks].sum(axis=1))
    sums = np.concatenate(totals)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(sums, [tail, 100 - tail])
    return float(low) - cost * n, float(high) - cost * n
