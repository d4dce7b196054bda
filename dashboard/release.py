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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import ibis
from flask import Flask, current_app, g, has_app_context, has_request_context

from dashboard import terms
from dashboard.language import N_, _
from etl.errors import ETLError
from etl.schema import MODEL_CARDS
from etl.settings import get_settings
from etl.backends import Backend, backend, redact
from etl.warehouse import WAREHOUSE_ALIAS

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
    url: str = field(repr=False)     # may hold a password (postgres://user:pass@...)
    stamp: str  # inode, mtime and size of a DuckDB file; the release id on a server backend

    def __str__(self) -> str:
        return f"{self.url}@{self.stamp}"


@dataclass(eq=False)
class Release:
    """One warehouse version: its connections (one per thread), tables and derived values."""

    version: WarehouseVersion
    tables: frozenset[str]
    cards: dict[str, dict]                       # subject -> model card, from model_cards
    _first: ibis.BaseBackend = field(repr=False)
    _open_more: Callable[[], ibis.BaseBackend] = field(repr=False)
    _threads: threading.local = field(default_factory=threading.local, repr=False)
    _opened: list = field(default_factory=list, repr=False)
    _derived: dict[str, Any] = field(default_factory=dict, repr=False)
    _building: dict[str, threading.Lock] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    closed: bool = False
    pins: int = 0

    def __post_init__(self) -> None:
        self._threads.con = self._first
        self._opened.append(self._first)

    def connection(self) -> ibis.BaseBackend:
        """This thread's connection to this release's file (DuckDB connections are per thread).

        Another thread gets a cursor of the first connection: the same database instance and
        attached file, whatever has been published at that path since.
        """
        con = getattr(self._threads, "con", None)
        if con is None:
            with self._lock:
                if self.closed:
                    raise Unavailable(N_("The data was replaced while this view was drawn; reload the page."), RUN_ETL)
                if _is_attached(self._first):
                    cursor = self._first.con.cursor()
                    cursor.execute(f"USE {WAREHOUSE_ALIAS}")
                    con = ibis.duckdb.from_connection(cursor)
                else:                       # a server backend: the same release for every thread
                    con = self._open_more()
                self._opened.append(con)
            self._threads.con = con
        return con

    def derived(self, name: str, compute: Callable[[], Any]) -> Any:
        """``compute()`` once per release (bins, cube): threads asking for the same value wait
        for the first; other values and connections do not wait."""
        with self._lock:
            if name in self._derived:
                return self._derived[name]
            building = self._building.setdefault(name, threading.Lock())
        with building:
            with self._lock:
                if name in self._derived:
                    return self._derived[name]
            value = compute()
            with self._lock:
                self._derived[name] = value
            return value

    def card(self, subject: str) -> dict:
        card = self.cards.get(subject)
        if card is None:
            raise Unavailable(_("No model for {subject} was trained on this data yet.")
                              .format(subject=terms.subject(subject, _).lower()), RUN_TRAIN)
        return card

    def close(self) -> None:
        with self._lock:
            self.closed = True
            opened, self._opened = self._opened, []
        for con in reversed(opened):        # cursors before the connection they come from
            try:
                con.disconnect()
            except Exception:  # noqa: BLE001 - closing a connection that is gone already
                pass


class Releases:
    """The releases one process holds: the one published now and those requests still pin."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: list[Release] = []
        self._models: dict[str, object] = {}    # card sha256 -> fitted pipeline
        self._backends: dict[str, Backend] = {}  # warehouse URL -> its backend (holds its stamp connection)
        self._latest: dict[str, str] = {}        # warehouse URL -> the stamp a request read last

    def current(self, pin: bool = False) -> Release:
        """The release of the warehouse as published now, opened when it is new; pinned (under
        the same lock that retires releases) when ``pin``."""
        url = get_settings().warehouse_url
        stamp = _stamp(self.backend(url))
        with self._lock:
            self._latest[url] = stamp
            found = self._find(url, stamp)
            if found is not None:
                return self._take(found, pin)
        opened = _open_release(self.backend(url), stamp)  # outside the lock: opening takes a while
        with self._lock:
            found = self._find(url, opened.version.stamp)
            chosen = found if found is not None else opened
            if found is None:
                self._held.append(opened)
            chosen = self._take(chosen, pin)
            retired = self._retired(url)
        if found is not None:
            opened.close()                   # another thread opened the same file first
        for release in retired:
            release.close()
        return chosen

    def unpin(self, release: Release) -> None:
        with self._lock:
            release.pins -= 1
            retired = self._retired(release.version.url)
        for old in retired:
            old.close()

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

    def backend(self, url: str) -> Backend:
        with self._lock:
            found = self._backends.get(url)
            if found is None:
                found = self._backends[url] = backend(url)
            return found

    def _find(self, url: str, stamp: str) -> Release | None:
        return next((r for r in self._held if r.version.url == url and r.version.stamp == stamp), None)

    @staticmethod
    def _take(release: Release, pin: bool) -> Release:
        if pin:
            release.pins += 1
        return release

    def _retired(self, url: str) -> list[Release]:
        """Take out (lock held) every release that no request pins and that is not the one
        published now; the caller closes them after letting go of the lock."""
        # the stamp the latest request read, not a new one: this runs under the holder's lock
        # at the end of every request, where a server round trip (or its timeout) must not be
        now = self._latest.get(url)
        gone = [r for r in self._held if r.pins <= 0 and not (r.version.url == url and r.version.stamp == now)]
        for release in gone:
            self._held.remove(release)
        return gone


OUTSIDE_APP = Releases()


def install(server: Flask) -> None:
    """Give the app its holder, and let go of each request's release when it ends."""
    server.extensions[_EXTENSION] = Releases()

    @server.teardown_request
    def let_go(_exc: BaseException | None) -> None:
        release = g.pop("release", None)
        if release is not None and has_request_context():
            _holder().unpin(release)


def _holder() -> Releases:
    if has_app_context():
        return current_app.extensions.get(_EXTENSION, OUTSIDE_APP)
    return OUTSIDE_APP


def pinned() -> Release:
    """The release this request reads (the one published now when called outside a request
    and outside :func:`held`)."""
    if has_request_context() or has_app_context():
        release = g.get("release")
        if release is not None:
            return release
    if has_request_context():
        g.release = _holder().current(pin=True)
        return g.release
    return _holder().current()


@contextmanager
def held() -> Iterator[Release]:
    """Pin the current release for work outside a request (the warm-up thread, inside an
    app context): it is not closed under that work by a publish."""
    holder = _holder()
    release = holder.current(pin=True)
    previous = g.get("release")
    g.release = release
    try:
        yield release
    finally:
        g.release = previous
        holder.unpin(release)


def model(subject: str, load: Callable[[dict], object]) -> tuple[object, dict]:
    return _holder().model(pinned(), subject, load)


def _is_attached(con: ibis.BaseBackend) -> bool:
    """Whether ``con`` reads an attached DuckDB file (etl.warehouse.connect), not a server."""
    return getattr(con, "name", "") == "duckdb" and hasattr(con, "con")


def _stamp(found: Backend) -> str:
    try:
        stamp = found.stamp()
    except Exception as exc:  # noqa: BLE001 - an unreachable server is a page message, not a traceback
        raise Unavailable(_("Cannot reach the warehouse {url}: {error}").format(
            url=redact(found.url), error=type(exc).__name__), RUN_ETL) from None
    if stamp is None:
        raise Unavailable(_("No warehouse at {path}.").format(path=redact(found.url)), RUN_ETL)
    return stamp


def _open(found: Backend, stamp: str) -> ibis.BaseBackend:
    try:
        return found.connect(stamp)
    except ETLError as exc:
        raise Unavailable(str(exc), RUN_ETL) from None
    except Exception as exc:  # noqa: BLE001 - a corrupt file or unreachable server
        raise Unavailable(_("Cannot open the warehouse {url}: {error}").format(
            url=redact(found.url), error=type(exc).__name__), RUN_ETL) from None


def _open_release(found: Backend, stamp: str) -> Release:
    """Open release ``stamp`` and read what a release needs from it; the stamp is taken again
    after the open, and a DuckDB file replaced meanwhile is opened again (its stamp would not
    be its own). A server backend opens the release it is given: nothing to check again."""
    for _attempt in range(_OPEN_ATTEMPTS):
        con = _open(found, stamp)
        try:
            after = _stamp(found) if found.name == "duckdb" else stamp
            if after == stamp:
                return _read_release(con, WarehouseVersion(found.url, stamp),
                                     lambda: _open(found, stamp))
        except BaseException:
            con.disconnect()
            raise
        con.disconnect()
        stamp = after
    raise Unavailable(N_("The warehouse is being replaced faster than it can be opened; try again."), RUN_ETL)


def _read_release(con: ibis.BaseBackend, version: WarehouseVersion,
                  open_more: Callable[[], ibis.BaseBackend]) -> Release:
    tables = frozenset(con.list_tables())
    cards = {}
    if MODEL_CARDS in tables:
        for row in con.table(MODEL_CARDS).to_pyarrow().to_pylist():
            try:
                cards[row["subject"]] = json.loads(row["card"])
            except (TypeError, ValueError):
                continue            # an unreadable card is a missing model, said where it is needed
    return Release(version=version, tables=tables, cards=cards, _first=con, _open_more=open_more)
