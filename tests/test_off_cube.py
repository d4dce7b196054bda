"""Off-cube selections: the numpy path over held session columns gives the very cube the
warehouse path (Ibis) gives, and a too large table keeps the warehouse path."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from dashboard import cart_cube
from dashboard.bins import cart_bins
from dashboard.cart_cube import OTHER_BEHAVIOURS, Cube, build, build_held, held_sessions, load_sessions
from dashboard.filters import CartFilters, Range
from dashboard.queries import carts
from dashboard.source import table
from etl.schema import SESSIONS


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


def test_a_table_above_the_limit_is_not_held(dashboard_env):
    t = table(SESSIONS)
    assert load_sessions(t, cart_bins(), limit=0) is None
    assert load_sessions(t, cart_bins(), limit=cart_cube.HOLD_LIMIT) is not None


@pytest.mark.parametrize("rows_, space", [(0, 10), (5, 10), (1000, 50), (300, 470_000), (4000, 31_436)])
def test_tally_gives_the_distinct_values_and_counts_by_either_path(rows_, space):
    values = np.random.default_rng(rows_).integers(0, space, rows_)
    expected = np.unique(values, return_counts=True)
    found, counts = cart_cube._tally(values, space)   # a bincount or a sort, by the space
    assert found.tolist() == expected[0].tolist() and counts.tolist() == expected[1].tolist()
    dense = np.bincount(values, minlength=space)
    assert counts.sum() == rows_ and (dense[found] == counts).all()
