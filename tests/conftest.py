"""Shared fixtures: where the real data is, and small raw folders to break on purpose."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

REAL_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def has_real_data() -> bool:
    return (REAL_DATA / "carts").is_dir() and (REAL_DATA / "customers").is_dir()


@pytest.fixture(scope="session")
def real_data() -> Path:
    if not has_real_data():
        pytest.skip("../shared/data is not beside the project")
    return REAL_DATA


@pytest.fixture(scope="session")
def generated_raw(tmp_path_factory) -> Path:
    """A small generated raw folder (read-only by convention: copy it before breaking it)."""
    from etl.sample import write_sample

    out = tmp_path_factory.mktemp("generated") / "raw"
    write_sample(out, sessions=3000, customers=600, seed=7)
    return out


@pytest.fixture
def raw_copy(tmp_path, generated_raw) -> Path:
    """A private, valid raw folder a test may edit: the real data when present, else generated."""
    source = REAL_DATA if has_real_data() else generated_raw
    target = tmp_path / "raw"
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("README.md"))
    for path in target.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)  # ../shared is read-only
    return target


# --- dashboard ---------------------------------------------------------------------------
# A warehouse built by the real ETL, and models + score tables shaped exactly like
# `python -m etl train` writes them, made in about a second (a small logistic regression per
# subject, carded and hashed by etl.train.card), so the dashboard tests need no full training.


def _tiny_training(url: str, models_dir: Path) -> None:
    import hashlib
    import json
    from datetime import datetime, timezone

    import duckdb
    import numpy as np
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import precision_recall_curve, roc_auc_score, roc_curve
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from etl.schema import (CUSTOMER_CONTRIBUTIONS, CUSTOMER_SCORES, FEATURE_IMPORTANCES, SEGMENTS,
                            SESSION_SCORES)
    from etl.train import card as cards
    from etl.train.features import SUBJECTS, baseline, feature_specs
    from etl.warehouse import duckdb_path, staged, write_table

    with duckdb.connect(str(duckdb_path(url)), read_only=True) as con:
        frames = {name: con.table(SUBJECTS[name].table).df() for name in SUBJECTS}
        version = con.sql("select data_version from etl_runs").fetchone()[0]
    models_dir.mkdir(parents=True, exist_ok=True)
    tables = {}
    for name, subject in SUBJECTS.items():
        frame = frames[name]
        features = [c for c in subject.candidates if c not in ("checkout_confirmed", "revenue_this_month")]
        categorical = [f for f in features if f in subject.categorical]
        numeric = [f for f in features if f not in categorical]
        y = frame[subject.target].to_numpy(dtype=bool)
        ids = frame[subject.id_column].astype(str)
        holdout = np.array([int(hashlib.md5(i.encode()).hexdigest(), 16) % 4 == 0 for i in ids])
        prep = ColumnTransformer([("num", StandardScaler(), numeric),
                                  ("cat", OneHotEncoder(handle_unknown="ignore"), categorical)])
        model = Pipeline([("prep", prep), ("model", LogisticRegression(max_iter=1000))])
        model.fit(frame.loc[~holdout, features], y[~holdout])
        p = model.predict_proba(frame[features])[:, 1]
        specs = feature_specs(frame, features, subject.categorical)
        fpr, tpr, thr = roc_curve(y[holdout], p[holdout])
        precision, recall, _ = precision_recall_curve(y[holdout], p[holdout])
        threshold = 0.5
        card = {
            "subject": name, "target": subject.target, "table": subject.table, "id_column": subject.id_column,
            "features": features, "feature_specs": specs, "baseline": baseline(frame, specs),
            "estimator": {"candidate": "logistic_regression", "label": "Logistic regression",
                          "class": "LogisticRegression", "params": {}, "members": []},
            "candidates": [{"name": "logistic_regression", "label": "Logistic regression", "params": {"C": 1.0},
                            "cv": {"roc_auc_mean": 0.8, "roc_auc_std": 0.01, "pr_auc_mean": 0.8,
                                   "f1_mean": 0.8}, "seconds": 0.1}],
            "metrics": {"cv": {"roc_auc_mean": 0.8, "roc_auc_std": 0.01},
                        "holdout": {"roc_auc": float(roc_auc_score(y[holdout], p[holdout])), "f1": 0.8,
                                    "pr_auc": 0.8, "brier": 0.1, "rows": int(holdout.sum()),
                                    "positives": int(y[holdout].sum())}},
            "threshold": threshold, "thresholds": {"default": threshold},
            "leakage": {"excluded": ["checkout_confirmed"] if name == "carts" else []},
            "curves": {"roc": {"fpr": fpr.tolist(), "tpr": tpr.tolist(), "thresholds": np.nan_to_num(thr, posinf=1).tolist()},
                       "pr": {"precision": precision.tolist(), "recall": recall.tolist()}},
            "permutation_importance": [{"feature": f, "importance_mean": 0.01 * (i + 1), "importance_std": 0.001}
                                       for i, f in enumerate(features)],
            "profit_curve": [{"threshold": t / 20, "expected_retained_profit": 100 - (t - 8) ** 2}
                             for t in range(21)] if name == "customers" else [],
            "data_version": version, "trained_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "holdout_ids": [], "library_versions": {},
        }
        card = cards.write(models_dir, name, model, card)
        predicted = p >= threshold
        if name == "carts":
            tables[SESSION_SCORES] = pd.DataFrame({"session_id": frame.session_id, "p_abandon": p,
                                                   "predicted_abandoned": predicted, "in_holdout": holdout})
            continue
        promo = frame.promo_share.to_numpy() >= 0.5
        segment = np.where(predicted & promo, "promo_risk", np.where(predicted, "risk", "other"))
        cluster = np.where(promo, "cluster_1", "cluster_2")
        tables[CUSTOMER_SCORES] = pd.DataFrame({
            "customer_id": frame.customer_id, "p_decline": p, "predicted_declined": predicted,
            "in_holdout": holdout, "segment": segment, "cluster": cluster,
            "expected_profit_at_risk": p * frame.profit, "top_reasons": "few pages per visit (3)"})
        wide = cards.contributions(model, frame[features], card)
        long = wide.assign(customer_id=frame.customer_id.to_numpy()).melt(
            id_vars="customer_id", var_name="feature", value_name="contribution")
        long["value"] = ""
        tables[CUSTOMER_CONTRIBUTIONS] = long
        rows = []
        for seg_id, kind in (("promo_risk", "rule"), ("risk", "rule"), ("other", "rule"),
                             ("cluster_1", "cluster"), ("cluster_2", "cluster")):
            mask = (segment if kind == "rule" else cluster) == seg_id
            rows.append({"segment_id": seg_id, "kind": kind, "name": seg_id.replace("_", " ").capitalize(),
                         "description": f"Customers in {seg_id}.", "customers": int(mask.sum()),
                         "mean_p_decline": float(p[mask].mean()) if mask.any() else 0.0,
                         "total_profit": float(frame.profit[mask].sum()), "profile": json.dumps({}),
                         "offer": f"Offer for {seg_id}"})
        tables[SEGMENTS] = pd.DataFrame(rows)
    tables[FEATURE_IMPORTANCES] = pd.DataFrame([
        {"subject": "carts", "feature": "items_added", "importance_mean": 0.1, "importance_std": 0.01}])
    with staged(url, start_from_current=True) as con:
        for table_name, frame in tables.items():
            write_table(con, table_name, frame)


@pytest.fixture(scope="session")
def dashboard_raw(request) -> Path:
    """The real data when present, else a small generated folder."""
    return REAL_DATA if has_real_data() else request.getfixturevalue("generated_raw")


@pytest.fixture(scope="session")
def dashboard_data(tmp_path_factory, dashboard_raw) -> dict:
    """Two warehouses from the real ETL: ``plain`` (no models) and ``scored`` (+ tiny models)."""
    from etl.pipeline import run_pipeline

    root = tmp_path_factory.mktemp("dashboard")
    plain = str(root / "plain.duckdb")
    run_pipeline(dashboard_raw, plain)
    scored = str(root / "scored.duckdb")
    shutil.copyfile(plain, scored)
    _tiny_training(scored, root / "models")
    return {"plain": plain, "scored": scored, "models": root / "models", "empty_models": root / "no-models"}


@pytest.fixture
def dashboard_env(monkeypatch, tmp_path, dashboard_data) -> dict:
    """Point the dashboard at the scored warehouse and models; a private query cache."""
    monkeypatch.setenv("WAREHOUSE_URL", dashboard_data["scored"])
    monkeypatch.setenv("MODELS_DIR", str(dashboard_data["models"]))
    monkeypatch.setenv("CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("URL_PREFIX", raising=False)
    monkeypatch.delenv("FRAME_ANCESTORS", raising=False)
    monkeypatch.delenv("CACHE_REDIS_URL", raising=False)
    return dashboard_data
