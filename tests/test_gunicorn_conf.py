"""gunicorn.conf.py: settings from the environment, and a real gunicorn started with it writes
one access-log line per request with status, duration and the request-id field."""
from __future__ import annotations

import os
import re
import runpy
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "gunicorn.conf.py"
ENV = ("HOST", "PORT", "WORKERS", "LOG_LEVEL", "TIMEOUT", "MAX_REQUESTS", "CONTROL_SOCKET", "AUTH",
       "AUTH_ALLOW_ANONYMOUS", "SECRET_KEY")


def _settings(monkeypatch, **env: str) -> dict:
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("STATE_DIR", env.pop("STATE_DIR", "/tmp/shopper-test-state"))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(CONF))


def test_defaults(monkeypatch):
    s = _settings(monkeypatch)
    assert s["bind"] == ["127.0.0.1:8050"]
    assert s["workers"] == 2 * len(os.sched_getaffinity(0)) + 1
    assert s["loglevel"] == "info" and s["accesslog"] == "-"
    assert s["timeout"] == 60 and s["graceful_timeout"] == 30
    assert s["max_requests"] == 5000 and 0 < s["max_requests_jitter"] < s["max_requests"]
    assert "%({x-request-id}o)s" in s["access_log_format"] and "%(M)s" in s["access_log_format"]
    assert s["control_socket_disable"] is True and s["preload_app"] is False


def test_environment(monkeypatch):
    s = _settings(monkeypatch, HOST="0.0.0.0", PORT="9000", WORKERS="3", LOG_LEVEL="DEBUG", MAX_REQUESTS="0",
                  CONTROL_SOCKET="/tmp/x.ctl", AUTH_ALLOW_ANONYMOUS="1")
    assert s["bind"] == ["0.0.0.0:9000"] and s["workers"] == 3 and s["loglevel"] == "debug"
    assert s["max_requests"] == 0 and s["max_requests_jitter"] == 0
    assert s["control_socket"] == "/tmp/x.ctl" and s["control_socket_disable"] is False


@pytest.mark.parametrize("name, value", [("PORT", "80a"), ("WORKERS", "0"), ("TIMEOUT", "-1")])
def test_a_wrong_value_stops_with_its_name(monkeypatch, name, value):
    with pytest.raises(SystemExit, match=name):
        _settings(monkeypatch, **{name: value})


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "::", "example.internal"])
def test_no_sign_in_on_a_public_address_stops_the_start(monkeypatch, host):
    with pytest.raises(SystemExit, match=f"refusing to serve without sign-in on {re.escape(host)}"):
        _settings(monkeypatch, HOST=host)


@pytest.mark.parametrize("env", [{"AUTH": "local"}, {"AUTH": "proxy", "SECRET_KEY": "k" * 32},
                                 {"AUTH": "oidc", "SECRET_KEY": "k" * 32}, {"AUTH": "ldap"}])
def test_a_sign_in_mode_without_its_settings_stops_the_start(monkeypatch, env):
    with pytest.raises(SystemExit, match="SECRET_KEY|AUTH_PROXY_ADDRESSES|OIDC_ISSUER|AUTH must be"):
        _settings(monkeypatch, HOST="0.0.0.0", **env)


def test_gunicorn_refuses_to_serve_openly_with_one_line(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ENV}
    env.update(HOST="0.0.0.0", PORT="1", STATE_DIR=str(tmp_path / "state"))
    done = subprocess.run([str(Path(sys.executable).parent / "gunicorn"), "-c", str(CONF), "wsgi:server"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "refusing to serve without sign-in on 0.0.0.0" in done.stderr + done.stdout
    assert "Traceback" not in done.stderr + done.stdout


def test_gunicorn_serves_with_it_and_logs_each_request(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k not in ENV}
    env.update(PORT=str(port), WORKERS="1", STATE_DIR=str(tmp_path / "state"), WAREHOUSE_URL=str(tmp_path / "none.duckdb"),
               MODELS_DIR=str(tmp_path / "models"), CACHE_DIR=str(tmp_path / "cache"))
    log = tmp_path / "gunicorn.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(Path(sys.executable).parent / "gunicorn"), "-c", str(CONF), "wsgi:server"],
                                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
                    assert response.status == 200
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(log.read_text()[-2000:]) from None
                time.sleep(0.3)
        # an embed link whose token does not verify: refused, and the token is not logged
        with pytest.raises(urllib.error.HTTPError, match="401"):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/?token=SECRETTOKEN&x=1", timeout=5)
    finally:
        proc.terminate()
        proc.wait(30)
    text = log.read_text()
    assert f"Listening at: http://127.0.0.1:{port}" in text
    assert re.search(r'^127\.0\.0\.1 "GET / HTTP/1\.1" 200 \d+B \d+ms rid=\S+$', text, re.MULTILINE), text[-2000:]
    assert re.search(r'"GET /\?token=…&x=1 HTTP/1\.1" 401 ', text), text[-2000:]
    assert "SECRETTOKEN" not in text   # an embed token is a credential: never in the access log
    assert "Control socket listening" not in text  # not taken from another server on the machine
