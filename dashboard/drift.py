"""Drift since training: how far today's warehouse has moved from the rows a model learnt from.

Per feature, the population stability index (PSI) between the training rows' distribution,
recorded in the model card when the model was trained
(:func:`etl.train.card.feature_distributions`), and today's rows of the subject's table cut
into the same bins. The binning runs in the warehouse (one GROUP BY per feature through Ibis),
so a 10 M-row table is never loaded into the process. The usual reading of PSI: below 0.1
stable, 0.1–0.2 a moderate shift, above 0.2 a shift worth acting on: such a feature is
flagged, and any flagged feature sets the model's "retrain suggested" (:func:`retrain_suggested`).

Shared by the Model page and the reports; :func:`dashboard.figures.drift.drift_figure` draws it.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import ibis
import numpy as np

from dashboard import terms
from dashboard.cache import memoized
from dashboard.language import _
from dashboard.models import SUBJECTS, read_card
from dashboard.source import RUN_ETL, RUN_TRAIN, Unavailable, table
from etl.schema import SUBJECT_TABLES

PSI_FLAG = 0.2       # above it a feature is flagged and retraining is suggested
PSI_FLOOR = 1e-4     # share given to an empty bin, so one empty bin does not make PSI infinite
_MISSING = -1        # bin index of NULL / NaN in the warehouse query


@dataclass(frozen=True)
class FeatureDrift:
    """One feature's drift; ``expected`` and ``actual`` are exactly the shares ``psi`` was
    computed from, bin by bin (a "missing" or "other" bin empty on both sides is left out:
    it adds nothing to PSI and only clutters a chart)."""

    feature: str
    psi: float
    flagged: bool                 # psi > PSI_FLAG
    # each bin as data, worded by the reader's language where it is shown (this list is cached
    # for every user): ("le", 3), ("range", 4, 6), ("eq", 5), ("gt", 9), ("all",),
    # ("value", category), ("other",), ("missing",)
    bins: tuple[tuple, ...]
    expected: tuple[float, ...]   # share of the training rows per bin
    actual: tuple[float, ...]     # share of today's rows per bin


def population_stability_index(expected_shares: Sequence[float], actual_shares: Sequence[float],
                               floor: float = PSI_FLOOR) -> float:
    """PSI = Σ (a − e) · ln(a / e) over bins, each share first raised to ``floor``.

    Every term is ≥ 0 (a − e and ln(a/e) share their sign), so PSI is ≥ 0 and is 0 exactly when
    the floored shares are equal; swapping the two distributions gives the same value.
    """
    e = np.asarray(expected_shares, dtype=float)
    a = np.asarray(actual_shares, dtype=float)
    if e.ndim != 1 or e.shape != a.shape:
        raise ValueError(f"expected {e.shape} and actual {a.shape} shares must be two lists of one length")
    if not floor > 0:
        raise ValueError("floor must be positive (ln of an empty bin is -inf)")
    e, a = np.maximum(e, floor), np.maximum(a, floor)
    return float(np.sum((a - e) * np.log(a / e)))


def retrain_suggested(drift: Iterable[FeatureDrift]) -> bool:
    """The model card's "retrain suggested": some feature moved more than PSI_FLAG since training."""
    return any(d.flagged for d in drift)


@memoized(shared=True)
def feature_drift(subject: str) -> list[FeatureDrift]:
    """PSI of every feature of ``subject``'s model, in the card's feature order.

    Unavailable (with ``python -m etl train``) when the card predates recorded distributions.
    """
    if subject not in SUBJECTS:
        raise Unavailable(_("Unknown subject {subject}.").format(subject=repr(subject)), RUN_TRAIN)
    card = read_card(subject)
    distributions = card.feature_distributions
    missing = [f for f in card.features if f not in distributions]
    if not card.features or missing:
        raise Unavailable(_("The model card for {subject} does not record the training rows' distribution of "
                            "{feature} (trained before drift was measured); retrain to measure drift.")
                          .format(subject=terms.subject(subject, _).lower(),
                                  feature=repr(missing[0]) if missing else _("its features")), RUN_TRAIN)
    # Unscoped on purpose: drift is a fact about the model (its training rows against every row
    # it scores today), the same for every user, hence cached once per release (shared=True). A
    # user's row scope would compare a slice with the whole and "find" drift that is only the scope.
    rows = table(SUBJECT_TABLES[subject], scoped=False)
    total = int(rows.count().execute())
    if total == 0:
        raise Unavailable(_("The {table} table is empty; drift needs today's rows.").format(table=SUBJECT_TABLES[subject]),
                          RUN_ETL)
    return [_drift(feature, distributions[feature], rows, total) for feature in card.features]


def _drift(feature: str, dist: dict, rows: ibis.Table, total: int) -> FeatureDrift:
    if dist.get("kind") == "numeric":
        labels, expected, actual = _numeric(feature, dist, rows, total)
        tail = 1                                        # missing
    else:
        labels, expected, actual = _categorical(feature, dist, rows, total)
        tail = 2                                        # other, missing
    # tail bins empty on both sides add nothing to PSI: not shown
    keep = [i for i in range(len(labels)) if i < len(labels) - tail or expected[i] > 0 or actual[i] > 0]
    labels = tuple(labels[i] for i in keep)
    expected = tuple(float(expected[i]) for i in keep)
    actual = tuple(float(actual[i]) for i in keep)
    psi = population_stability_index(expected, actual)
    return FeatureDrift(feature, psi, psi > PSI_FLAG, labels, expected, actual)


def _counts(rows: ibis.Table, key: ibis.Value) -> dict:
    """{key value: rows} by one GROUP BY in the warehouse."""
    grouped = rows.select(key=key).group_by("key").aggregate(n=ibis._.count())
    return {r["key"]: r["n"] for r in grouped.to_pyarrow().to_pylist()}


def _numeric(feature: str, dist: dict, rows: ibis.Table, total: int):
    """Bins exactly as training cut them: bin i holds edges[i-1] < x <= edges[i], the first open
    below, the last open above (np.searchsorted(edges, x, side="left") in the card)."""
    edges = list(dist.get("edges") or [])
    column = rows[feature]
    is_missing = column.isnull()
    if column.type().is_floating():
        is_missing = is_missing | column.isnan()      # the card counts NaN as missing too
    branches = [(is_missing, _MISSING), *((column <= edge, i) for i, edge in enumerate(edges))]
    counts = _counts(rows, ibis.cases(*branches, else_=len(edges)))
    actual = [counts.get(i, 0) / total for i in range(len(edges) + 1)] + [counts.get(_MISSING, 0) / total]
    expected = [*dist["shares"], dist.get("missing", 0.0)]
    return [*_edge_bins(edges), ("missing",)], expected, actual


def _edge_bins(edges: list) -> list[tuple]:
    if not edges:
        return [("all",)]
    integer = all(isinstance(e, int) for e in edges)
    labels = [("le", edges[0])]
    for lo, hi in zip(edges, edges[1:]):
        if integer:   # (lo, hi] of whole numbers is lo+1 … hi
            labels.append(("eq", hi) if lo + 1 == hi else ("range", lo + 1, hi))
        else:
            labels.append(("range", lo, hi))
    return [*labels, ("gt", edges[-1])]


def _categorical(feature: str, dist: dict, rows: ibis.Table, total: int):
    categories = list(dist.get("categories") or [])
    counts = _counts(rows, rows[feature])
    missing = counts.pop(None, 0)
    # dict lookup: JSON gives 1 / True / "x", the warehouse the same Python values
    actual = [counts.pop(c, 0) / total for c in categories]
    expected = list(dist["shares"])
    labels = [("value", c) for c in categories]
    return ([*labels, ("other",), ("missing",)], [*expected, dist.get("other", 0.0), dist.get("missing", 0.0)],
            [*actual, sum(counts.values()) / total, missing / total])
