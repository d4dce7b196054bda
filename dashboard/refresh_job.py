""""Refresh data now" (administrators): ``python -m etl refresh`` in a process of its own.

One refresh at a time (dashboard/background.py, lock ``STATE_DIR/refresh.lock``): the child
(``python -m dashboard.refresh_job``) runs the ETL and training in-process, its output goes to
``refresh.log`` (the page shows its tail as progress) and it writes the outcome to
``refresh.json`` before it exits. The switch of the published data is the ETL's own atomic
rename: the dashboard keeps serving the old release until then.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dashboard import background

LOCK, STATUS, LOG = "refresh.lock", "refresh.json", "refresh.log"


RefreshStatus = background.JobStatus


def status(state_dir: Path) -> RefreshStatus:
    running = background.running(state_dir / LOCK)
    saved = background.read_status(state_dir / STATUS)
    return RefreshStatus(running=running, started_at=saved.get("started_at"),
                         finished_at=None if running else saved.get("finished_at"), user=saved.get("user"),
                         exit_code=None if running else saved.get("exit_code"),
                         log_tail=background.tail(state_dir / LOG))


def start(state_dir: Path, user: str, audit_file: Path, *, fast: bool = False) -> bool:
    """Start a refresh unless one runs; False when one does (then nothing is started)."""
    argv = [sys.executable, "-m", "dashboard.refresh_job", "--state-dir", str(state_dir), "--audit", str(audit_file)]
    return background.start(argv + (["--fast"] if fast else []), lock=state_dir / LOCK, log=state_dir / LOG,
                            status=state_dir / STATUS,
                            started={"started_at": background.now(), "user": user, "finished_at": None,
                                     "exit_code": None})


def _run(state_dir: Path, audit_file: Path, fast: bool) -> int:
    """In the child: the refresh itself, then its outcome for the page and the audit log."""
    from dashboard.auth.audit import AuditLog
    from etl.cli import main

    started = background.read_status(state_dir / STATUS)
    try:
        code = main(["refresh", *(["--fast"] if fast else [])])
    except BaseException:   # noqa: BLE001 - the outcome must be written whatever happened
        code = 1
        raise
    finally:
        background.write_status(state_dir / STATUS, {**started, "finished_at": background.now(), "exit_code": code})
        AuditLog(audit_file).record("refresh", started.get("user"), phase="finished", exit_code=code)
    return code


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m dashboard.refresh_job")
    parser.add_argument("--state-dir", required=True, type=Path)
    parser.add_argument("--audit", required=True, type=Path)
    parser.add_argument("--fast", action="store_true")
    args = parser.parse_args()
    sys.exit(_run(args.state_dir, args.audit, args.fast))
