"""Off-cube selections: the numpy path over held session columns gives the very cube the
warehouse path (Ibis) gives, and a too large table keeps the warehouse path."""
from __future__ import annotations

import itertools
import json
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import ibis
import numpy as np
import pytest

from dashboard import cart_cube, held_sessions as held_module
from dashboard.bins import cart_bins
from dashboard.cart_cube import Cube, build, build_held
from dashboard.held_sessions import OTHER_BEHAVIOURS, folder_for, held_sessions, load_sessions
from dashboard.filters import CartFilters, Range
from dashboard.queries import carts
from dashboard.release import pinned
from dashboard.source import table
from etl.schema import SESSIONS

ROOT = Path(__file__).resolve().parents[1]


def rows(columns: dict[str, np.ndarray]) -> tuple[dict, list]:
    """Dtypes and the rows as sorted tuples: the two paths return rows in different orders."""
    names = sorted(columns)
    return {n: columns[n].dtype for n in names}, sorted(zip(*(columns[n].tolist() for n in names)))


def same(a: Cube, b: Cube) -> bool:
    return rows(a.cells) == rows(b.cells) and rows(a.hist) == rows(b.hist)


def warehouse_cube(bounds: dict[str, tuple[int, int | None]]) -> Cube:
    t = table(SESSIONS)
    return build(t, {c: (t[c] >= lo) if hi is None else (t[c] >= lo) & (t[c] <= hi) for c, (lo, hi) in bounds.items()})


BOUNDS = [{"cart_views": (1, 1)}, {"cart_views": (0, 0)}, {"customer_logins": (2, None)},
          {"items_removed": (1, 3), "checkout_initiated": (1, None)},
          {"cart_item_views": (0, 5), "customer_logins": (0, 3), "cart_views": (1, 2)},
          {"cart_views": (10_000, None)},                        # selects nothing
          dict(zip(OTHER_BEHAVIOURS, itertools.repeat((0, None))))]


@pytest.mark.parametrize("bounds", BOUNDS, ids=lambda b: ",".join(f"{c}{v}" for c, v in b.items()))
def test_held_sessions_give_the_warehouse_cube(dashboard_env, bounds):
    held = held_sessions()
    assert held is not None
    assert same(build_held(held, bounds), warehouse_cube(bounds))


def test_queries_read_the_held_sessions_and_agree_with_the_warehouse(dashboard_env, monkeypatch):
    filters = CartFilters(segments=(1,), ranges=(("items_added", Range(1, 4)), ("cart_views", Range(1, 2.5))))
    held = carts.cart_page(filters)
    monkeypatch.setattr(carts, "held_sessions", lambda: None)     # as above HOLD_LIMIT
    direct = carts.cart_page(filters)
    for name in ("outcomes", "base_outcomes", "by_segment", "by_details", "distributions"):
        assert held[name].equals(direct[name]), name
        assert list(held[name].dtypes) == list(direct[name].dtypes), name


def test_a_table_above_the_limit_is_not_held(dashboard_env, tmp_path):
    t = table(SESSIONS)
    assert load_sessions(t, cart_bins(), tmp_path / "small", limit=0) is None
    assert json.loads((tmp_path / "small" / "meta.json").read_text()) == {"not-held": "larger than HOLD_LIMIT"}
    assert load_sessions(t, cart_bins(), tmp_path / "held") is not None


def columns(held) -> dict:
    return {"key": held.key, "items": held.items, "stages": held.stages, **{f"v{c}": v for c, v in held.values.items()},
            **{f"b{c}": v for c, v in held.buckets.items()}}


def test_the_columns_are_mapped_read_only_in_narrow_types_and_written_once(dashboard_env, tmp_path, monkeypatch):
    t, folder = table(SESSIONS), tmp_path / "held" / "release"
    monkeypatch.setattr(held_module, "BATCH_ROWS", 999)   # several batches: their seams must not show
    first = load_sessions(t, cart_bins(), folder)
    written = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    monkeypatch.setattr(held_module, "BATCH_ROWS", 10**6)
    again = load_sessions(t, cart_bins(), folder)
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == written   # mapped, not rewritten
    whole = load_sessions(t, cart_bins(), tmp_path / "held" / "one-batch")
    for name, array in columns(first).items():
        assert isinstance(array, np.memmap) and not array.flags.writeable, name
        assert np.array_equal(array, columns(again)[name]) and np.array_equal(array, columns(whole)[name]), name
    assert first.key.dtype == np.int32 and first.items.itemsize <= 2
    assert all(v.dtype == np.uint8 for v in first.buckets.values())
    assert first.key.size == t.count().to_pyarrow().as_py()


WORKER = """
import sys, time, zlib
from pathlib import Path
from dashboard import held_sessions as h
from dashboard.bins import cart_bins
from dashboard.source import table
from etl.schema import SESSIONS
write = h._write
def logged(*args):
    with open(sys.argv[2], "a") as log:
        log.write("wrote\\n")
    time.sleep(0.5)
    write(*args)
h._write = logged
held = h.load_sessions(table(SESSIONS), cart_bins(), Path(sys.argv[1]))
print(zlib.crc32(held.key.tobytes()), held.key.size)
"""


def test_worker_processes_of_a_host_write_a_release_once_and_share_it(dashboard_env, tmp_path):
    folder, log = tmp_path / "held" / "release", tmp_path / "writes.log"
    workers = [subprocess.Popen([sys.executable, "-c", WORKER, str(folder), str(log)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, cwd=ROOT) for _ in range(3)]
    answers = [worker.communicate(timeout=120) for worker in workers]
    assert all(worker.returncode == 0 for worker in workers), [err[-2000:] for _out, err in answers]
    assert log.read_text().splitlines() == ["wrote"]        # one writer, under the host's lock
    assert len({out for out, _err in answers}) == 1         # the others mapped the same files


def test_files_cut_short_or_left_by_a_dead_writer_are_written_again(dashboard_env, tmp_path, caplog):
    t, folder = table(SESSIONS), tmp_path / "release"
    first = np.array(load_sessions(t, cart_bins(), folder).key)   # a copy: the file is cut below
    key = folder / "key.npy"
    key.write_bytes(key.read_bytes()[:-8])                   # a crash of the host mid-write
    (tmp_path / "other.tmp-999").mkdir()                     # a writer killed before its rename
    again = load_sessions(t, cart_bins(), folder)
    assert "unreadable" in caplog.text and np.array_equal(again.key, first)
    assert not list(tmp_path.glob("*.tmp-*"))


def test_a_new_bucketing_never_maps_the_old_files(dashboard_env):
    release, bins = pinned(), cart_bins()
    other = {**bins, "cart_views": replace(bins["cart_views"], edges=(*bins["cart_views"].edges[:-1], 10**6))}
    assert folder_for(release, bins) == folder_for(release, dict(bins))
    assert folder_for(release, other) != folder_for(release, bins)


def test_only_the_newest_releases_are_kept(dashboard_env, tmp_path):
    t = table(SESSIONS)
    for name in ("r1", "r2", "r3"):
        load_sessions(t, cart_bins(), tmp_path / name)
        time.sleep(0.01)
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == ["r2", "r3"]


@pytest.mark.parametrize("change, reason", [({"cart_views": None}, "nulls"),
                                            ({"customer_segment": 5000}, "segment codes"),
                                            ({"customer_segment": -1}, "segment codes")])
def test_sessions_the_numpy_path_does_not_model_are_left_to_the_warehouse(dashboard_env, tmp_path, change, reason):
    frame = table(SESSIONS).select(*held_module.COLUMNS).limit(50).to_pandas()
    for column, value in change.items():
        frame[column] = frame[column].astype("float" if value is None else frame[column].dtype)
        frame.loc[3, column] = value
    assert load_sessions(ibis.memtable(frame), cart_bins(), tmp_path / "odd") is None
    assert json.loads((tmp_path / "odd" / "meta.json").read_text()) == {"not-held": reason}


@pytest.mark.parametrize("rows_, space", [(0, 10), (5, 10), (1000, 50), (300, 470_000), (4000, 31_436)])
def test_tally_gives_the_distinct_values_and_counts_by_either_path(rows_, space):
    values = np.random.default_rng(rows_).integers(0, space, rows_)
    expected = np.unique(values, return_counts=True)
    found, counts = cart_cube._tally(values, space)   # a bincount or a sort, by the space
    assert found.tolist() == expected[0].tolist() and counts.tolist() == expected[1].tolist()
    dense = np.bincount(values, minlength=space)
    assert counts.sum() == rows_ and (dense[found] == counts).all()


def test_an_unwritable_cache_folder_leaves_off_cube_selections_to_the_warehouse(dashboard_env, tmp_path, monkeypatch,
                                                                                 caplog):
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the folder should be")
    monkeypatch.setenv("CACHE_DIR", str(blocked))
    assert held_module._load(pinned()) is None
    assert "answered by the warehouse" in caplog.text


def test_a_failed_write_leaves_nothing_behind(dashboard_env, tmp_path, monkeypatch):
    def broken(*args):
        raise OSError("disk full")

    monkeypatch.setattr(held_module, "_write_columns", broken)
    with pytest.raises(OSError, match="disk full"):
        load_sessions(table(SESSIONS), cart_bins(), tmp_path / "release")
    assert [p.name for p in tmp_path.iterdir()] == ["held.lock"]
