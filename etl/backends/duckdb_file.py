"""The embedded default: the warehouse is one DuckDB file.

Publishing renames a complete build file over the published one (``os.replace`` is atomic on
POSIX, and the build is written in the same folder): a failed run leaves the previous file byte
for byte as it was, and a reader never sees a mix of two runs. An open connection keeps reading
the file it opened after a rename, which is how the dashboard pins a request to its release.
"""
from __future__ import annotations

import fcntl
import os
import shutil
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from etl.errors import ETLError
from etl.settings import PROJECT_ROOT

if TYPE_CHECKING:
    import ibis

WAREHOUSE_ALIAS = "warehouse"   # the name a read-only connection attaches the file under


def duckdb_path(url: str) -> Path | None:
    """The database file of a DuckDB URL or plain path; None for other backends."""
    if url.startswith("duckdb://"):
        path = Path(url[len("duckdb://"):])
    elif "://" in url:
        return None
    else:
        path = Path(url).expanduser()
    return path if path.is_absolute() else PROJECT_ROOT / path


class DuckDBFile:
    name = "duckdb"

    def __init__(self, url: str) -> None:
        self.url = url
        self.path = duckdb_path(url)

    def stamp(self) -> str | None:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return None
        return f"{stat.st_ino:x}-{stat.st_mtime_ns:x}-{stat.st_size:x}"

    def connect(self, stamp: str | None = None) -> ibis.BaseBackend:
        """The file published now (a DuckDB file has one release; the caller compares stamps)."""
        import ibis

        if not self.path.is_file():
            raise ETLError(str(self.path), rule="warehouse present",
                           message="does not exist; run `python -m etl run` first")
        # Attached to a private in-memory database, not opened by path: DuckDB hands every
        # connect() of a path already open in the process the same database instance, which
        # after a publish (a new file renamed over the old) would still be the old file.
        con = ibis.duckdb.connect()
        quoted = str(self.path).replace("'", "''")
        con.raw_sql(f"ATTACH '{quoted}' AS {WAREHOUSE_ALIAS} (READ_ONLY)")
        con.raw_sql(f"USE {WAREHOUSE_ALIAS}")
        return con

    def publish(self, build: Path, expected: str | None = None) -> str:
        # one publish at a time (the check and the rename under one lock), across processes
        with open(self.path.with_name(f"{self.path.name}.publish.lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if expected is not None and self.stamp() != expected:
                raise ETLError(str(self.path), rule="warehouse changed",
                               message="another publish replaced the warehouse this run started from; "
                                       "nothing was published, run it again")
            os.replace(build, self.path)
            return self.stamp() or ""

    def pull(self, dest: Path) -> None:
        if not self.path.is_file():
            raise ETLError(str(self.path), rule="warehouse present",
                           message="does not exist; run `python -m etl run` first")
        shutil.copyfile(self.path, dest)

    def build_path(self) -> Path:
        # next to the published file: the rename stays on one filesystem, so it is atomic
        self.path.parent.mkdir(parents=True, exist_ok=True)
        return self.path.with_name(f"{self.path.name}.tmp-{uuid.uuid4().hex[:8]}")

    def close(self) -> None:
        pass
