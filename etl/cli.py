"""Command line: ``python -m etl run | sample | train | refresh | prepare``.

Exit code 0 only on success. Unusable input prints one line naming file, column, row and
rule (no traceback) and exits 2; progress goes to stderr.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

from etl.errors import ETLError
from etl.settings import get_settings

log = logging.getLogger("etl")


def _run(args: argparse.Namespace) -> int:
    from etl.backends import redact
    from etl.pipeline import run_pipeline

    settings = get_settings()
    raw = Path(args.raw) if args.raw else settings.raw_dir
    url = args.warehouse or settings.warehouse_url
    started = time.perf_counter()
    summary = run_pipeline(raw, url)
    tables = summary["tables"]
    print(f"warehouse {redact(url)}: {tables['sessions']:,} sessions ({summary['abandoned']:,} abandoned), "
          f"{tables['customers']:,} customers ({summary['declined']:,} declined), "
          f"{tables['rejected_rows']:,} rejected rows; data version {summary['data_version']} "
          f"({time.perf_counter() - started:.1f} s)")
    for (subject, rule), count in sorted(summary["rejected_by_rule"].items()):
        print(f"  rejected {subject:<9} {rule:<24} {count:>8,}")
    return 0


def _sample(args: argparse.Namespace) -> int:
    from etl.sample import write_sample

    def progress(step: str, done: int, total: int) -> None:
        print(f"\r  {step}: {done:,}/{total:,}", end="" if done < total else "\n", file=sys.stderr)

    started = time.perf_counter()
    paths = write_sample(Path(args.out), sessions=args.sessions, customers=args.customers,
                         seed=args.seed, progress=progress)
    print(f"wrote {len(paths)} files under {args.out} in {time.perf_counter() - started:.1f} s")
    return 0


def _train(args: argparse.Namespace) -> int:
    from etl.train.cli import train_command

    return train_command(args)


def _refresh(args: argparse.Namespace) -> int:
    from etl.train.cli import refresh_command

    return refresh_command(args)


def _prepare(args: argparse.Namespace) -> int:
    from etl.prepare import prepare

    prepare(get_settings(), sample_if_empty="RAW_DIR" not in os.environ, fast=args.fast)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m etl", description=__doc__.splitlines()[0])
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and the summary")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="read, validate, clean and publish the warehouse")
    run.add_argument("--raw", help="raw folder with carts/ and customers/ (default: $RAW_DIR or data/raw)")
    run.add_argument("--warehouse", help="warehouse URL or path (default: $WAREHOUSE_URL or data/warehouse.duckdb)")
    run.set_defaults(func=_run)

    sample = sub.add_parser("sample", help="write generated raw files shaped like the real exports")
    sample.add_argument("--out", required=True, help="folder to write carts/ and customers/ into")
    sample.add_argument("--sessions", type=int, default=5000, help="cart sessions (default 5000)")
    sample.add_argument("--customers", type=int, default=1300, help="customers (default 1300)")
    sample.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    sample.set_defaults(func=_sample)

    train = sub.add_parser("train", help="train both models from the warehouse, write cards and scores")
    train.add_argument("--warehouse", help="warehouse URL or path (default: $WAREHOUSE_URL)")
    train.add_argument("--models", help="models folder (default: $MODELS_DIR or models)")
    train.add_argument("--subject", choices=["carts", "customers"], action="append",
                       help="train only this subject (repeatable; default both)")
    train.add_argument("--offer-cost", type=float, default=None,
                       help="cost of one retention offer, in profit units, for the profit-aware threshold")
    train.add_argument("--fast", action="store_true", help="small search grids (for tests and demos)")
    train.set_defaults(func=_train)
    refresh = sub.add_parser("refresh", help="run + train, published together: served data never lacks its models")
    refresh.add_argument("--raw", help="raw folder (default: $RAW_DIR or data/raw)")
    refresh.add_argument("--warehouse", help="warehouse URL or path (default: $WAREHOUSE_URL)")
    refresh.add_argument("--models", help="models folder (default: $MODELS_DIR or models)")
    refresh.add_argument("--offer-cost", type=float, default=None, help="as for train")
    refresh.add_argument("--fast", action="store_true", help="small search grids (for tests and demos)")
    refresh.set_defaults(func=_refresh)
    prepare = sub.add_parser("prepare", help="sample data, ETL and training, each only when missing or stale")
    prepare.add_argument("--fast", action="store_true", help="train with small search grids when training is needed")
    prepare.set_defaults(func=_prepare)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S",
                        stream=sys.stderr)
    try:
        return args.func(args)
    except ETLError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:  # bad arguments, e.g. --sessions 0
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a folder that cannot be written, a full disk: say which, no traceback
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
