"""Making a write survive a power cut: fsync a file's bytes or a folder's entries.

A file written then renamed into place is only durable once its bytes and the folder that
names it are both on disk; every writer that renames (the Spark backend's releases, the user
store, the dashboard's held sessions) calls this on each.
"""
from __future__ import annotations

import os
from pathlib import Path


def fsync_path(path: Path) -> None:
    """The bytes of file ``path``, or the entries of folder ``path`` (files created or renamed
    in it), on disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
