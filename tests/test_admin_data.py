""""Refresh data now": administrators only, one at a time, a real `python -m etl refresh` in a
child process whose progress and outcome the page shows and the audit log keeps."""
from __future__ import annotations

import time

import duckdb
import pytest

from dashboard.auth.identity import Identity, Role
from tests.test_admin_pages import as_user, make_app, text_of, triggered

ADMIN = Identity("root", Role.ADMIN)


@pytest.fixture
def app(monkeypatch, tmp_path):
    return make_app(monkeypatch, tmp_path)


def _wait(state_dir, seconds: float = 300):
    from dashboard.refresh_job import status

    deadline = time.monotonic() + seconds
    while (found := status(state_dir)).running:
        assert time.monotonic() < deadline, found.log_tail
        time.sleep(0.5)
    return found


@pytest.mark.parametrize("identity", [Identity("vic", Role.VIEWER), Identity("ana", Role.ANALYST), None])
def test_only_administrators_see_or_start_it(app, identity):
    from dashboard.pages import admin_data as page

    context = as_user(app, identity)
    try:
        assert "Administrators only" in text_of(page.layout())
        assert triggered(page.update, f"{page.CONFIRM}.submit_n_clicks", 1, None) == (page.REFUSED, True, None, True)
        assert not (app.server.extensions["shopper_auth"].config.state_dir / "refresh.json").exists()
    finally:
        context.pop()


@pytest.mark.slow
def test_a_refresh_runs_once_publishes_and_is_audited(app, monkeypatch, tmp_path, generated_raw):
    from dashboard.pages import admin_data as page

    warehouse = tmp_path / "wh.duckdb"
    # what the child process inherits, as from the server's environment
    monkeypatch.setenv("RAW_DIR", str(generated_raw))
    monkeypatch.setenv("WAREHOUSE_URL", str(warehouse))
    monkeypatch.setenv("MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("REFRESH_FAST", "1")
    state = app.server.extensions["shopper_auth"]
    context = as_user(app, ADMIN)
    try:
        assert "No refresh started" in text_of(page.layout())
        view, poll_off, note, _button = triggered(page.update, f"{page.CONFIRM}.submit_n_clicks", 1, None)
        assert poll_off is False and "Refresh started" in text_of(note)
        # a second click while it runs starts nothing
        _view, _off, again, _button = triggered(page.update, f"{page.CONFIRM}.submit_n_clicks", 2, None)
        assert "already running" in text_of(again)
        done = _wait(state.config.state_dir)
        view, poll_off, _, button_off = triggered(page.update, f"{page.POLL}.n_intervals", None, 5)
    finally:
        context.pop()
    assert done.outcome == "succeeded" and done.user == "root", done.log_tail
    assert poll_off is True and button_off is False and "Last refresh succeeded" in text_of(view)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert {s for (s,) in con.execute("SELECT subject FROM model_cards").fetchall()} == {"carts", "customers"}
    events = [(e["event"], e["details"].get("phase")) for e in state.audit.tail(20) if e["event"] == "refresh"]
    assert ("refresh", "started") in events and ("refresh", "finished") in events


@pytest.mark.slow
def test_a_failed_refresh_is_shown_and_publishes_nothing(app, monkeypatch, tmp_path):
    from dashboard.pages import admin_data as page

    empty = tmp_path / "raw"
    (empty / "carts").mkdir(parents=True)
    monkeypatch.setenv("RAW_DIR", str(empty))
    monkeypatch.setenv("WAREHOUSE_URL", str(tmp_path / "wh.duckdb"))
    monkeypatch.setenv("MODELS_DIR", str(tmp_path / "models"))
    state = app.server.extensions["shopper_auth"]
    context = as_user(app, ADMIN)
    try:
        triggered(page.update, f"{page.CONFIRM}.submit_n_clicks", 1, None)
        done = _wait(state.config.state_dir)
        view, _, _, _ = triggered(page.update, f"{page.POLL}.n_intervals", None, 1)
    finally:
        context.pop()
    assert done.outcome == "failed" and done.exit_code == 2
    # the page shows the ETL's own one-line reason
    assert "Last refresh failed" in text_of(view) and "no file matches" in text_of(view)
    assert not (tmp_path / "wh.duckdb").exists()
