"""`python -m etl prepare`: make sure a warehouse and models exist and are current.

Used by ``make run`` so a fresh clone serves a dashboard with one command:

1. no ``RAW_DIR`` configured and ``data/raw`` holds no CSV → generate sample raw data;
2. warehouse missing or older than any raw file → run the ETL;
3. a model card missing or trained on another data version → train.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

import duckdb

from etl.settings import Settings
from etl.warehouse import duckdb_path

log = logging.getLogger(__name__)

SAMPLE_SESSIONS = 20_000
SAMPLE_CUSTOMERS = 1_300


def newest_raw_mtime(raw_dir: Path) -> float:
    return max((p.stat().st_mtime for p in raw_dir.rglob("*.csv")), default=0.0)


def warehouse_version(path: Path) -> str | None:
    """The data version of the published warehouse, None when there is none."""
    if not path.is_file():
        return None
    con = duckdb.connect(str(path), read_only=True)
    try:
        row = con.execute("SELECT data_version FROM etl_runs ORDER BY finished_at DESC LIMIT 1").fetchone()
    except duckdb.Error:
        return None
    finally:
        con.close()
    return row[0] if row else None


def stale_subjects(path: Path | None, models_dir: Path, version: str | None) -> list[str]:
    """Subjects without a model for the published data: no card in the warehouse (the ETL
    published new data, or the warehouse predates cards there), a card for another data
    version, or a card whose pickle is gone."""
    cards = {}
    if path is not None and path.is_file():
        con = duckdb.connect(str(path), read_only=True)
        try:
            cards = {s: json.loads(c) for s, c in con.execute("SELECT subject, card FROM model_cards").fetchall()}
        except (duckdb.Error, ValueError):
            cards = {}
        finally:
            con.close()
    stale = []
    for subject in ("carts", "customers"):
        card = cards.get(subject, {})
        if card.get("data_version") != version or not (models_dir / str(card.get("pickle"))).is_file():
            stale.append(subject)
    return stale


def _step(name: str, argv: list[str]) -> None:
    from etl.cli import main as cli  # the same code path as typing the command

    if cli(argv) != 0:
        raise SystemExit(f"prepare stopped: {name} failed (see the message above)")


def prepare(settings: Settings, *, sample_if_empty: bool, fast: bool = False) -> None:
    """Bring warehouse and models up to date; ``sample_if_empty`` when no RAW_DIR was configured."""
    raw = settings.raw_dir
    if sample_if_empty and newest_raw_mtime(raw) == 0.0:
        log.info("no raw data configured: generating sample data in %s", raw)
        _step("sample generation", ["sample", "--out", str(raw), "--sessions", str(SAMPLE_SESSIONS),
                                    "--customers", str(SAMPLE_CUSTOMERS)])
    path = duckdb_path(settings.warehouse_url)
    if path is not None and (not path.is_file() or path.stat().st_mtime < newest_raw_mtime(raw)):
        log.info("warehouse missing or older than the raw files: running the ETL")
        _step("ETL", ["run", "--raw", str(raw), "--warehouse", settings.warehouse_url])
    version = warehouse_version(path) if path is not None else None
    subjects = stale_subjects(path, settings.models_dir, version)
    if subjects:
        log.info("training %s (models missing or for another data version)", ", ".join(subjects))
        args = ["train", "--warehouse", settings.warehouse_url, "--models", str(settings.models_dir)]
        args += ["--fast"] if fast else []
        for subject in subjects:
            args += ["--subject", subject]
        _step("training", args)
    log.info("warehouse and models are current")
