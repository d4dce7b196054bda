"""Configuration comes from environment variables only, read at call time."""
from __future__ import annotations

import pytest

from etl.settings import PROJECT_ROOT, get_settings
from etl.warehouse import duckdb_path


def test_defaults(monkeypatch):
    for var in ("RAW_DIR", "WAREHOUSE_URL", "MODELS_DIR", "PORT", "HOST"):
        monkeypatch.delenv(var, raising=False)
    s = get_settings()
    assert s.raw_dir == PROJECT_ROOT / "data" / "raw"
    assert duckdb_path(s.warehouse_url) == PROJECT_ROOT / "data" / "warehouse.duckdb"
    assert s.models_dir == PROJECT_ROOT / "models"
    assert (s.host, s.port) == ("127.0.0.1", 8050)


def test_environment_overrides(monkeypatch, tmp_path):
    monkeypatch.setenv("RAW_DIR", str(tmp_path / "raw"))
    monkeypatch.setenv("MODELS_DIR", "elsewhere/models")
    monkeypatch.setenv("PORT", "9000")
    s = get_settings()
    assert s.raw_dir == tmp_path / "raw"
    assert s.models_dir == PROJECT_ROOT / "elsewhere" / "models"
    assert s.port == 9000


@pytest.mark.parametrize("url,expected", [
    ("duckdb:///abs/wh.duckdb", "/abs/wh.duckdb"),
    ("/abs/wh.duckdb", "/abs/wh.duckdb"),
    ("duckdb://data/wh.duckdb", str(PROJECT_ROOT / "data" / "wh.duckdb")),
    ("data/wh.duckdb", str(PROJECT_ROOT / "data" / "wh.duckdb")),
])
def test_warehouse_url_forms(url, expected):
    assert str(duckdb_path(url)) == expected


def test_other_backends_are_not_files():
    assert duckdb_path("postgres://user@host/db") is None


@pytest.mark.parametrize("port", ["eighty", "²", "①", "٨٠", "0", "65536", "1" * 400, " 80"])
def test_bad_port_is_a_clear_error(monkeypatch, port):
    monkeypatch.setenv("PORT", port)
    with pytest.raises(ValueError, match="PORT must be a TCP port number"):
        get_settings()
