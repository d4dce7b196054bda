"""The Apache Spark warehouse (``WAREHOUSE_URL=pyspark:///abs/path``) on a real local Spark:
the ETL and training publish through it, a failed run leaves the published release as it was,
a pinned release keeps reading while a new one is published, old releases go only once
retired, a publish refuses to replace a release it did not start from, releases are on disk
before and after the switch, types survive the round trip, and the dashboard answers on Spark
exactly as on the DuckDB file it was published from.

One SparkContext for the whole session (fixture ``spark``): a backend uses the context it
finds and does not stop it.
"""
from __future__ import annotations

import fcntl
import json
import os
import shutil
import threading
import time
from pathlib import Path

import duckdb
import pytest

from etl.backends import spark as spark_backend, staged
from etl.backends.spark import CURRENT, KEEP_RELEASES, MANIFEST, PART, RETIRE_AFTER, Spark
from etl.cli import main
from etl.errors import ETLError
from localservers import ServerMissing, skip_or_fail
from localservers.spark import java, local_spark
from tests.dashboard_generators import (is_pattern, parse_id, post_json, router, router_body, server_callbacks,
                                        split_outputs)

pytestmark = pytest.mark.servers


@pytest.fixture(scope="session")
def spark(tmp_path_factory):
    try:
        java()
    except ServerMissing as exc:
        skip_or_fail(pytest, exc)
    with local_spark(tmp_path_factory.mktemp("spark")) as (session, _seconds):
        yield session


@pytest.fixture
def url(spark, tmp_path) -> str:
    return f"pyspark://{tmp_path / 'warehouse'}"


@pytest.fixture
def backend(url):
    found = Spark(url)
    yield found
    found.close()


def rows(path: str | Path, table: str) -> list[dict]:
    con = duckdb.connect(str(path), read_only=True)
    try:   # through Arrow: DuckDB's own Python values of a TIMESTAMPTZ need pytz
        return con.execute(f'SELECT * FROM "{table}" ORDER BY ALL').to_arrow_table().to_pylist()
    finally:
        con.close()


def columns(path: str | Path) -> dict[str, list]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        names = [n for (n,) in con.execute("SELECT table_name FROM information_schema.tables "
                                           "WHERE table_catalog = current_database()").fetchall()]
        return {n: [c[:2] for c in con.execute(f'DESCRIBE "{n}"').fetchall()] for n in names}
    finally:
        con.close()


def count(con, table: str) -> int:
    return con.table(table).count().to_pyarrow().as_py()


def tiny_build(path: Path, n: int) -> Path:
    """A DuckDB build with one table ``t`` of ``n`` rows: publishes that take no time."""
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE TABLE t AS SELECT range AS n FROM range(?)", [n])
    return path


def release_names(url: str) -> list[str]:
    return sorted(p.name for p in (Path(url[len("pyspark://"):]) / "releases").iterdir())


# --- the command line ---------------------------------------------------------------------


def test_etl_run_and_train_publish_through_spark(url, dashboard_raw, dashboard_data, tmp_path, monkeypatch):
    monkeypatch.setenv("STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("WAREHOUSE_URL", url)     # the served warehouse: its KPI snapshot is recorded
    assert main(["-q", "run", "--raw", str(dashboard_raw), "--warehouse", url]) == 0
    found = Spark(url)
    try:
        after_run = found.stamp()
        con = found.connect()
        assert set(con.list_tables()) == {"sessions", "customers", "rejected_rows", "source_files", "etl_runs"}
        for table in ("sessions", "customers", "rejected_rows"):
            assert count(con, table) == len(rows(dashboard_data["plain"], table))
        con.disconnect()
        history = (tmp_path / "state" / "kpi_history.jsonl").read_text().splitlines()
        assert json.loads(history[-1])["kpis"]["sessions"] == len(rows(dashboard_data["plain"], "sessions"))

        assert main(["-q", "train", "--fast", "--warehouse", url, "--models", str(tmp_path / "models")]) == 0
        assert found.stamp() != after_run
        con = found.connect()
        on_spark = {r["subject"]: json.loads(r["card"]) for r in con.table("model_cards").to_pyarrow().to_pylist()}
        con.disconnect()
    finally:
        found.close()
    on_duckdb = {r["subject"]: json.loads(r["card"]) for r in rows(dashboard_data["scored"], "model_cards")}
    # rows pulled in a fixed order, the same seeds: the very same models as on DuckDB
    for subject, card in on_duckdb.items():
        for key in ("data_version", "metrics", "threshold", "sha256", "features"):
            assert on_spark[subject][key] == card[key], (subject, key)
        assert (tmp_path / "models" / card["pickle"]).is_file()
    assert len(list((tmp_path / "warehouse" / "releases").iterdir())) == 2
    assert not any((tmp_path / "warehouse" / ".builds").iterdir())


def test_a_failed_run_leaves_the_published_release(url, backend, raw_copy, tmp_path):
    assert main(["-q", "run", "--raw", str(raw_copy), "--warehouse", url]) == 0
    stamp = backend.stamp()
    con = backend.connect()
    before = {t: count(con, t) for t in ("sessions", "customers", "rejected_rows")}
    con.disconnect()

    (raw_copy / "customers" / "money.csv").unlink()          # a file the run cannot do without
    assert main(["-q", "run", "--raw", str(raw_copy), "--warehouse", url]) == 2
    # a publish that fails half-way: the first table is written, the second cannot be
    build = tmp_path / "half.duckdb"
    with duckdb.connect(str(build)) as con:
        con.execute("CREATE TABLE a_sessions AS SELECT 1 AS n")
        con.execute('CREATE TABLE "z sessions" AS SELECT 2 AS n')
    with pytest.raises(ETLError, match="not a plain name"):
        backend.publish(build)

    assert backend.stamp() == stamp
    assert [p.name for p in (tmp_path / "warehouse" / "releases").iterdir()] == [stamp]
    con = backend.connect()
    assert {t: count(con, t) for t in before} == before and "a_sessions" not in con.list_tables()
    con.disconnect()


# --- releases -----------------------------------------------------------------------------


def test_a_pinned_release_reads_the_same_while_new_ones_are_published(spark, url, backend, dashboard_data, tmp_path,
                                                                       monkeypatch):
    first = backend.publish(Path(dashboard_data["plain"]))
    pinned = backend.connect(first)
    sessions, tables = count(pinned, "sessions"), set(pinned.list_tables())

    fewer = tmp_path / "fewer.duckdb"
    shutil.copyfile(dashboard_data["scored"], fewer)
    with duckdb.connect(str(fewer)) as con:
        con.execute("DELETE FROM sessions WHERE abandoned")
    answers: list[str] = []
    failures: list[BaseException] = []

    def publish() -> None:
        try:
            answers.append(backend.publish(fewer))
        except BaseException as exc:  # noqa: BLE001 - raised again in the test's thread
            failures.append(exc)

    publisher = threading.Thread(target=publish)
    publisher.start()
    try:
        while publisher.is_alive():                    # read the pinned release all along the publish
            assert count(pinned, "sessions") == sessions
    finally:
        publisher.join()
    if failures:
        raise failures[0]
    assert answers
    second = backend.stamp()
    assert second == answers[0] != first

    assert count(pinned, "sessions") == sessions and set(pinned.list_tables()) == tables
    other = Spark(url)                                 # another reader (process) sees the new one
    try:
        now = other.connect()
        assert 0 < count(now, "sessions") < sessions and "model_cards" in now.list_tables()
        now.disconnect()
        again = backend.connect(first)                 # a second thread of the pinned request
        assert again is not pinned and count(again, "sessions") == sessions
        again.disconnect()

        # retired at once (test_old_releases_go_only_once_retired covers the delay)
        monkeypatch.setattr(spark_backend, "RETIRE_AFTER", 0.0)
        for _ in range(KEEP_RELEASES - 1):
            backend.publish(fewer)
        kept = release_names(url)
        assert len(kept) == KEEP_RELEASES and first not in kept and backend.stamp() == kept[-1]
        with pytest.raises(ETLError, match="gone"):
            other.connect(first)
    finally:
        pinned.disconnect()
        other.close()
    backend.close()
    assert spark.sparkContext._jsc is not None        # closing never stopped the shared context
    assert spark.range(3).count() == 3


def test_old_releases_go_only_once_retired(url, backend, tmp_path):
    """Beyond the newest KEEP_RELEASES, a release stays until RETIRE_AFTER has passed since the
    next one replaced it (that one's manifest time): a reader on another host may hold it."""
    build = tiny_build(tmp_path / "tiny.duckdb", 3)
    names = [backend.publish(build) for _ in range(KEEP_RELEASES + 2)]
    assert release_names(url) == names                 # all replaced just now: every one kept

    releases = tmp_path / "warehouse" / "releases"
    (releases / "20000101T000000000000Z-0000dead").mkdir()    # a killed publish's leftover
    long_ago = time.time() - RETIRE_AFTER - 60
    os.utime(releases / names[1] / MANIFEST, (long_ago, long_ago))   # names[0] replaced long ago
    newest = backend.publish(build)
    assert release_names(url) == [*names[1:], newest]

    for name in names[1:]:
        os.utime(releases / name / MANIFEST, (long_ago, long_ago))
    latest = backend.publish(build)
    # the newest KEEP_RELEASES stay however long ago they were replaced
    assert release_names(url) == [names[-1], newest, latest] and backend.stamp() == latest


def test_a_publish_refuses_when_its_release_was_replaced(url, backend, tmp_path):
    """A lost update: training pulled release S, an ETL run published S2 meanwhile; publishing
    the training's build would bring back S's data over S2's."""
    started_from = backend.publish(tiny_build(tmp_path / "one.duckdb", 1))
    pulled = tmp_path / "pulled.duckdb"
    backend.pull(pulled)
    with duckdb.connect(str(pulled)) as con:
        con.execute("CREATE TABLE model_cards AS SELECT 'card' AS card")
    replaced_by = backend.publish(tiny_build(tmp_path / "two.duckdb", 2))

    with pytest.raises(ETLError, match="another publish replaced the release") as raised:
        backend.publish(pulled, expected=started_from)
    assert raised.value.rule == "warehouse changed" and raised.value.file == url
    assert backend.stamp() == replaced_by
    assert (tmp_path / "warehouse" / CURRENT).read_text().strip() == replaced_by
    assert release_names(url) == sorted([started_from, replaced_by])     # no leftover folder
    con = backend.connect()
    assert count(con, "t") == 2 and "model_cards" not in con.list_tables()
    con.disconnect()

    published = backend.publish(pulled, expected=replaced_by)            # started from the current one
    assert backend.stamp() == published != replaced_by
    con = backend.connect()
    assert count(con, "t") == 1 and count(con, "model_cards") == 1
    con.disconnect()

    # the same through staged(), as training publishes: a run published while it worked
    with pytest.raises(ETLError, match="another publish replaced the release"):
        with staged(url, start_from_current=True) as con:
            con.execute("CREATE TABLE extra AS SELECT 1 AS n")
            backend.publish(tiny_build(tmp_path / "three.duckdb", 3))
    con = backend.connect()
    assert count(con, "t") == 3 and "extra" not in con.list_tables()
    con.disconnect()
    assert not any((tmp_path / "warehouse" / ".builds").glob("build-*"))


def test_a_release_is_on_disk_before_and_after_the_switch(backend, tmp_path, monkeypatch):
    """Files and the folders naming them fsynced before CURRENT names the release, the root
    folder after (a crash loses neither the release nor the switch)."""
    events: list[tuple[str, str]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(source, target) -> None:
        real_replace(source, target)
        events.append(("replace", os.path.realpath(target)))

    build = tiny_build(tmp_path / "tiny.duckdb", 2)
    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    release = backend.publish(build)
    monkeypatch.undo()

    root = Path(os.path.realpath(tmp_path / "warehouse"))
    folder = root / "releases" / release
    switch = events.index(("replace", str(root / CURRENT)))
    synced_before = [path for kind, path in events[:switch] if kind == "fsync"]
    for path in (folder / "t" / PART, folder / "t", folder, root / "releases"):
        assert str(path) in synced_before, path
    # the release folder after its manifest was renamed into it
    assert events.index(("fsync", str(folder))) > events.index(("replace", str(folder / MANIFEST)))
    assert ("fsync", str(root)) in events[switch + 1:]


def test_publishes_wait_for_each_other(url, backend, dashboard_data, tmp_path):
    """A publish takes the lock file of the folder (as another process's publish would hold it)."""
    (tmp_path / "warehouse").mkdir()
    with open(tmp_path / "warehouse" / ".publish.lock", "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        publisher = threading.Thread(target=backend.publish, args=(Path(dashboard_data["plain"]),))
        publisher.start()
        time.sleep(1.0)
        assert publisher.is_alive() and backend.stamp() is None
        assert not any((tmp_path / "warehouse" / "releases").iterdir())
    publisher.join(timeout=60)
    assert not publisher.is_alive() and backend.stamp() is not None


def test_types_round_trip(backend, dashboard_data, tmp_path):
    backend.publish(Path(dashboard_data["scored"]))
    pulled = tmp_path / "pulled.duckdb"
    backend.pull(pulled)
    assert columns(pulled) == columns(dashboard_data["scored"])
    for table in columns(pulled):
        assert rows(pulled, table) == rows(dashboard_data["scored"], table), table

    odd = tmp_path / "odd.duckdb"
    with duckdb.connect(str(odd)) as con:
        con.execute("""CREATE TABLE odd AS SELECT * FROM (VALUES
            (TIMESTAMP '2024-02-29 23:59:59.123456', TIMESTAMPTZ '2024-01-01 12:00:00+00', DATE '1999-12-31',
             true, 7::TINYINT, -3::SMALLINT, 2147483647, 9007199254740993::BIGINT, 1.5::FLOAT, 0.1::DOUBLE,
             12.345::DECIMAL(18, 3), 'Снизилась ✓', '\\x00\\xff'::BLOB, '{"a": [1, 2]}'::JSON),
            (NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, '', NULL, NULL)
        ) AS t(ts, tstz, day, flag, tiny, small, i, big, f, d, dec, s, blob, j)""")
        con.execute("CREATE TABLE empty (id BIGINT, name VARCHAR, seen_at TIMESTAMP)")
    backend.publish(odd)
    con = backend.connect()
    schema = {name: str(dtype) for name, dtype in con.table("odd").schema().items()}
    # Ibis's pyspark backend types TIMESTAMPTZ as naive too (its values in UTC, the session zone)
    assert schema == {"ts": "timestamp", "tstz": "timestamp", "day": "date", "flag": "boolean",
                      "tiny": "int8", "small": "int16", "i": "int32", "big": "int64", "f": "float32",
                      "d": "float64", "dec": "decimal(18, 3)", "s": "string", "blob": "binary", "j": "string"}
    con.disconnect()
    again = tmp_path / "odd-pulled.duckdb"
    backend.pull(again)
    assert columns(again) == columns(odd)
    assert rows(again, "odd") == rows(odd, "odd") and rows(again, "empty") == []


# --- the dashboard ------------------------------------------------------------------------


def callback_body(callbacks: list[dict], output: str, values: dict) -> dict:
    """The request Dash sends for the callback writing ``output`` when the first of ``values``
    changed (inputs not named are empty)."""
    found = next(c for c in callbacks if output in c["output"])

    def entry(item):
        if is_pattern(item["id"]):                 # a pattern-matching input: no such component yet
            return []
        return {"id": parse_id(item["id"]), "property": item["property"], "value": values.get(item["id"])}

    outputs = [{"id": parse_id(i), "property": p}
               for i, p in split_outputs(found["output"])]
    return {"output": found["output"], "outputs": outputs if len(outputs) > 1 else outputs[0],
            "inputs": [entry(i) for i in found["inputs"]], "state": [entry(s) for s in found["state"]],
            "changedPropIds": [f"{next(iter(values))}.value"]}


def test_the_dashboard_answers_on_spark_as_on_duckdb(dashboard_env, backend, url, monkeypatch):
    from dashboard.app import create_app

    backend.publish(Path(dashboard_env["scored"]))
    client = create_app().server.test_client()
    callbacks = server_callbacks(client)
    requests = [router_body(router(callbacks), "/", ""), router_body(router(callbacks), "/carts", ""),
                callback_body(callbacks, "ov-carts-kpis", {"ov-carts-segment": [0, 2], "ov-carts-details": "yes"}),
                callback_body(callbacks, "ov-cust-kpis", {"ov-cust-tier": ["premium"], "ov-cust-consent": "all"}),
                callback_body(callbacks, "carts-kpis", {"carts-segment": [1]})]
    answers = {}
    for warehouse in (dashboard_env["scored"], url):
        monkeypatch.setenv("WAREHOUSE_URL", warehouse)
        answers[warehouse] = []
        for body in requests:
            response = post_json(client, body)
            assert response.status_code == 200, (warehouse, body["output"])
            answers[warehouse].append(response.get_json())
    on_duckdb, on_spark = answers[dashboard_env["scored"]], answers[url]
    text = json.dumps(on_spark)
    assert "Cannot" not in text and "could not" not in text and "Sessions" in text
    for body, duck, spark in zip(requests, on_duckdb, on_spark):
        assert spark == duck, body["output"][:80]
