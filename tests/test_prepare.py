"""`python -m etl prepare` (what `make run` does first) redoes exactly the stale steps."""
from __future__ import annotations

import os

import pytest

from etl.prepare import prepare, warehouse_version
from etl.settings import Settings
from etl.train.card import read_card


@pytest.mark.slow
def test_prepare_samples_loads_trains_and_then_only_what_is_stale(tmp_path):
    settings = Settings(raw_dir=tmp_path / "raw", warehouse_url=str(tmp_path / "wh.duckdb"),
                        models_dir=tmp_path / "models", host="127.0.0.1", port=8050)
    wh = tmp_path / "wh.duckdb"

    prepare(settings, sample_if_empty=True, fast=True)          # fresh machine: everything
    assert (settings.raw_dir / "carts" / "data_cart_abandonment.csv").is_file()
    version = warehouse_version(wh)
    cards = {s: read_card(settings.models_dir, s) for s in ("carts", "customers")}
    assert {c["data_version"] for c in cards.values()} == {version}
    stamps = (wh.stat().st_mtime_ns, *(c["trained_at"] for c in cards.values()))

    prepare(settings, sample_if_empty=True, fast=True)          # nothing changed: nothing redone
    again = (wh.stat().st_mtime_ns, *(read_card(settings.models_dir, s)["trained_at"] for s in cards))
    assert again == stamps

    money = settings.raw_dir / "customers" / "money.csv"        # new export: ETL, then retrain
    with money.open("a", encoding="utf-8") as fh:
        fh.write("999999;1,5\n")                                  # a customer market_file lacks
    later = wh.stat().st_mtime + 5
    os.utime(money, (later, later))
    prepare(settings, sample_if_empty=True, fast=True)
    assert warehouse_version(wh) != version
    assert read_card(settings.models_dir, "customers")["data_version"] == warehouse_version(wh)


def test_configured_but_empty_raw_folder_is_an_error_not_a_sample(tmp_path):
    settings = Settings(raw_dir=tmp_path / "raw", warehouse_url=str(tmp_path / "wh.duckdb"),
                        models_dir=tmp_path / "models", host="127.0.0.1", port=8050)
    with pytest.raises(SystemExit, match="ETL failed"):
        prepare(settings, sample_if_empty=False)
    assert not (tmp_path / "raw").exists()
