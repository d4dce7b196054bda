"""A PostgreSQL warehouse (``WAREHOUSE_URL=postgres://user:pass@host:port/db``).

Releases are schemas. :meth:`Postgres.publish` loads every table of a complete DuckDB build
into a new schema ``shopper_r_<hex>`` (bulk: DuckDB → Arrow batches → CSV → ``COPY FROM
STDIN``) and points ``shopper_meta.published`` at it, in one transaction: PostgreSQL's DDL is
transactional, so until the commit nobody sees the new schema, and a failure anywhere (a
table that cannot be stored, a lost connection, a killed session) rolls all of it back while
the previous release stays published, untouched. Readers never see a half build: a release
schema is never written again once published.

The stamp of a release is its schema name, read from the one-row pointer table; a reader
pins a release by setting ``search_path`` to that schema (``schema=`` of
``ibis.postgres.connect``), read-only.
"""
from __future__ import annotations

import io
import logging
import os
import re
import stat
import tempfile
import threading
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
from psycopg.adapt import Loader
from psycopg.conninfo import conninfo_to_dict

from etl.errors import ETLError

if TYPE_CHECKING:
    import duckdb
    import ibis

log = logging.getLogger(__name__)

META = "shopper_meta"
RELEASE_PREFIX = "shopper_r_"
RELEASE_NAME = re.compile(r"shopper_r_[0-9a-f]{16}")
# Any fixed 64-bit number: publishes of every process take it, so they run one after another.
PUBLISH_LOCK = 0x5359_4F50_5055_4231
# Old releases are dropped after each publish, but only beyond the newest KEEP_RELEASES and
# once RETIRE_AFTER has passed since a newer one replaced them. A dashboard request pins the
# release it started on (dashboard/release.py) and may still query it after a publish; a
# request lasts well under a second, a publish (a full load) seconds to minutes, so keeping
# two superseded releases for at least five minutes keeps every pinned one alive however
# quickly publishes follow each other. A DROP also waits at most DROP_LOCK_TIMEOUT for a
# query still reading the schema; one that times out is dropped by a later publish.
KEEP_RELEASES = 3
RETIRE_AFTER = "300 seconds"
DROP_LOCK_TIMEOUT = "2s"
COPY_BATCH_ROWS = 100_000
CONNECT_TIMEOUT = 10

# DuckDB column type -> PostgreSQL column type; only types that come back as the same DuckDB
# type through Ibis (pull), so a release read back is the build it was loaded from. Not
# DECIMAL: readers get PostgreSQL's numeric as Python numbers (see NumericAsNumber).
TYPES = {
    "BOOLEAN": "boolean", "SMALLINT": "smallint", "INTEGER": "integer", "BIGINT": "bigint",
    "FLOAT": "real", "DOUBLE": "double precision", "VARCHAR": "text", "DATE": "date",
    "TIMESTAMP": "timestamp", "TIMESTAMP WITH TIME ZONE": "timestamptz",
}


class Postgres:
    name = "postgres"

    def __init__(self, url: str) -> None:
        from etl.backends import redact   # the package imports this module lazily

        self.url = url
        self.shown = redact(url)
        try:
            self._params = {k: v for k, v in conninfo_to_dict(url).items() if v is not None}
        except Exception:  # noqa: BLE001 - libpq's parse error may quote the URL, password and all
            raise ETLError(self.shown, rule="warehouse URL", message="is not a valid PostgreSQL URL") from None
        self._password = str(self._params.get("password") or "")
        self._idle: list[psycopg.Connection] = []     # stamp connections nobody uses now
        self._lock = threading.Lock()
        self._closed = False

    # --- reading ------------------------------------------------------------------------

    def stamp(self) -> str | None:
        """The published schema: one row, read on an idle connection of this instance's small
        pool (as many as threads ask at once; a thread per request must not mean a connection
        per request). A connection the server dropped (a restart, an idle timeout) is
        replaced once."""
        try:
            return self._read_pointer()
        except psycopg.OperationalError:
            self._discard_idle()            # after a server restart every idle one is dead
        try:
            return self._read_pointer()
        except psycopg.OperationalError as exc:
            raise ETLError(self.shown, rule="warehouse reachable",
                           message=f"cannot read the published release: {self._say(exc)}") from None

    def _read_pointer(self) -> str | None:
        with self._lock:
            con = self._idle.pop() if self._idle else None
        if con is None or con.closed or con.broken:
            con = self._open("shopper-stamp", autocommit=True)
        try:
            row = con.execute(f"SELECT schema_name FROM {META}.published").fetchone()
        except psycopg.errors.UndefinedTable:
            row = None                      # nothing was ever published here
        except BaseException:
            con.close()
            raise
        with self._lock:
            if self._closed:
                con.close()
            else:
                self._idle.append(con)
        return row[0] if row else None

    def connect(self, stamp: str | None = None) -> ibis.BaseBackend:
        import ibis

        stamp = stamp or self.stamp()
        if stamp is None:
            raise ETLError(self.shown, rule="warehouse present",
                           message="has no published release; run `python -m etl run` first")
        if not RELEASE_NAME.fullmatch(stamp):
            raise ETLError(self.shown, rule="warehouse release", message=f"{stamp!r} is not a release name")
        params = self._settings("shopper-read")
        params["options"] = (params.get("options", "") + " -c default_transaction_read_only=on").strip()
        try:
            con = ibis.postgres.connect(
                host=params.pop("host", None), port=int(params.pop("port", 5432)), user=params.pop("user", None),
                password=params.pop("password", None), database=params.pop("dbname", None), schema=stamp,
                **params)
        except psycopg.Error as exc:
            raise ETLError(self.shown, rule="warehouse reachable", message=f"cannot connect: {self._say(exc)}") from None
        try:
            con.con.adapters.register_loader("numeric", NumericAsNumber)
            found = con.con.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (stamp,)).fetchone()
        except psycopg.Error as exc:
            con.disconnect()
            raise ETLError(self.shown, rule="warehouse reachable", message=f"cannot connect: {self._say(exc)}") from None
        if found is None:
            con.disconnect()
            raise ETLError(self.shown, rule="warehouse release",
                           message=f"release {stamp} is gone (replaced by newer publishes); reload")
        return con

    def pull(self, dest: Path) -> None:
        """The published release into the new DuckDB file ``dest``, each table in the order of
        all its columns (the build's own row order is not kept by PostgreSQL), so training on
        a pulled copy sees the rows in the same order every time."""
        import duckdb

        con = self.connect()
        try:
            out = duckdb.connect(str(dest))
        except BaseException:
            con.disconnect()
            raise
        try:
            for name in sorted(con.list_tables()):
                table = con.table(name)
                reader = table.order_by(list(table.columns)).to_pyarrow_batches(chunk_size=COPY_BATCH_ROWS)
                out.register("_schema", reader.schema.empty_table())
                out.execute(f'CREATE TABLE "{name}" AS SELECT * FROM _schema')
                out.unregister("_schema")
                for batch in reader:
                    out.register("_batch", batch)
                    out.execute(f'INSERT INTO "{name}" SELECT * FROM _batch')
                    out.unregister("_batch")
            out.execute("CHECKPOINT")
        except psycopg.Error as exc:
            raise ETLError(self.shown, rule="warehouse pull", message=f"reading the release failed: {self._say(exc)}") from None
        finally:
            out.close()
            con.disconnect()

    # --- publishing ---------------------------------------------------------------------

    def publish(self, build: Path, expected: str | None = None) -> str:
        """Load ``build`` into a new release schema and point ``shopper_meta.published`` at
        it, in one transaction; then drop the releases no reader can still hold. With
        ``expected`` (the release the build was pulled from), nothing is published when
        another publish replaced it meanwhile."""
        import duckdb

        schema = f"{RELEASE_PREFIX}{uuid.uuid4().hex[:16]}"
        source = duckdb.connect(str(build), read_only=True)
        try:
            with self._open("shopper-publish") as con:
                with con.transaction():
                    # one publish at a time: the loser waits here, before loading anything
                    con.execute("SELECT pg_advisory_xact_lock(%s)", (PUBLISH_LOCK,))
                    _create_meta(con)
                    if expected is not None:
                        row = con.execute(f"SELECT schema_name FROM {META}.published").fetchone()
                        if (row[0] if row else None) != expected:
                            raise ETLError(self.shown, rule="warehouse changed",
                                           message="another publish replaced the release this run started "
                                                   "from; nothing was published, run it again")
                    con.execute(f'CREATE SCHEMA "{schema}"')
                    for table in _tables(source):
                        self._load(source, con, schema, table)
                    version = _data_version(source)
                    con.execute(f"""INSERT INTO {META}.published (schema_name, published_at, data_version)
                                    VALUES (%s, now(), %s)
                                    ON CONFLICT (id) DO UPDATE SET schema_name = excluded.schema_name,
                                        published_at = excluded.published_at, data_version = excluded.data_version""",
                                (schema, version))
                    con.execute(f"INSERT INTO {META}.releases (schema_name, data_version) VALUES (%s, %s)",
                                (schema, version))
                try:
                    self._drop_retired(con)
                except psycopg.Error as exc:   # published already: only the clean-up failed
                    log.warning("old releases of %s not dropped (a later publish will): %s", self.shown,
                                self._say(exc))
        except psycopg.Error as exc:
            raise ETLError(self.shown, rule="warehouse publish",
                           message=f"publish failed, the published release is unchanged: {self._say(exc)}") from None
        finally:
            source.close()
        log.info("published %s to %s", schema, self.shown)
        return schema

    def _load(self, source: duckdb.DuckDBPyConnection, con: psycopg.Connection, schema: str, table: str) -> None:
        """Create ``table`` with the mapped types and COPY it in, batch by batch, as CSV: a
        NULL is an unquoted empty field and every string is quoted (pyarrow's ``needed``
        style), so NULL and '' stay apart."""
        import pyarrow.csv as pcsv

        columns = source.execute("SELECT column_name, data_type FROM information_schema.columns "
                                 "WHERE table_catalog = current_database() AND table_schema = 'main' "
                                 "AND table_name = ? ORDER BY ordinal_position", [table]).fetchall()
        defs = ", ".join(f'"{c}" {self._pg_type(table, c, t)}' for c, t in columns)
        con.execute(f'CREATE TABLE "{schema}"."{table}" ({defs})')
        names = ", ".join(f'"{c}"' for c, _ in columns)
        reader = source.execute(f'SELECT {names} FROM "{table}"').to_arrow_reader(COPY_BATCH_ROWS)
        options = pcsv.WriteOptions(include_header=False, quoting_style="needed")
        with con.cursor() as cursor, cursor.copy(
                f'COPY "{schema}"."{table}" ({names}) FROM STDIN (FORMAT csv)') as copy:
            for batch in reader:
                buffer = io.BytesIO()
                pcsv.write_csv(batch, buffer, options)
                copy.write(buffer.getbuffer())
        # statistics before the first reader: without them the planner guesses, and plans (and
        # so the order doubles are summed in) change when autovacuum catches up later
        con.execute(f'ANALYZE "{schema}"."{table}"')

    def _pg_type(self, table: str, column: str, duck: str) -> str:
        found = TYPES.get(duck)
        if found is None:
            raise ETLError(self.shown, rule="warehouse types", column=column,
                           message=f"table {table!r} has type {duck}, which the PostgreSQL warehouse does not store")
        return found

    def _drop_retired(self, con: psycopg.Connection) -> None:
        """Drop releases beyond the newest KEEP_RELEASES that were replaced RETIRE_AFTER ago
        (see the constants); a drop that cannot get its lock in time is left for later."""
        with con.transaction():
            retired = [r[0] for r in con.execute(f"""
                SELECT schema_name FROM (
                    SELECT schema_name, row_number() OVER (ORDER BY seq DESC) AS newest,
                           lag(published_at) OVER (ORDER BY seq DESC) AS replaced_at
                    FROM {META}.releases) r
                WHERE newest > %s AND replaced_at < now() - interval '{RETIRE_AFTER}'""",
                (KEEP_RELEASES,)).fetchall()]
        for schema in retired:
            try:
                with con.transaction():
                    con.execute(f"SET LOCAL lock_timeout = '{DROP_LOCK_TIMEOUT}'")
                    con.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
                    con.execute(f"DELETE FROM {META}.releases WHERE schema_name = %s", (schema,))
            except psycopg.errors.LockNotAvailable:
                log.info("release %s is still being read; a later publish drops it", schema)

    # --- local files and connections --------------------------------------------------------

    def build_path(self) -> Path:
        # a private folder per user: builds hold the whole warehouse
        folder = Path(tempfile.gettempdir()) / f"shopper-builds-{os.getuid()}"
        folder.mkdir(mode=0o700, exist_ok=True)
        # a predictable name in a shared /tmp: refuse a folder someone else made (or a link)
        found = os.lstat(folder)
        if not stat.S_ISDIR(found.st_mode) or found.st_uid != os.getuid() or found.st_mode & 0o077:
            raise ETLError(str(folder), rule="build folder",
                           message="is not a private folder of this user (owner, mode 700, not a link)")
        return folder / f"build-{uuid.uuid4().hex[:12]}.duckdb"

    def close(self) -> None:
        with self._lock:
            self._closed = True
        self._discard_idle()

    def _discard_idle(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for con in idle:
            con.close()

    def _open(self, purpose: str, autocommit: bool = False) -> psycopg.Connection:
        try:
            return psycopg.connect(**self._settings(purpose), autocommit=autocommit)
        except psycopg.Error as exc:
            raise ETLError(self.shown, rule="warehouse reachable",
                           message=f"cannot connect: {self._say(exc)}") from None

    def _settings(self, purpose: str) -> dict:
        """The URL's connection parameters, with a timeout and a name that pg_stat_activity
        shows (an operator sees which sessions are the dashboard's and which a publish)."""
        return {"connect_timeout": CONNECT_TIMEOUT, **self._params, "application_name": purpose}

    def _say(self, exc: Exception) -> str:
        """The first line of a driver error, never with the password in it."""
        text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return text.replace(self._password, "***") if self._password else text


class NumericAsNumber(Loader):
    """PostgreSQL computes avg() of integers, and sum() of bigints, as numeric, which the
    driver hands over as Decimal; Ibis declared float64 / int64 for them, and pyarrow does not
    turn a Decimal into a double. So numeric text becomes an int when it is whole (exact) and a
    float otherwise, and the dashboard's Ibis queries run unchanged on PostgreSQL."""

    def load(self, data) -> int | float:
        text = bytes(data)
        return int(text) if text.lstrip(b"-").isdigit() else float(text)


def _create_meta(con: psycopg.Connection) -> None:
    """The pointer (one row) and the list of releases, created by the first publish."""
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {META}")
    con.execute(f"""CREATE TABLE IF NOT EXISTS {META}.published (
        id boolean PRIMARY KEY DEFAULT true CHECK (id), schema_name text NOT NULL,
        published_at timestamptz NOT NULL, data_version text)""")
    con.execute(f"""CREATE TABLE IF NOT EXISTS {META}.releases (
        seq bigserial PRIMARY KEY, schema_name text NOT NULL UNIQUE,
        published_at timestamptz NOT NULL DEFAULT now(), data_version text)""")


def _tables(source: duckdb.DuckDBPyConnection) -> list[str]:
    return [r[0] for r in source.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_catalog = current_database() "
        "AND table_schema = 'main' AND table_type = 'BASE TABLE' ORDER BY table_name").fetchall()]


def _data_version(source: duckdb.DuckDBPyConnection) -> str | None:
    try:
        row = source.execute("SELECT data_version FROM etl_runs ORDER BY finished_at DESC LIMIT 1").fetchone()
    except Exception:  # noqa: BLE001 - a build without ETL runs (tests, hand-made files)
        return None
    return row[0] if row else None
