"""The filesystem cache of one host, bounded without counting its files on every write.

flask-caching's ``FileSystemCache`` (cachelib) keeps the number of entries in a count file that
every ``set`` reads and rewrites (two more file operations: 0.55 ms a write instead of 0.12 ms
for a 30 kB answer on this machine), so it can prune once the threshold is passed. A filter
change nobody asked for before writes its answer and several query results, so that count was
a measurable part of its cost. Here cachelib keeps no count (threshold 0) and the bound is
checked now and then instead: every :attr:`PrunedFileSystemCache.check_every`-th write of a
process lists the folder and, above ``limit`` entries, removes the expired ones and then the
oldest, down to nine tenths of the limit. Between two checks the folder can pass the limit by
at most that many writes per process, which is what a bound on disk use needs.
"""
from __future__ import annotations

import itertools
import os
import time
from typing import Any

from flask import Flask
from flask_caching.backends.filesystemcache import FileSystemCache


class PrunedFileSystemCache(FileSystemCache):
    check_every = 200        # writes of one process between two looks at the folder's size

    def __init__(self, cache_dir: str, limit: int = 5000, **kwargs: Any) -> None:
        super().__init__(cache_dir, threshold=0, **kwargs)
        self.limit = limit
        self._writes = itertools.count(1)

    @classmethod
    def factory(cls, app: Flask, config: dict[str, Any], args: list[Any], kwargs: dict[str, Any]):
        args.insert(0, config["CACHE_DIR"])
        kwargs.update(limit=config["CACHE_THRESHOLD"], hash_method=config["CACHE_FILE_HASH_METHOD"])
        return cls(*args, **kwargs)

    def set(self, key: str, value: Any, timeout: int | None = None, mgmt_element: bool = False) -> bool:
        done = super().set(key, value, timeout, mgmt_element)
        if next(self._writes) % self.check_every == 0:
            self.prune_if_full()
        return done

    def prune_if_full(self) -> int:
        """Above ``limit`` entries: remove the expired ones, then the oldest written, down to
        nine tenths of it; returns how many entries are left. Files another worker removes
        meanwhile are skipped."""
        names = list(self._list_dir())
        if len(names) <= self.limit:
            return len(names)
        self._remove_expired(time.time())
        written = []
        for name in self._list_dir():
            try:
                written.append((os.stat(name).st_mtime, name))
            except FileNotFoundError:
                continue
        keep = int(self.limit * 0.9)
        for _mtime, name in sorted(written)[:max(0, len(written) - keep)]:
            try:
                os.remove(name)
            except FileNotFoundError:
                pass
        return min(len(written), keep)
