"""One report build at a time, and "Build now" from the Reports page in a process of its own.

Every build the product starts by itself — a scheduled one (dashboard/reports/schedule.py) or
an administrator's "Build now" — holds an exclusive ``flock`` on ``STATE_DIR/report.lock``
while it runs, taken without waiting: whoever finds it held skips (the scheduler tries again
30 s later), so two builds never run at once, whichever host or process started them.

"Build now" works like "refresh data now" (dashboard/refresh_job.py): the web worker takes the
lock, hands the locked file to the child it starts (``pass_fds``), so the lock lives exactly as
long as the build even if the worker is recycled; the child (``python -m
dashboard.reports.jobs``) builds in-process, prints its progress to ``report-build.log`` (the
page shows the tail) and writes the outcome to ``report-build.json`` before it exits.
"""
from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from etl.settings import PROJECT_ROOT

LOCK, STATUS, LOG = "report.lock", "report-build.json", "report-build.log"
TAIL_LINES = 15


@contextlib.contextmanager
def holding(state_dir: Path) -> Iterator[bool]:
    """Take the build lock without waiting; yields whether it was taken (held for the block)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    with open(state_dir / LOCK, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def building(state_dir: Path) -> bool:
    """Whether a build holds the lock now (probing takes and drops it at once)."""
    with holding(state_dir) as taken:
        return not taken


@dataclass(frozen=True)
class BuildStatus:
    running: bool
    started_at: str | None = None
    finished_at: str | None = None
    user: str | None = None
    role: str | None = None
    lang: str | None = None
    exit_code: int | None = None
    report: str | None = None          # the id of the report it archived
    log_tail: tuple[str, ...] = ()
    elsewhere: bool = False            # the lock is held by another build (the scheduler's)

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


def status(state_dir: Path) -> BuildStatus:
    """Where the latest "Build now" stands. ``running`` means any build holds the lock (a
    scheduled one too): the button waits for it either way."""
    running = building(state_dir)
    try:
        saved = json.loads((state_dir / STATUS).read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        saved = {}
    if not isinstance(saved, dict):
        saved = {}
    done = not running
    if running and (not saved or saved.get("finished_at")):   # not this page's build: the scheduler's
        return BuildStatus(running=True, elsewhere=True)
    return BuildStatus(running=running, started_at=saved.get("started_at"), user=saved.get("user"),
                       role=saved.get("role"), lang=saved.get("lang"),
                       finished_at=saved.get("finished_at") if done else None,
                       exit_code=saved.get("exit_code") if done else None,
                       report=saved.get("report") if done else None, log_tail=_tail(state_dir / LOG))


def start(state_dir: Path, user: str, audit_file: Path, *, role: str = "viewer", lang: str = "en",
          send: bool = False) -> bool:
    """Start a build unless one runs; False when one does (then nothing is started)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    lock = open(state_dir / LOCK, "a")
    try:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        _write_status(state_dir, {"started_at": _now(), "user": user, "role": role, "lang": lang,
                                  "finished_at": None, "exit_code": None, "report": None})
        argv = [sys.executable, "-m", "dashboard.reports.jobs", "--state-dir", str(state_dir), "--audit",
                str(audit_file), "--role", role, "--lang", lang, *(["--send"] if send else [])]
        with open(state_dir / LOG, "wb") as log:
            child = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                     pass_fds=(lock.fileno(),), cwd=PROJECT_ROOT,
                                     env={**os.environ, "PYTHONUNBUFFERED": "1"},   # progress as it comes
                                     start_new_session=True)   # a worker restart must not stop it
        # reap it when it ends (no zombie left behind by a long-lived worker)
        threading.Thread(target=child.wait, name="report-build-reaper", daemon=True).start()
        return True
    finally:
        lock.close()   # the child keeps the lock through its inherited descriptor


def _run(state_dir: Path, audit_file: Path, role: str, lang: str, send: bool) -> int:
    """In the child: the build, the mails when asked, then the outcome for the page and the
    audit log."""
    from dashboard.auth.audit import AuditLog
    from dashboard.auth.identity import Identity, Role
    from dashboard.reports.archive import Archive
    from dashboard.reports.build import ReportError, build_report
    from dashboard.reports.delivery import DeliveryConfigError, deliver, redact

    started = json.loads((state_dir / STATUS).read_text(encoding="utf-8"))
    code, report = 1, None
    try:
        identity = Identity(started.get("user") or "page", Role.parse(role), source="system")
        recipients = ()
        if send:
            from dashboard.reports.schedule import ScheduleError, recipients_from_env

            try:
                recipients = recipients_from_env()
            except ScheduleError as exc:
                raise DeliveryConfigError(str(exc)) from None
            if not recipients:
                print("REPORT_RECIPIENTS is empty: the report is archived, not mailed", flush=True)
        manifest = build_report(identity=identity, lang=lang, trigger="page", progress=print, recipients=recipients)
        report, code = manifest.id, 0
        if recipients:
            for delivery in deliver(Archive(), manifest.id).deliveries:
                print(f"{delivery.to}: {delivery.status}" + (f" ({delivery.last_error})" if delivery.last_error
                                                              and delivery.status != "sent" else ""), flush=True)
    except (ReportError, DeliveryConfigError) as exc:
        print(f"failed: {redact(str(exc))}", flush=True)
    finally:
        _write_status(state_dir, {**started, "finished_at": _now(), "exit_code": code, "report": report})
        AuditLog(audit_file).record("report", started.get("user"), phase="finished", exit_code=code, report=report)
    return code


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m dashboard.reports.jobs")
    parser.add_argument("--state-dir", required=True, type=Path)
    parser.add_argument("--audit", required=True, type=Path)
    parser.add_argument("--role", default="viewer")
    parser.add_argument("--lang", default="en")
    parser.add_argument("--send", action="store_true")
    args = parser.parse_args()
    sys.exit(_run(args.state_dir, args.audit, args.role, args.lang, args.send))
