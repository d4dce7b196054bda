"""The PostgreSQL warehouse (etl/backends/postgres.py) against a real server started for the
session (localservers/postgres.py): the ETL, training and the dashboard on it; publishes that
fail anywhere leave the published release as it was; readers pinned to a release keep it;
types, NULL and '' come back exactly; no password in any message."""
from __future__ import annotations

import io
import logging
import shutil
import threading
import time
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import duckdb
import psycopg
import pytest

from etl.backends import backend
from etl.backends import postgres as pg_backend
from etl.cli import main
from etl.errors import ETLError
from etl.pipeline import run_pipeline
from localservers import free_port
from localservers.postgres import served
from tests.conftest import AUTH_VARIABLES

pytestmark = pytest.mark.servers


@pytest.fixture(scope="session")
def postgres():
    yield from served(pytest)


@pytest.fixture
def pg_url(postgres) -> str:
    """A new empty database (with its own role and password) for one test."""
    return postgres.new_database()


def password(url: str) -> str:
    return url.split("://", 1)[1].split("@", 1)[0].split(":", 1)[1]


def cli(*argv: str) -> tuple[int, str]:
    """``python -m etl …`` in-process; exit code and everything it printed or logged."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        with redirect_stdout(out), redirect_stderr(out):
            code = main(list(argv))
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    return code, out.getvalue()


def fingerprint(url: str) -> dict:
    """What is published, as PostgreSQL sees it: the pointer row, every shopper schema, and
    per table of the release its row count and an md5 over its rows as text (NULL and ''
    print differently in a row's text)."""
    with psycopg.connect(url) as con:
        pointer = con.execute("SELECT schema_name, published_at, data_version FROM shopper_meta.published").fetchall()
        schemas = sorted(r[0] for r in con.execute("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'shopper%'"))
        stamp = pointer[0][0]
        names = [r[0] for r in con.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                                           (stamp,))]
        tables = {name: con.execute(f"""SELECT count(*), md5(coalesce(string_agg(x::text, E'\\n' ORDER BY x::text), ''))
                                        FROM "{stamp}"."{name}" x""").fetchone() for name in names}
    return {"pointer": pointer, "schemas": schemas, "tables": tables}


def sessions(con) -> int:
    return int(con.table("sessions").count().execute())


@pytest.fixture(scope="module")
def builds(tmp_path_factory, generated_raw) -> dict[str, Path]:
    """Two complete DuckDB builds to publish: ``full`` from the ETL, ``smaller`` without
    customer type 1 (publish never consumes a build)."""
    folder = tmp_path_factory.mktemp("builds")
    full = folder / "full.duckdb"
    run_pipeline(generated_raw, str(full))
    smaller = folder / "smaller.duckdb"
    shutil.copyfile(full, smaller)
    with duckdb.connect(str(smaller)) as con:
        con.execute("DELETE FROM sessions WHERE customer_segment = 1")
    return {"full": full, "smaller": smaller}


@pytest.fixture(scope="module")
def trained(postgres, generated_raw, tmp_path_factory) -> dict:
    """``python -m etl run`` then ``python -m etl train --fast`` with a postgres:// warehouse."""
    url = postgres.new_database()
    models = tmp_path_factory.mktemp("pg-models")
    run = cli("run", "--raw", str(generated_raw), "--warehouse", url)
    train = cli("train", "--fast", "--warehouse", url, "--models", str(models))
    return {"url": url, "models": models, "run": run, "train": train}


# --- the ETL and training on PostgreSQL -----------------------------------------------------


def test_run_and_train_publish_to_postgres(trained, builds):
    (run_code, run_text), (train_code, train_text) = trained["run"], trained["train"]
    assert run_code == 0, run_text
    assert train_code == 0, train_text
    secret = password(trained["url"])
    assert secret not in run_text and secret not in train_text
    found = backend(trained["url"])
    try:
        stamp = found.stamp()
        assert stamp and stamp.startswith("shopper_r_")
        con = found.connect()
        try:
            tables = set(con.list_tables())
            assert {"sessions", "customers", "model_cards", "session_scores", "customer_scores", "segments"} <= tables
            # the same rows as the ETL's own DuckDB build of the same raw files
            with duckdb.connect(str(builds["full"]), read_only=True) as local:
                for name in ("sessions", "customers", "rejected_rows", "source_files"):
                    assert con.table(name).count().execute() == local.execute(f"SELECT count(*) FROM {name}").fetchone()[0]
                assert sessions(con) == int(con.table("session_scores").count().execute())
        finally:
            con.disconnect()
    finally:
        found.close()
    with psycopg.connect(trained["url"]) as check:
        (schema, version), = check.execute("SELECT schema_name, data_version FROM shopper_meta.published").fetchall()
        latest, = check.execute(f'SELECT data_version FROM "{schema}".etl_runs').fetchone()
    assert schema == stamp and version == latest


def test_types_null_and_empty_strings_round_trip(pg_url, tmp_path):
    found = backend(pg_url)
    assert found.stamp() is None                       # no pointer table yet
    with pytest.raises(ETLError) as missing:
        found.connect()
    assert "run `python -m etl run`" in str(missing.value) and password(pg_url) not in str(missing.value)
    build = tmp_path / "kinds.duckdb"
    with duckdb.connect(str(build)) as con:
        con.execute("""CREATE TABLE kinds (id INTEGER, b BOOLEAN, si SMALLINT, i INTEGER, bi BIGINT, f FLOAT,
                       d DOUBLE, s VARCHAR, dt DATE, ts TIMESTAMP, tz TIMESTAMPTZ)""")
        con.execute("""INSERT INTO kinds VALUES
            (1, true, -32768, -2147483648, -9223372036854775808, 1.5, 0.1, 'plain', DATE '2024-02-29',
             TIMESTAMP '2024-02-29 12:34:56.789012', TIMESTAMPTZ '2024-02-29 12:34:56.789012+00'),
            (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
            (3, false, 32767, 2147483647, 9223372036854775807, -0.25, 1e308, '', DATE '0001-01-01',
             TIMESTAMP '1970-01-01 00:00:00', TIMESTAMPTZ '1999-12-31 23:00:00-05'),
            (4, true, 0, 0, 0, 0, 'nan', 'a,b "quoted" ; tab	and
            a line break' || chr(13) || chr(10) || 'crlf', NULL, NULL, NULL),
            (5, NULL, NULL, NULL, NULL, NULL, 'inf', 'NULL', NULL, NULL, NULL),
            (6, NULL, NULL, NULL, NULL, NULL, '-inf', '\\N', NULL, NULL, NULL),
            (7, NULL, NULL, NULL, NULL, NULL, 5e-324, ' ünïcödé ✓ 日本 ', NULL, NULL, NULL),
            (8, NULL, NULL, NULL, NULL, NULL, NULL, '""', NULL, NULL, NULL)""")
        con.execute('CREATE TABLE "empty" ("Mixed Case" VARCHAR, n BIGINT)')
    stamp = found.publish(build)
    assert found.stamp() == stamp

    with psycopg.connect(pg_url) as check:
        assert check.execute(f'SELECT count(*) FILTER (WHERE s IS NULL), count(*) FILTER (WHERE s = \'\') '
                             f'FROM "{stamp}".kinds').fetchone() == (1, 1)
    reader = found.connect(stamp)
    try:
        assert sorted(reader.list_tables()) == ["empty", "kinds"]
        through_ibis = reader.table("kinds").order_by("id").to_pyarrow().column("s").to_pylist()
    finally:
        reader.disconnect()
    with duckdb.connect(str(build), read_only=True) as con:
        assert through_ibis == [r[0] for r in con.execute("SELECT s FROM kinds ORDER BY id").fetchall()]

    pulled = tmp_path / "pulled.duckdb"
    found.pull(pulled)
    found.close()
    columns = ("SELECT table_name, column_name, data_type FROM information_schema.columns "
               "WHERE table_schema = 'main' ORDER BY ALL")
    with duckdb.connect(str(build), read_only=True) as a, duckdb.connect(str(pulled), read_only=True) as b:
        assert a.execute(columns).fetchall() == b.execute(columns).fetchall()
        for table in ("kinds", "empty"):
            # as text (DuckDB's shortest exact form of a double; NULL stays NULL, '' stays '')
            mine, theirs = (c.execute(f'SELECT COLUMNS(*)::VARCHAR FROM "{table}" ORDER BY ALL').fetchall()
                            for c in (a, b))
            assert mine == theirs and (table == "empty" or len(mine) == 8), table


# --- failures leave the published release alone -------------------------------------------------


def test_a_failed_etl_run_leaves_the_release_untouched(pg_url, raw_copy):
    code, text = cli("run", "--raw", str(raw_copy), "--warehouse", pg_url)
    assert code == 0, text
    before = fingerprint(pg_url)
    (raw_copy / "customers" / "money.csv").unlink()
    code, text = cli("-q", "run", "--raw", str(raw_copy), "--warehouse", pg_url)
    assert code == 2 and "money.csv" in text and "Traceback" not in text
    assert fingerprint(pg_url) == before


def test_a_publish_that_fails_half_way_changes_nothing(pg_url, builds, tmp_path):
    found = backend(pg_url)
    found.publish(builds["full"])
    before = fingerprint(pg_url)

    # a table that cannot be stored, loaded after all the others ("zz" sorts last)
    broken = tmp_path / "broken.duckdb"
    shutil.copyfile(builds["smaller"], broken)
    with duckdb.connect(str(broken)) as con:
        con.execute("CREATE TABLE zz_lists AS SELECT [1, 2] AS numbers")
    with pytest.raises(ETLError) as failed:
        found.publish(broken)
    assert "zz_lists" in str(failed.value) and password(pg_url) not in str(failed.value)
    assert fingerprint(pg_url) == before

    # the publishing session killed after its whole load, just before the commit
    with psycopg.connect(pg_url) as holder, psycopg.connect(pg_url, autocommit=True) as watcher:
        holder.execute("SELECT * FROM shopper_meta.published FOR UPDATE")   # the pointer update waits
        errors: list[Exception] = []
        publisher = threading.Thread(target=lambda: _publish_into(found, builds["smaller"], errors))
        publisher.start()
        pid = wait_for_publish(watcher, "Lock")
        watcher.execute("SELECT pg_terminate_backend(%s)", (pid,))
        publisher.join(30)
        holder.rollback()
    assert len(errors) == 1 and isinstance(errors[0], ETLError)
    assert "unchanged" in str(errors[0]) and password(pg_url) not in str(errors[0])
    assert fingerprint(pg_url) == before
    found.close()


def _publish_into(found, build: Path, out: list) -> None:
    try:
        out.append(found.publish(build))
    except Exception as exc:  # noqa: BLE001 - the test looks at what happened
        out.append(exc)


def wait_for_publish(watcher, wait_type: str, exclude: set[int] = frozenset(), timeout: float = 30) -> int:
    """The pid of a publishing session that waits on a lock of ``wait_type`` ('Lock': a row
    lock; 'advisory': the publish lock)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for pid, kind, event in watcher.execute(
                "SELECT pid, wait_event_type, wait_event FROM pg_stat_activity "
                "WHERE application_name = 'shopper-publish' AND datname = current_database()").fetchall():
            if pid not in exclude and kind == "Lock" and (wait_type == "Lock") == (event != "advisory"):
                return pid
        time.sleep(0.05)
    raise AssertionError(f"no publish waited on {wait_type} within {timeout} s")


def test_readers_never_see_half_a_publish_and_keep_their_pinned_release(pg_url, builds, monkeypatch):
    from dashboard.release import Releases

    monkeypatch.setenv("WAREHOUSE_URL", pg_url)
    found, holder = backend(pg_url), Releases()
    first = found.publish(builds["full"])
    pinned = holder.current(pin=True)
    full, before = sessions(pinned.connection()), fingerprint(pg_url)

    with psycopg.connect(pg_url) as blocker, psycopg.connect(pg_url, autocommit=True) as watcher:
        blocker.execute("SELECT * FROM shopper_meta.published FOR UPDATE")
        results_a, results_b = [], []
        a = threading.Thread(target=lambda: _publish_into(found, builds["smaller"], results_a))
        a.start()
        pid_a = wait_for_publish(watcher, "Lock")           # A has loaded everything, not committed
        b = threading.Thread(target=lambda: _publish_into(backend(pg_url), builds["smaller"], results_b))
        b.start()
        wait_for_publish(watcher, "advisory", exclude={pid_a})   # B waits for A before loading anything
        # meanwhile readers see only the first release, and no trace of the two loads
        assert found.stamp() == first and fingerprint(pg_url) == before
        fresh = found.connect()
        assert sessions(fresh) == full
        fresh.disconnect()
        blocker.rollback()
        a.join(60)
        b.join(60)
    (second,), (third,) = results_a, results_b
    assert isinstance(second, str) and isinstance(third, str) and found.stamp() == third

    # the pinned release reads the first publish from any thread; the next request the last
    seen = {}
    worker = threading.Thread(target=lambda: seen.update(n=sessions(pinned.connection())))
    worker.start()
    worker.join()
    assert seen["n"] == full
    newer = holder.current(pin=True)
    assert newer is not pinned and newer.version.stamp == third and sessions(newer.connection()) < full
    for release in (pinned, newer):
        holder.unpin(release)
    with psycopg.connect(pg_url) as check:
        history = [r[0] for r in check.execute("SELECT schema_name FROM shopper_meta.releases ORDER BY seq")]
    assert history == [first, second, third]
    found.close()


def test_old_releases_are_dropped_only_when_no_reader_can_hold_them(pg_url, builds, monkeypatch):
    found = backend(pg_url)
    recent = [found.publish(builds["smaller"]) for _ in range(4)]
    assert set(recent) <= set(fingerprint(pg_url)["schemas"])      # replaced moments ago: all kept
    monkeypatch.setattr(pg_backend, "RETIRE_AFTER", "0 seconds")
    fifth = found.publish(builds["smaller"])
    assert [s for s in fingerprint(pg_url)["schemas"] if s.startswith("shopper_r_")] == sorted(recent[2:] + [fifth])
    with pytest.raises(ETLError, match="gone"):
        found.connect(recent[0])
    # a query still reading the oldest kept release holds its drop back; a later publish drops it
    with psycopg.connect(pg_url) as reader:
        reader.execute(f'SELECT count(*) FROM "{recent[2]}".sessions')
        sixth = found.publish(builds["smaller"])
        assert recent[2] in fingerprint(pg_url)["schemas"] and found.stamp() == sixth
    seventh = found.publish(builds["smaller"])
    assert [s for s in fingerprint(pg_url)["schemas"] if s.startswith("shopper_r_")] == sorted([fifth, sixth, seventh])
    # the stamp connection is replaced after the server dropped it
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'shopper-stamp'")
    assert found.stamp() == seventh
    # a thread per request (Flask's development server) reuses the idle connection
    for _ in range(20):
        worker = threading.Thread(target=found.stamp)
        worker.start()
        worker.join()
    with psycopg.connect(pg_url, autocommit=True) as admin:
        assert admin.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'shopper-stamp' "
                             "AND datname = current_database()").fetchone() == (1,)
    found.close()


# --- the dashboard on PostgreSQL --------------------------------------------------------------


@pytest.fixture
def pg_dashboard(trained, monkeypatch, tmp_path):
    monkeypatch.setenv("WAREHOUSE_URL", trained["url"])
    monkeypatch.setenv("MODELS_DIR", str(trained["models"]))
    monkeypatch.setenv("CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("RAW_DIR", str(tmp_path / "no-raw"))
    for name in ("URL_PREFIX", "FRAME_ANCESTORS", "CACHE_REDIS_URL", *AUTH_VARIABLES):
        monkeypatch.delenv(name, raising=False)
    from dashboard.app import create_app

    return create_app()


def test_the_dashboard_answers_on_postgres(pg_dashboard, trained, tmp_path):
    from benchmarks import references
    from dashboard.cart_cube import cart_bins
    from dashboard.pages import carts, customers
    from tests.test_dashboard_callbacks import layouts, text_of
    from tests.test_page_callbacks import page_inputs, run_callback

    client = pg_dashboard.server.test_client()
    for path in ("/", "/carts", "/customers", "/segments", "/model", "/data-quality"):
        assert client.get(path).status_code == 200, path
    with pg_dashboard.server.app_context():
        for path, layout in layouts().items():
            text = text_of(layout())
            assert "could not be drawn" not in text and "Not available yet" not in text, path
        click = {"points": [{"customdata": [1, 10, 20]}]}
        out = run_callback(carts.update, "carts-by-segment.clickData", **page_inputs(carts, **{"by-segment": click}))
        assert out["segment"] == [1] and out["state"] == "segment=1"
        out = run_callback(customers.update, "cust-tier.value", **page_inputs(customers, tier=["premium"]))
        assert out["state"] == "tier=premium"
        # the carts aggregates the dashboard computes on PostgreSQL = hand-written SQL on a DuckDB copy
        pulled = tmp_path / "pulled.duckdb"
        backend(trained["url"]).pull(pulled)
        edges = {column: bins.edges for column, bins in cart_bins().items()}
        with duckdb.connect(str(pulled), read_only=True) as con:
            for state in ("", "segment=1", "segment=0,2&details=yes&items_added=1-3"):
                assert references.dashboard_aggregates(state) == references.sql_aggregates(
                    con, references.Spec.from_query(state), edges), state


def test_an_unreachable_server_is_a_message_not_a_traceback(monkeypatch, tmp_path, generated_raw):
    secret = "s3cret-never-shown"
    url = f"postgres://shopper:{secret}@127.0.0.1:{free_port()}/shopper"
    monkeypatch.setenv("WAREHOUSE_URL", url)
    monkeypatch.setenv("CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("STATE_DIR", str(tmp_path / "state"))
    for name in ("URL_PREFIX", "CACHE_REDIS_URL", *AUTH_VARIABLES):
        monkeypatch.delenv(name, raising=False)
    from dashboard.app import create_app
    from tests.test_dashboard_callbacks import layouts, text_of

    app = create_app()
    response = app.server.test_client().get("/carts")
    assert response.status_code == 200 and secret not in response.get_data(as_text=True)
    with app.server.app_context():
        text = text_of(layouts()["/carts"]())
    assert "Cannot reach the warehouse postgres://shopper:***@127.0.0.1" in text and "python -m etl run" in text
    assert secret not in text and "Traceback" not in text
    for argv in (("run", "--raw", str(generated_raw)), ("train", "--fast", "--models", str(tmp_path / "m"))):
        code, said = cli("-q", *argv, "--warehouse", url)
        assert code == 2 and said.splitlines()[-1].startswith("error: ") and "Traceback" not in said, said
        assert "postgres://shopper:***@127.0.0.1" in said and secret not in said
