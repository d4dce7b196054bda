"""`python -m etl prepare`: make sure a warehouse and models exist and are current.

Used by ``make run`` so a fresh clone serves a dashboard with one command:

1. no ``RAW_DIR`` configured and ``data/raw`` holds no CSV → generate sample raw data;
2. warehouse missing or older than any raw file → run the ETL;
3. a model card missing or trained on another data version → train.
"""
from __future__ import annotations

import json
import logging
from datetime import timezone
from pathlib import Path

from etl.backends import backend
from etl.settings import Settings

log = logging.getLogger(__name__)

SAMPLE_SESSIONS = 20_000
SAMPLE_CUSTOMERS = 1_300


def newest_raw_mtime(raw_dir: Path) -> float:
    return max((p.stat().st_mtime for p in raw_dir.rglob("*.csv")), default=0.0)


def _published(url: str | Path) -> dict | None:
    """What prepare needs of the published warehouse (None when there is none or it cannot be
    read): its latest ETL run's data version and finish time, and its model cards."""
    found = backend(str(url))
    try:
        if found.stamp() is None:
            return None
        con = found.connect()
    except Exception:  # noqa: BLE001 - a missing or unreadable warehouse is rebuilt
        found.close()
        return None
    try:
        import ibis

        runs = con.table("etl_runs").order_by(ibis.desc("finished_at")).limit(1).to_pyarrow().to_pylist()
        cards = {}
        if "model_cards" in con.list_tables():
            for row in con.table("model_cards").to_pyarrow().to_pylist():
                try:
                    cards[row["subject"]] = json.loads(row["card"])
                except (TypeError, ValueError):
                    continue
        run = runs[0] if runs else {}
        return {"version": run.get("data_version"), "finished_at": run.get("finished_at"), "cards": cards}
    except Exception:  # noqa: BLE001 - a warehouse without the contract tables is rebuilt
        return None
    finally:
        con.disconnect()
        found.close()


def warehouse_version(url: str | Path) -> str | None:
    """The data version of the published warehouse, None when there is none."""
    state = _published(url)
    return None if state is None else state["version"]


def stale_subjects(url: str | Path | None, models_dir: Path, version: str | None) -> list[str]:
    """Subjects without a model for the published data: no card in the warehouse (the ETL
    published new data, or the warehouse predates cards there), a card for another data
    version, or a card whose pickle is gone."""
    state = _published(url) if url is not None else None
    return _stale({} if state is None else state["cards"], models_dir, version)


def _stale(cards: dict, models_dir: Path, version: str | None) -> list[str]:
    stale = []
    for subject in ("carts", "customers"):
        card = cards.get(subject, {})
        if card.get("data_version") != version or not (models_dir / str(card.get("pickle"))).is_file():
            stale.append(subject)
    return stale


def _older_than_raw(url: str, raw_dir: Path) -> bool:
    """No warehouse, or one published before the newest raw file changed: a DuckDB file by its
    modification time, a server warehouse by its latest ETL run's finish time (UTC)."""
    found = backend(url)
    try:
        path = getattr(found, "path", None)
        if path is not None:
            return not path.is_file() or path.stat().st_mtime < newest_raw_mtime(raw_dir)
    finally:
        found.close()
    state = _published(url)
    if state is None or state["finished_at"] is None:
        return True
    finished = state["finished_at"].replace(tzinfo=timezone.utc).timestamp()
    return finished < newest_raw_mtime(raw_dir)


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
    url = settings.warehouse_url
    if _older_than_raw(url, raw):
        log.info("warehouse missing or older than the raw files: running the ETL")
        _step("ETL", ["run", "--raw", str(raw), "--warehouse", url])
    # read once: on a server warehouse each read is a connection (on Spark a session)
    state = _published(url) or {"version": None, "cards": {}}
    subjects = _stale(state["cards"], settings.models_dir, state["version"])
    if subjects:
        log.info("training %s (models missing or for another data version)", ", ".join(subjects))
        args = ["train", "--warehouse", settings.warehouse_url, "--models", str(settings.models_dir)]
        args += ["--fast"] if fast else []
        for subject in subjects:
            args += ["--subject", subject]
        _step("training", args)
    log.info("warehouse and models are current")
