"""The audit log: appended by several processes at once, bounded entries, read from the end."""
from __future__ import annotations

import json
import multiprocessing
import os
from datetime import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dashboard.auth.audit import EVENTS, MAX_ITEMS, AuditLog


@pytest.fixture
def log(tmp_path) -> AuditLog:
    return AuditLog(tmp_path / "state" / "audit.jsonl")


def lines(log: AuditLog) -> list[dict]:
    return [json.loads(line) for line in log.path.read_text(encoding="utf-8").splitlines()]


def test_an_entry_is_one_json_line_with_the_documented_fields(log):
    log.record("export", "alice", ip="10.0.0.7", page="/segments", rows=412, filters={"segment": "risk"})
    log.record("sign-out", None)
    first, second = lines(log)
    assert set(first) == {"time", "event", "user", "ip", "details"}
    assert (first["event"], first["user"], first["ip"]) == ("export", "alice", "10.0.0.7")
    assert first["details"] == {"page": "/segments", "rows": 412, "filters": {"segment": "risk"}}
    assert first["time"].endswith("Z") and datetime.fromisoformat(first["time"]).utcoffset().total_seconds() == 0
    assert (second["user"], second["ip"], second["details"]) == (None, None, {})
    assert os.stat(log.path).st_mode & 0o777 == 0o600
    assert "sign-in-failed" in EVENTS and "embed-token" in EVENTS


def test_the_file_is_appended_to_never_rewritten(log):
    log.record("sign-in", "alice")
    inode, before = os.stat(log.path).st_ino, log.path.read_bytes()
    for index in range(20):
        log.record("sign-in", f"user{index}")
    assert os.stat(log.path).st_ino == inode and log.path.read_bytes().startswith(before)


def test_crafted_values_make_bounded_single_line_entries(log):
    crafted = "evil\nname\r\u2028" + "x" * 100_000
    log.record(crafted, crafted, ip=crafted, note=crafted, nested={"a": [crafted] * 1000, crafted: {"b": {"c": {"d": 1}}}},
               number=10 ** 5000, nan=float("nan"), raw=b"\x00bytes", items=list(range(10_000)))
    text = log.path.read_text(encoding="utf-8")
    assert text.count("\n") == 1 and len(text) < 20_000
    entry = json.loads(text)
    assert len(entry["user"]) <= 80 and len(entry["event"]) <= 80 and len(entry["ip"]) <= 80
    assert "\n" not in entry["user"] and entry["user"].startswith("evil\\nname")
    details = entry["details"]
    assert len(details["note"]) <= 300 and len(details["nested"]["a"]) == MAX_ITEMS + 1
    assert details["number"] == "a huge number" and details["nan"] == "nan"
    assert len(details["items"]) == MAX_ITEMS + 1 and details["items"][-1] == "…"


@settings(max_examples=150, deadline=None)
@given(user=st.one_of(st.none(), st.text(max_size=500)), value=st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=400)),
    lambda children: st.one_of(st.lists(children, max_size=30), st.dictionaries(st.text(max_size=50), children,
                                                                               max_size=30)), max_leaves=60))
def test_any_value_gives_one_readable_line(tmp_path_factory, user, value):
    log = AuditLog(tmp_path_factory.mktemp("audit") / "audit.jsonl")
    log.record("export", user, value=value)
    text = log.path.read_text(encoding="utf-8")
    assert text.endswith("\n") and text.count("\n") == 1 and len(text) < 100_000
    assert json.loads(text)["event"] == "export" and log.tail(1)[0]["event"] == "export"


def test_tail_is_newest_first_and_limited(log):
    for index in range(30):
        log.record("sign-in", f"user{index}")
    entries = log.tail(10)
    assert [e["user"] for e in entries] == [f"user{i}" for i in range(29, 19, -1)] and entries.skipped == 0
    assert len(log.tail()) == 30 and log.tail(0) == []
    assert AuditLog(log.path.with_name("none.jsonl")).tail() == []


def test_a_bad_line_is_skipped_and_counted(log):
    log.record("sign-in", "alice")
    with open(log.path, "ab") as handle:
        handle.write(b'{"half": \n\xff\xfe not utf-8\n[1, 2]\n\n')
    log.record("sign-out", "alice")
    entries = log.tail()
    assert [e["event"] for e in entries] == ["sign-out", "sign-in"] and entries.skipped == 3


def test_tail_reads_only_the_end_of_a_large_file(log):
    log.path.parent.mkdir(parents=True)
    with open(log.path, "wb") as handle:
        handle.write(b"not json at all\n" * 2000)               # would be counted if it were read
        for index in range(4000):                            # ~1 MB of entries after it
            handle.write(json.dumps({"event": "export", "user": f"u{index}", "details": {"pad": "y" * 200}})
                         .encode() + b"\n")
    entries = log.tail(500)
    assert len(entries) == 500 and entries.skipped == 0 and entries[0]["user"] == "u3999"


def _append(path, worker: int, count: int, barrier) -> None:
    log = AuditLog(path)
    barrier.wait()
    for index in range(count):
        log.record("export", f"w{worker}", index=index, pad="z" * (index % 300))


def test_processes_appending_at_once_keep_every_line_whole(log):
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(4)
    processes = [context.Process(target=_append, args=(log.path, w, 250, barrier)) for w in range(4)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(120)
    assert [p.exitcode for p in processes] == [0] * 4
    entries = lines(log)                                     # every line parses
    assert len(entries) == 1000
    for worker in range(4):                                  # each writer's lines, complete and in order
        assert [e["details"]["index"] for e in entries if e["user"] == f"w{worker}"] == list(range(250))
