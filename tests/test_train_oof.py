"""Issue 14: every training row is scored out-of-fold, also beyond the search sample.

The search sees at most ``dataset.MAX_SEARCH_ROWS`` rows; the cap is lowered to 300 here so
the generated warehouse (2,250 / 450 training rows) has rows outside the search sample.
"""
from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from threadpoolctl import threadpool_limits

from etl.pipeline import run_pipeline
from etl.train import card as cards
from etl.train import dataset, oof, search
from etl.train.features import SUBJECTS
from etl.train.run import run_training

CAP = 300
SCORES = {"carts": ("session_scores", "p_abandon"), "customers": ("customer_scores", "p_decline")}


@pytest.fixture(scope="module")
def trained(generated_raw, tmp_path_factory) -> dict:
    """`python -m etl train --fast` (both subjects) with the search capped at 300 rows."""
    root = tmp_path_factory.mktemp("train_oof")
    wh, models = root / "warehouse.duckdb", root / "models"
    run_pipeline(generated_raw, str(wh))
    lines: list[str] = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(dataset, "MAX_SEARCH_ROWS", CAP)
        run_training(str(wh), models, list(SUBJECTS), offer_cost=None, fast=True, progress=lines.append)
    return {"wh": wh, "models": models, "log": "\n".join(lines)}


def _rows(wh: Path, name: str) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The training split, holdout and search sample the run used, rebuilt the same way."""
    subject = SUBJECTS[name]
    with duckdb.connect(str(wh), read_only=True) as con:
        total = con.execute(f"SELECT count(*) FROM {subject.table}").fetchone()[0]
        sample = dataset.read_sample(con, subject, total)
    train, holdout = dataset.split(sample, subject)
    return train, holdout, dataset.search_rows(train, subject, cap=CAP)


def _stored(wh: Path, name: str, ids) -> np.ndarray:
    table, column = SCORES[name]
    id_column = SUBJECTS[name].id_column
    with duckdb.connect(str(wh), read_only=True) as con:
        scores = con.execute(f"SELECT {id_column}, {column} FROM {table}").df()
    return scores.set_index(id_column)[column].reindex(pd.Index(ids)).to_numpy()


@pytest.mark.parametrize("name", ["carts", "customers"])
def test_every_training_row_is_scored_out_of_fold(trained, name):
    subject = SUBJECTS[name]
    model, card = cards.load_model(trained["models"], name)
    train, holdout, searched = _rows(trained["wh"], name)
    assert sorted(holdout[subject.id_column]) == sorted(card["holdout_ids"])
    assert card["rows"]["search"] == len(searched) == CAP < card["rows"]["train"] == len(train)
    features = card["features"]
    X, y = train[features], train[subject.target].to_numpy(dtype=int)
    ids = train[subject.id_column].to_numpy()
    outside = ~train[subject.id_column].isin(searched[subject.id_column]).to_numpy()
    assert card["scoring"]["training_rows"] == "out-of-fold"
    assert card["scoring"]["rows_outside_search"] == outside.sum() == len(train) - CAP
    assert card["scoring"]["folds"] == oof.FOLDS == 3

    stored = _stored(trained["wh"], name, ids)
    in_sample = model.predict_proba(X)[:, 1]
    expected = np.full(len(train), np.nan)
    with threadpool_limits(limits=1):
        for fit_idx, test_idx in StratifiedKFold(3, shuffle=True, random_state=dataset.SEED).split(X, y):
            test_idx = test_idx[outside[test_idx]]
            fitted = clone(model).fit(X.iloc[fit_idx], y[fit_idx])
            expected[test_idx] = fitted.predict_proba(X.iloc[test_idx])[:, 1]
        # the search sample (in its own row order: it decides the folds) keeps the search CV's
        # out-of-fold probability of the chosen model
        searched_p = cross_val_predict(clone(model), searched[features],
                                       searched[subject.target].to_numpy(dtype=int),
                                       cv=search.folds(fast=True, large=False), method="predict_proba")[:, 1]
    by_id = pd.Series(searched_p, index=searched[subject.id_column].to_numpy())
    expected[~outside] = by_id.reindex(pd.Index(ids[~outside])).to_numpy()
    np.testing.assert_allclose(stored, expected, atol=1e-9)
    differs = np.abs(stored - in_sample) > 1e-9
    assert differs[outside].mean() > 0.5 and differs[~outside].mean() > 0.5

    # holdout rows: the final model, as before
    hold = _stored(trained["wh"], name, holdout[subject.id_column].to_numpy())
    np.testing.assert_allclose(hold, model.predict_proba(holdout[features])[:, 1], atol=1e-9)


def test_progress_reports_the_extra_folds(trained):
    assert trained["log"].count("training rows outside the search sample, 3-fold") == 2
    assert trained["log"].count("out-of-fold scores done") == 2


def test_training_oof_unit():
    """Search rows keep their given probability; the others come from the fold that held them out."""
    rng = np.random.default_rng(3)
    X = pd.DataFrame({"a": rng.normal(size=400), "b": rng.normal(size=400)})
    y = (X["a"] + rng.normal(size=400) > 0).to_numpy(dtype=int)
    ids = np.arange(1000, 1400)
    search_oof = pd.Series(0.5, index=ids[:100])
    lines: list[str] = []
    p, record = oof.training_oof(LogisticRegression(), X, y, ids, search_oof, search_folds=5,
                                 progress=lines.append)
    assert sorted(p.index) == list(ids) and (p.loc[ids[:100]] == 0.5).all()
    assert record["rows_outside_search"] == 300 and record["folds"] == 3 and len(lines) == 2
    for fit_idx, test_idx in oof.folds().split(X, y):
        test_idx = test_idx[test_idx >= 100]
        fitted = LogisticRegression().fit(X.iloc[fit_idx], y[fit_idx])
        np.testing.assert_allclose(p.loc[ids[test_idx]], fitted.predict_proba(X.iloc[test_idx])[:, 1])

    # a training split no larger than the search sample: nothing extra to fit
    p, record = oof.training_oof(LogisticRegression(), X, y, ids, pd.Series(0.5, index=ids), search_folds=5,
                                 progress=lines.append)
    assert p.equals(pd.Series(0.5, index=ids)) and record["rows_outside_search"] == 0
    assert record["folds"] is None and "seconds" not in record
