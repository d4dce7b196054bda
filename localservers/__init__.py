"""Throw-away local instances of the servers the product talks to — PostgreSQL, Redis, nginx —
for the tests and benchmarks: real Debian binaries, started on a free loopback port in a
private folder, stopped (and the folder removed) when the block ends. Nothing is mocked.

``make test`` installs the Debian packages (``make server-deps``); when one is missing a test
is skipped on a developer machine and fails under ``CI=true`` (CI may not skip them).
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
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


class LocalServer:
    """One server process on 127.0.0.1:``port`` with its files in ``folder`` (a private
    temporary one unless given; removed by :meth:`close` only when it made it). A subclass
    sets ``argv`` and ``log`` in its ``__init__`` (after calling this one) and may override
    :meth:`check` (run before each start) and ``stop_signal``."""

    stop_signal = signal.SIGTERM

    def __init__(self, prefix: str, folder: Path | None, port: int | None) -> None:
        self._own_folder = folder is None
        self.folder = Path(tempfile.mkdtemp(prefix=prefix)) if folder is None else folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.folder.chmod(0o700)
        self.port = port or free_port()
        self.process: subprocess.Popen | None = None
        self.argv: list[str] = []
        self.log: Path | None = None

    def check(self) -> None:
        """Refuse to start with a clear error (e.g. a config the server rejects)."""

    def start(self):
        """Start (again, on the same port); returns once it accepts connections."""
        if self.running:
            return self
        self.check()
        self.process = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.STDOUT)
        try:
            wait_for_port(self.port, timeout=20, process=self.process, log=self.log)
        except RuntimeError:
            self.stop()
            raise
        return self

    def stop(self, sig: int | None = None) -> None:
        """Stop with ``sig`` (default ``stop_signal``), SIGKILL after 15 s."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(self.stop_signal if sig is None else sig)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self) -> str:
        return tail(self.log)

    def close(self) -> None:
        self.stop()
        if self._own_folder:
            shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(self, *exc) -> None:
        self.close()


def skip_or_fail(pytest, exc: ServerMissing) -> None:
    """In a test: skip on a developer machine, fail in CI (``CI=true``), where the suite must
    prove the real servers work."""
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(str(exc))
    pytest.skip(str(exc))
