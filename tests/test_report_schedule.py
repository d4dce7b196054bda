"""The report scheduler: cron slots and the due-slot rule with a fake clock (pure functions),
then real ``python -m dashboard schedule`` processes with the real builder: two started at once
build a due report once and mail it once, a missed slot is caught up once after a restart (only
the latest one). SIGTERM stops the loop cleanly and a build it cuts off is built at the next
start (with a stand-in builder that takes 60 s, so the stop surely lands mid-build)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from dashboard.reports import schedule as sched
from dashboard.reports.archive import Archive
from etl.settings import PROJECT_ROOT

BERLIN = ZoneInfo("Europe/Berlin")
WEEKLY = sched.DEFAULT_SCHEDULE


def at(*args, tz=BERLIN) -> datetime:
    return datetime(*args, tzinfo=tz)


# --- cron expressions and slots -----------------------------------------------------------


@pytest.mark.parametrize("text", ["0 7 * * 1", "*/15 9-17 * * mon-fri", "0 6 1,15 * *", "@daily", "  0  7 * * 1 "])
def test_valid_expressions(text):
    assert sched.check_expression(text) == " ".join(text.split())


@pytest.mark.parametrize("text", ["", "0 7 * *", "0 7 * * 1 2026", "61 * * * *", "0 25 * * *", "every monday",
                                  "0 7 * * 8", "@fortnightly"])
def test_invalid_expressions_say_what_to_write(text):
    with pytest.raises(sched.ScheduleError, match="REPORT_SCHEDULE is not a 5-field cron expression"):
        sched.check_expression(text)


@pytest.mark.parametrize("now, latest, following", [
    (at(2026, 11, 25, 12, 0), at(2026, 11, 23, 7, 0), at(2026, 11, 30, 7, 0)),        # a Wednesday
    (at(2026, 11, 30, 7, 0), at(2026, 11, 30, 7, 0), at(2026, 12, 7, 7, 0)),          # the slot itself
    (at(2026, 11, 30, 6, 59, 59), at(2026, 11, 23, 7, 0), at(2026, 11, 30, 7, 0)),    # a second before it
    (at(2026, 11, 30, 6, 30, tz=timezone.utc), at(2026, 11, 30, 7, 0), at(2026, 12, 7, 7, 0)),  # 07:30 in Berlin
])
def test_latest_and_next_slot_of_the_default_schedule(now, latest, following):
    assert sched.latest_slot(WEEKLY, now, BERLIN) == latest
    assert sched.next_slot(WEEKLY, now, BERLIN) == following


def test_slots_are_wall_clock_times_across_daylight_saving_changes():
    # Monday 07:00 stays 07:00 local when the clocks go back (25 Oct 2026): 05:00 UTC, then 06:00 UTC
    assert sched.latest_slot(WEEKLY, at(2026, 10, 26, 8, 0), BERLIN).astimezone(timezone.utc) == \
        datetime(2026, 10, 26, 6, 0, tzinfo=timezone.utc)
    assert sched.latest_slot(WEEKLY, at(2026, 10, 25, 8, 0), BERLIN).astimezone(timezone.utc) == \
        datetime(2026, 10, 19, 5, 0, tzinfo=timezone.utc)
    # 02:30 does not exist on 29 Mar 2026: that day's slot runs once, just after the gap
    slot = sched.latest_slot("30 2 * * *", at(2026, 3, 29, 4, 0), BERLIN)
    assert slot.astimezone(timezone.utc) == datetime(2026, 3, 29, 1, 30, tzinfo=timezone.utc)
    assert sched.latest_slot("30 2 * * *", at(2026, 3, 29, 1, 0), BERLIN).day == 28


def _record(slot: datetime, status: str = "done") -> dict:
    return {"slot": slot.isoformat(), "status": status}


def test_the_due_slot_rule():
    now = at(2026, 11, 30, 7, 0, 20)
    this_monday, last_monday = at(2026, 11, 30, 7, 0), at(2026, 11, 23, 7, 0)
    assert sched.due_slot(WEEKLY, now, None, BERLIN) is None                       # first start: baseline
    assert sched.due_slot(WEEKLY, now, _record(last_monday), BERLIN) == this_monday
    assert sched.due_slot(WEEKLY, now, _record(this_monday), BERLIN) is None        # built already
    assert sched.due_slot(WEEKLY, now, _record(this_monday, "failed"), BERLIN) is None   # shown, not retried
    assert sched.due_slot(WEEKLY, now, _record(this_monday, "baseline"), BERLIN) is None
    for cut_off in ("building", "interrupted"):                                     # its builder died or stopped
        assert sched.due_slot(WEEKLY, now, _record(this_monday, cut_off), BERLIN) == this_monday
    # down for three weeks: only the latest missed slot is owed, once
    assert sched.due_slot(WEEKLY, now + timedelta(days=2), _record(at(2026, 11, 9, 7, 0)), BERLIN) == this_monday
    assert sched.due_slot(WEEKLY, now, {}, BERLIN) == this_monday                   # an unreadable record
    assert sched.due_slot(WEEKLY, at(2026, 11, 30, 6, 59), _record(last_monday), BERLIN) is None


def test_settings_from_the_environment(monkeypatch):
    for name in ("REPORT_SCHEDULE", "REPORT_RECIPIENTS", "REPORT_ROLE", "REPORT_LANG"):
        monkeypatch.delenv(name, raising=False)
    found = sched.schedule_settings()
    assert (found.expression, found.recipients, found.role.label, found.lang) == (WEEKLY, (), "viewer", "en")
    monkeypatch.setenv("REPORT_RECIPIENTS", " ana@shop.example, bob@shop.example,,ana@shop.example ")
    monkeypatch.setenv("REPORT_ROLE", "Analyst")
    monkeypatch.setenv("REPORT_LANG", "RU")
    found = sched.schedule_settings()
    assert (found.recipients, found.role.label, found.lang) == (("ana@shop.example", "bob@shop.example"), "analyst", "ru")
    for name, value, message in [("REPORT_ROLE", "boss", "REPORT_ROLE"), ("REPORT_LANG", "de", "REPORT_LANG"),
                                 ("REPORT_RECIPIENTS", "ana@shop.example; bob", "REPORT_RECIPIENTS")]:
        monkeypatch.setenv(name, value)
        with pytest.raises(sched.ScheduleError, match=message):
            sched.schedule_settings()
        monkeypatch.delenv(name)


# --- the tick, in-process, with a fake clock ------------------------------------------------


@pytest.fixture
def places(tmp_path, monkeypatch):
    monkeypatch.setenv("REPORTS_DIR", str(tmp_path / "reports"))
    monkeypatch.setenv("STATE_DIR", str(tmp_path / "state"))
    return {"reports": tmp_path / "reports", "state": tmp_path / "state"}


def test_a_tick_baselines_builds_the_due_slot_once_and_records_a_failure(places, monkeypatch):
    from tests.report_standin import install_standin_build

    monkeypatch.setitem(sys.modules, "dashboard.reports.build", None)   # undone after the test
    install_standin_build()
    settings = sched.ScheduleSettings(WEEKLY, (), sched.Role.VIEWER, "en")
    scheduler = sched.Scheduler(settings, places["state"], tz=BERLIN)
    monday = at(2026, 11, 30, 7, 0)

    assert scheduler.tick(monday - timedelta(days=2)) == "baseline"
    assert sched.read_record(places["state"])["slot"] == at(2026, 11, 23, 7, 0).isoformat()
    assert scheduler.tick(monday - timedelta(seconds=1)) == "idle"
    assert scheduler.tick(monday + timedelta(seconds=20)) == "built"
    assert scheduler.tick(monday + timedelta(seconds=50)) == "idle"
    (report,) = Archive().list()
    assert (report.role, report.trigger) == ("viewer", "schedule")
    record = sched.read_record(places["state"])
    assert (record["slot"], record["status"], record["report"]) == (monday.isoformat(), "done", report.id)

    def broken(**_kwargs):
        raise sys.modules["dashboard.reports.build"].ReportError("the warehouse is missing: run python -m etl run")

    monkeypatch.setattr(sys.modules["dashboard.reports.build"], "build_report", broken)
    assert scheduler.tick(monday + timedelta(days=7)) == "failed"
    record = sched.read_record(places["state"])
    assert record["status"] == "failed" and "the warehouse is missing" in record["error"]
    assert scheduler.tick(monday + timedelta(days=7, minutes=1)) == "idle"      # shown, not retried every 30 s
    assert len(Archive().list()) == 1


# --- real processes -------------------------------------------------------------------------


def _env(places, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REPORT_", "SMTP_"))}
    env.update(REPORTS_DIR=str(places["reports"]), STATE_DIR=str(places["state"]), PYTHONUNBUFFERED="1", **extra)
    return env


def _standin_argv(*args: str) -> list[str]:
    return [sys.executable, "-c", "from tests.report_standin import standin_main; standin_main()", *args]


def _owe_latest_slot(places, weeks_ago: int = 1, status: str = "done") -> datetime:
    """A record as a scheduler leaves it, its last slot ``weeks_ago`` before the latest one."""
    latest = sched.latest_slot(WEEKLY, datetime.now(timezone.utc))
    sched.write_record(places["state"], {"slot": (latest - timedelta(weeks=weeks_ago)).isoformat(), "status": status})
    return latest


def _schedule_once(argv: list[str], env: dict, count: int) -> list[subprocess.CompletedProcess]:
    children = [subprocess.Popen(argv, cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True) for _ in range(count)]
    outputs = [child.communicate(timeout=600) for child in children]
    return [subprocess.CompletedProcess(argv, child.returncode, out, err) for child, (out, err) in zip(children, outputs)]


@pytest.fixture
def real_build(places, dashboard_data):
    """What `python -m dashboard schedule` needs for a real build: the warehouse and models the
    ETL and training made (conftest), and Chromium for the PDF."""
    from dashboard.reports.render import chromium

    if chromium() is None:
        pytest.skip("headless Chromium is not installed (make test installs it)")
    return {"WAREHOUSE_URL": dashboard_data["scored"], "MODELS_DIR": str(dashboard_data["models"]),
            "CACHE_DIR": str(places["state"].parent / "cache")}


def test_two_schedulers_started_together_build_a_due_report_once_and_mail_it(places, real_build):
    from tests.test_report_delivery import PASSWORD_IN_URL, Inbox, free_port, smtp_server

    latest = _owe_latest_slot(places)
    inbox, port = Inbox(), free_port()
    server = smtp_server(inbox, port)
    env = _env(places, **real_build, REPORT_RECIPIENTS="ana@shop.example,bob@shop.example",
               SMTP_URL=f"smtp://reports:{PASSWORD_IN_URL}@127.0.0.1:{port}", REPORT_FROM="reports@shop.example")
    try:
        results = _schedule_once([sys.executable, "-m", "dashboard", "schedule", "--once"], env, 2)
    finally:
        server.stop()
    assert [r.returncode for r in results] == [0, 0], [r.stderr for r in results]
    # the other one found the lock held (busy) or, started late on a loaded machine, the slot done (idle)
    outcomes = sorted(r.stdout.strip() for r in results)
    assert outcomes in (["schedule: built", "schedule: busy"], ["schedule: built", "schedule: idle"])
    (report,) = Archive(places["reports"]).list()
    assert (report.role, report.trigger, report.formats) == ("viewer", "schedule", ["html", "pdf"])
    assert {d.to: d.status for d in report.deliveries} == {"ana@shop.example": "sent", "bob@shop.example": "sent"}
    record = sched.read_record(places["state"])
    assert (record["slot"], record["status"], record["report"]) == (latest.isoformat(), "done", report.id)
    logged = "".join(r.stderr for r in results)
    assert logged.count("building the report due at") == 1 and logged.count(f"report {report.id} archived") == 1
    assert "s3cr" not in logged
    # one mail per recipient, the real report in the body and its PDF attached
    assert sorted(to for to, _ in inbox.messages) == [["ana@shop.example"], ["bob@shop.example"]]
    for _, mail in inbox.messages:
        assert "Abandonment rate" in mail["Subject"]
        assert "<html" in mail.get_body(("html",)).get_content().lower()
        (pdf,) = mail.iter_attachments()
        assert pdf.get_content() == Archive(places["reports"]).file(report.id, "pdf").read_bytes()


def test_a_scheduler_that_finds_a_build_running_skips_and_builds_after_it(places):
    from dashboard.reports.jobs import holding

    _owe_latest_slot(places)
    argv, env = _standin_argv("schedule", "--once"), _env(places)
    with holding(places["state"]) as taken:        # a "Build now" or another host's scheduler
        assert taken
        (skipped,) = _schedule_once(argv, env, 1)
    assert skipped.stdout.strip() == "schedule: busy" and Archive(places["reports"]).list() == []
    assert sched.read_record(places["state"])["status"] == "done"     # the slot was not claimed
    (after,) = _schedule_once(argv, env, 1)
    assert after.stdout.strip() == "schedule: built" and len(Archive(places["reports"]).list()) == 1


def test_a_missed_slot_is_caught_up_once_after_a_restart(places, real_build):
    latest = _owe_latest_slot(places, weeks_ago=3)       # the scheduler was down for three weeks
    argv, env = [sys.executable, "-m", "dashboard", "schedule", "--once"], _env(places, **real_build)
    (first,) = _schedule_once(argv, env, 1)
    (second,) = _schedule_once(argv, env, 1)
    assert (first.stdout.strip(), second.stdout.strip()) == ("schedule: built", "schedule: idle"), first.stderr
    assert len(Archive(places["reports"]).list()) == 1
    assert sched.read_record(places["state"])["slot"] == latest.isoformat()


def test_a_failed_build_exits_1_and_is_recorded_with_its_reason(places, tmp_path):
    _owe_latest_slot(places)
    env = _env(places, WAREHOUSE_URL=str(tmp_path / "missing.duckdb"), CACHE_DIR=str(tmp_path / "cache"))
    (done,) = _schedule_once([sys.executable, "-m", "dashboard", "schedule", "--once"], env, 1)
    assert done.returncode == 1 and done.stdout.strip() == "schedule: failed"
    record = sched.read_record(places["state"])
    assert record["status"] == "failed" and record["error"] and record["error"] in done.stderr
    assert Archive(places["reports"]).list() == []


def test_sigterm_stops_the_loop_and_a_cut_off_build_runs_at_the_next_start(places):
    latest = _owe_latest_slot(places)
    env = _env(places, STANDIN_BUILD_SECONDS="60")
    loop = subprocess.Popen(_standin_argv("schedule"), cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while (sched.read_record(places["state"]) or {}).get("status") != "building":
            assert time.monotonic() < deadline and loop.poll() is None
            time.sleep(0.1)
        started = time.monotonic()
        loop.send_signal(signal.SIGTERM)
        out, err = loop.communicate(timeout=30)
    finally:
        loop.kill()
    assert loop.returncode == 0 and time.monotonic() - started < 10, err
    assert "stopped during the build" in err and err.rstrip().endswith("scheduler stopped")
    record = sched.read_record(places["state"])
    assert (record["slot"], record["status"]) == (latest.isoformat(), "interrupted")
    assert Archive(places["reports"]).list() == [] and list(Path(places["reports"]).glob(".*.tmp")) == []

    (again,) = _schedule_once(_standin_argv("schedule", "--once"), _env(places), 1)
    assert again.stdout.strip() == "schedule: built" and "again: its last build was cut off" in again.stderr
    assert len(Archive(places["reports"]).list()) == 1


def test_an_idle_loop_stops_on_sigterm_at_once(places):
    loop = subprocess.Popen([sys.executable, "-m", "dashboard", "schedule"], cwd=PROJECT_ROOT, env=_env(places),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not (places["state"] / sched.RECORD).exists():   # the first tick wrote the baseline
            assert time.monotonic() < deadline and loop.poll() is None
            time.sleep(0.1)
        loop.send_signal(signal.SIGTERM)
        _out, err = loop.communicate(timeout=10)
    finally:
        loop.kill()
    assert loop.returncode == 0 and "scheduler started" in err and "first start" in err
    assert err.rstrip().endswith("scheduler stopped") and len(err.strip().splitlines()) == 3
    assert json.loads((places["state"] / sched.RECORD).read_text())["status"] == "baseline"


def test_a_bad_setting_is_one_line_and_exit_2(places):
    env = _env(places, REPORT_SCHEDULE="every monday")
    done = subprocess.run([sys.executable, "-m", "dashboard", "schedule", "--check"], cwd=PROJECT_ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "REPORT_SCHEDULE" in done.stderr
