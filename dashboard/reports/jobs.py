"""One report build at a time, and "Build now" from the Reports page in a process of its own.

Every build the product starts by itself — a scheduled one (dashboard/reports/schedule.py) or
an administrator's "Build now" — holds an exclusive ``flock`` on ``STATE_DIR/report.lock``
while it runs, taken without waiting: whoever finds it held skips (the scheduler tries again
30 s later), so two builds never run at once, whichever host or process started them.

"Build now" works like "refresh data now" (dashboard/background.py): the child (``python -m
dashboard.reports.jobs``) holds the lock it inherits, builds in-process, prints its progress to
``report-build.log`` (the page shows the tail) and writes the outcome to ``report-build.json``
before it exits.
"""
from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from dashboard import background

LOCK, STATUS, LOG = "report.lock", "report-build.json", "report-build.log"


@contextlib.contextmanager
def holding(state_dir: Path) -> Iterator[bool]:
    """Take the build lock without waiting; yields whether it was taken (held for the block)."""
    with background.holding(state_dir / LOCK) as taken:
        yield taken


def building(state_dir: Path) -> bool:
    """Whether a build holds the lock now (probing takes and drops it at once)."""
    return background.running(state_dir / LOCK)


@dataclass(frozen=True)
class BuildStatus(background.JobStatus):
    role: str | None = None
    lang: str | None = None
    report: str | None = None          # the id of the report it archived
    elsewhere: bool = False            # the lock is held by another build (the scheduler's)


def status(state_dir: Path) -> BuildStatus:
    """Where the latest "Build now" stands. ``running`` means any build holds the lock (a
    scheduled one too): the button waits for it either way."""
    running = building(state_dir)
    saved = background.read_status(state_dir / STATUS)
    done = not running
    if running and (not saved or saved.get("finished_at")):   # not this page's build: the scheduler's
        return BuildStatus(running=True, elsewhere=True)
    return BuildStatus(running=running, started_at=saved.get("started_at"), user=saved.get("user"),
                       role=saved.get("role"), lang=saved.get("lang"),
                       finished_at=saved.get("finished_at") if done else None,
                       exit_code=saved.get("exit_code") if done else None,
                       report=saved.get("report") if done else None, log_tail=background.tail(state_dir / LOG))


def start(state_dir: Path, user: str, audit_file: Path, *, role: str = "viewer", lang: str = "en",
          send: bool = False) -> bool:
    """Start a build unless one runs; False when one does (then nothing is started)."""
    argv = [sys.executable, "-m", "dashboard.reports.jobs", "--state-dir", str(state_dir), "--audit",
            str(audit_file), "--role", role, "--lang", lang, *(["--send"] if send else [])]
    return background.start(argv, lock=state_dir / LOCK, log=state_dir / LOG, status=state_dir / STATUS,
                            started={"started_at": background.now(), "user": user, "role": role, "lang": lang,
                                     "finished_at": None, "exit_code": None, "report": None})


def _run(state_dir: Path, audit_file: Path, role: str, lang: str, send: bool) -> int:
    """In the child: the build, the mails when asked, then the outcome for the page and the
    audit log."""
    from dashboard.auth.audit import AuditLog
    from dashboard.auth.identity import Identity, Role
    from dashboard.reports.archive import Archive
    from dashboard.reports.build import ReportError, build_report
    from dashboard.reports.delivery import DeliveryConfigError, deliver, redact

    started = background.read_status(state_dir / STATUS)
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
        background.write_status(state_dir / STATUS, {**started, "finished_at": background.now(), "exit_code": code,
                                                     "report": report})
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
