"""The cart sessions' columns an off-cube selection reads, held once per release and host.

A range on a behaviour that is not a dimension of the cart cube (dashboard/cart_cube.py) is
answered from the sessions themselves with numpy (:func:`dashboard.cart_cube.build_held`).
Those columns are written once per release by one worker of the host as ``.npy`` files in
``CACHE_DIR/held/<release>/`` — streamed from the warehouse in batches of a million rows, in
the narrowest dtype each column's range allows (~25 bytes a session) — and every worker maps
them read-only: the operating system keeps one copy in its page cache for all the workers,
instead of one per worker. At 10 M sessions that is ~250 MB once per host, and an off-cube
change costs a few hundred milliseconds of numpy instead of seconds of SQL.

The newest KEEP_RELEASES folders are kept; a folder being mapped by a worker that is still
answering from an older release stays readable after it is removed (the mapping holds it).
A table the numpy path does not model (nulls, odd segment codes) or larger than HOLD_LIMIT is
marked as not held, and the warehouse answers instead.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import ibis
import numpy as np

from dashboard.bins import Bins, cart_bins
from dashboard.config import get_config
from dashboard.filters import CART_CUBE_RANGES, CART_RANGE_COLUMNS
from dashboard.release import Release, pinned
from dashboard.source import table
from etl.schema import SESSIONS

log = logging.getLogger(__name__)

OTHER_BEHAVIOURS = tuple(c for c in CART_RANGE_COLUMNS if c not in CART_CUBE_RANGES)
# Largest sessions table held: ~25 bytes a session, so ≤ 1.25 GB of files per host.
HOLD_LIMIT = 50_000_000
# keys of cells are built arithmetically from the segment: a wider or negative range of segment
# codes (never seen; 0-based codes) falls back to the warehouse rather than to a huge bincount
MAX_SEGMENT = 1_000
FLAGS = {"added": "items_added", "cart_viewed": "cart_views", "initiated": "checkout_initiated",
         "confirmed": "checkout_confirmed"}
KEEP_RELEASES = 2
BATCH_ROWS = 1_000_000
FORMAT = 1          # of the files: part of the folder's name, so a new layout never reads an old one
COLUMNS = ("customer_segment", "product_details_viewed", "abandoned", *CART_RANGE_COLUMNS, "checkout_confirmed")
NOT_HELD = "not-held"


@dataclass(frozen=True)
class HeldSessions:
    """The session columns an off-cube selection needs, as numpy arrays (one row per session):
    ``key`` is the cube cell (dimensions and outcome in mixed radix ``sizes``, see
    :func:`dashboard.cart_cube._decode`), ``values`` and ``buckets`` the raw counts and bucket
    indices of OTHER_BEHAVIOURS (``widths``: buckets per behaviour), ``items`` items added,
    ``flags`` the funnel stages reached."""

    key: np.ndarray
    sizes: tuple[int, ...]          # radix of each dimension in ``key`` (outcome last)
    values: dict[str, np.ndarray]
    buckets: dict[str, np.ndarray]
    widths: dict[str, int]
    items: np.ndarray
    flags: dict[str, np.ndarray]


def held_sessions() -> HeldSessions | None:
    """The pinned release's sessions, mapped from this host's files (written first when no
    worker has yet), or None when the warehouse must answer."""
    release = pinned()
    return release.derived("cart-sessions", lambda: _load(release))


def _load(release: Release) -> HeldSessions | None:
    try:
        # every session: held once per release for all users, masked to a scope by the queries
        return load_sessions(table(SESSIONS, scoped=False), cart_bins(), folder_for(release))
    except OSError as exc:   # a full or read-only CACHE_DIR: slower answers, not failed ones
        log.warning("off-cube selections are answered by the warehouse: %s", exc)
        return None


def folder_for(release: Release) -> Path:
    """This release's folder: its warehouse version (hashed: a server URL may hold a password)."""
    name = hashlib.sha256(f"{FORMAT}|{release.version}".encode()).hexdigest()[:24]
    return get_config().cache_dir / "held" / name


def bucket_indices(bins: Bins, values: np.ndarray) -> np.ndarray:
    """:meth:`Bins.expr` in numpy: the first bucket whose upper edge exceeds the value, else the last."""
    return np.minimum(np.searchsorted(np.asarray(bins.edges[1:]), values, side="right"), bins.last).astype(np.int32)


def load_sessions(t: ibis.Table, bins: dict[str, Bins], folder: Path,
                  limit: int = HOLD_LIMIT) -> HeldSessions | None:
    """Map ``folder``'s files, after writing them from ``t`` if no process of this host has
    (one at a time: the others wait on the folder's lock, then map what it wrote)."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.with_name(folder.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not folder.is_dir():
            _write(t, bins, folder, limit)
            _prune(folder)
        return _map(folder)   # under the lock: no other process prunes it meanwhile


def _map(folder: Path) -> HeldSessions | None:
    meta = json.loads((folder / "meta.json").read_text())
    if meta.get(NOT_HELD):
        return None

    def column(name: str) -> np.ndarray:
        return np.load(folder / f"{name}.npy", mmap_mode="r")

    return HeldSessions(column("key"), tuple(meta["sizes"]), {c: column(f"value-{c}") for c in OTHER_BEHAVIOURS},
                        {c: column(f"bucket-{c}") for c in OTHER_BEHAVIOURS}, meta["widths"], column("items"),
                        {m: column(f"flag-{m}") for m in FLAGS})


def _write(t: ibis.Table, bins: dict[str, Bins], folder: Path, limit: int) -> None:
    """The columns as .npy files in a temporary folder renamed to ``folder`` when complete
    (a failure leaves no half-written release), or ``folder`` with only a not-held mark."""
    stats = t.aggregate(n=t.count(), **{f"{c}__nulls": t[c].isnull().sum() for c in COLUMNS},
                        **{f"{c}__min": t[c].cast("int64").min() for c in COLUMNS},
                        **{f"{c}__max": t[c].cast("int64").max() for c in COLUMNS}).to_pyarrow().to_pylist()[0]
    n = int(stats["n"])
    segments = (stats["customer_segment__min"], stats["customer_segment__max"])
    reason = ("larger than HOLD_LIMIT" if n > limit
              # SQL's null semantics (CASE, comparisons, sums) are not reproduced here
              else "nulls" if any(stats[f"{c}__nulls"] for c in COLUMNS)
              else "segment codes" if n and not 0 <= segments[0] <= segments[1] < MAX_SEGMENT
              else None)
    temporary = folder.with_name(f"{folder.name}.tmp-{os.getpid()}")
    shutil.rmtree(temporary, ignore_errors=True)
    temporary.mkdir()
    try:
        if reason:
            (temporary / "meta.json").write_text(json.dumps({NOT_HELD: reason}))
        else:
            _write_columns(t, bins, temporary, n, (int(segments[1]) + 1 if n else 1, 2,
                                                    *(bins[c].last + 1 for c in CART_CUBE_RANGES), 2), stats)
        os.rename(temporary, folder)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise


def _write_columns(t: ibis.Table, bins: dict[str, Bins], temporary: Path, n: int, sizes: tuple[int, ...],
                   stats: dict) -> None:
    def narrowest(column: str) -> np.dtype:
        return np.result_type(np.min_scalar_type(stats[f"{column}__min"] or 0),
                              np.min_scalar_type(stats[f"{column}__max"] or 0))

    dtypes = {"key": np.int32 if math.prod(sizes) < 2**31 else np.int64, "items": narrowest("items_added"),
              **{f"value-{c}": narrowest(c) for c in OTHER_BEHAVIOURS},
              **{f"bucket-{c}": np.min_scalar_type(bins[c].last) for c in OTHER_BEHAVIOURS},
              **{f"flag-{m}": np.bool_ for m in FLAGS}}
    files = {name: np.lib.format.open_memmap(temporary / f"{name}.npy", mode="w+", dtype=dtype, shape=(n,))
             for name, dtype in dtypes.items()}
    start = 0
    for batch in t.select(*COLUMNS).to_pyarrow_batches(chunk_size=BATCH_ROWS):
        col = {c: batch.column(c).to_numpy(zero_copy_only=False) for c in COLUMNS}
        end = start + len(batch)
        buckets = {c: bucket_indices(bins[c], col[c]) for c in CART_RANGE_COLUMNS}
        key = col["customer_segment"].astype(np.int64)
        for part, size in zip((col["product_details_viewed"], *(buckets[c] for c in CART_CUBE_RANGES),
                               col["abandoned"]), sizes[1:]):
            key = key * size + part.astype(np.int64)
        files["key"][start:end] = key
        files["items"][start:end] = col["items_added"]
        for c in OTHER_BEHAVIOURS:
            files[f"value-{c}"][start:end] = col[c]
            files[f"bucket-{c}"][start:end] = buckets[c]
        for m, c in FLAGS.items():
            files[f"flag-{m}"][start:end] = col[c] > 0
        start = end
    if start != n:
        raise RuntimeError(f"the sessions table gave {start} rows, not {n}")
    widths = {c: int(bins[c].last) + 1 for c in OTHER_BEHAVIOURS}
    for array in files.values():
        array.flush()
    (temporary / "meta.json").write_text(json.dumps({"rows": n, "sizes": sizes, "widths": widths}))


def _prune(newest: Path) -> None:
    """Keep the KEEP_RELEASES most recently written folders (and their locks: a process still
    waiting on an old release's lock at worst writes that folder again)."""
    folders = sorted((p for p in newest.parent.iterdir() if p.is_dir() and ".tmp-" not in p.name),
                     key=lambda p: p.stat().st_mtime_ns, reverse=True)
    for old in folders[KEEP_RELEASES:]:
        if old != newest:
            shutil.rmtree(old, ignore_errors=True)
            old.with_name(old.name + ".lock").unlink(missing_ok=True)
