"""The host's filesystem cache stays bounded although it does not count its files per write."""
from __future__ import annotations

import os
import struct
import time

from dashboard.file_cache import PrunedFileSystemCache


def test_the_folder_is_pruned_to_nine_tenths_of_the_limit_keeping_the_newest(tmp_path):
    cache = PrunedFileSystemCache(str(tmp_path), limit=50, default_timeout=3600)
    cache.check_every = 10
    for i in range(200):
        cache.set(f"k{i}", b"x" * 100)
        os.utime(cache._get_filename(f"k{i}"), (i, i))     # written in this order
    files = list(cache._list_dir())
    assert len(files) <= 50 + cache.check_every            # never more than one round over
    assert cache.get("k199") == b"x" * 100                  # the newest are kept
    assert cache.get("k0") is None                          # the oldest are gone


def test_expired_entries_go_first_and_no_count_file_is_written(tmp_path):
    cache = PrunedFileSystemCache(str(tmp_path), limit=5, default_timeout=3600)
    for i in range(4):
        cache.set(f"old{i}", 1)
        with open(cache._get_filename(f"old{i}"), "r+b") as handle:   # expired a minute ago
            handle.write(struct.pack("I", int(time.time()) - 60))
    for i in range(4):
        cache.set(f"new{i}", 2)
    assert cache.prune_if_full() == 4
    assert all(cache.get(f"new{i}") == 2 for i in range(4))
    assert not any(os.path.exists(cache._get_filename(f"old{i}")) for i in range(4))
    assert not any(name.endswith("__wz_cache_count") for name in os.listdir(tmp_path))
