"""Exact explanations (issue 14): base value + contributions == the model's log-odds, row by row.

Real rows when ../shared/data is beside the project (else the generated data): every row of
both subjects is explained by pipelines of each kind the training can publish (trees, the
seed's logistic regression, sigmoid and isotonic calibration, derived features, a model only
the sampled method can explain), and every scored row of a trained warehouse is checked
against the contributions stored for it. The expected log-odds are computed with scikit-learn
alone, never from the contributions.
"""
from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

from etl.pipeline import run_pipeline
from etl.schema import CUSTOMER_CONTRIBUTIONS, CUSTOMER_SCORES, CUSTOMERS, SESSIONS
from etl.train import calibration, explain, features, search
from etl.train import card as cards
from etl.train.contributions import P_CLIP
from etl.train.features import SUBJECTS

from tests.conftest import REAL_DATA, has_real_data

TOLERANCE = 1e-6
GB = {"name": "gradient_boosting", "params": {"learning_rate": 0.1, "max_leaf_nodes": 7, "max_iter": 100}}
# smaller than the searched forests: TreeSHAP's cost grows with the nodes, additivity does not change
FOREST = {"name": "random_forest", "params": {"min_samples_leaf": 10, "max_features": "sqrt", "n_estimators": 30}}
SEED_LR = {"name": "logistic_regression", "params": {"C": 1, "l1_ratio": 1}}
KNN = {"name": "knn", "params": {"n_neighbors": 31, "weights": "uniform"}}


@pytest.fixture(scope="module")
def tables(request, tmp_path_factory) -> dict[str, pd.DataFrame]:
    raw = REAL_DATA if has_real_data() else request.getfixturevalue("generated_raw")
    wh = tmp_path_factory.mktemp("contributions") / "warehouse.duckdb"
    run_pipeline(raw, str(wh))
    with duckdb.connect(str(wh), read_only=True) as con:
        return {"carts": con.execute(f"SELECT * FROM {SESSIONS} ORDER BY session_id").df(),
                "customers": con.execute(f"SELECT * FROM {CUSTOMERS} ORDER BY customer_id").df()}


def _fit(frame: pd.DataFrame, subject_name: str, model: dict, method: str | None = None,
         groups: tuple = ()) -> tuple:
    """(pipeline fitted on every row, its features, its card) as training builds them."""
    subject = SUBJECTS[subject_name]
    chosen = [c for c in subject.candidates if c not in ("checkout_confirmed", "revenue_this_month")]
    one_hot = tuple(f for f in chosen if f in subject.categorical or pd.api.types.is_bool_dtype(frame[f]))
    inputs = list(dict.fromkeys([*chosen, *(c for g in groups for c in g.inputs)]))
    prep = features.with_derived(search.preprocessor(chosen, one_hot, subject.log_scaled), groups)
    estimator = search.final_model(model, False)
    pipe = (calibration.calibrated(prep, estimator, method, fast=True) if method
            else search.pipeline(prep, estimator))
    pipe.fit(frame[inputs], frame[subject.target].astype(int))
    specs = features.feature_specs(frame, inputs, subject.categorical)
    return pipe, inputs, {"features": inputs, "baseline": features.baseline(frame, specs)}


def _logit(p: np.ndarray) -> np.ndarray:
    return np.log(p / (1 - p))


def _expected(pipe, X: pd.DataFrame, record: dict) -> np.ndarray:
    """The log-odds the card says the contributions add up to, from scikit-learn alone."""
    if record["explains"] == "calibrated":
        return _logit(pipe.predict_proba(X)[:, 1])
    if record["explains"] == "uncalibrated":
        inner = pipe[-1].calibrated_classifiers_[0].estimator
        z = pipe[:-1].transform(X)
        if record["probability_clipped"]:
            return _logit(np.clip(inner.predict_proba(z)[:, 1], P_CLIP, 1 - P_CLIP))
        return inner.decision_function(z)
    if record["probability_clipped"]:
        return _logit(np.clip(pipe.predict_proba(X)[:, 1], P_CLIP, 1 - P_CLIP))
    return pipe.decision_function(X)


CASES = [  # (model, calibration, what card["contributions"] must say)
    (GB, None, {"kind": "tree_shap", "explains": "model", "attribution": "exact"}),
    (FOREST, None, {"kind": "tree_shap", "explains": "model", "attribution": "rescaled"}),
    (SEED_LR, None, {"kind": "linear", "explains": "model", "attribution": "exact"}),
    (GB, "sigmoid", {"kind": "tree_shap", "explains": "calibrated", "attribution": "exact"}),
    (SEED_LR, "sigmoid", {"kind": "linear", "explains": "calibrated", "attribution": "exact"}),
    (FOREST, "sigmoid", {"kind": "tree_shap", "explains": "calibrated", "attribution": "exact"}),
    (SEED_LR, "isotonic", {"kind": "linear", "explains": "uncalibrated", "attribution": "exact"}),
]
# KNN: a model only the sampled method explains (customers only: its ~100 predictions per row
# take seconds on the 4 k sessions)
SAMPLED = (KNN, None, {"kind": "sampled_shapley", "explains": "model", "attribution": "sampled"})
PARAMS = [(s, *case) for s in ("carts", "customers") for case in CASES] + [("customers", *SAMPLED)]


@pytest.mark.parametrize("subject, model, method, says", PARAMS,
                         ids=[f"{s}-{m['name']}-{c or 'plain'}" for s, m, c, _says in PARAMS])
def test_contributions_add_up_to_the_log_odds_on_every_row(tables, subject, model, method, says):
    frame = tables[subject]
    pipe, inputs, card = _fit(frame, subject, model, method)
    explainer = cards.explainer(pipe, card)
    record = explainer.record()
    assert {k: record[k] for k in says} == says and record["additive"] is True
    X = frame[inputs]
    explained = explainer.explain(X)
    total = explained.base_value + explained.contributions.sum(axis=1).to_numpy()
    expected = _expected(pipe, X, record)
    assert len(total) == len(frame) and np.max(np.abs(total - expected)) < TOLERANCE
    assert np.max(np.abs(explainer.output(X) - expected)) < TOLERANCE
    assert explained.base_value == record["base_value"]
    # the probability comes with the explanation, exactly as the pipeline predicts it
    assert np.array_equal(explained.probability, pipe.predict_proba(X)[:, 1])
    if record["explains"] == "calibrated":      # sigmoid: the shown probability itself is explained
        assert np.max(np.abs(expit(total) - explained.probability)) < 1e-9
    assert list(explained.contributions.columns) == inputs
    assert (explained.contributions.index == X.index).all()


def test_derived_features_are_traced_back_to_their_inputs(tables):
    """revenue_this_month enters only through the trends and ratios: it still gets its share."""
    frame, groups = tables["customers"], SUBJECTS["customers"].derived
    for model, method in ((SEED_LR, None), (GB, None)):
        pipe, inputs, card = _fit(frame, "customers", model, method, groups)
        explainer = cards.explainer(pipe, card)
        record = explainer.record()
        assert record["attribution"] == "shared" and "derived_features" in record
        explained = explainer.explain(frame[inputs])
        total = explained.base_value + explained.contributions.sum(axis=1).to_numpy()
        assert np.max(np.abs(total - _expected(pipe, frame[inputs], record))) < TOLERANCE
        assert "revenue_this_month" in inputs
        assert (explained.contributions["revenue_this_month"].abs() > 0).mean() > 0.5


def test_a_linear_model_is_explained_against_the_reference_row(tables):
    frame = tables["customers"]
    pipe, inputs, card = _fit(frame, "customers", SEED_LR)
    explainer = cards.explainer(pipe, card)
    reference = pd.DataFrame([card["baseline"]])[inputs]
    assert np.allclose(explainer.explain(reference).contributions.to_numpy(), 0)
    assert explainer.base_value == pytest.approx(pipe.decision_function(reference)[0], abs=1e-12)
    # one feature moved: the whole change is that feature's
    moved = reference.assign(unpaid_items_quarter=reference["unpaid_items_quarter"] + 3)
    contrib = explainer.explain(moved).contributions.iloc[0]
    change = pipe.decision_function(moved)[0] - pipe.decision_function(reference)[0]
    assert contrib["unpaid_items_quarter"] == pytest.approx(change, abs=1e-12)
    assert np.allclose(contrib.drop("unpaid_items_quarter"), 0)


@pytest.fixture(scope="module")
def published(dashboard_data) -> dict:
    """The fast-trained models and scored warehouse the dashboard tests share (real data when present)."""
    with duckdb.connect(dashboard_data["scored"], read_only=True) as con:
        read = {name: con.execute(sql).df() for name, sql in (
            ("customers", f"SELECT * FROM {CUSTOMERS} ORDER BY customer_id"),
            ("sessions", f"SELECT * FROM {SESSIONS} ORDER BY session_id"),
            ("contributions", f"SELECT customer_id, feature, contribution FROM {CUSTOMER_CONTRIBUTIONS}"),
            ("scores", f"SELECT customer_id, top_reasons FROM {CUSTOMER_SCORES}"))}
    return {**read, "models": dashboard_data["models"]}


@pytest.mark.parametrize("subject, table", [("carts", "sessions"), ("customers", "customers")])
def test_every_row_of_the_published_models_adds_up(published, subject, table):
    model, card = cards.load_model(published["models"], subject)
    record = card["contributions"]
    assert record["additive"] is True and record["output"] and record["method"]
    X = published[table][card["features"]]
    explainer = cards.explainer(model, card)
    explained = explainer.explain(X)
    total = record["base_value"] + explained.contributions.sum(axis=1).to_numpy()
    assert np.max(np.abs(total - _expected(model, X, record))) < TOLERANCE


def test_stored_contributions_and_reasons_follow_the_model(published):
    model, card = cards.load_model(published["models"], "customers")
    customers = published["customers"].set_index("customer_id")
    stored = published["contributions"].pivot(index="customer_id", columns="feature", values="contribution")
    stored = stored.loc[customers.index, card["features"]]
    # every scored customer: the stored contributions add up to the model's log-odds
    total = card["contributions"]["base_value"] + stored.sum(axis=1).to_numpy()
    assert np.max(np.abs(total - _expected(model, customers[card["features"]], card["contributions"]))) < TOLERANCE
    # the reasons name the largest contributions towards decline, largest first
    reasons = published["scores"].set_index("customer_id")["top_reasons"]
    checked = 0
    for customer_id, row in stored.iterrows():
        top = row[row > 0].sort_values(ascending=False, kind="stable").index[:explain.TOP]
        values = customers.loc[customer_id]
        expected = [explain.phrase(f, values[f], card["baseline"][f]) for f in top]
        if expected:
            assert reasons[customer_id] == ", ".join(expected)
            checked += 1
        else:
            assert reasons[customer_id].startswith("nothing raises the risk")
    assert checked > len(stored) / 2


def test_a_kept_feature_group_is_trained_scored_and_explained(generated_raw, tmp_path, monkeypatch):
    """The path real data does not take (no group passes its interval there): a kept group's
    inputs become model inputs, and the stored contributions still add up."""
    from etl.cli import main
    from etl.train import compare

    real = compare.feature_experiments

    def first_kept(*args, **kwargs):
        rows = real(*args, **kwargs)
        return [{**r, "kept": i == 0} for i, r in enumerate(rows)]

    monkeypatch.setattr(compare, "feature_experiments", first_kept)
    wh, models = tmp_path / "warehouse.duckdb", tmp_path / "models"
    run_pipeline(generated_raw, str(wh))
    assert main(["-q", "train", "--fast", "--subject", "customers", "--warehouse", str(wh),
                 "--models", str(models)]) == 0
    model, card = cards.load_model(models, "customers")
    kept = card["feature_experiments"]["kept"]
    group = next(g for g in SUBJECTS["customers"].derived if g.name == kept[0])
    assert kept == [SUBJECTS["customers"].derived[0].name] and set(group.inputs) <= set(card["features"])
    assert set(card["features"]) == set(card["baseline"]) == set(card["feature_specs"])
    with duckdb.connect(str(wh), read_only=True) as con:
        rows = con.execute(f"SELECT * FROM {CUSTOMERS} ORDER BY customer_id").df().set_index("customer_id")
        stored = con.execute(f"SELECT customer_id, feature, contribution FROM {CUSTOMER_CONTRIBUTIONS}").df()
    stored = stored.pivot(index="customer_id", columns="feature", values="contribution").loc[rows.index]
    assert list(stored.columns.sort_values()) == sorted(card["features"])
    total = card["contributions"]["base_value"] + stored.sum(axis=1).to_numpy()
    expected = _expected(model, rows[card["features"]], card["contributions"])
    assert np.max(np.abs(total - expected)) < TOLERANCE


# --- the pages name the method and what the contributions add up to ----------------------

NOTES = {"en": ("Contributions:", "equals"), "es": ("Contribuciones:", "da exactamente"),
         "ru": ("Вклады:", "вкладов — ровно")}
EXPERIMENTS = {"en": "Derived features tried", "es": "Variables derivadas probadas",
               "ru": "Проверенные производные признаки"}


@pytest.fixture
def app(dashboard_env):
    from dashboard.app import create_app

    return create_app()


@pytest.mark.parametrize("lang", ["en", "es", "ru"])
def test_model_and_what_if_pages_name_the_method(app, lang):
    from dashboard.i18n import format_number
    from dashboard.models import read_card
    from dashboard.pages import model, what_if
    from tests.test_i18n_models_pages import _tree, acting, shown_texts

    with acting(app, f"/model?subject=customers&lang={lang}"):
        card = read_card("customers")
        texts = shown_texts(_tree(model.layout(subject="customers")))
        note = next(t for t in texts if t.startswith(NOTES[lang][0]))
        assert NOTES[lang][1] in note
        assert format_number(card.contributions["base_value"], lang, 2) in note
        # every derived feature group tried is listed with its interval and decision
        assert EXPERIMENTS[lang] in texts
        for group in card.feature_experiments["groups"]:
            assert any(format_number(group["difference_low"], lang, 3) in t for t in texts)
    with acting(app, f"/what-if?subject=carts&lang={lang}"):
        texts = shown_texts(_tree(what_if.layout(subject="carts")))
        assert any(t.startswith(NOTES[lang][0]) and NOTES[lang][1] in t for t in texts)
