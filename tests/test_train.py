"""Training end to end on generated data: artifacts, scores, honesty of the card, failures.

One fast training run (``--fast``) is shared by the module; tests that break things work on
copies.
"""
from __future__ import annotations

import contextlib
import io
import json
import shutil
import time
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from etl.cli import main
from etl.errors import ETLError
from etl.pipeline import run_pipeline
from etl.schema import (CUSTOMER_CONTRIBUTIONS, CUSTOMER_SCORES, CUSTOMERS, FEATURE_IMPORTANCES,
                        SEGMENTS, SESSION_SCORES, SESSIONS, TABLES)
from etl.train import card as cards
from etl.train import scoring, search


@pytest.fixture(scope="module")
def warehouse(generated_raw, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("train_wh") / "warehouse.duckdb"
    run_pipeline(generated_raw, str(path))
    return path


@pytest.fixture(scope="module")
def trained(warehouse, tmp_path_factory) -> dict:
    """One `python -m etl train --fast` on a copy of the generated warehouse."""
    root = tmp_path_factory.mktemp("trained")
    wh, models = root / "warehouse.duckdb", root / "models"
    shutil.copyfile(warehouse, wh)
    out = io.StringIO()
    started = time.perf_counter()
    with contextlib.redirect_stdout(out):
        code = main(["-q", "train", "--warehouse", str(wh), "--models", str(models), "--fast"])
    return {"code": code, "stdout": out.getvalue(), "wh": wh, "models": models,
            "seconds": time.perf_counter() - started}


def _query(path: Path, sql: str) -> pd.DataFrame:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(sql).df()


def _cli(*argv: str) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(list(argv))
    return code, err.getvalue()


# --- the pipeline trains on generated data ----------------------------------------------

def test_train_succeeds_and_prints_the_summary(trained):
    assert trained["code"] == 0
    assert trained["seconds"] < 60  # two subjects in --fast mode
    table = trained["stdout"]
    for needle in ("Logistic regression", "K nearest neighbours", "Decision tree", "Random forest",
                   "Gradient boosting", "Support vector machine"):
        assert needle in table
    assert table.count("*") >= 2  # the chosen candidate of each subject is starred


@pytest.mark.parametrize("subject", ["carts", "customers"])
def test_card_contents(trained, subject):
    card = cards.read_card(trained["models"], subject)
    assert card["subject"] == subject
    assert card["model_version"] == card["sha256"][:12]
    holdout = card["metrics"]["holdout"]
    assert holdout["roc_auc"] > 0.8  # the generator is built so that ~0.85-0.9 is learnable
    assert {"roc_auc", "f1", "pr_auc", "brier"} <= set(holdout)
    assert {"roc_auc_mean", "roc_auc_std", "pr_auc_mean", "brier_mean"} <= set(card["metrics"]["cv"])
    assert card["threshold"] == card["thresholds"]["default"]
    assert 0 < card["threshold"] < 1
    assert card["estimator"]["candidate"] in {c["name"] for c in card["candidates"] if "cv" in c}
    assert set(card["feature_specs"]) == set(card["features"]) == set(card["baseline"])
    for spec in card["feature_specs"].values():
        assert spec["kind"] in ("int", "float", "bool", "category") and spec["label"]
        assert ("choices" in spec) == (spec["kind"] in ("bool", "category"))
    roc, pr = card["curves"]["roc"], card["curves"]["pr"]
    assert 2 <= len(roc["fpr"]) == len(roc["tpr"]) == len(roc["thresholds"]) <= 200
    assert 2 <= len(pr["precision"]) == len(pr["recall"]) <= 200
    assert {p["feature"] for p in card["permutation_importance"]} == set(card["features"])
    with duckdb.connect(str(trained["wh"]), read_only=True) as con:
        assert card["data_version"] == con.execute("SELECT data_version FROM etl_runs").fetchone()[0]
    assert len(card["holdout_ids"]) == card["rows"]["holdout"]
    assert card["library_versions"]["scikit-learn"]
    # a training split within the search cap is scored by the search CV alone: no extra fits
    assert card["scoring"]["training_rows"] == "out-of-fold"
    assert card["scoring"]["rows_outside_search"] == 0 and card["scoring"]["folds"] is None
    assert card["rows"]["search"] == card["rows"]["train"]
    json.dumps(card, allow_nan=False)  # strict JSON: no NaN/inf for the dashboard


@pytest.mark.parametrize("subject", ["carts", "customers"])
def test_card_records_the_paired_selection_intervals_and_calibration(trained, subject):
    """Issue 14: the seed's pipeline is the baseline; the choice, its interval and the holdout
    intervals are in the card."""
    card = cards.read_card(trained["models"], subject)
    selection = card["selection"]
    assert selection["folds"]["kind"] == "RepeatedStratifiedKFold"
    assert (selection["folds"]["splits"], selection["folds"]["repeats"]) == (3, 2)   # --fast
    assert "Nadeau-Bengio" in selection["interval"] and selection["level"] == 0.95
    assert selection["baseline"]["params"] == {"C": 1, "l1_ratio": 1}
    searched = {c["name"] for c in card["candidates"] if "cv" in c}
    assert {r["name"] for r in selection["candidates"]} == searched
    for row in selection["candidates"]:
        assert row["difference_low"] <= row["difference"] <= row["difference_high"]
        assert row["roc_auc_sd"] >= 0
    best = next(r for r in selection["candidates"] if r["name"] == selection["best"])
    assert best["roc_auc_mean"] == max(r["roc_auc_mean"] for r in selection["candidates"])
    if best["difference_low"] > 0:
        assert selection["chosen"] == "candidate" and card["estimator"]["candidate"] == best["name"]
        assert card["estimator"]["params"] == best["params"]
    else:
        assert selection["chosen"] == "baseline" and card["estimator"]["baseline"]
        assert card["estimator"]["params"] == {"C": 1, "l1_ratio": 1}
    assert selection["reason"]
    holdout, ci = card["metrics"]["holdout"], card["metrics"]["holdout_ci"]
    assert ci["resamples"] == 200 and ci["level"] == 0.95
    for metric in ("roc_auc", "f1", "pr_auc", "brier"):
        low, high = ci[metric]
        assert low <= holdout[metric] <= high
    calibration = card["calibration"]
    assert set(calibration["cv_brier"]) == {"none", "sigmoid", "isotonic"}
    method = calibration["method"]
    assert card["estimator"]["calibration"] == method
    if method is None:
        assert min(calibration["cv_brier"]["sigmoid"], calibration["cv_brier"]["isotonic"]) >= \
            calibration["cv_brier"]["none"]
    else:
        assert calibration["cv_brier"][method] < calibration["cv_brier"]["none"]
        assert card["estimator"]["class"] == "CalibratedClassifierCV"
    assert card["metrics"]["cv"]["brier_mean"] > 0
    bins = calibration["reliability"]
    assert sum(b["rows"] for b in bins) == card["rows"]["holdout"] and len(bins) <= 10
    assert all(0 <= b["observed"] <= 1 and b["low"] <= b["predicted"] <= b["high"] for b in bins)


def test_carts_card_excludes_the_leaking_outcome(trained):
    card = cards.read_card(trained["models"], "carts")
    assert "checkout_confirmed" in card["leakage"]["excluded"]
    assert "checkout_confirmed" not in card["features"]
    assert card["leakage"]["single_feature_auc"]["checkout_confirmed"] >= 0.97
    assert all(auc < 0.97 for f, auc in card["leakage"]["single_feature_auc"].items() if f in card["features"])


def test_customers_card_has_profit_threshold_and_decisions(trained):
    card = cards.read_card(trained["models"], "customers")
    thresholds = card["thresholds"]
    assert {"default", "profit", "offer_cost"} <= set(thresholds)
    curve = card["profit_curve"]
    best = max(curve, key=lambda p: p["expected_retained_profit"])
    assert best["expected_retained_profit"] == next(
        p["expected_retained_profit"] for p in curve if p["threshold"] == thresholds["profit"])
    assert "profit" not in card["features"]
    [decision] = card["feature_decisions"]
    assert decision["feature"] == "revenue_this_month" and decision["decision"] in ("keep", "drop")
    assert ("revenue_this_month" in card["features"]) == (decision["decision"] == "keep")


def test_score_tables_follow_the_contract(trained):
    wh = trained["wh"]
    for table in (SESSION_SCORES, CUSTOMER_SCORES, CUSTOMER_CONTRIBUTIONS, FEATURE_IMPORTANCES, SEGMENTS):
        assert list(_query(wh, f"SELECT * FROM {table} LIMIT 0").columns) == list(TABLES[table])
    counts = _query(wh, f"""SELECT (SELECT count(*) FROM {SESSIONS}) AS sessions,
        (SELECT count(*) FROM {SESSION_SCORES}) AS session_scores,
        (SELECT count(DISTINCT session_id) FROM {SESSION_SCORES}) AS distinct_sessions,
        (SELECT count(*) FROM {CUSTOMERS}) AS customers,
        (SELECT count(*) FROM {CUSTOMER_SCORES}) AS customer_scores""").iloc[0]
    assert counts["sessions"] == counts["session_scores"] == counts["distinct_sessions"]
    assert counts["customers"] == counts["customer_scores"]
    scores = _query(wh, f"SELECT * FROM {CUSTOMER_SCORES}")
    card = cards.read_card(trained["models"], "customers")
    assert scores["p_decline"].between(0, 1).all()
    assert (scores["predicted_declined"] == (scores["p_decline"] >= card["threshold"])).all()
    assert scores["in_holdout"].sum() == len(card["holdout_ids"])
    assert scores["top_reasons"].str.len().gt(0).all()
    segments = _query(wh, f"SELECT * FROM {SEGMENTS}")
    rule_ids = set(segments.loc[segments["kind"] == "rule", "segment_id"])
    cluster_ids = set(segments.loc[segments["kind"] == "cluster", "segment_id"])
    assert set(scores["segment"]) <= rule_ids and set(scores["cluster"]) <= cluster_ids
    assert segments["offer"].str.len().gt(0).all()
    assert all(json.loads(p) for p in segments["profile"])
    assert segments.groupby("kind")["customers"].sum().eq(len(scores)).all()
    contributions = _query(wh, f"SELECT count(*) AS n FROM {CUSTOMER_CONTRIBUTIONS}")["n"][0]
    assert contributions == len(scores) * len(card["features"])
    subjects = set(_query(wh, f"SELECT DISTINCT subject FROM {FEATURE_IMPORTANCES}")["subject"])
    assert subjects == {"carts", "customers"}


# --- the card's holdout numbers are reproducible ------------------------------------------

@pytest.mark.parametrize("subject", ["carts", "customers"])
def test_card_holdout_auc_equals_fresh_rescoring(trained, subject):
    model, card = cards.load_model(trained["models"], subject)
    ids = pd.DataFrame({card["id_column"]: card["holdout_ids"]})
    with duckdb.connect(str(trained["wh"]), read_only=True) as con:
        con.register("ids", ids)
        rows = con.execute(f'SELECT t.* FROM "{card["table"]}" t JOIN ids USING ("{card["id_column"]}")').df()
    assert len(rows) == len(card["holdout_ids"])
    p = model.predict_proba(rows[card["features"]])[:, 1]
    assert round(roc_auc_score(rows[card["target"]].astype(int), p), 4) == card["metrics"]["holdout"]["roc_auc"]


def test_holdout_scores_equal_the_model_and_training_scores_are_out_of_fold(trained):
    model, card = cards.load_model(trained["models"], "carts")
    rows = _query(trained["wh"], f"""SELECT s.*, c.p_abandon, c.in_holdout FROM {SESSIONS} s
                                     JOIN {SESSION_SCORES} c USING (session_id) ORDER BY session_id""")
    live = model.predict_proba(rows[card["features"]])[:, 1]
    hold = rows["in_holdout"].to_numpy()
    assert hold.sum() == len(card["holdout_ids"])
    assert np.allclose(live[hold], rows.loc[hold, "p_abandon"])
    # rows the model was fitted on are scored out of fold: not the optimistic in-sample value,
    # and about as good as the cross-validated estimate says
    train = ~hold
    assert not np.allclose(live[train], rows.loc[train, "p_abandon"])
    y = rows.loc[train, "abandoned"].astype(int)
    stored_auc = roc_auc_score(y, rows.loc[train, "p_abandon"])
    assert abs(stored_auc - card["metrics"]["cv"]["roc_auc_mean"]) < 0.03
    assert roc_auc_score(y, live[train]) > stored_auc


# --- the what-if panel's live calls (timed in benchmarks/bench.py, not here) -----------------

@pytest.mark.parametrize("subject", ["carts", "customers"])
def test_one_row_prediction_and_contributions(trained, subject):
    model, card = cards.load_model(trained["models"], subject)
    row = pd.DataFrame([card["baseline"]])[card["features"]]
    assert 0 <= model.predict_proba(row)[0, 1] <= 1
    explainer = cards.explainer(model, card)
    explained = explainer.explain(row)
    assert explained.probability[0] == model.predict_proba(row)[0, 1]
    assert explained.base_value == card["contributions"]["base_value"]
    assert np.allclose(explained.base_value + explained.contributions.sum(axis=1), explainer.output(row), atol=1e-9)
    if card["contributions"]["kind"] != "tree_shap":
        # measured against the baseline row: at that row every feature contributes nothing
        assert np.allclose(explained.contributions.to_numpy(), 0)


def test_contributions_match_the_stored_ones(trained):
    model, card = cards.load_model(trained["models"], "customers")
    rows = _query(trained["wh"], f"SELECT * FROM {CUSTOMERS} ORDER BY customer_id LIMIT 5")
    live = cards.explainer(model, card).explain(rows[card["features"]]).contributions
    stored = _query(trained["wh"], f"""SELECT customer_id, feature, contribution FROM {CUSTOMER_CONTRIBUTIONS}
        WHERE customer_id IN (SELECT customer_id FROM {CUSTOMERS} ORDER BY customer_id LIMIT 5)""")
    stored = stored.pivot(index="customer_id", columns="feature", values="contribution")
    assert np.allclose(live.set_axis(rows["customer_id"]).loc[stored.index, card["features"]],
                       stored[card["features"]])


# --- integrity: the pickle is checked before it is unpickled ---------------------------------

class _Payload:
    """Unpickling this creates a file: the proof that code ran."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_tampered_pickle_is_refused_before_unpickling(trained, tmp_path):
    models = tmp_path / "models"
    shutil.copytree(trained["models"], models)
    marker = tmp_path / "pwned"
    import pickle
    cards.paths(models, "carts")[0].write_bytes(pickle.dumps(_Payload(marker)))
    with pytest.raises(ETLError) as caught:
        cards.load_model(models, "carts")
    assert caught.value.rule == "model integrity"
    assert not marker.exists()
    # an untouched subject still loads
    model, card = cards.load_model(models, "customers")
    assert hasattr(model, "predict_proba") and card["subject"] == "customers"


def test_a_flipped_byte_is_refused(trained, tmp_path):
    models = tmp_path / "models"
    shutil.copytree(trained["models"], models)
    path = cards.paths(models, "customers")[0]
    blob = bytearray(path.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    path.write_bytes(bytes(blob))
    with pytest.raises(ETLError, match="model integrity"):
        cards.load_model(models, "customers")


def test_missing_or_broken_card_says_how_to_fix_it(tmp_path):
    with pytest.raises(ETLError, match="python -m etl train"):
        cards.read_card(tmp_path, "carts")
    (tmp_path / "carts.json").write_text("{not json")
    with pytest.raises(ETLError, match="python -m etl train"):
        cards.load_model(tmp_path, "carts")


# --- bad warehouse contents give one clear line (exit 2) -------------------------------------

def test_missing_warehouse(tmp_path):
    code, err = _cli("train", "--warehouse", str(tmp_path / "nope.duckdb"), "--models", str(tmp_path / "m"))
    assert code == 2 and "python -m etl run" in err and "Traceback" not in err


def _broken_copy(warehouse: Path, tmp_path: Path, sql: str) -> Path:
    """A private copy of the warehouse with ``sql`` applied to it."""
    wh = tmp_path / "wh.duckdb"
    shutil.copyfile(warehouse, wh)
    with duckdb.connect(str(wh)) as con:
        con.execute(sql)
    return wh


def test_missing_table(warehouse, tmp_path):
    wh = _broken_copy(warehouse, tmp_path, f"DROP TABLE {CUSTOMERS}")
    code, err = _cli("train", "--warehouse", str(wh), "--models", str(tmp_path / "m"), "--fast")
    assert code == 2
    assert "has no table 'customers'" in err and "rule: warehouse contract" in err
    assert not list((tmp_path / "m").glob("*.pkl"))  # nothing trained, nothing published


def test_missing_column(warehouse, tmp_path):
    wh = _broken_copy(warehouse, tmp_path, f"ALTER TABLE {SESSIONS} DROP COLUMN items_added")
    code, err = _cli("train", "--warehouse", str(wh), "--models", str(tmp_path / "m"), "--subject", "carts")
    assert code == 2 and "lacks column 'items_added'" in err and "column 'items_added'" in err


def test_null_values_are_named(warehouse, tmp_path):
    wh = _broken_copy(warehouse, tmp_path, f"UPDATE {SESSIONS} SET cart_views = NULL WHERE session_id IN "
                                           f"(SELECT session_id FROM {SESSIONS} LIMIT 3)")
    code, err = _cli("train", "--warehouse", str(wh), "--models", str(tmp_path / "m"), "--subject", "carts")
    assert code == 2 and "3 NULL values in 'cart_views'" in err and "rule: no missing values" in err


def test_a_single_class_target_is_refused(warehouse, tmp_path):
    wh = _broken_copy(warehouse, tmp_path, f"UPDATE {SESSIONS} SET abandoned = true")
    code, err = _cli("train", "--warehouse", str(wh), "--models", str(tmp_path / "m"), "--subject", "carts")
    assert code == 2 and "rule: trainable target" in err


# --- all-or-nothing publishing -----------------------------------------------------------------

def test_a_failure_late_in_the_run_publishes_nothing(trained, tmp_path, monkeypatch, capsys):
    wh, models = tmp_path / "wh.duckdb", tmp_path / "models"
    shutil.copyfile(trained["wh"], wh)
    shutil.copytree(trained["models"], models)
    before = {p.name: p.read_bytes() for p in models.iterdir()}
    wh_before = wh.read_bytes()

    def broken(*_args, **_kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(search, "CANDIDATES", search.CANDIDATES[:1])  # a quick search is enough here
    monkeypatch.setattr(scoring, "write_importances", broken)  # after carts is trained and scored
    # a full disk is told in one line (exit code 2), not a traceback
    assert main(["-q", "train", "--warehouse", str(wh), "--models", str(models), "--fast", "--subject", "carts"]) == 2
    assert "error: disk full" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in models.iterdir()} == before  # no .tmp- folder left either
    assert wh.read_bytes() == wh_before
    assert [p.name for p in tmp_path.iterdir() if "tmp" in p.name] == []


def test_training_is_deterministic(trained, warehouse, tmp_path):
    wh, models = tmp_path / "wh.duckdb", tmp_path / "models"
    shutil.copyfile(warehouse, wh)
    code, _ = _cli("-q", "train", "--warehouse", str(wh), "--models", str(models), "--fast",
                   "--subject", "customers")
    assert code == 0
    again, first = cards.read_card(models, "customers"), cards.read_card(trained["models"], "customers")
    assert again["sha256"] == first["sha256"]  # byte-identical pickle
    assert again["metrics"] == first["metrics"] and again["holdout_ids"] == first["holdout_ids"]


def test_the_warehouse_holds_the_cards_of_the_models_that_scored_it(trained):
    """Data, scores and models switch together: the published warehouse names the cards (and
    through them the content-addressed pickles) the dashboard must use."""
    with duckdb.connect(str(trained["wh"]), read_only=True) as con:
        held = {s: json.loads(c) for s, c in con.execute("SELECT subject, card FROM model_cards").fetchall()}
    assert set(held) == {"carts", "customers"}
    for subject, card in held.items():
        assert card == cards.read_card(trained["models"], subject)
        assert card["pickle"] == f"{subject}-{card['sha256'][:16]}.pkl"
        model = cards.load_pickle(trained["models"], card)
        assert hasattr(model, "predict_proba")
