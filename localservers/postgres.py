"""A throw-away PostgreSQL from Debian's binaries, for the tests and benchmarks.

    with postgres_server() as server:
        os.environ["WAREHOUSE_URL"] = server.url     # postgres://shopper:…@127.0.0.1:PORT/shopper

``initdb`` in a private temporary folder, the server listening on 127.0.0.1 only (no Unix
socket, password authentication for every connection), fsync off (the data is thrown away),
one login role and a database it owns. The folder is removed when the block ends, also when
it ends with an error. ``initdb`` and ``postgres`` refuse to run as root: as root they run as
the ``postgres`` system user (the folder is handed to it); otherwise as the current user.
"""
from __future__ import annotations

import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from localservers import ServerMissing, find_binary, free_port, skip_or_fail, tail, wait_for_port

PACKAGE = "postgresql"
BIN_DIRS = ("/usr/lib/postgresql/*/bin",)
SERVER_SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "unix_socket_directories": "",      # TCP on loopback only
    "fsync": "off",                     # a test server: speed over durability
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "100",
    "shared_buffers": "128MB",
}


@dataclass(frozen=True)
class PostgresServer:
    port: int
    folder: Path
    url: str = field(repr=False)            # the login role's database (holds its password)
    admin_url: str = field(repr=False)      # the superuser's, for creating more databases

    def new_database(self) -> str:
        """A new empty database with its own owner role; its URL (tests keep apart this way)."""
        return _new_database(self.admin_url, self.port, f"db_{secrets.token_hex(4)}")


def _new_database(admin_url: str, port: int, name: str) -> str:
    """Create role and database ``name`` (generated here, never user input); the role's URL."""
    import psycopg

    password = secrets.token_hex(12)
    with psycopg.connect(admin_url, autocommit=True) as con:
        con.execute(f"CREATE ROLE \"{name}\" LOGIN PASSWORD '{password}'")
        con.execute(f'CREATE DATABASE "{name}" OWNER "{name}"')
    return f"postgres://{name}:{password}@127.0.0.1:{port}/{name}"


def binaries() -> tuple[str, str]:
    """(initdb, postgres); :class:`ServerMissing` names the package when they are absent."""
    return (find_binary("initdb", PACKAGE, *BIN_DIRS), find_binary("postgres", PACKAGE, *BIN_DIRS))


def _as_server_user() -> dict:
    """Popen arguments that run a child as the ``postgres`` user when we are root."""
    if os.geteuid() != 0:
        return {}
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        raise ServerMissing("running as root needs the `postgres` system user (Debian package postgresql)") from None
    return {"user": "postgres", "group": "postgres", "extra_groups": []}


@contextmanager
def postgres_server(timeout: float = 60.0) -> Iterator[PostgresServer]:
    """Start a private PostgreSQL; stop it and remove its folder when the block ends."""
    initdb, postgres = binaries()
    run_as = _as_server_user()
    folder = Path(tempfile.mkdtemp(prefix="shopper-pg-"))
    process = None
    try:
        if run_as:
            shutil.chown(folder, run_as["user"], run_as["group"])
        superuser = secrets.token_hex(16)
        pwfile = folder / "pwfile"
        pwfile.write_text(superuser + "\n")
        if run_as:
            shutil.chown(pwfile, run_as["user"], run_as["group"])
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "HOME": str(folder)}
        made = subprocess.run([initdb, "-D", str(folder / "data"), "-U", "postgres", f"--pwfile={pwfile}",
                               "--auth=scram-sha-256", "-E", "UTF8", "--locale=C", "--no-sync"],
                              capture_output=True, cwd=folder, env=env, **run_as)
        if made.returncode != 0:
            raise RuntimeError(f"initdb failed: {made.stderr.decode(errors='replace')[-2000:]}")
        pwfile.unlink()
        port = free_port()
        log = folder / "server.log"
        options = [arg for name, value in {**SERVER_SETTINGS, "port": str(port)}.items()
                   for arg in ("-c", f"{name}={value}")]
        with open(log, "wb") as out:
            process = subprocess.Popen([postgres, "-D", str(folder / "data"), *options], stdout=out,
                                       stderr=subprocess.STDOUT, cwd=folder, env=env,
                                       start_new_session=True, **run_as)
        wait_for_port(port, timeout=timeout, process=process, log=log)
        admin_url = f"postgres://postgres:{superuser}@127.0.0.1:{port}/postgres"
        _wait_until_ready(admin_url, timeout, process, log)
        yield PostgresServer(port=port, folder=folder, url=_new_database(admin_url, port, "shopper"),
                             admin_url=admin_url)
    finally:
        if process is not None:
            _stop(process)
        shutil.rmtree(folder, ignore_errors=True)


def _wait_until_ready(url: str, timeout: float, process: subprocess.Popen, log: Path) -> None:
    """The port opens before the server accepts sessions ("the database system is starting up")."""
    import psycopg

    deadline = time.monotonic() + timeout
    while True:
        try:
            psycopg.connect(url, connect_timeout=5).close()
            return
        except psycopg.OperationalError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"PostgreSQL did not accept connections: {tail(log)}") from None
            time.sleep(0.1)


def _stop(process: subprocess.Popen) -> None:
    """Fast shutdown (SIGINT: sessions are disconnected), then immediate, then kill."""
    for sig, wait in ((signal.SIGINT, 30), (signal.SIGQUIT, 10), (signal.SIGKILL, 10)):
        if process.poll() is not None:
            return
        try:
            process.send_signal(sig)
            process.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue
        except ProcessLookupError:
            return


def served(pytest) -> Iterator[PostgresServer]:
    """Body of a pytest fixture: a server for the block, skipped (or failed under CI) when
    PostgreSQL is not installed.

        @pytest.fixture(scope="session")
        def postgres():
            yield from served(pytest)
    """
    try:
        binaries()
        _as_server_user()
    except ServerMissing as exc:
        skip_or_fail(pytest, exc)
    with postgres_server() as server:
        yield server
