"""Throw-away local instances of the servers the product talks to — PostgreSQL, Redis, nginx —
for the tests and benchmarks: real Debian binaries, started on a free loopback port in a
private folder, stopped (and the folder removed) when the block ends. Nothing is mocked.

``make test`` installs the Debian packages (``make server-deps``); when one is missing a test
is skipped on a developer machine and fails under ``CI=true`` (CI may not skip them).
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path


class ServerMissing(RuntimeError):
    """A server binary is not installed; the message says which Debian package has it."""


def free_port() -> int:
    """A TCP port nobody listens on now (the OS picks it; a tiny race is accepted in tests)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, *, timeout: float = 30.0, process: subprocess.Popen | None = None,
                  log: Path | None = None) -> None:
    """Return once something accepts connections on 127.0.0.1:``port``; a process that exits
    first, or a timeout, is an error quoting the end of its log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before listening on {port}: {tail(log)}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout:.0f} s: {tail(log)}")


def tail(log: Path | None, lines: int = 15) -> str:
    if log is None or not log.is_file():
        return "(no log)"
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def find_binary(name: str, package: str, *extra_dirs: str) -> str:
    """The path of ``name`` on PATH or in ``extra_dirs`` (Debian keeps PostgreSQL's server
    binaries under /usr/lib/postgresql/<version>/bin)."""
    found = shutil.which(name)
    if found:
        return found
    for folder in extra_dirs:
        for candidate in sorted(Path("/").glob(folder.lstrip("/")), reverse=True):
            if (candidate / name).is_file():
                return str(candidate / name)
    raise ServerMissing(f"{name} is not installed (Debian package {package}; `make server-deps` installs it)")


def skip_or_fail(pytest, exc: ServerMissing) -> None:
    """In a test: skip on a developer machine, fail in CI (``CI=true``), where the suite must
    prove the real servers work."""
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(str(exc))
    pytest.skip(str(exc))
