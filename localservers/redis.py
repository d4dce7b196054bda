"""A throw-away Redis (Debian's ``redis-server``) on 127.0.0.1 and a free port.

    with RedisServer() as redis:      # redis.url == "redis://:<password>@127.0.0.1:<port>/0"
        ...
        redis.stop()                  # Redis goes away mid-run (SIGKILL: an outage, not a shutdown)
        redis.start()                 # and comes back, empty, on the same port

Nothing is persisted (no RDB snapshots, no append-only file): a restart is an empty cache, as
after a real Redis restart without persistence. Protected mode is off because the server binds
only to loopback and requires a password: the cache holds pickles, which its readers unpickle,
so no other local user may write to it. Its folder (config with the password, log, working
dir) is private (0700) and removed at the end.
"""
from __future__ import annotations

import secrets
import signal
from pathlib import Path

from localservers import LocalServer, find_binary


class RedisServer(LocalServer):
    stop_signal = signal.SIGKILL    # an outage, not a shutdown: clients see connections reset

    def __init__(self, folder: Path | None = None, port: int | None = None) -> None:
        binary = find_binary("redis-server", "redis-server")   # ServerMissing first: nothing to clean
        super().__init__("redis-", folder, port)
        self.password = secrets.token_hex(16)
        self.url = f"redis://:{self.password}@127.0.0.1:{self.port}/0"
        self.log = self.folder / "redis.log"
        self.config = self.folder / "redis.conf"
        self.config.write_text("\n".join([
            "bind 127.0.0.1",
            f"port {self.port}",
            "protected-mode no",
            f"requirepass {self.password}",
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
        self.argv = [binary, str(self.config)]

    def stop(self, graceful: bool = False) -> None:
        """Take Redis away: SIGKILL by default (as in a crash), SIGTERM with ``graceful``."""
        super().stop(signal.SIGTERM if graceful else None)
