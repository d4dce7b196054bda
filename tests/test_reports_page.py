"""The Reports page and its file route: each role and scope sees and opens only the reports made
for it (a viewer never an analyst's report with customer rows), through the real request gate;
"Build now" and the delivery details are for administrators, in the layout and the callback."""
from __future__ import annotations

import re

import flask
import pytest

from dashboard.auth.identity import Identity, Role, parse_scope
from dashboard.reports.archive import Archive, Delivery
from tests.report_standin import HTML_MARKER, standin_report
from tests.test_admin_pages import PASSWORD, as_user, make_app, text_of, triggered

ADMIN = Identity("root", Role.ADMIN)
VIEWER = Identity("vic", Role.VIEWER)
ANALYST = Identity("ana", Role.ANALYST)
PREMIUM_VIEWER = Identity("bob", Role.VIEWER, parse_scope(["service_tier=premium"]))


@pytest.fixture
def app(monkeypatch, tmp_path):
    monkeypatch.setenv("REPORTS_DIR", str(tmp_path / "reports"))
    for name in ("REPORT_SCHEDULE", "REPORT_RECIPIENTS", "REPORT_ROLE", "REPORT_LANG", "SMTP_URL"):
        monkeypatch.delenv(name, raising=False)
    app = make_app(monkeypatch, tmp_path)
    from dashboard.pages.reports import install_routes

    install_routes(app.server, "/")
    users = app.server.extensions["shopper_auth"].users
    users.add("vic", Role.VIEWER, parse_scope([]), PASSWORD)
    users.add("ana", Role.ANALYST, parse_scope([]), PASSWORD)
    return app


@pytest.fixture
def reports(app):
    archive = Archive()
    made = {"viewer": standin_report(archive, role="viewer"),
            "analyst": standin_report(archive, role="analyst"),
            "premium": standin_report(archive, role="viewer", scope=["service_tier=premium"])}
    archive.record_delivery(made["viewer"].id, Delivery("ana@shop.example", "sent", 1, sent_at=made["viewer"].created))
    archive.record_delivery(made["viewer"].id, Delivery("bob@shop.example", "pending", 2,
                                                        last_error="ConnectionRefusedError: [Errno 111] refused",
                                                        next_attempt=made["viewer"].created))
    return made


OPENS = {"root": {"viewer", "analyst", "premium"}, "ana": {"viewer", "analyst", "premium"},
         "vic": {"viewer", "premium"}, "bob": {"premium"}}


def signed_in(app, name: str):
    client = app.server.test_client()
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").get_data(as_text=True)).group(1)
    assert client.post("/login", data={"username": name, "password": PASSWORD, "csrf_token": token,
                                       "next": "/"}).status_code == 302
    return client


def test_may_open_follows_role_and_scope(reports):
    from dashboard.pages.reports import may_open

    for identity in (ADMIN, ANALYST, VIEWER, PREMIUM_VIEWER):
        assert {k for k, m in reports.items() if may_open(identity, m)} == OPENS[identity.name], identity.name
    wider = Identity("w", Role.VIEWER, parse_scope(["service_tier=premium,standard"]))
    other_column = Identity("c", Role.VIEWER, parse_scope(["top_category=Kitchenware"]))
    assert may_open(wider, reports["premium"]) and not may_open(wider, reports["viewer"])
    assert not may_open(other_column, reports["premium"]) and not may_open(None, reports["viewer"])


@pytest.mark.parametrize("name", sorted(OPENS))
def test_the_route_opens_only_what_the_role_and_scope_allow(app, reports, name):
    client = signed_in(app, name)
    for key, manifest in reports.items():
        html, pdf = client.get(f"/reports/{manifest.id}/html"), client.get(f"/reports/{manifest.id}/pdf")
        if key in OPENS[name]:
            assert html.status_code == 200 and html.mimetype == "text/html" and HTML_MARKER in html.get_data(as_text=True)
            assert pdf.status_code == 200 and pdf.mimetype == "application/pdf" and pdf.data.startswith(b"%PDF")
            assert pdf.headers["Content-Disposition"].startswith("attachment; filename=shopper-insights-report-")
            assert "no-store" in html.headers["Cache-Control"]
        else:
            assert (html.status_code, pdf.status_code) == (403, 403), key
            assert HTML_MARKER not in html.get_data(as_text=True) and b"%PDF" not in pdf.data


def test_crafted_paths_get_404_and_no_session_goes_to_the_login(app, reports):
    anonymous = app.server.test_client()
    answer = anonymous.get(f"/reports/{reports['viewer'].id}/html")
    assert answer.status_code == 302 and "/login" in answer.headers["Location"]
    client = signed_in(app, "root")
    for path in (f"/reports/{reports['viewer'].id}/exe", "/reports/20990101T000000Z-0000/html",
                 "/reports/%2E%2E/html", "/reports/.hidden/pdf", f"/reports/{reports['viewer'].id}/manifest"):
        assert client.get(path).status_code == 404, path
    # a slash in the id is not this route's: the app's own not-found page, no file
    answer = client.get("/reports/..%2F..%2Fstate/users.json/html")
    assert "secret" not in answer.get_data(as_text=True) and b"scrypt" not in answer.data


def test_opening_an_analyst_report_is_audited_as_an_export(app, reports):
    client = signed_in(app, "ana")
    assert client.get(f"/reports/{reports['analyst'].id}/pdf").status_code == 200
    assert client.get(f"/reports/{reports['viewer'].id}/pdf").status_code == 200
    exports = [e for e in app.server.extensions["shopper_auth"].audit.tail() if e["event"] == "export"]
    assert len(exports) == 1 and exports[0]["user"] == "ana"
    assert exports[0]["details"] == {"page": "/reports", "format": "pdf", "report": reports["analyst"].id,
                                     "role": "analyst"}


@pytest.mark.parametrize("identity", [VIEWER, ANALYST, PREMIUM_VIEWER], ids=lambda i: i.name)
def test_the_page_lists_what_each_user_may_open_without_admin_controls(app, reports, identity):
    from dashboard.pages import reports as page

    context = as_user(app, identity)
    try:
        shown = text_of(page.layout())
        assert "response_cache_key" not in flask.g
        answer = triggered(page.update, f"{page.BUILD}.n_clicks", 1, None, "analyst", "en", True)
    finally:
        context.pop()
    listed = {key for key, m in reports.items() if m.id in shown}
    assert listed == OPENS[identity.name]
    assert page.BUILD not in shown and "Build now" not in shown and page.P not in shown
    assert "bob@shop.example" not in shown and "ConnectionRefusedError" not in shown   # admins' details
    if "viewer" in listed:
        assert "1 pending, 1 sent" in shown
    assert answer == (page.REFUSED, True, None, None, True)
    state_dir = app.server.extensions["shopper_auth"].config.state_dir
    assert not (state_dir / "report-build.json").exists()


def test_an_admin_sees_every_report_the_delivery_errors_and_the_build_controls(app, reports, monkeypatch):
    from dashboard.pages import reports as page

    monkeypatch.setenv("REPORT_RECIPIENTS", "ana@shop.example")
    context = as_user(app, ADMIN)
    try:
        shown = text_of(page.layout())
        assert "response_cache_key" not in flask.g
    finally:
        context.pop()
    assert all(m.id in shown for m in reports.values())
    assert "Build now" in shown and page.STATUS in shown and "No report built from here yet" in shown
    assert "bob@shop.example" in shown and "ConnectionRefusedError: [Errno 111] refused" in shown
    assert "Abandonment rate: 88.2%" in shown and "Activity declined: 38.1%" in shown and "Customers: 1,296" in shown
    assert "0 7 * * 1" in shown and "ana@shop.example" in shown      # the schedule card
    assert f"/reports/{reports['analyst'].id}/pdf" in shown


def test_build_now_refuses_a_second_build_while_one_runs(app, reports):
    from dashboard.pages import reports as page
    from dashboard.reports import jobs

    state_dir = app.server.extensions["shopper_auth"].config.state_dir
    context = as_user(app, ADMIN)
    try:
        with jobs.holding(state_dir) as taken:   # a scheduled build holds the lock
            assert taken
            status, poll_off, note, listing, disabled = triggered(page.update, f"{page.BUILD}.n_clicks", 1, None,
                                                                  "viewer", "en", False)
        assert "being built already" in text_of(note) and poll_off is False and disabled is True
        assert "A scheduled report is being built now" in text_of(status) and reports["analyst"].id in text_of(listing)
        _, poll_off, note, _, disabled = triggered(page.update, f"{page.POLL}.n_intervals", None, 3,
                                                   "viewer", "en", False)
        assert (poll_off, note, disabled) == (True, None, False)
    finally:
        context.pop()


def test_an_empty_archive_says_how_to_make_a_report(app):
    from dashboard.pages import reports as page

    context = as_user(app, VIEWER)
    try:
        shown = text_of(page.layout())
    finally:
        context.pop()
    assert "No reports yet" in shown and "python -m dashboard report" in shown


def test_the_page_is_registered_for_everyone(app):
    import dash

    registry = {p["path"]: p for p in dash.page_registry.values()}
    assert registry["/reports"]["name"] == "Reports" and registry["/reports"]["order"] == 7
    assert not registry["/reports"].get("admin")


def _wait_for_build(state_dir, seconds: float = 300):
    import time

    from dashboard.reports import jobs

    deadline = time.monotonic() + seconds
    while (found := jobs.status(state_dir)).running:
        assert time.monotonic() < deadline, found.log_tail
        time.sleep(0.3)
    return found


def test_build_now_builds_a_real_report_in_its_own_process_with_progress(app, monkeypatch, tmp_path, dashboard_data):
    from dashboard.pages import reports as page
    from dashboard.reports.render import chromium

    if chromium() is None:
        pytest.skip("headless Chromium is not installed (make test installs it)")
    # what the child process inherits, as from the server's environment
    monkeypatch.setenv("WAREHOUSE_URL", dashboard_data["scored"])
    monkeypatch.setenv("MODELS_DIR", str(dashboard_data["models"]))
    state = app.server.extensions["shopper_auth"]
    context = as_user(app, ADMIN)
    try:
        status, poll_off, note, _, disabled = triggered(page.update, f"{page.BUILD}.n_clicks", 1, None,
                                                        "analyst", "ru", False)
        assert "Build started" in text_of(note) and poll_off is False and disabled is True
        done = _wait_for_build(state.config.state_dir)
        status, poll_off, _, listing, disabled = triggered(page.update, f"{page.POLL}.n_intervals", None, 9,
                                                           "analyst", "ru", False)
    finally:
        context.pop()
    assert done.outcome == "succeeded" and done.user == "root", done.log_tail
    assert any("printing the PDF" in line for line in done.log_tail)             # its progress, shown
    (report,) = Archive().list()
    assert (report.role, report.lang, report.trigger, report.deliveries) == ("analyst", "ru", "page", [])
    assert done.report == report.id and report.id in text_of(listing) and report.id in text_of(status)
    assert (poll_off, disabled) == (True, False) and "Last build succeeded" in text_of(status)
    phases = [e["details"].get("phase") for e in state.audit.tail() if e["event"] == "report"]
    assert phases == ["finished", "started"]
