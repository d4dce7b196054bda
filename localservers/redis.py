"""A throw-away Redis (Debian's ``redis-server``) on 127.0.0.1 and a free port.

    with RedisServer() as redis:      # redis.url == "redis://127.0.0.1:<port>/0"
        ...
        redis.stop()                  # Redis goes away mid-run (SIGKILL: an outage, not a shutdown)
        redis.start()                 # and comes back, empty, on the same port

Nothing is persisted (no RDB snapshots, no append-only file): a restart is an empty cache, as
after a real Redis restart without persistence. Protected mode is off because the server binds
only to loopback (protected mode would refuse nothing here, but its "DENIED" replies on other
set-ups are a known surprise). Its folder (config, log, working dir) is removed at the end.
"""
from __future__ import annotations

import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from localservers import find_binary, free_port, tail, wait_for_port


class RedisServer:
    def __init__(self, folder: Path | None = None, port: int | None = None) -> None:
        self.binary = find_binary("redis-server", "redis-server")   # ServerMissing first: nothing to clean
        self._own_folder = folder is None
        self.folder = Path(tempfile.mkdtemp(prefix="redis-")) if folder is None else folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.log = self.folder / "redis.log"
        self.config = self.folder / "redis.conf"
        self.config.write_text("\n".join([
            "bind 127.0.0.1",
            f"port {self.port}",
            "protected-mode no",
            "daemonize no",
            'save ""',
            "appendonly no",
            f"dir {self.folder}",
            f"logfile {self.log}",
            "databases 1",
            # a cache: evict the least recently used entry rather than refuse writes when full
            "maxmemory 256mb",
            "maxmemory-policy allkeys-lru",
        ]) + "\n")
        self.process: subprocess.Popen | None = None

    def start(self) -> RedisServer:
        """Start (again) on the same port; returns once it accepts connections."""
        if self.running:
            return self
        self.process = subprocess.Popen([self.binary, str(self.config)], stdout=subprocess.DEVNULL,
                                        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            wait_for_port(self.port, timeout=20, process=self.process, log=self.log)
        except RuntimeError:
            self.stop()
            raise
        return self

    def stop(self, graceful: bool = False) -> None:
        """Take Redis away: SIGKILL by default (clients see connections reset, as in a crash),
        SIGTERM with ``graceful``."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM if graceful else signal.SIGKILL)
            try:
                self.process.wait(10)
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

    def __enter__(self) -> RedisServer:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(self, *exc) -> None:
        self.close()
