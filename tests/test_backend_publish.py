"""A run that started from one release never publishes over a newer one (the lost update).

``python -m etl train`` pulls the published release, trains for a minute and publishes the
release with its scores and models. An ``etl run`` that published new data meanwhile must not
be put back to the old data: the backend compares the release the build was pulled from with
the one published now, under its publish lock, and refuses (``warehouse changed``). Tested on
the DuckDB file and on a real PostgreSQL (Spark: tests/test_backend_spark.py).
"""
from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest

from etl.backends import backend, staged
from etl.errors import ETLError


def _build(folder: Path, name: str, rows: int) -> Path:
    path = folder / f"{name}.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute(f"CREATE TABLE marker AS SELECT '{name}' AS name, range AS n FROM range({rows})")
    return path


def _published(url: str) -> str:
    con = backend(url).connect()
    try:
        return con.table("marker").to_pyarrow()["name"][0].as_py()
    finally:
        con.disconnect()


def _lost_update_is_refused(url: str, folder: Path) -> None:
    target = backend(url)
    try:
        target.publish(_build(folder, "first", 3))
        with pytest.raises(ETLError) as refused:
            with staged(url, start_from_current=True) as con:      # a training run ...
                con.execute("CREATE TABLE scores AS SELECT 1 AS s")
                target.publish(_build(folder, "second", 5))          # ... overtaken by an ETL run
        assert refused.value.rule == "warehouse changed"
        assert _published(url) == "second"                           # the newer data stays
        with staged(url, start_from_current=True) as con:            # run again: it publishes
            con.execute("CREATE TABLE scores AS SELECT 1 AS s")
        assert _published(url) == "second"
        check = backend(url).connect()
        try:
            assert "scores" in check.list_tables()
        finally:
            check.disconnect()
    finally:
        target.close()


def test_a_duckdb_publish_over_a_newer_release_is_refused(tmp_path):
    _lost_update_is_refused(str(tmp_path / "warehouse.duckdb"), tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir() if ".tmp-" in p.name) == []   # no build left


@pytest.fixture(scope="module")
def postgres():
    from localservers.postgres import served

    yield from served(pytest)


@pytest.mark.servers
def test_a_postgres_publish_over_a_newer_release_is_refused(postgres, tmp_path):
    _lost_update_is_refused(postgres.new_database(), tmp_path)


def test_without_an_expected_release_a_publish_just_happens(tmp_path):
    """The ETL (start_from_current=False) replaces whatever is published, as it always did."""
    url = str(tmp_path / "warehouse.duckdb")
    shutil.copyfile(_build(tmp_path, "first", 1), tmp_path / "warehouse.duckdb")
    with staged(url, start_from_current=False) as con:
        con.execute("CREATE TABLE marker AS SELECT 'etl' AS name, 1 AS n")
    assert _published(url) == "etl"
