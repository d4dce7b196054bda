"""``python -m dashboard users ...`` run as a real process: passwords from stdin only, exit codes,
one-line errors, and an audit line for every change."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dashboard.auth.identity import Role
from dashboard.auth.users import UserStore

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "a long enough password"


@pytest.fixture
def env(tmp_path) -> dict:
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("AUTH", "OIDC_", "SECRET_KEY", "ANONYMOUS_ROLE", "HOST", "STATE_DIR"))}
    return {**clean, "STATE_DIR": str(tmp_path / "state"), "HOST": "127.0.0.1"}


def run(env: dict, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dashboard", *args], input=stdin, capture_output=True,
                          text=True, env=env, cwd=ROOT, timeout=60)


def audit(env: dict) -> list[dict]:
    path = Path(env["STATE_DIR"]) / "audit.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def store(env: dict) -> UserStore:
    return UserStore(Path(env["STATE_DIR"]) / "users.json")


def assert_one_line_error(result: subprocess.CompletedProcess, code: int, text: str) -> None:
    assert result.returncode == code, result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr and text in result.stderr, result.stderr


def test_add_list_change_and_remove_with_an_audit_line_each(env):
    added = run(env, "users", "add", "alice", "--role", "analyst", "--scope", "service_tier=premium",
                stdin=PASSWORD + "\nignored second line\n")
    assert added.returncode == 0, added.stderr
    assert store(env).verify("alice", PASSWORD).role is Role.ANALYST
    assert run(env, "users", "add", "bob", "--role", "viewer", stdin=PASSWORD + "\r\n").returncode == 0
    assert store(env).verify("bob", PASSWORD) is not None           # the line ending is not part of it

    listed = run(env, "users", "list")
    assert listed.returncode == 0
    header, first, second = listed.stdout.splitlines()
    assert header.split() == ["NAME", "ROLE", "SCOPE", "UPDATED"]
    assert first.split()[:3] == ["alice", "analyst", "service_tier=premium"] and second.split()[:3] == ["bob", "viewer", "-"]
    assert header.index("ROLE") == first.index("analyst") == second.index("viewer")   # aligned columns

    assert run(env, "users", "set-role", "alice", "--role", "admin").returncode == 0
    assert store(env).get("alice").scope.text() == ["service_tier=premium"]   # no --scope: kept
    assert run(env, "users", "set-role", "alice", "--role", "admin", "--scope", "customer_segment=2").returncode == 0
    assert store(env).get("alice").scope.text() == ["customer_segment=2"]
    assert run(env, "users", "set-role", "alice", "--role", "admin", "--unscoped").returncode == 0
    assert store(env).get("alice").scope.unrestricted
    assert run(env, "users", "set-password", "bob", stdin="a new password!\n").returncode == 0
    assert store(env).verify("bob", "a new password!") is not None and store(env).verify("bob", PASSWORD) is None
    assert run(env, "users", "remove", "bob").returncode == 0
    assert store(env).get("bob") is None

    events = audit(env)
    assert [e["event"] for e in events] == ["user-added", "user-added", "user-changed", "user-changed",
                                            "user-changed", "password-set", "user-removed"]
    assert all(e["user"].startswith("cli:") and e["ip"] is None for e in events)
    assert events[0]["details"] == {"target": "alice", "role": "analyst", "scope": ["service_tier=premium"]}
    assert events[3]["details"]["scope"] == [["service_tier=premium"], ["customer_segment=2"]]
    assert PASSWORD not in (Path(env["STATE_DIR"]) / "audit.jsonl").read_text()


def test_a_password_is_never_taken_from_the_command_line(env):
    for args in (["users", "add", "carol", "--role", "viewer", "--password", "secret-password-1"],
                 ["users", "add", "carol", "secret-password-1", "--role", "viewer"],
                 ["users", "set-password", "carol", "secret-password-1"]):
        result = run(env, *args, stdin=PASSWORD + "\n")
        assert_one_line_error(result, 2, "never from the command line")
        assert "secret-password-1" not in result.stderr + result.stdout     # not echoed either
    assert store(env).list() == [] and audit(env) == []


@pytest.mark.parametrize("args, stdin, code, message", [
    (["users", "add", "carol", "--role", "viewer"], "", 2, "no password on stdin"),
    (["users", "add", "carol", "--role", "viewer"], "short\n", 2, "10 to 1024"),
    (["users", "add", "carol", "--role", "boss"], PASSWORD, 2, "a role is one of"),
    (["users", "add", "car ol", "--role", "viewer"], PASSWORD, 2, "user name is 1 to 64"),
    (["users", "add", "carol", "--role", "viewer", "--scope", "region=north"], PASSWORD, 2, "scope column"),
    (["users", "add", "carol"], PASSWORD, 2, "--role"),
    (["users"], "", 2, "required"),
    ([], "", 2, "required"),
    (["users", "frobnicate"], "", 2, "invalid choice"),
    (["users", "remove", "nobody"], "", 1, "no user 'nobody'"),
    (["users", "set-password", "nobody"], PASSWORD, 1, "no user 'nobody'"),
    (["users", "set-role", "nobody", "--role", "admin"], "", 1, "no user 'nobody'"),
    (["users", "set-role", "x", "--role", "admin", "--scope", "customer_segment=2", "--unscoped"], "", 2,
     "not allowed with"),
])
def test_bad_usage_exits_2_and_refusals_exit_1_with_one_line(env, args, stdin, code, message):
    assert_one_line_error(run(env, *args, stdin=stdin), code, message)
    assert store(env).list() == [] and audit(env) == []


def test_an_existing_user_is_refused_before_a_password_is_read(env):
    assert run(env, "users", "add", "alice", "--role", "viewer", stdin=PASSWORD).returncode == 0
    result = run(env, "users", "add", "alice", "--role", "admin")          # no stdin at all
    assert_one_line_error(result, 1, "user 'alice' already exists")
    assert store(env).get("alice").role is Role.VIEWER and len(audit(env)) == 1


def test_store_problems_are_one_line_exit_2_and_the_servers_key_is_not_needed(env, tmp_path):
    # managing users needs the folder only, not the server's SECRET_KEY
    local = {**env, "AUTH": "local"}
    assert run(local, "users", "add", "alice", "--role", "admin", stdin=PASSWORD).returncode == 0
    assert (Path(env["STATE_DIR"]) / "users.json").exists()
    (Path(env["STATE_DIR"]) / "users.json").write_text("{broken")
    result = run(local, "users", "list")
    assert_one_line_error(result, 2, "users.json: not valid JSON")


def test_an_empty_store_lists_nothing_and_says_how_to_start(env):
    result = run(env, "users", "list")
    assert result.returncode == 0 and result.stdout == "" and "users add NAME --role admin" in result.stderr


def test_the_parser_takes_more_command_groups():
    from dashboard import cli

    def register_echo(sub) -> None:
        echo = sub.add_parser("echo")
        echo.add_argument("word")
        echo.set_defaults(func=lambda args: print(args.word) or 0)

    cli.COMMANDS.append(register_echo)
    try:
        assert cli.main(["echo", "hello"]) == 0
    finally:
        cli.COMMANDS.remove(register_echo)
