"""Drift since training: the PSI itself, the training rows' distributions the card records, and
``feature_drift`` against today's warehouse (the real data when ``../shared/data`` exists).

Warehouse-changing tests work on copies of the session's scored warehouse (the release, and so
the cached answer, is keyed by the file), never on the shared one.
"""
from __future__ import annotations

import json
import math
import shutil

import duckdb
import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dashboard import drift as drift_module
from dashboard.drift import (PSI_FLAG, FeatureDrift, feature_drift, population_stability_index,
                             retrain_suggested)
from dashboard.figures.drift import drift_figure
from dashboard.models import ModelCard
from dashboard.source import Unavailable
from etl.train import card as cards

psi = population_stability_index

# --- the index -------------------------------------------------------------------------------


def test_identical_distributions_have_zero_psi():
    shares = [0.1, 0.25, 0.0, 0.65]
    assert psi(shares, shares) == 0.0
    assert psi([1.0], [1.0]) == 0.0


@pytest.mark.parametrize("expected, actual, value", [
    # 0.25·ln 2 + 0.25·ln 1.5 = 0.25·ln 3
    ([0.5, 0.5], [0.25, 0.75], 0.25 * math.log(3)),
    # 0.2·ln 1.5 + (-0.2)·ln(2/3) = 0.4·ln 1.5
    ([0.4, 0.6], [0.6, 0.4], 0.4 * math.log(1.5)),
    # the empty bin counts as 1e-4: 0 + 0.1·ln 1.25 + (0.1 - 1e-4)·ln 1000
    ([0.5, 0.5, 0.0], [0.5, 0.4, 0.1], 0.1 * math.log(1.25) + 0.0999 * math.log(1000)),
    # ten equal bins, half the mass moved from the first five to the last five
    ([0.1] * 10, [0.05] * 5 + [0.15] * 5, 5 * 0.05 * math.log(2) + 5 * 0.05 * math.log(1.5)),
])
def test_hand_computed_cases(expected, actual, value):
    assert psi(expected, actual) == pytest.approx(value, rel=1e-12)


def test_the_floor_bounds_an_empty_bin():
    # without a floor ln(0.1 / 0) is infinite; a larger floor gives a smaller, finite index
    small, large = psi([1.0, 0.0], [0.9, 0.1], floor=1e-6), psi([1.0, 0.0], [0.9, 0.1], floor=1e-2)
    assert math.isfinite(small) and small > large > 0
    # both shares under the floor: the same bin after flooring, no contribution
    assert psi([0.5, 0.5, 0.0], [0.5, 0.5, 0.00005]) == 0.0
    with pytest.raises(ValueError):
        psi([0.5, 0.5], [0.5, 0.5], floor=0)


def test_shapes_must_agree():
    with pytest.raises(ValueError):
        psi([0.5, 0.5], [1.0])


def test_flag_above_the_usual_threshold():
    assert PSI_FLAG == 0.2
    assert psi([0.5, 0.5], [0.25, 0.75]) > PSI_FLAG > psi([0.4, 0.6], [0.6, 0.4])


shares = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)
tiny_or_share = st.one_of(st.just(0.0), st.floats(min_value=0.0, max_value=2e-4), shares)


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=1, max_value=12).flatmap(
    lambda n: st.tuples(st.lists(tiny_or_share, min_size=n, max_size=n),
                        st.lists(tiny_or_share, min_size=n, max_size=n))))
def test_psi_is_non_negative_symmetric_and_zero_only_for_equal_floored_shares(pair):
    expected, actual = pair
    value = psi(expected, actual)
    assert value >= 0.0
    floored_equal = np.array_equal(np.maximum(expected, 1e-4), np.maximum(actual, 1e-4))
    assert (value == 0.0) == floored_equal
    # exactly symmetric in exact arithmetic: (a-e)·ln(a/e) = (e-a)·ln(e/a)
    assert psi(actual, expected) == pytest.approx(value, rel=1e-9, abs=1e-300)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=1000), min_size=2, max_size=11), st.integers(0, 10),
       st.integers(1, 500))
def test_moving_mass_into_one_bin_raises_psi(counts, target, extra):
    # a distribution drifting further and further from the one trained on
    if sum(counts) == 0:
        counts = [1] * len(counts)
    target %= len(counts)
    base = np.asarray(counts, dtype=float) / sum(counts)
    moved = np.asarray(counts, dtype=float)
    moved[target] += extra
    more = moved.copy()
    more[target] += extra
    assert psi(base, moved / moved.sum()) <= psi(base, more / more.sum()) + 1e-12


# --- what training records -------------------------------------------------------------------


def _spec(kind: str) -> dict:
    return {"kind": kind, "label": kind}


def test_continuous_column_gets_ten_equal_bins():
    frame = pd.DataFrame({"x": np.arange(1000, dtype=float) / 7})
    dist = cards.feature_distributions(frame, {"x": _spec("float")})["x"]
    assert dist["kind"] == "numeric" and len(dist["edges"]) == 9 and len(dist["shares"]) == 10
    assert dist["shares"] == [0.1] * 9 + [0.1]        # the last decile's edge is below the maximum
    assert dist["missing"] == 0.0
    assert dist["edges"] == sorted(dist["edges"])


def test_ties_collapse_into_fewer_bins_and_missing_has_its_own():
    frame = pd.DataFrame({"few": [0] * 70 + [1] * 30, "constant": [5] * 100,
                          "gaps": [1.5] * 40 + [np.nan] * 10 + [2.5] * 50})
    dists = cards.feature_distributions(frame, {"few": _spec("int"), "constant": _spec("int"),
                                                "gaps": _spec("float")})
    assert dists["few"] == {"kind": "numeric", "edges": [0, 1], "shares": [0.7, 0.3, 0.0], "missing": 0.0}
    assert dists["constant"] == {"kind": "numeric", "edges": [5], "shares": [1.0, 0.0], "missing": 0.0}
    assert dists["gaps"]["edges"] == [1.5, 2.5]
    assert dists["gaps"]["shares"] == [0.4, 0.5, 0.0] and dists["gaps"]["missing"] == 0.1
    assert all(isinstance(e, int) for e in dists["few"]["edges"])   # integer columns keep whole edges


def test_categories_keep_the_most_common_and_an_other_bucket():
    values = [f"c{i:02d}" for i in range(30) for _ in range(i + 1)] + [None] * 5
    frame = pd.DataFrame({"cat": values, "flag": [True, False] * (len(values) // 2) + [True] * (len(values) % 2)})
    dists = cards.feature_distributions(frame, {"cat": _spec("category"), "flag": _spec("bool")})
    cat = dists["cat"]
    assert len(cat["categories"]) == cards.MAX_CATEGORIES
    assert cat["categories"][:2] == ["c29", "c28"]                     # most common first
    n = len(values)
    assert cat["other"] == round(sum(range(1, 11)) / n, 6)            # c00..c09 did not make the list
    assert cat["missing"] == round(5 / n, 6)
    assert sum(cat["shares"]) + cat["other"] + cat["missing"] == pytest.approx(1, abs=1e-5)
    assert set(dists["flag"]["categories"]) == {True, False}
    assert all(type(c) is bool for c in dists["flag"]["categories"])   # JSON true/false, not 1/0


def test_distributions_are_deterministic_and_small():
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"x": rng.lognormal(size=5000), "n": rng.poisson(3, size=5000),
                          "c": rng.choice(list("abcde"), size=5000)})
    frame.loc[0:6, "c"], frame.loc[7:13, "c"] = "q", "p"              # a tie: ordered by text, not by row
    specs = {"x": _spec("float"), "n": _spec("int"), "c": _spec("category")}
    one = cards.feature_distributions(frame, specs)
    shuffled = cards.feature_distributions(frame.sample(frac=1, random_state=9), specs)
    assert cards.card_json(one) == cards.card_json(shuffled)
    assert one["c"]["categories"][-2:] == ["p", "q"]
    assert json.loads(cards.card_json(one)) == one                   # survives the card's JSON
    assert len(cards.card_json(one)) < 1500                           # three features: well under 2 kB


def test_old_cards_still_load():
    card = ModelCard.from_dict({"subject": "customers", "features": ["a"], "sha256": "x", "threshold": 0.5})
    assert card.feature_distributions == {}


# --- the figure ------------------------------------------------------------------------------


def test_drift_figure_draws_psi_per_feature_with_the_flag_line():
    drifts = [FeatureDrift("revenue_last_month", 0.9, True, (("le", 1), ("gt", 1)), (0.5, 0.5), (0.1, 0.9)),
              FeatureDrift("tenure_days", 0.01, False, (("le", 1), ("gt", 1)), (0.5, 0.5), (0.45, 0.55))]
    fig = drift_figure(drifts)
    go.Figure(fig)                                                    # valid for Plotly
    bar = fig["data"][0]
    assert bar["orientation"] == "h" and bar["x"] == [0.01, 0.9]      # largest on top
    assert bar["marker"]["color"][1] != bar["marker"]["color"][0]     # the flagged one stands out
    assert fig["layout"]["shapes"][0]["x0"] == PSI_FLAG
    assert "≤ 1: 50.0% → 10.0%<br>> 1: 50.0% → 90.0%" == bar["customdata"][1]   # bins worded where shown
    empty = drift_figure([])
    go.Figure(empty)
    assert empty["layout"]["annotations"]
    from dashboard.figures import drift as figure_module
    assert figure_module.PSI_FLAG == PSI_FLAG


# --- against the warehouse (real data when present) ------------------------------------------


def _copy(dashboard_env, monkeypatch, tmp_path, *statements: str) -> str:
    """A private copy of the scored warehouse, changed by ``statements``, served from now on."""
    path = str(tmp_path / "copy.duckdb")
    shutil.copyfile(dashboard_env["scored"], path)
    with duckdb.connect(path) as con:
        for statement in statements:
            con.execute(statement)
    monkeypatch.setenv("WAREHOUSE_URL", path)
    return path


def _card(path: str, subject: str) -> dict:
    with duckdb.connect(path, read_only=True) as con:
        return json.loads(con.execute("select card from model_cards where subject = ?", [subject]).fetchone()[0])


@pytest.mark.parametrize("subject", ["carts", "customers"])
def test_training_records_every_feature(dashboard_env, subject):
    card = _card(dashboard_env["scored"], subject)
    dists = card["feature_distributions"]
    assert set(dists) == set(card["features"])
    for feature, dist in dists.items():
        total = sum(dist["shares"]) + dist["missing"] + dist.get("other", 0.0)
        assert total == pytest.approx(1, abs=1e-5), feature
        spec = card["feature_specs"][feature]
        assert dist["kind"] == ("categorical" if spec["kind"] in ("category", "bool") else "numeric")
        if dist["kind"] == "numeric":
            assert len(dist["shares"]) == len(dist["edges"]) + 1 <= cards.DISTRIBUTION_BINS
    # small beside the rest of the card
    assert len(cards.card_json(dists)) < 8000 and len(cards.card_json(dists)) < len(cards.card_json(card)) / 3
    assert ModelCard.from_dict(card).feature_distributions == dists


@pytest.mark.parametrize("subject", ["carts", "customers"])
def test_no_drift_against_the_warehouse_trained_on(dashboard_env, subject):
    drifts = feature_drift(subject)
    card = _card(dashboard_env["scored"], subject)
    assert [d.feature for d in drifts] == card["features"]
    # Small but not zero: the training rows are the 75 % training split of this same table (all
    # of it below 200 k rows), so today's rows are those plus the holdout; they differ only by
    # the holdout's sampling noise, far below the 0.1 of a "moderate" shift.
    for d in drifts:
        assert 0.0 <= d.psi < 0.05, (d.feature, d.psi)
        assert not d.flagged
        assert sum(d.actual) == pytest.approx(1) and len(d.bins) == len(d.expected) == len(d.actual)
        assert d.psi == population_stability_index(d.expected, d.actual)
    assert not retrain_suggested(drifts)


@pytest.mark.parametrize("subject", ["carts", "customers"])
def test_exactly_the_training_rows_give_zero_drift(dashboard_env, monkeypatch, tmp_path, subject):
    """The warehouse query bins exactly like training did: keep only the training rows (drop the
    holdout the card lists) and every PSI vanishes, up to the card's 6-decimal shares."""
    card = _card(dashboard_env["scored"], subject)
    if card["rows"]["sample"] != card["rows"]["warehouse"]:
        pytest.skip("trained on a sample of the table")
    table, key = card["table"], card["id_column"]
    ids = ", ".join(repr(i) if isinstance(i, str) else str(int(i)) for i in card["holdout_ids"])
    _copy(dashboard_env, monkeypatch, tmp_path, f"delete from {table} where {key} in ({ids})")
    drifts = feature_drift(subject)
    assert max(d.psi for d in drifts) < 1e-6
    for d in drifts:
        assert d.expected == pytest.approx(d.actual, abs=1e-6), d.feature


def test_a_shifted_column_is_flagged_and_only_it(dashboard_env, monkeypatch, tmp_path):
    assert "revenue_last_month" in _card(dashboard_env["scored"], "customers")["features"]
    _copy(dashboard_env, monkeypatch, tmp_path, "update customers set revenue_last_month = revenue_last_month * 3")
    drifts = {d.feature: d for d in feature_drift("customers")}
    shifted = drifts.pop("revenue_last_month")
    assert shifted.flagged and shifted.psi > PSI_FLAG
    assert shifted.bins[-1][0] == "gt" and shifted.actual[-1] > 0.9   # above every training decile
    for d in drifts.values():
        assert d.psi < 0.05 and not d.flagged, (d.feature, d.psi)
    assert retrain_suggested([shifted, *drifts.values()])


def test_categories_never_seen_in_training_land_in_other(dashboard_env, monkeypatch, tmp_path):
    card = _card(dashboard_env["scored"], "customers")
    assert "top_category" in card["features"]
    _copy(dashboard_env, monkeypatch, tmp_path,
          "update customers set top_category = 'Garden' where customer_id % 2 = 0")
    top = next(d for d in feature_drift("customers") if d.feature == "top_category")
    assert top.bins[-1] == ("other",) and top.expected[-1] == 0.0 and top.actual[-1] > 0.3
    assert top.flagged


def test_a_card_without_distributions_says_to_retrain(dashboard_env, monkeypatch, tmp_path):
    old = _card(dashboard_env["scored"], "customers")
    del old["feature_distributions"]
    path = _copy(dashboard_env, monkeypatch, tmp_path)
    with duckdb.connect(path) as con:
        con.execute("update model_cards set card = ? where subject = 'customers'", [json.dumps(old)])
    with pytest.raises(Unavailable) as caught:
        feature_drift("customers")
    assert caught.value.command == "python -m etl train"
    assert "retrain" in caught.value.message
    assert feature_drift("carts")            # the other subject's card still has them


def test_the_model_page_shows_the_drift_or_says_what_to_run(dashboard_env, monkeypatch, tmp_path):
    from dashboard.app import create_app

    create_app()                                     # pages register with an app
    from dashboard.pages import model

    page = json.dumps(model.layout(subject="customers").to_plotly_json(), default=lambda o: o.to_plotly_json())
    card = _card(dashboard_env["scored"], "customers")
    assert '"model-drift"' in page and "No feature moved above 0.2" in page
    assert "Drift since training (PSI per feature)" in page and len(card["feature_distributions"]) > 5
    old = dict(card)
    del old["feature_distributions"]
    path = _copy(dashboard_env, monkeypatch, tmp_path)
    with duckdb.connect(path) as con:
        con.execute("update model_cards set card = ? where subject = 'customers'", [json.dumps(old)])
    page = json.dumps(model.layout(subject="customers").to_plotly_json(), default=lambda o: o.to_plotly_json())
    assert '"model-drift"' not in page and "Drift since training is not measured" in page and "python -m etl train" in page


def test_drift_ignores_the_viewers_row_scope(dashboard_env):
    """A model-level fact: a user limited to premium customers sees the drift of the whole table,
    not of their slice (which would differ from the training rows by the scope alone)."""
    from flask import g

    from dashboard.app import create_app
    from dashboard.auth.identity import Identity, Role, parse_scope

    everything = feature_drift("customers")          # outside an app: unscoped and uncached
    app = create_app()                               # a fresh cache (CACHE_DIR is per test)
    with app.server.test_request_context("/"):
        g.identity = Identity("scoped", Role.VIEWER, parse_scope(["service_tier=premium"]), source="local")
        theirs = feature_drift("customers")
    assert theirs == everything
    tier = next(d for d in theirs if d.feature == "service_tier")
    assert tier.actual[tier.bins.index(("value", "premium"))] < 0.5    # the whole table, not only premium rows


def test_unknown_subject(dashboard_env):
    with pytest.raises(Unavailable):
        drift_module.feature_drift("orders")
