"""The dashboard as an operable server: /healthz, request ids, bounded log lines, LOG_LEVEL,
request size, 404 for unknown static files. Real app, real warehouse, Flask's test client."""
from __future__ import annotations

import io
import json
import logging
import shutil

import pytest

from dashboard.config import check_log_level
from dashboard.logging_setup import MAX_LINE, BoundedFormatter


@pytest.fixture
def app(dashboard_env):
    from dashboard.app import create_app

    return create_app()


@pytest.fixture
def log_stream(app):
    """What the dashboard's own log handler writes, as text."""
    handler = next(h for h in logging.getLogger().handlers if isinstance(h.formatter, BoundedFormatter))
    stream = io.StringIO()
    old = handler.setStream(stream)
    yield stream
    handler.setStream(old)


# --- /healthz ------------------------------------------------------------------------------


def test_healthz_reports_the_data_and_model_versions(app, dashboard_env):
    import duckdb

    with duckdb.connect(dashboard_env["scored"], read_only=True) as con:
        version = con.execute("SELECT data_version FROM etl_runs ORDER BY finished_at DESC LIMIT 1").fetchone()[0]
    cards = {s: json.loads((dashboard_env["models"] / f"{s}.json").read_text()) for s in ("carts", "customers")}
    response = app.server.test_client().get("/healthz")
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert body["status"] == "ok" and body["data_version"] == version
    for subject, card in cards.items():
        assert body["models"][subject]["model_version"] == card["model_version"]
        assert body["models"][subject]["data_version"] == version and body["models"][subject]["status"] == "current"


def test_healthz_without_models_is_degraded_but_up(dashboard_env, monkeypatch, tmp_path):
    monkeypatch.setenv("WAREHOUSE_URL", dashboard_env["plain"])
    monkeypatch.setenv("MODELS_DIR", str(tmp_path / "no-models"))
    from dashboard.app import create_app

    response = create_app().server.test_client().get("/healthz")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "degraded"
    carts = body["models"]["carts"]
    assert carts["status"] == "missing" and carts["command"] == "python -m etl train"


@pytest.mark.parametrize("kind", ["missing", "corrupt", "empty", "truncated"])
def test_healthz_is_503_when_the_warehouse_cannot_be_read(dashboard_env, monkeypatch, tmp_path, kind, log_stream):
    path = tmp_path / "warehouse.duckdb"
    if kind == "corrupt":
        path.write_bytes(b"this is not a database\x00" * 4096)
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "truncated":
        shutil.copyfile(dashboard_env["scored"], path)
        with open(path, "r+b") as handle:
            handle.truncate(path.stat().st_size // 3)
    monkeypatch.setenv("WAREHOUSE_URL", str(path))
    from dashboard.app import create_app

    response = create_app().server.test_client().get("/healthz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "unavailable" and body["message"]
    assert "Traceback" not in log_stream.getvalue()


def test_healthz_lives_under_the_url_prefix(dashboard_env, monkeypatch):
    monkeypatch.setenv("URL_PREFIX", "/bi/")
    from dashboard.app import create_app

    client = create_app().server.test_client()
    assert client.get("/bi/healthz").status_code == 200
    assert client.get("/healthz").status_code == 404


# --- request ids and the log ---------------------------------------------------------------


def test_every_response_carries_a_request_id(app):
    client = app.server.test_client()
    answers = [client.get("/"), client.get("/healthz"), client.get("/no/such/page"),
               client.get("/_dash-component-suites/nope/x.js"), client.get("/assets/nope.css"),
               client.post("/_dash-update-component", json={"output": "nope"}),
               client.post("/_dash-update-component", data="{", content_type="application/json"),
               client.put("/healthz")]
    ids = [a.headers.get("X-Request-ID") for a in answers]
    assert [a.status_code for a in answers] == [200, 200, 200, 404, 404, 400, 400, 405]
    assert all(i and len(i) == 32 for i in ids) and len(set(ids)) == len(ids)


@pytest.mark.parametrize("incoming,kept", [("abc-123.DEF_9", True), ("a" * 64, True), ("a" * 65, False),
                                           ("bad id", False), ("x;Set-Cookie=a", False), ("", False),
                                           ("../x", False), ("ünïcode", False)])
def test_a_sane_incoming_request_id_is_kept_anything_else_replaced(app, incoming, kept):
    response = app.server.test_client().get("/healthz", headers={"X-Request-ID": incoming})
    assert (response.headers["X-Request-ID"] == incoming) is kept
    assert len(response.headers["X-Request-ID"]) in ((len(incoming),) if kept else (32,))


def test_log_lines_carry_the_request_id(app, log_stream):
    client = app.server.test_client()
    client.get("/")
    response = client.post("/_dash-update-component", json={"output": "nope"},
                           headers={"X-Request-ID": "trace-42"})
    assert response.status_code == 400
    lines = log_stream.getvalue().splitlines()
    assert any("[trace-42]" in line and "WARNING" in line and "refused a callback request" in line for line in lines)


def test_a_20_mb_request_body_never_reaches_the_log(app, log_stream):
    client = app.server.test_client()
    client.get("/")
    huge = "x" * (20 * 1024 * 1024)
    for body in (json.dumps({"output": huge}), json.dumps({"output": "x", "inputs": [huge]}), huge):
        response = client.post("/_dash-update-component", data=body, content_type="application/json")
        assert response.status_code == 413 and response.headers["X-Request-ID"]
    under_limit = json.dumps({"output": "y" * (3 * 1024 * 1024)})
    assert client.post("/_dash-update-component", data=under_limit,
                       content_type="application/json").status_code == 400
    text = log_stream.getvalue()
    assert len(text) < 10 * MAX_LINE and all(len(line) <= MAX_LINE + 60 for line in text.splitlines())


def test_the_formatter_bounds_and_escapes_every_record():
    formatter = BoundedFormatter()
    record = logging.LogRecord("x", logging.WARNING, __file__, 1, "value %s", ("a\nFORGED\x00" + "y" * 20_000_000,),
                               None)
    record.request_id = "-"
    line = formatter.format(record)
    assert len(line) < MAX_LINE + 60 and "\n" not in line and "\\n" in line and "\\x00" in line
    assert line.endswith("more characters cut]") and "19,998," in line
    try:
        raise ValueError("boom " + "z" * 100_000)
    except ValueError:
        import sys

        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    record.request_id = "-"
    assert len(formatter.format(record)) < MAX_LINE + 60
    surrogate = logging.LogRecord("x", logging.INFO, __file__, 1, "%s", ("\ud800",), None)
    surrogate.request_id = "-"
    formatter.format(surrogate).encode("utf-8")  # a lone surrogate would break a UTF-8 stream


def test_log_level_comes_from_the_environment(dashboard_env, monkeypatch):
    from dashboard.app import create_app

    monkeypatch.setenv("LOG_LEVEL", "warning")
    create_app()
    assert logging.getLogger().level == logging.WARNING
    monkeypatch.setenv("LOG_LEVEL", "chatty")
    with pytest.raises(ValueError, match="LOG_LEVEL"):
        create_app()
    assert check_log_level(" debug ") == "DEBUG"
    monkeypatch.delenv("LOG_LEVEL")
    create_app()
    assert logging.getLogger().level == logging.INFO
    handlers = [h for h in logging.getLogger().handlers if isinstance(h.formatter, BoundedFormatter)]
    assert len(handlers) == 1  # a second app in one process replaces the handler, never adds one


# --- static routes -------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/_dash-component-suites/unknown/x.js", "/_dash-component-suites/dash/x.js",
                                  "/_dash-component-suites/os/x.js", "/_dash-component-suites/dash/../../x.js",
                                  "/assets/unknown.js", "/assets/../wsgi.py"])
def test_unknown_static_files_are_404_not_500(app, path, log_stream):
    response = app.server.test_client().get(path)
    assert response.status_code == 404
    assert "Traceback" not in log_stream.getvalue()
