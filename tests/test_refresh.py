"""``python -m etl refresh``: new data and its models published by one rename, or nothing."""
from __future__ import annotations

import hashlib
import json

import duckdb
import pytest

from etl.cli import main

pytestmark = pytest.mark.slow


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_refresh_publishes_data_with_the_models_trained_on_it(raw_copy, tmp_path, capsys):
    wh, models = tmp_path / "wh.duckdb", tmp_path / "models"
    assert main(["-q", "run", "--raw", str(raw_copy), "--warehouse", str(wh)]) == 0
    assert main(["-q", "refresh", "--fast", "--raw", str(raw_copy), "--warehouse", str(wh),
                 "--models", str(models)]) == 0
    with duckdb.connect(str(wh), read_only=True) as con:
        (version,), = con.execute("SELECT data_version FROM etl_runs").fetchall()
        cards = {s: json.loads(c) for s, c in con.execute("SELECT subject, card FROM model_cards").fetchall()}
        tables = {t for (t,) in con.execute("SHOW TABLES").fetchall()}
    assert set(cards) == {"carts", "customers"} and {c["data_version"] for c in cards.values()} == {version}
    assert {"session_scores", "customer_scores", "segments"} <= tables
    assert all((models / c["pickle"]).is_file() for c in cards.values())
    assert [p.name for p in tmp_path.iterdir() if "refresh" in p.name] == []     # no staging file left
    assert f"published data version {version} with its models" in capsys.readouterr().out


def test_a_failed_refresh_publishes_nothing(raw_copy, tmp_path, capsys):
    wh, models = tmp_path / "wh.duckdb", tmp_path / "models"
    assert main(["-q", "run", "--raw", str(raw_copy), "--warehouse", str(wh)]) == 0
    before = digest(wh)
    (raw_copy / "customers" / "money.csv").write_text("")
    assert main(["-q", "refresh", "--fast", "--raw", str(raw_copy), "--warehouse", str(wh),
                 "--models", str(models)]) == 2
    assert "money.csv" in capsys.readouterr().err
    assert digest(wh) == before and not models.exists()
    assert [p.name for p in tmp_path.iterdir() if "refresh" in p.name] == []
