"""A long job in a process of its own, one at a time per state folder: "refresh data now"
(dashboard/refresh_job.py) and "build a report now" (dashboard/reports/jobs.py).

The web worker takes an exclusive ``flock`` on the job's lock file without waiting and hands
the locked file to the child it starts (``pass_fds``): the lock is held exactly as long as the
child runs, even if the worker that started it is recycled meanwhile, so every worker and
process of a host (and every host sharing the folder) sees one job at most. The child writes
its output to a log (pages show its tail as progress) and its outcome to a status file,
replaced atomically, before it exits.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from etl.settings import PROJECT_ROOT

TAIL_LINES = 15


@dataclass(frozen=True)
class JobStatus:
    """Where the latest job stands, for its page."""

    running: bool
    started_at: str | None = None
    finished_at: str | None = None
    user: str | None = None
    exit_code: int | None = None
    log_tail: tuple[str, ...] = ()

    @property
    def outcome(self) -> str:
        if self.running:
            return "running"
        if self.started_at is None:
            return "never"
        if self.exit_code is None:
            return "stopped"          # the process died without writing its outcome
        return "succeeded" if self.exit_code == 0 else "failed"


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@contextlib.contextmanager
def holding(lock: Path) -> Iterator[bool]:
    """Take the lock without waiting; yields whether it was taken (held for the block)."""
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def running(lock: Path) -> bool:
    """Whether a job holds the lock now (probing takes and drops it at once)."""
    with holding(lock) as taken:
        return not taken


def write_status(path: Path, status: dict) -> None:
    temp = path.with_name(f".{path.name}.{os.getpid()}")
    temp.write_text(json.dumps(status), encoding="utf-8")
    os.replace(temp, path)


def read_status(path: Path) -> dict:
    """The saved status, or {} when there is none (or it is not one)."""
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return {}
    return saved if isinstance(saved, dict) else {}


def tail(path: Path) -> tuple[str, ...]:
    """The last lines of a log (read from its end only), each cut at 300 characters."""
    try:
        with open(path, "rb") as handle:
            handle.seek(max(0, handle.seek(0, os.SEEK_END) - 8192))
            lines = handle.read().decode("utf-8", "replace").splitlines()
    except FileNotFoundError:
        return ()
    return tuple(line[:300] for line in lines[-TAIL_LINES:])


def start(argv: list[str], *, lock: Path, log: Path, status: Path, started: dict) -> bool:
    """Start ``argv`` unless a job holds ``lock``; False when one does (nothing is started).
    ``started`` is written as the status before the child runs."""
    lock.parent.mkdir(parents=True, exist_ok=True)
    handle = open(lock, "a")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        write_status(status, started)
        with open(log, "wb") as out:
            child = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                     pass_fds=(handle.fileno(),), cwd=PROJECT_ROOT,
                                     env={**os.environ, "PYTHONUNBUFFERED": "1"},   # progress as it comes
                                     start_new_session=True)   # a worker restart must not stop it
        # reap it when it ends (no zombie left behind by a long-lived worker)
        threading.Thread(target=child.wait, name="job-reaper", daemon=True).start()
        return True
    finally:
        handle.close()   # the child keeps the lock through its inherited descriptor
