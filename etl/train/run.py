"""One training run: every subject trained, carded and scored, published all-or-nothing.

Order of work: check the warehouse contract (before copying anything), then inside a staged
copy of the warehouse: read -> guard leakage -> decide collinear columns -> search -> the best of
each family against the seed's pipeline on paired repeated CV (compare.py) -> derived feature
groups tried with the chosen model on the same folds -> calibrated variant (calibration.py) ->
thresholds on out-of-fold predictions -> one fit on the training split -> out-of-fold scores of
the training rows outside the search sample (oof.py) -> holdout numbers with bootstrap
intervals -> exact contributions (contributions.py) -> pickle + card into a temporary folder ->
score every row into the staged copy. The warehouse copy is swapped
in when the block succeeds, then the model files are renamed into place; any failure leaves
the published warehouse and models exactly as they were.
"""
from __future__ import annotations

import platform
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import cross_val_predict
from threadpoolctl import threadpool_limits

from etl.errors import ETLError
from etl.schema import ETL_RUNS, MODEL_CARDS, OUTCOME_LABELS, SEGMENTS, label
from etl.train import card as cards
from etl.train import (calibration, collinearity, compare, dataset, evaluate, features, leakage, oof, scoring,
                       search, segments)
from etl.train.features import SUBJECTS, Subject
from etl.warehouse import connect, require_tables, staged, write_table

LIBRARIES = ("scikit-learn", "numpy", "pandas", "scipy", "joblib", "threadpoolctl", "duckdb", "pyarrow")


@dataclass
class Trained:
    model: object
    card: dict
    explainer: object             # etl.train.contributions.Explainer of ``model``
    clusters: object = None
    oof: pd.Series | None = None   # out-of-fold P(positive) of every training row, by id


def _versions() -> dict:
    return {"python": platform.python_version(), **{lib: metadata.version(lib) for lib in LIBRARIES}}


def _xy(frame: pd.DataFrame, subject: Subject, columns: list[str]) -> tuple[pd.DataFrame, np.ndarray]:
    return frame[columns], frame[subject.target].to_numpy(dtype=int)


def train_subject(train: pd.DataFrame, holdout: pd.DataFrame, subject: Subject, *, table_rows: int,
                  fast: bool, offer_cost: float | None, progress: Callable[[str], None]) -> Trained:
    """Search, fit and evaluate one subject; returns the fitted Pipeline and its card (unsigned)."""
    large = table_rows > search.LARGE_TABLE_ROWS
    guard = leakage.guard(train, subject.target, subject.candidates)
    for finding in guard["findings"]:
        progress(f"  leakage guard: {finding}")
    chosen_features = list(guard["kept"])
    if not chosen_features:
        raise ETLError(subject.table, rule="leakage guard", message="every candidate column leaks the target")
    cv = search.folds(fast, large)
    searched = dataset.search_rows(train, subject)
    one_hot = tuple(f for f in subject.candidates
                    if f in subject.categorical or pd.api.types.is_bool_dtype(train[f]))
    decisions = []
    for column, partner in subject.collinear:
        if column in chosen_features and partner in chosen_features:
            decision = collinearity.decide(searched, subject.target, column, partner, chosen_features,
                                           one_hot, subject.log_scaled, cv)
            progress(f"  {decision['reason']}")
            decisions.append(decision)
            if decision["decision"] == "drop":
                chosen_features.remove(column)

    kept: tuple[features.FeatureGroup, ...] = ()      # derived feature groups, decided below

    def prep():
        return features.with_derived(search.preprocessor(chosen_features, one_hot, subject.log_scaled), kept)

    X_search, y_search = _xy(searched, subject, chosen_features)
    progress(f"  searching {len(search.CANDIDATES)} candidate families on {len(searched):,} rows, "
             f"{cv.get_n_splits()}-fold CV")
    results = search.run_search(X_search, y_search, prep(), fast=fast, table_rows=table_rows,
                                progress=progress)
    paired_cv = compare.repeated_folds(fast)
    progress(f"  paired comparison with the seed's pipeline on {paired_cv.get_n_splits()} repeated "
             f"stratified splits")
    base_scores, scores = compare.paired_scores(
        lambda result: search.pipeline(prep(), search.searched_model(result, large)),
        results, X_search, y_search, paired_cv, progress)
    best, selection = compare.select(results, base_scores, scores, cv=paired_cv, rows=len(searched))
    progress(f"  chosen: {selection['reason']}")
    experiments = _feature_experiments(subject, searched, guard["kept"], chosen_features, prep, best, large,
                                       paired_cv, base_scores if selection["chosen"] == "baseline"
                                       else scores[best["name"]], progress)
    kept = tuple(g for g in subject.derived if g.name in experiments["kept"])
    # the model's inputs: the chosen columns and what the kept derived features are made of
    chosen_features = list(dict.fromkeys([*chosen_features, *(c for g in kept for c in g.inputs)]))
    X_search = searched[chosen_features]
    model = search.pipeline(prep(), search.final_model(best, large))

    # thresholds come from out-of-fold predictions of the training split, never the holdout
    fold_of_row = np.empty(len(y_search), dtype=int)
    for k, (_, test_idx) in enumerate(cv.split(X_search, y_search)):
        fold_of_row[test_idx] = k
    oof_search = cross_val_predict(model, X_search, y_search, cv=cv, method="predict_proba",
                                   n_jobs=search.N_JOBS)[:, 1]
    method, oof_search, calibrated = calibration.choose(prep, lambda: search.final_model(best, large),
                                                        X_search, y_search, cv, oof_search, fast=fast,
                                                        progress=progress)
    if method is not None:
        model = calibration.calibrated(prep(), search.final_model(best, large), method, fast)
    threshold = evaluate.f1_threshold(y_search, oof_search)
    thresholds: dict = {"default": threshold,
                        "default_rule": "maximises F1 on out-of-fold predictions of the training split"}

    X_train, y_train = _xy(train, subject, chosen_features)
    X_hold, y_hold = _xy(holdout, subject, chosen_features)
    started = time.perf_counter()
    model.fit(X_train, y_train)
    resamples = evaluate.FAST_BOOTSTRAP_RESAMPLES if fast else evaluate.BOOTSTRAP_RESAMPLES
    p_hold = model.predict_proba(X_hold)[:, 1]
    progress(f"  fitted {best['label']} on {len(train):,} rows ({time.perf_counter() - started:.1f} s); "
             f"holdout ROC-AUC {evaluate.metrics(y_hold, p_hold, threshold)['roc_auc']:.4f}")
    # Rows the final model was fitted on get an out-of-fold probability when scored: an
    # in-sample prediction is optimistic (a forest or KNN has seen the row's own label).
    training_oof, scored_how = oof.training_oof(
        model, X_train, y_train, train[subject.id_column].to_numpy(),
        pd.Series(oof_search, index=searched[subject.id_column].to_numpy()),
        search_folds=cv.get_n_splits(), progress=progress)

    specs = features.feature_specs(train, chosen_features, subject.categorical)
    card: dict = {
        "subject": subject.name, "target": subject.target, "target_label": label(subject.target),
        "positive_class": OUTCOME_LABELS[subject.name][True], "table": subject.table,
        "id_column": subject.id_column, "features": chosen_features, "feature_specs": specs,
        "baseline": features.baseline(train, specs),
        # the training rows' distribution of each feature: drift is measured against it
        "feature_distributions": cards.feature_distributions(train, specs),
        "estimator": {"candidate": best["name"], "label": best["label"],
                      "class": type(model.named_steps["model"]).__name__,
                      "params": best["params"], "calibration": method,
                      "baseline": selection["chosen"] == "baseline"},
        "candidates": results,
        "selection": selection,
        "feature_experiments": experiments,
        "calibration": {**calibrated, "reliability": evaluate.reliability(y_hold, p_hold),
                        "reliability_rule": f"{evaluate.RELIABILITY_BINS} equal-width bins of predicted "
                                            "probability on the holdout (empty bins left out)"},
        "metrics": {"cv": evaluate.cv_metrics(y_search, oof_search, fold_of_row),
                    "holdout": evaluate.metrics(y_hold, p_hold, threshold),
                    "holdout_ci": evaluate.bootstrap_intervals(y_hold, p_hold, threshold,
                                                               resamples=resamples)},
        "threshold": threshold, "thresholds": thresholds,
        "leakage": guard, "feature_decisions": decisions,
        "rows": {"train": len(train), "holdout": len(holdout), "search": len(searched)},
        "scoring": scored_how,
        "curves": evaluate.curves(y_hold, p_hold),
    }
    explainer = cards.explainer(model, card)
    card["contributions"] = explainer.record()
    progress("  permutation importance on the holdout")
    card["permutation_importance"] = evaluate.permutation(model, X_hold, pd.Series(y_hold),
                                                          repeats=2 if fast else 5)
    trained = Trained(model, card, explainer, oof=training_oof)
    if subject.profit:  # customers: worth a profit-aware cut-off and marketing segments
        _profit_thresholds(trained, train, holdout, searched, subject, oof_search, y_search, y_hold,
                           p_hold, offer_cost)
        _fit_segments(trained, train, holdout, subject, fast)
    return trained


def _feature_experiments(subject: Subject, searched: pd.DataFrame, allowed, chosen: list[str], prep, best: dict,
                         large: bool, cv, without: np.ndarray, progress: Callable[[str], None]) -> dict:
    """The card's ``feature_experiments``: each derived feature group of the subject tried with
    the chosen model (as searched) on the paired folds; the groups to keep."""
    record: dict = {"model": best["label"], "roc_auc_without": round(float(without.mean()), 4),
                    "interval": compare.INTERVAL_NAME, "groups": [], "kept": [],
                    "rule": "a group of derived features is added to the chosen model alone and kept only when "
                            "the interval of its paired ROC-AUC difference (same repeated folds) is above zero; "
                            "kept groups are then used together"}
    groups = tuple(g for g in subject.derived if set(g.inputs) <= set(allowed))
    if not groups:
        return record
    started = time.perf_counter()
    extra = [c for g in groups for c in g.inputs if c not in chosen]
    X = searched[list(dict.fromkeys([*chosen, *extra]))]
    y = searched[subject.target].to_numpy(dtype=int)

    def make(tried):
        return search.pipeline(features.with_derived(prep(), tried), search.searched_model(best, large))

    record["groups"] = compare.feature_experiments(make, groups, X, y, cv, without, progress)
    record["kept"] = [r["group"] for r in record["groups"] if r["kept"]]
    record["seconds"] = round(time.perf_counter() - started, 1)
    return record


def _profit_thresholds(trained: Trained, train, holdout, searched, subject: Subject, oof_search, y_search,
                       y_hold, p_hold, offer_cost: float | None) -> None:
    """Profit-aware cut-off on the training folds; the holdout shows what it would have earned."""
    card = trained.card
    if offer_cost is None:
        offer_cost = round(evaluate.DEFAULT_OFFER_COST_SHARE * float(train[subject.profit].median()), 4)
        rule = f"default: {evaluate.DEFAULT_OFFER_COST_SHARE:.0%} of the median monthly profit"
    else:
        rule = "given with --offer-cost"
    curve = evaluate.profit_curve(y_search, oof_search, searched[subject.profit].to_numpy(), offer_cost)
    best = evaluate.best_profit_threshold(curve)
    card["thresholds"].update({
        "profit": best, "offer_cost": offer_cost, "offer_cost_rule": rule,
        "profit_rule": "maximises retained profit on out-of-fold predictions of the training split: "
                       "sum over offered customers of (declined x profit - offer_cost)"})
    card["profit_curve"] = curve
    profit = holdout[subject.profit].to_numpy()
    card["metrics"]["holdout"]["retained_profit"] = {
        name: evaluate.retained_profit(y_hold, p_hold, profit, offer_cost, t)
        for name, t in (("at_profit_threshold", best), ("at_default_threshold", card["threshold"]),
                        ("offer_everyone", 0.0))}


def _fit_segments(trained: Trained, train, holdout, subject: Subject, fast: bool) -> None:
    sample = pd.concat([train, holdout])
    p = scoring.probabilities(trained.model, sample, trained.card["features"], subject.id_column, trained.oof)
    trained.clusters, info = segments.fit_clusters(sample, p, fast=fast)
    trained.card["segments"] = {"rule_thresholds": segments.rule_thresholds(train, trained.card["threshold"]),
                                "cluster": info}


def _train_and_score(con, subject: Subject, *, data_version: str, source: str, folder: Path,
                     offer_cost: float | None, fast: bool, progress: Callable[[str], None]) -> dict:
    """Train one subject from the staged warehouse, score it back into it, write its files to ``folder``."""
    started = time.perf_counter()
    classes = dataset.check_contents(con, subject, source)
    total = sum(classes.values())
    sample = dataset.read_sample(con, subject, total)
    train, holdout = dataset.split(sample, subject)
    progress(f"{subject.name}: {total:,} rows in {subject.table}; training on {len(train):,}, "
             f"holdout {len(holdout):,}")
    trained = train_subject(train, holdout, subject, table_rows=total, fast=fast,
                            offer_cost=offer_cost, progress=progress)
    card = {**trained.card, "data_version": data_version,
            "holdout_ids": holdout[subject.id_column].tolist(),
            "trained_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "library_versions": _versions(), "seed": dataset.SEED, "fast": fast,
            "holdout_share": dataset.HOLDOUT_SHARE}
    card["rows"].update({"warehouse": total, "sample": len(sample),
                         "sample_rule": f"all rows up to {dataset.MAX_SAMPLE_ROWS:,}, else a stratified "
                                        "sample chosen by a hash of the id"})
    if subject.profit:
        card["rows"]["scored"] = scoring.score_customers(con, trained.model, trained.explainer, card,
                                                         subject.table, subject.id_column, trained.clusters,
                                                         trained.oof, progress)
        profiled = features.feature_specs(train, [*subject.candidates, subject.profit], subject.categorical)
        write_table(con, SEGMENTS, segments.segment_rows(con, profiled,
                                                         rule=card["segments"]["rule_thresholds"]))
    else:
        card["rows"]["scored"] = scoring.score_sessions(con, trained.model, card, subject.table,
                                                        subject.id_column, trained.oof, progress)
    scoring.write_importances(con, subject.name, card["permutation_importance"])
    card["seconds"] = round(time.perf_counter() - started, 1)
    return cards.write(folder, subject.name, trained.model, card)


def _model_cards(con, published: dict[str, dict]) -> pd.DataFrame:
    """The cards for the ``model_cards`` table: those just trained, and those of subjects not
    retrained this time (kept from the warehouse the staged copy started from)."""
    rows = {name: cards.card_json(card) for name, card in published.items()}
    if MODEL_CARDS in con.execute("SELECT table_name FROM information_schema.tables").df()["table_name"].tolist():
        for subject, card in con.execute(f"SELECT subject, card FROM {MODEL_CARDS}").fetchall():
            rows.setdefault(subject, card)
    return pd.DataFrame({"subject": list(rows), "card": list(rows.values())})


def run_training(url: str, models_dir: Path, subjects: list[str], *, offer_cost: float | None,
                 fast: bool, progress: Callable[[str], None],
                 before_cards: Callable[[], None] | None = None) -> dict[str, dict]:
    """Train ``subjects``; returns their cards. Nothing is published unless all of it succeeded.

    ``before_cards`` runs after the warehouse is published and before the JSON cards replace
    the old ones (and old pickles are pruned): ``etl refresh`` renames its staged warehouse
    over the served one there, so the cards never name models the served data lacks.
    """
    ibis_con = connect(url)
    try:
        require_tables(ibis_con, url, [ETL_RUNS, *(SUBJECTS[s].table for s in subjects)])
    finally:
        ibis_con.disconnect()
    models_dir = Path(models_dir)
    models_dir.mkdir(parents=True, exist_ok=True)
    tmp = models_dir / f".tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        # one thread per native thread pool: parallelism comes from the two joblib workers, and
        # OpenMP teams contending for the 2 cores made HGB/k-means predictions 10x slower
        with staged(url, start_from_current=True) as con, threadpool_limits(limits=1):
            version = dataset.data_version(con)
            published = {name: _train_and_score(con, SUBJECTS[name], data_version=version, source=url,
                                                folder=tmp, offer_cost=offer_cost, fast=fast,
                                                progress=progress)
                         for name in subjects}
            # The warehouse is the one switch: it holds the cards of the models that scored it,
            # and their pickles are in place before it is published.
            write_table(con, MODEL_CARDS, _model_cards(con, published))
            for card in published.values():
                cards.publish_pickle(tmp, models_dir, card)
        if before_cards is not None:
            before_cards()
        for name in subjects:
            cards.publish_card(tmp, models_dir, name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return published
