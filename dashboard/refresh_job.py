""""Refresh data now" (administrators): ``python -m etl refresh`` in a process of its own.

One refresh at a time for every worker of a host: the web worker takes an exclusive
``flock`` on ``STATE_DIR/refresh.lock`` without waiting, and hands the locked file to the
child it starts (``pass_fds``), so the lock is held exactly as long as the refresh runs, even
if that worker is recycled meanwhile. The child (``python -m dashboard.refresh_job``) runs the
ETL and training in-process, its output goes to ``refresh.log`` (the page shows its tail as
progress) and it writes the outcome to ``refresh.json`` before it exits. The published data
switch is the ETL's own atomic rename: the dashboard keeps serving the old release until then.
"""
from __future__ import annotations

import argparse
import fcntl
import json
import os
import subprocess
import sys
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from etl.settings import PROJECT_ROOT

LOCK, STATUS, LOG = "refresh.lock", "refresh.json", "refresh.log"
TAIL_LINES = 15


@dataclass(frozen=True)
class RefreshStatus:
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


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _write_status(state_dir: Path, status: dict) -> None:
    temp = state_dir / f".{STATUS}.{os.getpid()}"
    temp.write_text(json.dumps(status), encoding="utf-8")
    os.replace(temp, state_dir / STATUS)


def _tail(path: Path) -> tuple[str, ...]:
    try:
        with open(path, "rb") as handle:
            handle.seek(max(0, handle.seek(0, os.SEEK_END) - 8192))
            lines = handle.read().decode("utf-8", "replace").splitlines()
    except FileNotFoundError:
        return ()
    return tuple(line[:300] for line in lines[-TAIL_LINES:])


def _locked(state_dir: Path) -> bool:
    """Whether a refresh holds the lock now (probing takes and drops it at once)."""
    with open(state_dir / LOCK, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False


def status(state_dir: Path) -> RefreshStatus:
    state_dir.mkdir(parents=True, exist_ok=True)
    running = _locked(state_dir)
    try:
        saved = json.loads((state_dir / STATUS).read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        saved = {}
    return RefreshStatus(running=running, started_at=saved.get("started_at"),
                         finished_at=None if running else saved.get("finished_at"), user=saved.get("user"),
                         exit_code=None if running else saved.get("exit_code"), log_tail=_tail(state_dir / LOG))


def start(state_dir: Path, user: str, audit_file: Path, *, fast: bool = False) -> bool:
    """Start a refresh unless one runs; False when one does (then nothing is started)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    lock = open(state_dir / LOCK, "a")
    try:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        _write_status(state_dir, {"started_at": _now(), "user": user, "finished_at": None, "exit_code": None})
        argv = [sys.executable, "-m", "dashboard.refresh_job", "--state-dir", str(state_dir), "--audit", str(audit_file)]
        with open(state_dir / LOG, "wb") as log:
            child = subprocess.Popen(argv + (["--fast"] if fast else []), stdin=subprocess.DEVNULL, stdout=log,
                                     stderr=subprocess.STDOUT, pass_fds=(lock.fileno(),), cwd=PROJECT_ROOT,
                                     start_new_session=True)   # a worker restart must not stop it
        # reap it when it ends (no zombie left behind by a long-lived worker)
        threading.Thread(target=child.wait, name="refresh-reaper", daemon=True).start()
        return True
    finally:
        lock.close()   # the child keeps the lock through its inherited descriptor


def _run(state_dir: Path, audit_file: Path, fast: bool) -> int:
    """In the child: the refresh itself, then its outcome for the page and the audit log."""
    from dashboard.auth.audit import AuditLog
    from etl.cli import main

    started = json.loads((state_dir / STATUS).read_text(encoding="utf-8"))
    try:
        code = main(["refresh", *(["--fast"] if fast else [])])
    except BaseException:   # noqa: BLE001 - the outcome must be written whatever happened
        code = 1
        raise
    finally:
        _write_status(state_dir, {**started, "finished_at": _now(), "exit_code": code})
        AuditLog(audit_file).record("refresh", started.get("user"), phase="finished", exit_code=code)
    return code


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m dashboard.refresh_job")
    parser.add_argument("--state-dir", required=True, type=Path)
    parser.add_argument("--audit", required=True, type=Path)
    parser.add_argument("--fast", action="store_true")
    args = parser.parse_args()
    sys.exit(_run(args.state_dir, args.audit, args.fast))
