"""An Apache Spark warehouse: ``WAREHOUSE_URL=pyspark:///abs/path/to/warehouse``.

The folder holds immutable releases and a pointer to the published one::

    CURRENT                              the published release id (the stamp), os.replace'd
    releases/<id>/<table>/part-0.parquet one folder per table, as Spark reads tables
    releases/<id>/_release.json          written last: the tables and their DuckDB column types
    .publish.lock                        fcntl lock: one publish at a time, across processes
    .builds/  .spark/                    DuckDB build files; the JVM's temporary files and logs

DuckDB writes the Parquet files (the build is a DuckDB file, and its COPY is fast); Spark
reads them for training and the dashboard through Ibis's pyspark backend. A release is
complete and fsynced (files and folders) before ``CURRENT`` names it: readers see the old
release or the new one, never half, and a crash right after a publish loses neither.

Spark runs in local mode (``local[2]``, two cores) bound to 127.0.0.1 with its web UI off, so a
dashboard host opens no port to the network, unless ``SPARK_MASTER`` names a cluster: its
executors must see this folder at the same path (a shared filesystem) and reach the driver
(``spark.driver.host`` in Spark's ``spark-defaults.conf``). ``SPARK_DRIVER_MEMORY`` (default
``1g``) sizes the JVM. Nothing is downloaded: the jars come with the ``pyspark`` package.

A process has one SparkContext (one JVM, :mod:`etl.backends.spark_context`): each release read
gets its own ``SparkSession.newSession()`` on it (separate temporary views, so an old release
pinned by a request and the new one coexist), which every thread reading that release shares.
"""
from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from ibis.backends.pyspark import Backend as IbisPySpark

from etl.backends import redact, spark_context
from etl.backends.spark_context import sharing
from etl.durability import fsync_path
from etl.errors import ETLError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

CURRENT = "CURRENT"
MANIFEST = "_release.json"      # Spark skips names starting with "_" when it lists a folder
PART = "part-0.parquet"
# Old releases are removed after each publish, but only beyond the newest KEEP_RELEASES and
# once RETIRE_AFTER seconds have passed since a newer one replaced them (as the PostgreSQL
# warehouse does). A dashboard request, on this host or another, pins the release it started
# on (dashboard/release.py) and may still read its Parquet files after a publish; a request
# lasts well under a second, a publish seconds to minutes, so keeping two superseded releases
# for at least five minutes keeps every pinned one readable however quickly publishes follow
# each other. A release was replaced when the next one's manifest was written (its mtime),
# just before CURRENT switched to it.
KEEP_RELEASES = 3
RETIRE_AFTER = 300.0
RELEASE_ID = re.compile(r"[0-9]{8}T[0-9]{12}Z-[0-9a-f]{8}")
TABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# DuckDB types Spark's Parquet reader does not know: written as text, cast back by a pull
AS_TEXT = ("JSON", "UUID")


class ReleaseConnection(IbisPySpark):
    """Ibis's pyspark backend on one release's session. ``disconnect`` lets go of the release
    (its views go when the last connection to it closes), never of the SparkContext: Ibis's
    own ``disconnect`` stops the context, which every other release of the process shares."""

    _let_go = None

    def disconnect(self) -> None:
        let_go, self._let_go = self._let_go, None
        if let_go is not None:
            let_go()


class _Open:
    """One release being read: its session, a temporary view per table, its open connections."""

    def __init__(self, session: SparkSession, tables: dict) -> None:
        self.session, self.tables, self.connections = session, tables, 0


class Spark:
    name = "pyspark"

    def __init__(self, url: str) -> None:
        self.url = url
        self.root = Path(url[len("pyspark://"):]) if url.startswith("pyspark://") else Path(url)
        if not self.root.is_absolute():
            raise ETLError(url, rule="warehouse backend",
                           message="a Spark warehouse URL needs an absolute folder: pyspark:///abs/path")
        self._lock = threading.Lock()
        self._session: SparkSession | None = None
        self._open: dict[str, _Open] = {}

    def stamp(self) -> str | None:
        try:
            text = (self.root / CURRENT).read_text(encoding="ascii").strip()
        except FileNotFoundError:
            return None
        if not RELEASE_ID.fullmatch(text):
            raise ETLError(str(self.root / CURRENT), rule="warehouse release",
                           message="does not name a release; publish again with `python -m etl run`")
        return text

    def connect(self, stamp: str | None = None) -> IbisPySpark:
        """A connection to release ``stamp``; connections to one release share its session."""
        import ibis

        ibis.pyspark    # loading the backend registers ibis.options.pyspark, which its compiler reads
        stamp, found = self._hold(stamp)
        try:
            con = ReleaseConnection().connect(found.session)
        except BaseException:
            self._closed(stamp, found)
            raise
        sharing(found.session).join(con)
        con._let_go = lambda: (self._closed(stamp, found), spark_context.leave(found.session, con))
        return con

    def pull(self, dest: Path) -> None:
        """The published release into a new DuckDB file with the build's column types, each
        table's rows ordered by all its columns (the key first in every contract table). Spark
        writes what it reads as Parquet into a scratch folder that DuckDB loads and sorts: memory
        stays bounded (collecting into the driver, ``toArrow``, ran a 1 GB JVM out of heap at 5 M
        sessions), and a cluster's executors write in parallel."""
        import duckdb

        stamp, found = self._hold(None)
        scratch = self.root / ".builds" / f"pull-{uuid.uuid4().hex[:8]}"
        try:
            out = duckdb.connect(str(dest))
            try:
                for table, columns in found.tables.items():
                    # table names are plain identifiers (checked when published)
                    found.session.table(f"`{table}`").write.parquet(str(scratch / table))
                    written = sorted(str(f) for f in (scratch / table).glob("*.parquet"))
                    out.read_parquet(written).to_view("_incoming")
                    select = ", ".join(f"CAST({_dq(n)} AS {t}) AS {_dq(n)}" for n, t in columns)
                    out.execute(f"CREATE TABLE {_dq(table)} AS SELECT {select} FROM _incoming ORDER BY ALL")
                    out.execute("DROP VIEW _incoming")
                out.execute("CHECKPOINT")
            finally:
                out.close()
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
            self._closed(stamp, found)

    def publish(self, build: Path, expected: str | None = None) -> str:
        """Export ``build`` as a new release folder and switch ``CURRENT`` to it, under the
        publish lock; then remove the releases no reader can still hold. With ``expected``
        (the release the build was pulled from), nothing is published when another publish
        replaced it meanwhile. A failure removes the new folder and leaves ``CURRENT`` as it was."""
        releases = self.root / "releases"
        releases.mkdir(parents=True, exist_ok=True)
        with self._publishing():
            release = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ") + "-" + uuid.uuid4().hex[:8]
            folder = releases / release
            try:
                folder.mkdir()
                manifest = _export(build, folder)
                _write_durably(folder / MANIFEST, json.dumps(manifest, indent=1))
                fsync_path(folder)           # its table folders and manifest named on disk
                fsync_path(releases)         # and the release folder itself
                # checked right before the switch, not first: the same while the lock holds,
                # and the narrowest window should a shared filesystem not pass it between hosts
                if expected is not None and self.stamp() != expected:
                    raise ETLError(redact(self.url), rule="warehouse changed",
                                   message="another publish replaced the release this run started from; "
                                           "nothing was published, run it again")
                _write_durably(self.root / CURRENT, release + "\n")   # the switch
            except BaseException:
                shutil.rmtree(folder, ignore_errors=True)
                raise
            # after the try: the switch happened, a failure here must not remove the release
            fsync_path(self.root)
            self._prune(releases, release)
        return release

    def build_path(self) -> Path:
        builds = self.root / ".builds"
        builds.mkdir(parents=True, exist_ok=True)
        return builds / f"build-{uuid.uuid4().hex[:8]}.duckdb"

    def close(self) -> None:
        with self._lock:
            session, self._session = self._session, None
        if session is not None:
            spark_context.leave(session, self)

    def _hold(self, stamp: str | None) -> tuple[str, _Open]:
        """Release ``stamp`` (default: the published one) opened, one more reader counted."""
        stamp = stamp or self.stamp()
        if stamp is None:
            raise ETLError(str(self.root), rule="warehouse present",
                           message="has no published release; run `python -m etl run` first")
        with self._lock:
            found = self._open.get(stamp)
            if found is None:
                found = self._open[stamp] = self._open_release(stamp)
            found.connections += 1
        return stamp, found

    def _open_release(self, stamp: str) -> _Open:
        """A new session with a temporary view per table of release ``stamp`` (lock held)."""
        folder = self.root / "releases" / stamp
        try:
            if not RELEASE_ID.fullmatch(stamp):
                raise FileNotFoundError(stamp)
            manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            raise ETLError(str(folder), rule="warehouse release",
                           message="is gone or incomplete; reload to read the published release") from None
        session = self._spark().newSession()
        session.conf.set("spark.sql.session.timeZone", "UTC")     # as in spark_conf, whoever
        session.conf.set("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")  # started it
        tables = {name: [tuple(c) for c in columns] for name, columns in manifest["tables"].items()}
        for table in tables:
            session.read.parquet(str(folder / table)).createOrReplaceTempView(table)
        return _Open(session, tables)

    def _closed(self, stamp: str, found: _Open) -> None:
        """One connection to release ``stamp`` closed; the last one drops its views."""
        with self._lock:
            found.connections -= 1
            if found.connections > 0:
                return
            if self._open.get(stamp) is found:
                del self._open[stamp]
        for table in found.tables:
            try:
                found.session.catalog.dropTempView(table)
            except Exception:  # noqa: BLE001 - the context was stopped already: nothing to drop
                pass

    def _spark(self) -> SparkSession:
        """This process's SparkSession (see :mod:`etl.backends.spark_context`), started when
        there is none; this backend counts among its users until :meth:`close`."""
        session = self._session
        if session is None or not spark_context.is_active(session):
            session = self._session = spark_context.join(self.root / ".spark", self)
        return session

    @contextmanager
    def _publishing(self) -> Iterator[None]:
        with open(self.root / ".publish.lock", "a+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)    # released when the file closes, or the process dies
            yield

    def _prune(self, releases: Path, published: str) -> None:
        """Remove the releases beyond the newest :data:`KEEP_RELEASES` that were replaced
        :data:`RETIRE_AFTER` seconds ago or more, and the leftovers of failed or killed
        publishes (no manifest: nothing publishes meanwhile, the lock is held)."""
        complete = sorted((p.name for p in releases.iterdir() if (p / MANIFEST).is_file()), reverse=True)
        kept = {published, *complete[:KEEP_RELEASES]}
        now = time.time()
        for newer, older in zip(complete, complete[1:]):
            if now - (releases / newer / MANIFEST).stat().st_mtime < RETIRE_AFTER:
                kept.add(older)             # replaced by `newer` too recently
        for path in releases.iterdir():
            if path.name not in kept:
                shutil.rmtree(path, ignore_errors=True)


def _export(build: Path, folder: Path) -> dict:
    """Every table of the DuckDB file ``build`` as Parquet under ``folder``; the manifest."""
    import duckdb

    con = duckdb.connect(str(build), read_only=True)
    try:
        names = [name for (name,) in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' "
            "AND table_catalog = current_database() ORDER BY table_name").fetchall()]
        tables = {}
        for name in names:
            if not TABLE_NAME.fullmatch(name):
                raise ETLError(str(build), rule="warehouse table name",
                               message=f"table {name!r} is not a plain name Spark can read as a view")
            columns = [(c, t) for c, t, *_rest in con.execute(f"DESCRIBE {_dq(name)}").fetchall()]
            select = ", ".join(f"CAST({_dq(c)} AS VARCHAR) AS {_dq(c)}" if t in AS_TEXT else _dq(c)
                               for c, t in columns)
            target = folder / name / PART
            target.parent.mkdir()
            path = str(target).replace("'", "''")
            con.execute(f"COPY (SELECT {select} FROM {_dq(name)}) TO '{path}' (FORMAT parquet)")
            with open(target, "rb") as written:      # on disk before CURRENT can name it
                os.fsync(written.fileno())
            fsync_path(target.parent)              # and its name in the table's folder
            tables[name] = columns
    finally:
        con.close()
    return {"tables": tables}


def _write_durably(path: Path, text: str) -> None:
    """``path`` replaced by ``text`` in one step (a temporary file, fsynced, renamed over it);
    the caller fsyncs the folder (:func:`etl.durability.fsync_path`) to make the rename durable."""
    temporary = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        with open(temporary, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def _dq(name: str) -> str:
    """A DuckDB identifier."""
    return '"' + name.replace('"', '""') + '"'
