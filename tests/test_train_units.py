"""Pure parts of training: leakage guard, thresholds, contributions, reasons, segments."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from etl.pipeline import run_pipeline
from etl.train import evaluate, explain, leakage, segments
from etl.train.card import explainer
from etl.train.features import SUBJECTS, baseline, feature_specs
from etl.train.search import pipeline, preprocessor


@pytest.fixture(scope="module")
def sessions(generated_raw, tmp_path_factory) -> pd.DataFrame:
    import duckdb

    wh = tmp_path_factory.mktemp("units") / "wh.duckdb"
    run_pipeline(generated_raw, str(wh))
    with duckdb.connect(str(wh), read_only=True) as con:
        return con.execute("SELECT * FROM sessions ORDER BY session_id").df()


def test_leakage_guard_catches_planted_columns(sessions):
    rng = np.random.default_rng(0)
    frame = sessions.copy()
    y = frame["abandoned"].astype(int)
    # a numeric copy of the outcome with 1 % of labels flipped, and a code that spells it out
    frame["planted_numeric"] = np.where(rng.random(len(frame)) < 0.01, 1 - y, y) * 3 + rng.random(len(frame))
    frame["planted_code"] = np.where(y == 1, "A", "B")
    candidates = (*SUBJECTS["carts"].candidates, "planted_numeric", "planted_code")
    result = leakage.guard(frame, "abandoned", candidates)
    assert {"planted_numeric", "planted_code"} <= set(result["excluded"])
    assert "checkout_confirmed" in result["excluded"]   # the real leak the generator reproduces
    assert "items_added" in result["kept"] and "planted_numeric" not in result["kept"]
    assert len(result["findings"]) == len(result["excluded"])


def test_leakage_guard_keeps_a_merely_good_feature():
    rng = np.random.default_rng(1)
    y = pd.Series(rng.integers(0, 2, 2000))
    good = y + rng.normal(0, 0.6, 2000)   # informative (AUC ~0.88) but not the outcome
    frame = pd.DataFrame({"y": y, "good": good})
    result = leakage.guard(frame, "y", ("good",))
    assert result["excluded"] == [] and 0.8 < result["single_feature_auc"]["good"] < 0.97


def test_single_feature_auc_is_direction_free():
    y = pd.Series([0, 0, 1, 1])
    assert leakage.single_feature_auc(pd.Series([4, 3, 2, 1]), y) == 1.0
    assert leakage.single_feature_auc(pd.Series([1, 2, 3, 4]), y) == 1.0


def test_profit_curve_matches_brute_force():
    rng = np.random.default_rng(2)
    y, p, profit = rng.integers(0, 2, 300), rng.random(300).round(2), rng.uniform(1, 7, 300)
    curve = evaluate.profit_curve(y, p, profit, offer_cost=1.5)
    for point in curve[::7]:
        t = point["threshold"]
        expected = sum(yi * pr - 1.5 for yi, pi, pr in zip(y, p, profit) if pi >= t)
        assert point["expected_retained_profit"] == pytest.approx(expected, abs=0.01)
        assert evaluate.retained_profit(y, p, profit, 1.5, t) == pytest.approx(expected, abs=0.01)
    best = evaluate.best_profit_threshold(curve)
    assert max(pt["expected_retained_profit"] for pt in curve) == next(
        pt["expected_retained_profit"] for pt in curve if pt["threshold"] == best)


def test_profit_threshold_rises_with_the_offer_cost():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 2000)
    p = np.clip(y * 0.4 + rng.random(2000) * 0.6, 0, 1)
    profit = np.full(2000, 4.0)
    cheap = evaluate.best_profit_threshold(evaluate.profit_curve(y, p, profit, 0.2))
    dear = evaluate.best_profit_threshold(evaluate.profit_curve(y, p, profit, 3.0))
    assert cheap < dear


def test_f1_threshold_is_the_f1_maximiser():
    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, 500)
    p = np.clip(y * 0.3 + rng.random(500) * 0.7, 0, 1)
    best = evaluate.f1_threshold(y, p)
    f1 = {t: evaluate.metrics(y, p, t)["f1"] for t in np.linspace(0.05, 0.95, 19)}
    assert evaluate.metrics(y, p, best)["f1"] >= max(f1.values())


def test_curves_are_downsampled_and_json_safe():
    rng = np.random.default_rng(5)
    y, p = rng.integers(0, 2, 5000), rng.random(5000)
    result = evaluate.curves(y, p)
    assert len(result["roc"]["fpr"]) <= 200 and len(result["pr"]["precision"]) <= 200
    assert result["roc"]["fpr"][0] == 0 and result["roc"]["tpr"][-1] == 1
    assert max(result["roc"]["thresholds"]) <= 1


def test_contributions_are_exact_for_logistic_regression(sessions):
    subject = SUBJECTS["carts"]
    features = ["items_added", "checkout_initiated", "customer_logins", "product_details_viewed",
                "customer_segment"]
    frame = sessions[features]
    model = pipeline(preprocessor(features, ("customer_segment", "product_details_viewed"), subject.log_scaled),
                     LogisticRegression(solver="liblinear")).fit(frame, sessions["abandoned"])
    specs = feature_specs(frame, features, subject.categorical)
    card = {"features": features, "baseline": baseline(frame, specs)}
    rows = frame.iloc[:50]
    contrib = explainer(model, card).explain(rows).contributions

    def logit(x):
        p = model.predict_proba(x)[:, 1]
        return np.log(p / (1 - p))

    base_logit = logit(pd.DataFrame([card["baseline"]])[features])[0]
    assert np.allclose(contrib.sum(axis=1), logit(rows) - base_logit)
    assert list(contrib.columns) == features and (contrib.index == rows.index).all()


def test_feature_specs_kinds(sessions):
    specs = feature_specs(sessions, ["items_added", "product_details_viewed", "customer_segment"],
                          ("customer_segment",))
    assert specs["items_added"]["kind"] == "int" and specs["items_added"]["min"] >= 0
    assert specs["product_details_viewed"] == {"kind": "bool", "label": "Product details viewed",
                                               "choices": [False, True]}
    assert specs["customer_segment"]["kind"] == "category"
    assert set(specs["customer_segment"]["choices"]) <= {0, 1, 2}


def test_top_reasons_reads_like_a_sentence():
    contrib = pd.DataFrame({"unpaid_items_quarter": [0.9, -0.1], "promo_share": [0.5, -0.2],
                            "pages_per_visit": [0.7, -0.3], "marketing_consent": [0.1, -0.4]})
    values = pd.DataFrame({"unpaid_items_quarter": [7, 1], "promo_share": [0.9, 0.1],
                           "pages_per_visit": [3, 12], "marketing_consent": [False, True]})
    base = {"unpaid_items_quarter": 3, "promo_share": 0.24, "pages_per_visit": 8, "marketing_consent": True}
    first, second = explain.top_reasons(contrib, values, base)
    assert first == "many unpaid items (7), few pages per visit (3), promo share 0.9"
    assert second.startswith("nothing raises the risk")


def test_rule_segments_cover_every_customer():
    thresholds = {"promo_share": 0.5, "p_decline": 0.5, "profit": 4.0}
    ids = segments.rule_segment(np.array([0.9, 0.9, 0.1, 0.1, 0.9]), np.array([0.8, 0.8, 0.8, 0.8, 0.2]),
                                np.array([5.0, 3.0, 5.0, 3.0, 5.0]), thresholds)
    assert list(ids) == ["promo_risk_high_profit", "promo_risk_low_profit", "risk_high_profit",
                         "risk_low_profit", "other"]
    assert set(ids) <= set(segments.RULE_SEGMENTS)


def test_offer_follows_the_distinctive_driver():
    drivers = pd.Series({"unpaid_items_quarter": 1.2, "pages_per_visit": 0.8, "promo_share": -0.1})
    overall = pd.Series({"unpaid_items_quarter": 0.1, "pages_per_visit": 0.6, "promo_share": 0.0})
    direction = {"unpaid_items_quarter": "above", "pages_per_visit": "below", "promo_share": "below"}
    text = segments.offer(drivers, overall, direction, mean_p=0.8, risk_threshold=0.5)
    assert text.startswith("Reminder of the unpaid items") and "also: Personalised home page" in text
    assert segments.offer(drivers, overall, direction, mean_p=0.2, risk_threshold=0.5).startswith(
        segments.LOW_RISK_OFFER)
