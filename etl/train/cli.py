"""``python -m etl train``: progress to stderr (logging), the summary table to stdout."""
from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from etl.settings import get_settings
from etl.train.features import SUBJECTS

log = logging.getLogger("etl.train")


def summary_table(cards: dict[str, dict]) -> str:
    """Candidates with their CV scores, the chosen one starred, then its holdout numbers, the
    paired comparison with the seed's pipeline and the calibration decision."""
    lines = [f"{'subject':<10} {'candidate':<32} {'CV ROC-AUC':>16} {'CV PR-AUC':>9} {'CV F1':>6} {'time':>7}"]
    for subject, card in cards.items():
        for result in card["candidates"]:
            star = "*" if result["name"] == card["estimator"]["candidate"] else " "
            if "cv" not in result:
                lines.append(f"{subject:<10}{star}{result['label'][:32]:<32} {'skipped: ' + result['skipped']}")
                continue
            cv = result["cv"]
            lines.append(f"{subject:<10}{star}{result['label'][:32]:<32} "
                         f"{cv['roc_auc_mean']:.4f} ± {cv['roc_auc_std']:.4f} {cv['pr_auc_mean']:>9.4f} "
                         f"{cv['f1_mean']:>6.3f} {result['seconds']:>6.1f}s")
        selection = card.get("selection")
        if selection:
            folds = selection["folds"]
            lines.append(f"{'':<10} paired {folds['splits']}x{folds['repeats']} repeated CV vs the seed's pipeline "
                         f"(ROC-AUC {selection['baseline']['roc_auc_mean']:.4f} ± "
                         f"{selection['baseline']['roc_auc_sd']:.4f}), {selection['interval']}:")
            for row in selection["candidates"]:
                lines.append(f"{'':<10}  {row['label'][:32]:<32} {row['roc_auc_mean']:.4f} ± {row['roc_auc_sd']:.4f}"
                             f"  difference {row['difference']:+.4f} [{row['difference_low']:+.4f}, "
                             f"{row['difference_high']:+.4f}]")
    lines.append("")
    lines.append(f"{'subject':<10} {'chosen':<32} {'ROC-AUC':>7} {'F1':>6} {'PR-AUC':>6} {'Brier':>6} "
                 f"{'thresh':>6}  holdout rows, leakage excluded, model")
    for subject, card in cards.items():
        h = card["metrics"]["holdout"]
        excluded = ", ".join(card["leakage"]["excluded"]) or "none"
        lines.append(f"{subject:<10} {card['estimator']['label'][:32]:<32} {h['roc_auc']:>7.4f} {h['f1']:>6.3f} "
                     f"{h['pr_auc']:>6.3f} {h['brier']:>6.3f} {card['threshold']:>6.3f}  "
                     f"{h['rows']:,}, {excluded}, {card['model_version']} ({card['seconds']:.0f} s)")
        if "profit" in card["thresholds"]:
            t = card["thresholds"]
            lines.append(f"{'':<10} profit-aware threshold {t['profit']:.2f} at offer cost {t['offer_cost']:g}; "
                         f"holdout retained profit {h['retained_profit']['at_profit_threshold']:,.1f} "
                         f"(offer everyone: {h['retained_profit']['offer_everyone']:,.1f})")
        ci = card["metrics"].get("holdout_ci")
        if ci:
            lines.append(f"{'':<10} holdout 95 % bootstrap intervals: " + ", ".join(
                f"{m} {h[m]:.3f} [{ci[m][0]:.3f}, {ci[m][1]:.3f}]" for m in ("roc_auc", "f1", "pr_auc", "brier")))
        if "selection" in card:
            lines.append(f"{'':<10} chosen because {card['selection']['reason']}")
            lines.append(f"{'':<10} calibration: {card['calibration']['reason']}")
        for decision in card["feature_decisions"]:
            lines.append(f"{'':<10} {decision['feature']}: {decision['decision']}")
    return "\n".join(lines)


def train_command(args: argparse.Namespace) -> int:
    from etl.backends import redact
    from etl.train.run import run_training  # heavy imports only when training

    settings = get_settings()
    url = args.warehouse or settings.warehouse_url
    models_dir = Path(args.models) if args.models else settings.models_dir
    subjects = list(dict.fromkeys(args.subject or SUBJECTS))
    if args.offer_cost is not None and not args.offer_cost >= 0:
        raise ValueError(f"--offer-cost must be a non-negative number, got {args.offer_cost}")
    started = time.perf_counter()
    cards = run_training(url, models_dir, subjects, offer_cost=args.offer_cost, fast=args.fast,
                         progress=log.info)
    print(summary_table(cards))
    print(f"\nmodels in {models_dir}, scores in {redact(url)} ({time.perf_counter() - started:.1f} s)")
    return 0


def refresh_command(args: argparse.Namespace) -> int:
    """``python -m etl refresh``: the ETL and training into a private copy, published once.

    ``run`` then ``train`` publish twice, and between the two the served warehouse holds the
    new data without scores or models (the model pages say so until training ends, minutes
    at 10 M rows). Here the ETL publishes into a staging file next to the warehouse, training
    adds its scores and model cards to that file (the pickles are placed on the way, under
    new names), and one rename makes the new data and its models current together.
    """
    import duckdb

    from etl import kpi_snapshot
    from etl.pipeline import run_pipeline
    from etl.backends import backend, redact
    from etl.train.run import run_training

    settings = get_settings()
    url = args.warehouse or settings.warehouse_url
    models_dir = Path(args.models) if args.models else settings.models_dir
    target = backend(url)
    staging = target.build_path()   # a local DuckDB file on every backend
    started = time.perf_counter()
    snapshot = {}

    def publish() -> None:
        # KPI history (issue 11): the published data with its scores (the staged ETL run is
        # not recorded), read from the local build before it is published (a DuckDB publish
        # renames it away) rather than back from a server
        with duckdb.connect(str(staging), read_only=True) as built:
            snapshot["built"] = kpi_snapshot.of_build(built, url)
        target.publish(staging)

    try:
        summary = run_pipeline(Path(args.raw) if args.raw else settings.raw_dir, str(staging))
        log.info("ETL done (%s sessions); training on the staged copy", f"{summary['tables']['sessions']:,}")
        cards = run_training(str(staging), models_dir, list(SUBJECTS), offer_cost=args.offer_cost,
                             fast=args.fast, progress=log.info, before_cards=publish)
    finally:
        target.close()
        staging.unlink(missing_ok=True)
    kpi_snapshot.record_publish(url, built=snapshot.get("built"))
    print(summary_table(cards))
    print(f"\npublished data version {summary['data_version']} with its models: {redact(url)} "
          f"({time.perf_counter() - started:.1f} s)")
    return 0
