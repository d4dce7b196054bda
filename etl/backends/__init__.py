"""Where the warehouse is published and read from: one small interface per backend.

The ETL and training always compute in a private DuckDB *build file* (fast, local, no server
round trips); a backend takes a complete build and makes it the published warehouse in one
step, and gives readers (training, the dashboard, reports) an Ibis connection to one
published release. Everything else — queries, figures, models — is backend-neutral Ibis.

| ``WAREHOUSE_URL``                        | backend                                      |
|------------------------------------------|----------------------------------------------|
| ``data/warehouse.duckdb``, ``duckdb:///abs/path.duckdb`` | :mod:`etl.backends.duckdb_file` (embedded default) |
| ``postgres://user:pass@host:port/db``    | :mod:`etl.backends.postgres`                 |
| ``pyspark:///abs/path/to/warehouse``     | :mod:`etl.backends.spark` (``SPARK_MASTER`` for a cluster) |

A *stamp* names one published release and is cheap to read (a ``stat()``, one indexed row, a
small pointer file): the dashboard reads it once per request and pins every query of the
request to that release, so an answer never mixes two publishes.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from etl.errors import ETLError

if TYPE_CHECKING:  # Ibis takes ~0.7 s to import; `python -m etl run` does not need it
    import duckdb
    import ibis


class Backend(Protocol):
    """What a warehouse backend does; see the module docstring."""

    url: str
    name: str                       # "duckdb", "postgres", "pyspark": shown in errors and cards

    def stamp(self) -> str | None:
        """The release published now, cheaply; None when nothing was ever published."""

    def connect(self, stamp: str | None = None) -> ibis.BaseBackend:
        """A read-only Ibis connection to release ``stamp`` (default: the one published now);
        :class:`~etl.errors.ETLError` when there is none."""

    def publish(self, build: Path, expected: str | None = None) -> str:
        """Make the complete DuckDB file ``build`` the published warehouse, all or nothing;
        the new stamp. A failure leaves what was published untouched. ``expected``: the stamp
        the build was pulled from; when another publish replaced it meanwhile, nothing is
        published (:class:`~etl.errors.ETLError`, rule ``warehouse changed``): training must not
        put back the data an ETL run replaced while it trained."""

    def pull(self, dest: Path) -> None:
        """Write the release published now into a new DuckDB file ``dest`` (training starts
        from it and adds its tables)."""

    def build_path(self) -> Path:
        """A new, unused path for a build file on the local disk (its folder exists)."""

    def close(self) -> None:
        """Let go of what this object holds (connections, sessions)."""


def backend(url: str) -> Backend:
    """The backend of ``url``, by its scheme; an unknown scheme is a clear error."""
    scheme = url.split("://", 1)[0].lower() if "://" in url else "duckdb"
    if scheme == "duckdb":
        from etl.backends.duckdb_file import DuckDBFile
        return DuckDBFile(url)
    if scheme in ("postgres", "postgresql"):
        from etl.backends.postgres import Postgres
        return Postgres(url)
    if scheme == "pyspark":
        from etl.backends.spark import Spark
        return Spark(url)
    raise ETLError(redact(url), rule="warehouse backend",
                   message="WAREHOUSE_URL must be a DuckDB path or duckdb://, postgres:// or pyspark:// URL")


def redact(url: str) -> str:
    """``url`` without its password (``user:***@`` and ``password=***`` in the query), for
    messages, logs and results files."""
    from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

    if "://" not in url:
        return url
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        credentials, host = netloc.rsplit("@", 1)
        if ":" in credentials:
            netloc = f"{credentials.split(':', 1)[0]}:***@{host}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(key.lower() == "password" for key, _ in pairs):
            query = urlencode([(k, "***" if k.lower() == "password" else v) for k, v in pairs], safe="*")
    if (netloc, query) == (parts.netloc, parts.query):
        return url              # as written (urlunsplit would turn pyspark:///a into pyspark:/a)
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


@contextmanager
def staged(url: str, *, start_from_current: bool) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection to a private DuckDB build file, published only if the block succeeds.

    ``start_from_current=False`` starts from an empty database (the ETL rebuilds everything);
    ``True`` starts from a copy of the published release (training adds its tables to it).
    """
    import duckdb

    target = backend(url)
    try:
        build = target.build_path()
        try:
            pulled = None
            if start_from_current:
                pulled = target.stamp()
                target.pull(build)     # the release named by `pulled`, or a newer one: then
                                       # the check below refuses, which is the safe side
            con = duckdb.connect(str(build))
            try:
                yield con
                con.execute("CHECKPOINT")
            finally:
                con.close()
            target.publish(build, expected=pulled)
        finally:
            for leftover in (build, build.with_name(build.name + ".wal")):
                leftover.unlink(missing_ok=True)
    finally:
        target.close()
