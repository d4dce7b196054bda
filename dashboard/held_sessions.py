"""The cart sessions' columns an off-cube selection reads, held once per release and host.

A range on a behaviour that is not a dimension of the cart cube (dashboard/cart_cube.py) is
answered from the sessions themselves with numpy (:func:`dashboard.cart_cube.build_held`).
Those columns are written once per release by one worker of the host as ``.npy`` files in
``CACHE_DIR/held/<release>/`` — streamed from the warehouse in batches of a million rows, in
the narrowest dtype each column's range allows (~16 bytes a session) — and every worker maps
them read-only: the operating system keeps one copy in its page cache for all the workers,
instead of one per worker. At 9.7 M sessions that is 158 MB once per host, and an off-cube
change costs ~170 ms of numpy instead of seconds of SQL (``make bench ROWS=10000000``).

The newest KEEP_RELEASES folders are kept; a folder being mapped by a worker that is still
answering from an older release stays readable after it is removed (the mapping holds it).
A table the numpy path does not model (nulls, odd segment codes) or larger than HOLD_LIMIT is
marked as not held, and the warehouse answers instead.
"""
from __future__ import annotations

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
from dashboard.cache import FileLocks
from dashboard.config import get_config
from dashboard.filters import CART_CUBE_RANGES, CART_RANGE_COLUMNS
from dashboard.release import Release, pinned
from dashboard.source import table
from etl.durability import fsync_path
from etl.schema import SESSIONS

log = logging.getLogger(__name__)

OTHER_BEHAVIOURS = tuple(c for c in CART_RANGE_COLUMNS if c not in CART_CUBE_RANGES)
# Largest sessions table held. Files: ~16 bytes a session, once per host. An off-cube change
# allocates ~32-38 bytes a session while it runs (tracemalloc, 9.7 M sessions), in each worker
# answering one: at 20 M, ~0.3 GB of files and ~0.75 GB per change in flight. Above, the
# warehouse answers.
HOLD_LIMIT = 20_000_000
# keys of cells are built arithmetically from the segment: a wider or negative range of segment
# codes (never seen; 0-based codes) falls back to the warehouse rather than to a huge bincount
MAX_SEGMENT = 1_000
FLAGS = {"added": "items_added", "cart_viewed": "cart_views", "initiated": "checkout_initiated",
         "confirmed": "checkout_confirmed"}
KEEP_RELEASES = 2
BATCH_ROWS = 1_000_000
FORMAT = 2          # of the files: part of the folder's name, so a new layout never reads an old one
COLUMNS = ("customer_segment", "product_details_viewed", "abandoned", *CART_RANGE_COLUMNS, "checkout_confirmed")
NOT_HELD = "not-held"


@dataclass(frozen=True)
class HeldSessions:
    """The session columns an off-cube selection needs, as numpy arrays (one row per session):
    ``key`` is the cube cell (dimensions and outcome in mixed radix ``sizes``, see
    :func:`dashboard.cart_cube._decode`), ``values`` and ``buckets`` the raw counts and bucket
    indices of OTHER_BEHAVIOURS (``widths``: buckets per behaviour), ``items`` items added,
    ``stages`` the funnel stages reached (bit i set: the i-th of FLAGS)."""

    key: np.ndarray
    sizes: tuple[int, ...]          # radix of each dimension in ``key`` (outcome last)
    values: dict[str, np.ndarray]
    buckets: dict[str, np.ndarray]
    widths: dict[str, int]
    items: np.ndarray
    stages: np.ndarray


def held_sessions() -> HeldSessions | None:
    """The pinned release's sessions, mapped from this host's files (written first when no
    worker has yet), or None when the warehouse must answer."""
    release = pinned()
    return release.derived("cart-sessions", lambda: _load(release))


def _load(release: Release) -> HeldSessions | None:
    bins = cart_bins()
    try:
        # every session: held once per release for all users, masked to a scope by the queries
        return load_sessions(table(SESSIONS, scoped=False), bins, folder_for(release, bins))
    except OSError as exc:   # a full or read-only CACHE_DIR: slower answers, not failed ones
        log.warning("off-cube selections are answered by the warehouse: %s", exc)
        return None


def folder_for(release: Release, bins: dict[str, Bins]) -> Path:
    """This release's folder, named by what its files depend on: the warehouse version (hashed:
    a server URL may hold a password), the bins and the cube's layout, so a deploy that changes
    how sessions are bucketed never maps another layout's files."""
    layout = [FORMAT, str(release.version), COLUMNS, CART_CUBE_RANGES,
              {c: list(bins[c].edges) for c in sorted(CART_RANGE_COLUMNS)}]
    name = hashlib.sha256(json.dumps(layout, default=str).encode()).hexdigest()[:24]
    return get_config().cache_dir / "held" / name


def bucket_indices(bins: Bins, values: np.ndarray) -> np.ndarray:
    """:meth:`Bins.expr` in numpy: the first bucket whose upper edge exceeds the value, else the last."""
    return np.minimum(np.searchsorted(np.asarray(bins.edges[1:]), values, side="right"), bins.last).astype(np.int32)


def load_sessions(t: ibis.Table, bins: dict[str, Bins], folder: Path,
                  limit: int = HOLD_LIMIT) -> HeldSessions | None:
    """Map ``folder``'s files, after writing them from ``t`` if no process of this host has.
    One lock for the host's held folders (never removed): writing, pruning and mapping never
    overlap, and the others wait, then map what was written."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    # a host lock even with Redis: the files are this host's, other hosts write their own
    with FileLocks(folder.parent).hold("held"):
        if folder.is_dir():
            try:
                return _map(folder)
            except (OSError, ValueError) as exc:   # files cut short by a crash of the host
                log.warning("the held sessions in %s are unreadable (%s); writing them again", folder, exc)
                shutil.rmtree(folder, ignore_errors=True)
        for left in folder.parent.glob("*.tmp-*"):   # by a writer that died (none runs: the lock)
            shutil.rmtree(left, ignore_errors=True)
        _write(t, bins, folder, limit)
        _prune(folder)
        return _map(folder)


def _map(folder: Path) -> HeldSessions | None:
    meta = json.loads((folder / "meta.json").read_text())
    if meta.get(NOT_HELD):
        return None

    def column(name: str) -> np.ndarray:
        array = np.load(folder / f"{name}.npy", mmap_mode="r")
        if array.shape != (meta["rows"],):
            raise ValueError(f"{name}.npy holds {array.shape[0]} rows, not {meta['rows']}")
        return array

    return HeldSessions(column("key"), tuple(meta["sizes"]), {c: column(f"value-{c}") for c in OTHER_BEHAVIOURS},
                        {c: column(f"bucket-{c}") for c in OTHER_BEHAVIOURS}, meta["widths"], column("items"),
                        column("stages"))


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
    temporary.mkdir(mode=0o700)   # every session of every customer type: readable by this user only
    try:
        if reason:
            meta = {NOT_HELD: reason}
        else:
            meta = _write_columns(t, bins, temporary, n, (int(segments[1]) + 1 if n else 1, 2,
                                                           *(bins[c].last + 1 for c in CART_CUBE_RANGES), 2), stats)
        (temporary / "meta.json").write_text(json.dumps(meta))
        for path in (*temporary.iterdir(), temporary):   # on disk before the name says complete
            fsync_path(path)
        os.rename(temporary, folder)
        fsync_path(folder.parent)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise


def _write_columns(t: ibis.Table, bins: dict[str, Bins], temporary: Path, n: int, sizes: tuple[int, ...],
                   stats: dict) -> dict:
    """The .npy files in ``temporary``; returns what meta.json says of them."""
    def narrowest(column: str) -> np.dtype:
        return np.result_type(np.min_scalar_type(stats[f"{column}__min"] or 0),
                              np.min_scalar_type(stats[f"{column}__max"] or 0))

    dtypes = {"key": np.int32 if math.prod(sizes) < 2**31 else np.int64, "items": narrowest("items_added"),
              **{f"value-{c}": narrowest(c) for c in OTHER_BEHAVIOURS},
              **{f"bucket-{c}": np.min_scalar_type(bins[c].last) for c in OTHER_BEHAVIOURS},
              "stages": np.uint8}
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
        stages = np.zeros(len(batch), np.uint8)
        for bit, c in enumerate(FLAGS.values()):
            stages |= (col[c] > 0).astype(np.uint8) << bit
        files["stages"][start:end] = stages
        start = end
    if start != n:
        raise RuntimeError(f"the sessions table gave {start} rows, not {n}")
    for array in files.values():
        array.flush()
    return {"rows": n, "sizes": sizes, "widths": {c: int(bins[c].last) + 1 for c in OTHER_BEHAVIOURS}}


def _prune(newest: Path) -> None:
    """Keep the KEEP_RELEASES most recently written folders (under the host's lock). A worker
    still answering from a removed release keeps reading its mapped files."""
    folders = []
    for path in newest.parent.iterdir():
        try:
            if path.is_dir() and ".tmp-" not in path.name:
                folders.append((path.stat().st_mtime_ns, path))
        except FileNotFoundError:
            continue
    for _time, old in sorted(folders, reverse=True)[KEEP_RELEASES:]:
        if old != newest:
            shutil.rmtree(old, ignore_errors=True)
