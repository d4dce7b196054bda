"""One release per request (dashboard/release.py): whatever is published meanwhile, every
thread working for a pinned release reads that release's file, and a release is closed only
when nobody holds it."""
from __future__ import annotations

import os
import shutil
import threading

import duckdb
import pytest

from dashboard.release import Releases


@pytest.fixture
def served(dashboard_env, monkeypatch, tmp_path):
    path = tmp_path / "served.duckdb"
    shutil.copyfile(dashboard_env["scored"], path)
    monkeypatch.setenv("WAREHOUSE_URL", str(path))
    return path


def publish_smaller(served, tmp_path) -> None:
    """A new warehouse renamed over the served one, as the ETL does: one customer type fewer."""
    staged = tmp_path / "staged.duckdb"
    shutil.copyfile(served, staged)
    with duckdb.connect(str(staged)) as con:
        con.execute("DELETE FROM sessions WHERE customer_segment = 1")
    os.replace(staged, served)


def sessions(release) -> int:
    return int(release.connection().table("sessions").count().execute())


def test_another_thread_of_a_pinned_release_reads_its_file_not_the_new_one(served, tmp_path):
    holder = Releases()
    release = holder.current(pin=True)
    before = sessions(release)
    publish_smaller(served, tmp_path)
    seen = {}
    worker = threading.Thread(target=lambda: seen.update(n=sessions(release)))   # its first connection
    worker.start()
    worker.join()
    assert seen["n"] == before
    newer = holder.current(pin=True)
    assert newer is not release and sessions(newer) < before


def test_a_release_is_closed_only_when_no_request_holds_it(served, tmp_path):
    holder = Releases()
    first = holder.current(pin=True)
    publish_smaller(served, tmp_path)
    second = holder.current(pin=True)        # opening the new one must not close the pinned old one
    assert not first.closed and sessions(first) > sessions(second)
    holder.unpin(first)
    assert first.closed and not second.closed
    holder.unpin(second)
    assert not second.closed                 # the one published now stays open for the next request
    assert holder.current() is second


def test_many_threads_racing_a_publish_each_see_one_whole_release(served, tmp_path):
    holder = Releases()
    counts, errors = [], []

    def request() -> None:
        try:
            release = holder.current(pin=True)
            try:
                counts.append((release.version, sessions(release), sessions(release)))
            finally:
                holder.unpin(release)
        except Exception as exc:  # noqa: BLE001 - the test reports every failure
            errors.append(exc)

    threads = [threading.Thread(target=request) for _ in range(16)]
    for i, thread in enumerate(threads):
        thread.start()
        if i == 8:
            publish_smaller(served, tmp_path)
    for thread in threads:
        thread.join()
    assert errors == []
    assert all(a == b for _, a, b in counts)                              # no request saw two files
    by_version = {}
    for version, n, _ in counts:
        assert by_version.setdefault(version, n) == n                     # one answer per release
