"""``python -m dashboard schedule [--once]``: build the due report, mail it, retry failed mails.

Settings (read at start):

| variable | default | meaning |
|---|---|---|
| ``REPORT_SCHEDULE`` | ``0 7 * * 1`` (Monday 07:00) | cron syntax (5 fields, or ``@daily``, ``@weekly``…) in the local time of the process (``TZ``) |
| ``REPORT_RECIPIENTS`` | (none: reports are archived, not mailed) | comma-separated addresses |
| ``REPORT_ROLE`` | ``viewer`` | whose report they get: ``viewer`` (aggregates) or ``analyst`` (with customer rows) |
| ``REPORT_LANG`` | ``en`` | ``en``, ``es`` or ``ru`` |

The loop wakes every 30 s. Exactly once, on any number of scheduler processes and hosts that
share ``STATE_DIR``: a tick takes the build lock (``STATE_DIR/report.lock``, see jobs.py) without
waiting — held means another build runs, so this tick skips — then reads the record of the last
slot run (``STATE_DIR/report-schedule.json``, rewritten atomically) and, when a later slot is
due, claims it in the record *before* building. A slot whose build was cut off (process killed,
host down) is left ``building``/``interrupted`` and built at the next tick that gets the lock.
After a restart only the latest missed slot is built, not each one missed while down. The very
first start records the latest past slot as done: the first report comes at the next slot
(``python -m dashboard report`` builds one now). Each tick also retries the due mails of every
archived report. SIGTERM (or Ctrl-C) stops the loop; a build it cuts off runs again at the
next start.

Several hosts: the lock is an ``flock``, which a local disk and NFS v4 honour across hosts; on a
shared file system that does not (some SMB or FUSE mounts), run the scheduler on one host only.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import socket
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo
from pathlib import Path

from croniter import croniter

from dashboard.auth.identity import Identity, Role
from dashboard.i18n import LANGS

log = logging.getLogger("dashboard.reports.schedule")

DEFAULT_SCHEDULE = "0 7 * * 1"
RECORD = "report-schedule.json"
TICK_SECONDS = 30
MACROS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
FINISHED = ("done", "failed", "baseline")      # a slot in one of these needs no (other) build


class ScheduleError(ValueError):
    """An unusable REPORT_* setting; the message says which and why."""


class Stopped(BaseException):
    """SIGTERM arrived during a build: unwinds it (staging folder removed, children killed)."""


# --- cron: pure functions of the expression, a clock and a time zone ------------------------


def check_expression(expression: str) -> str:
    """``expression`` normalised, or :class:`ScheduleError`: 5 fields (minute hour day month
    weekday, with ``*``, lists, ranges, steps and names) or one of the ``@`` macros."""
    text = " ".join(expression.split())
    fields = text.split(" ")
    if not (text.lower() in MACROS or len(fields) == 5) or not croniter.is_valid(text):
        raise ScheduleError(f"REPORT_SCHEDULE is not a 5-field cron expression: {expression!r} "
                            f"(e.g. {DEFAULT_SCHEDULE!r}, Monday 07:00)")
    return text


def _wall(moment: datetime, tz: tzinfo | None) -> datetime:
    """The wall-clock time (naive) of an aware moment in ``tz`` (None: the system's zone)."""
    return moment.astimezone(tz).replace(tzinfo=None)


def _moment(wall: datetime, tz: tzinfo | None) -> datetime:
    """The aware moment of a wall-clock time. Cron counts wall-clock minutes, so a slot in the
    hour skipped by a DST change runs just after it and one in a repeated hour runs once."""
    return wall.replace(tzinfo=tz) if tz is not None else wall.astimezone()


def latest_slot(expression: str, now: datetime, tz: tzinfo | None = None) -> datetime:
    """The latest slot at or before ``now`` (aware)."""
    start = _wall(now, tz).replace(second=0, microsecond=0) + timedelta(minutes=1)
    return _moment(croniter(expression, start).get_prev(datetime), tz)


def next_slot(expression: str, now: datetime, tz: tzinfo | None = None) -> datetime:
    """The first slot after ``now`` (aware)."""
    return _moment(croniter(expression, _wall(now, tz)).get_next(datetime), tz)


def due_slot(expression: str, now: datetime, record: dict | None, tz: tzinfo | None = None) -> datetime | None:
    """The slot to build now, or None. ``record`` is the last slot claimed (see the module doc):
    a finished slot is done; an unfinished one (its builder died) is built again; only the
    latest slot is ever due, however many were missed. No record at all: None (the caller
    records the baseline)."""
    if record is None:
        return None
    latest = latest_slot(expression, now, tz)
    try:
        claimed = datetime.fromisoformat(record["slot"])
    except (KeyError, TypeError, ValueError):
        return latest   # an unreadable record: build the latest slot rather than none
    if latest > claimed or (latest == claimed and record.get("status") not in FINISHED):
        return latest
    return None


# --- settings -------------------------------------------------------------------------------


def recipients_from_env() -> tuple[str, ...]:
    from dashboard.reports.delivery import DeliveryConfigError, check_address

    raw = os.environ.get("REPORT_RECIPIENTS", "")
    try:
        return tuple(dict.fromkeys(check_address(part) for part in raw.split(",") if part.strip()))
    except DeliveryConfigError as exc:
        raise ScheduleError(f"REPORT_RECIPIENTS: {exc}") from None


@dataclass(frozen=True)
class ScheduleSettings:
    expression: str
    recipients: tuple[str, ...]
    role: Role
    lang: str


def schedule_settings() -> ScheduleSettings:
    expression = check_expression(os.environ.get("REPORT_SCHEDULE", "").strip() or DEFAULT_SCHEDULE)
    try:
        role = Role.parse(os.environ.get("REPORT_ROLE", "").strip() or "viewer")
    except ValueError as exc:
        raise ScheduleError(f"REPORT_ROLE: {exc}") from None
    if role is Role.ADMIN:   # an admin's report is an analyst's: nothing more to show in a mail
        role = Role.ANALYST
    lang = os.environ.get("REPORT_LANG", "").strip().lower() or "en"
    if lang not in LANGS:
        raise ScheduleError(f"REPORT_LANG is one of {', '.join(LANGS)}, got {lang!r}")
    return ScheduleSettings(expression, recipients_from_env(), role, lang)


# --- the record of the last slot ------------------------------------------------------------


def read_record(state_dir: Path) -> dict | None:
    try:
        found = json.loads((state_dir / RECORD).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except ValueError:
        return {}   # damaged: due_slot builds the latest slot
    return found if isinstance(found, dict) else {}


def write_record(state_dir: Path, record: dict) -> None:
    """Atomically (temp file + rename): a reader sees the old record or the new one."""
    state_dir.mkdir(parents=True, exist_ok=True)
    temp = state_dir / f".{RECORD}.{socket.gethostname()}.{os.getpid()}"
    temp.write_text(json.dumps(record), encoding="utf-8")
    os.replace(temp, state_dir / RECORD)


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


@dataclass
class Scheduler:
    settings: ScheduleSettings
    state_dir: Path
    tz: tzinfo | None = None
    building: bool = False        # SIGTERM interrupts a build only while this is set

    def tick(self, now: datetime | None = None) -> str:
        """One wake-up: build the due report (at most one), then retry due mails. Returns what
        it did: ``idle``, ``busy``, ``baseline``, ``built`` or ``failed``."""
        from dashboard.reports import delivery
        from dashboard.reports.archive import Archive
        from dashboard.reports.jobs import holding

        now = now or datetime.now(timezone.utc)
        with holding(self.state_dir) as taken:
            outcome = self._build_due(now) if taken else "busy"
        if outcome == "busy":
            log.debug("another build holds the lock; skipped this tick")
        delivery.retry_due(Archive(), now)
        return outcome

    def _build_due(self, now: datetime) -> str:
        record = read_record(self.state_dir)
        expression = self.settings.expression
        if record is None:
            baseline = latest_slot(expression, now, self.tz)
            write_record(self.state_dir, {"slot": _iso(baseline), "status": "baseline", "schedule": expression})
            log.info("first start: no report owed for %s; the next is due at %s", _iso(baseline),
                     _iso(next_slot(expression, now, self.tz)))
            return "baseline"
        slot = due_slot(expression, now, record, self.tz)
        if slot is None:
            return "idle"
        claim = {"slot": _iso(slot), "status": "building", "schedule": expression, "host": socket.gethostname(),
                 "pid": os.getpid(), "claimed_at": _iso(now), "report": None, "error": None}
        write_record(self.state_dir, claim)   # claimed before building: no one else builds it
        log.info("building the report due at %s (%s, %s)%s", claim["slot"], self.settings.role.label,
                 self.settings.lang, " again: its last build was cut off" if record.get("slot") == claim["slot"] else "")
        try:
            report_id = self._build()
        except Stopped:
            write_record(self.state_dir, {**claim, "status": "interrupted", "finished_at": _iso(_utcnow())})
            log.info("stopped during the build of the report due at %s: it runs at the next start", claim["slot"])
            raise
        except Exception as exc:   # noqa: BLE001 - a failed build is recorded and shown, never fatal
            from dashboard.reports.delivery import redact

            error = redact(" ".join(f"{type(exc).__name__}: {exc}".split()))[:300]
            write_record(self.state_dir, {**claim, "status": "failed", "error": error,
                                          "finished_at": _iso(_utcnow())})
            log.error("the report due at %s failed: %s", claim["slot"], error)
            return "failed"
        write_record(self.state_dir, {**claim, "status": "done", "report": report_id, "finished_at": _iso(_utcnow())})
        if self.settings.recipients:   # after the slot is recorded done: a mail problem is the delivery's
            from dashboard.reports import delivery
            from dashboard.reports.archive import Archive

            delivery.deliver(Archive(), report_id)
        return "built"

    def _build(self) -> str:
        from dashboard.reports.build import build_report

        identity = Identity("schedule", self.settings.role, source="system")
        recipients = self.settings.recipients
        self.building = True
        try:
            # the recipients are recorded in the manifest as it is archived: a stop from here on
            # loses no mail (the next tick's retry sends what is pending)
            manifest = build_report(identity=identity, lang=self.settings.lang, trigger="schedule",
                                    recipients=recipients, progress=lambda line: log.debug("build: %s", line))
        finally:
            self.building = False
        log.info("report %s archived%s", manifest.id,
                 f"; mailing it to {len(recipients)} recipient(s)" if recipients else " (no REPORT_RECIPIENTS)")
        return manifest.id

    def serve(self, stop: threading.Event) -> None:
        """Tick every :data:`TICK_SECONDS` until ``stop`` is set."""
        log.info("scheduler started: %s; next report due at %s; %d recipient(s); STATE_DIR %s",
                 self.settings.expression, _iso(next_slot(self.settings.expression, _utcnow(), self.tz)),
                 len(self.settings.recipients), self.state_dir)
        while not stop.is_set():
            try:
                self.tick()
            except Stopped:
                break
            except Exception as exc:   # noqa: BLE001 - e.g. STATE_DIR unwritable for a moment: keep going
                log.error("scheduler tick failed: %s", " ".join(f"{type(exc).__name__}: {exc}".split())[:300])
            stop.wait(TICK_SECONDS)
        log.info("scheduler stopped")


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


# --- command line ---------------------------------------------------------------------------


def _run(args: argparse.Namespace) -> int:
    from dashboard.auth.settings import state_dir
    from dashboard.cli import UsageError
    from dashboard.logging_setup import configure_logging

    level = os.environ.get("LOG_LEVEL", "INFO").strip().upper() or "INFO"
    configure_logging(level if level in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL") else "INFO")
    try:
        settings = schedule_settings()
    except ScheduleError as exc:
        raise UsageError(str(exc)) from None
    scheduler = Scheduler(settings, state_dir())
    if args.check:   # `make run` asks first, so a bad setting stops it before gunicorn starts
        print(f"schedule {settings.expression}: next report due at {_iso(next_slot(settings.expression, _utcnow()))}; "
              f"{len(settings.recipients)} recipient(s)")
        return 0
    if args.once:
        outcome = scheduler.tick()
        print(f"schedule: {outcome}")
        return 1 if outcome == "failed" else 0
    stop = threading.Event()

    def on_signal(_signum, _frame):
        stop.set()
        if scheduler.building:
            raise Stopped()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    scheduler.serve(stop)
    return 0


def add_cli(sub: argparse._SubParsersAction) -> None:
    schedule = sub.add_parser("schedule", help="build the reports REPORT_SCHEDULE says, mail them, retry failed mails")
    schedule.add_argument("--once", action="store_true",
                          help="check once (build the due report, retry due mails) and exit")
    schedule.add_argument("--check", action="store_true", help="only check the REPORT_* settings (exit 2 when unusable)")
    schedule.set_defaults(func=_run)


def describe(settings: ScheduleSettings, state_dir: Path, now: datetime | None = None) -> dict:
    """What the Reports page shows: the schedule, its next slot and the last slot's record."""
    now = now or _utcnow()
    return {"schedule": settings.expression, "next": _iso(next_slot(settings.expression, now)),
            "recipients": list(settings.recipients), "role": settings.role.label, "lang": settings.lang,
            "last": read_record(state_dir)}


__all__ = ["ScheduleSettings", "Scheduler", "ScheduleError", "add_cli", "check_expression", "describe",
           "due_slot", "latest_slot", "next_slot", "read_record", "schedule_settings", "write_record"]
