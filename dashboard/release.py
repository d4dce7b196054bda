"""What one answer is read from: one published warehouse file and the models it names.

A publish (ETL or training) renames a complete new warehouse file over the old one, and the
warehouse holds the cards of the models that scored it (``model_cards``), whose pickles are
in place before the rename. So a warehouse file *is* a release: data, scores and models
switch together.

Each process keeps a :class:`Release` per warehouse version it has seen: the per-thread
read-only connections to that file, its model cards, and whatever is derived from it once
(bins, the cart cube, fitted models). Each request pins the release it touches first
(``flask.g``), so every query, model and figure of one answer comes from the same file,
however many publishes happen meanwhile; an open DuckDB connection keeps reading the file it
opened after a rename. A release no request pins any more and that is not the newest is
closed at the end of the request that let it go.

The holder lives on the Flask app (``app.extensions``); code outside an app (scripts, unit
tests) uses :data:`OUTSIDE_APP`, one holder for the process.
"""
from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import ibis
from flask import Flask, current_app, g, has_app_context, has_request_context

from etl.errors import ETLError
from etl.schema import MODEL_CARDS
from etl.settings import get_settings
from etl.warehouse import connect, duckdb_path

RUN_ETL = "python -m etl run"
RUN_TRAIN = "python -m etl train"
_EXTENSION = "shopper_releases"
_OPEN_ATTEMPTS = 3          # a warehouse replaced while being opened is opened again
_MODELS_KEPT = 4            # fitted models held per process (two subjects x two releases)


class Unavailable(Exception):
    """Data or a model the page needs is missing; ``command`` is what to run to get it."""

    def __init__(self, message: str, command: str) -> None:
        super().__init__(message)
        self.message, self.command = message, command


@dataclass(frozen=True)
class WarehouseVersion:
    url: str
    stamp: str  # inode, mtime and size for DuckDB; the latest ETL run for other backends

    def __str__(self) -> str:
        return f"{self.url}@{self.stamp}"


@dataclass(eq=False)
class Release:
    """One warehouse version: its connections (one per thread), tables and derived values."""

    version: WarehouseVersion
    tables: frozenset[str]
    cards: dict[str, dict]                       # subject -> model card, from model_cards
    _first: ibis.BaseBackend = field(repr=False)
    _threads: threading.local = field(default_factory=threading.local, repr=False)
    _opened: list = field(default_factory=list, repr=False)
    _derived: dict[str, Any] = field(default_factory=dict, repr=False)
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    pins: int = 0

    def __post_init__(self) -> None:
        self._threads.con = self._first
        self._opened.append(self._first)

    def connection(self) -> ibis.BaseBackend:
        """This thread's connection to this release's file (DuckDB connections are per thread)."""
        con = getattr(self._threads, "con", None)
        if con is None:
            con = _open(self.version.url)
            self._threads.con = con
            with self._lock:
                self._opened.append(con)
        return con

    def derived(self, name: str, compute: Callable[[], Any]) -> Any:
        """``compute()`` once per release (bins, cube): every thread waits for the first."""
        with self._lock:
            if name not in self._derived:
                self._derived[name] = compute()
            return self._derived[name]

    def card(self, subject: str) -> dict:
        card = self.cards.get(subject)
        if card is None:
            raise Unavailable(f"No {subject} model was trained on this data yet.", RUN_TRAIN)
        return card

    def close(self) -> None:
        with self._lock:
            for con in self._opened:
                try:
                    con.disconnect()
                except Exception:  # noqa: BLE001 - closing a connection that is gone already
                    pass
            self._opened.clear()


class Releases:
    """The releases one process holds: the newest and those requests still pin."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: list[Release] = []          # oldest first; the last one is the newest
        self._models: dict[str, object] = {}    # card sha256 -> fitted pipeline

    def current(self) -> Release:
        """The release of the warehouse as published now (opened when it is new)."""
        url = get_settings().warehouse_url
        stamp = _file_stamp(url)
        with self._lock:
            newest = self._held[-1] if self._held else None
            if newest is not None and newest.version.url == url and stamp is not None \
                    and newest.version.stamp == stamp:
                return newest
        release = _open_release(url, stamp)
        with self._lock:
            if self._held and self._held[-1].version == release.version:   # another thread won
                release.close()
                return self._held[-1]
            self._held.append(release)
            self._retire()
            return release

    def pin(self, release: Release) -> None:
        with self._lock:
            release.pins += 1

    def unpin(self, release: Release) -> None:
        with self._lock:
            release.pins -= 1
            self._retire()

    def model(self, release: Release, subject: str, load: Callable[[dict], object]) -> tuple[object, dict]:
        """(fitted pipeline, card) of ``subject`` in ``release``; pickles are held by hash."""
        card = release.card(subject)
        with self._lock:
            model = self._models.get(card["sha256"])
        if model is None:
            model = load(card)
            with self._lock:
                self._models[card["sha256"]] = model
                while len(self._models) > _MODELS_KEPT:
                    self._models.pop(next(iter(self._models)))
        return model, card

    def _retire(self) -> None:
        """Close every release but the newest that no request pins (lock held)."""
        for release in [r for r in self._held[:-1] if r.pins <= 0]:
            self._held.remove(release)
            release.close()


OUTSIDE_APP = Releases()


def install(server: Flask) -> None:
    """Give the app its holder, and let go of each request's release when it ends."""
    server.extensions[_EXTENSION] = Releases()

    @server.teardown_request
    def let_go(_exc: BaseException | None) -> None:
        release = g.pop("release", None)
        if release is not None:
            _holder().unpin(release)


def _holder() -> Releases:
    if has_app_context():
        return current_app.extensions.get(_EXTENSION, OUTSIDE_APP)
    return OUTSIDE_APP


def pinned() -> Release:
    """The release this request reads (the newest when called outside a request)."""
    if has_request_context():
        release = g.get("release")
        if release is None:
            release = _holder().current()
            _holder().pin(release)
            g.release = release
        return release
    return _holder().current()


def model(subject: str, load: Callable[[dict], object]) -> tuple[object, dict]:
    return _holder().model(pinned(), subject, load)


def _file_stamp(url: str) -> str | None:
    path = duckdb_path(url)
    if path is None:
        return None
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise Unavailable(f"No warehouse at {path}.", RUN_ETL) from None
    return f"{stat.st_ino:x}-{stat.st_mtime_ns:x}-{stat.st_size:x}"


def _open(url: str) -> ibis.BaseBackend:
    try:
        return connect(url)
    except ETLError as exc:
        raise Unavailable(str(exc), RUN_ETL) from None
    except Exception as exc:  # noqa: BLE001 - a corrupt file or unreachable server
        raise Unavailable(f"Cannot open the warehouse {url}: {exc}", RUN_ETL) from None


def _open_release(url: str, stamp: str | None) -> Release:
    """Open ``url`` and read what a release needs from it; the stamp is taken again after the
    open, and a file replaced meanwhile is opened again (its stamp would not be its own)."""
    for _ in range(_OPEN_ATTEMPTS):
        con = _open(url)
        try:
            after = _file_stamp(url) if stamp is not None else _server_stamp(con)
            if stamp is None or after == stamp:
                return _read_release(con, WarehouseVersion(url, after))
        except BaseException:
            con.disconnect()
            raise
        con.disconnect()
        stamp = after
    raise Unavailable("The warehouse is being replaced faster than it can be opened; try again.", RUN_ETL)


def _read_release(con: ibis.BaseBackend, version: WarehouseVersion) -> Release:
    tables = frozenset(con.list_tables())
    cards = {}
    if MODEL_CARDS in tables:
        for row in con.table(MODEL_CARDS).to_pyarrow().to_pylist():
            try:
                cards[row["subject"]] = json.loads(row["card"])
            except (TypeError, ValueError):
                continue            # an unreadable card is a missing model, said where it is needed
    return Release(version=version, tables=tables, cards=cards, _first=con)


def _server_stamp(con: ibis.BaseBackend) -> str:
    runs = con.table("etl_runs")
    latest = runs.order_by(ibis.desc("finished_at")).limit(1).select("run_id", "data_version").to_pyarrow()
    if latest.num_rows == 0:
        raise Unavailable("The warehouse has no ETL run.", RUN_ETL)
    return f"{latest['run_id'][0]}:{latest['data_version'][0]}"
