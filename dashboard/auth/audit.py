"""The audit log: one JSON object a line, appended, never rewritten (``STATE_DIR/audit.jsonl``).

``{"time": "2026-05-09T07:35:25.123Z", "event": "sign-in", "user": "alice", "ip": "10.0.0.7",
"details": {...}}``. Events:

| event | recorded when | details |
|---|---|---|
| ``sign-in`` | a sign-in succeeded | ``source`` (local, oidc, proxy) |
| ``sign-in-failed`` | a sign-in was refused | ``reason`` (e.g. wrong password, throttled) |
| ``sign-out`` | a user signed out | |
| ``export`` | rows left the app as a file | ``page``, ``filters``, ``rows``, ``format`` |
| ``embed-token`` | a signed embed URL was made or used | ``page``, ``role``, ``scope``, ``expires`` |
| ``user-added`` / ``user-removed`` | an admin added or removed a user | ``target``, ``role``, ``scope`` |
| ``password-set`` | an admin set a user's password | ``target`` |
| ``user-changed`` | an admin changed a role or scope | ``target``, ``role``, ``scope`` (each ``[before, after]``) |
| ``refresh`` | a data refresh started / finished | ``phase``, ``exit_code`` |
| ``report`` | a report was built from the Reports page | ``phase``, ``exit_code``, ``report`` |

``user`` is who acted (``cli:<login>`` for the command line). Every value is cut and made
printable with :func:`dashboard.inputs.describe`, so a crafted name or filter cannot write a
huge or multi-line entry. The app only ever appends; to rotate, move the file away (the next
entry starts a new one) rather than truncating it in place.
"""
from __future__ import annotations

import fcntl
import json
import math
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dashboard.inputs import MAX_MAGNITUDE, describe

EVENTS = ("sign-in", "sign-in-failed", "sign-out", "export", "embed-token", "user-added", "user-removed",
          "password-set", "user-changed", "refresh", "report")
NAME_LIMIT = 80       # event, user and ip: a valid user name is at most 64 characters
VALUE_LIMIT = 300     # a detail's text, e.g. an export's filters as a query string
MAX_ITEMS = 20        # per list or dict inside the details
MAX_DEPTH = 3
_CHUNK = 64 * 1024


class Entries(list):
    """Entries of :meth:`AuditLog.tail`, newest first; ``skipped``: unreadable lines passed over."""

    skipped: int = 0


def _bounded(value: Any, depth: int = 0) -> Any:
    """``value`` as JSON of bounded size: text cut and escaped, containers cut, others described."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if abs(value) <= MAX_MAGNITUDE else describe(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else describe(value)   # NaN is not JSON
    if isinstance(value, str):
        return describe(value, VALUE_LIMIT)
    if depth >= MAX_DEPTH:
        return describe(value)
    if isinstance(value, dict):
        items = list(value.items())
        found = {describe(k if isinstance(k, str) else str(k)): _bounded(v, depth + 1) for k, v in items[:MAX_ITEMS]}
        if len(items) > MAX_ITEMS:
            found["…"] = f"{len(items) - MAX_ITEMS} more"
        return found
    if isinstance(value, list | tuple | set | frozenset):
        items = list(value)[:MAX_ITEMS + 1]
        found = [_bounded(v, depth + 1) for v in items[:MAX_ITEMS]]
        return found + ["…"] if len(items) > MAX_ITEMS else found
    return describe(str(value), VALUE_LIMIT)   # an enum, a Path, a Scope...


def _name(value: Any) -> str | None:
    return None if value is None else describe(value if isinstance(value, str) else str(value), NAME_LIMIT)


class AuditLog:
    """Appends to and reads the end of ``path`` (created with mode 0600)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def record(self, event: str, user: str | None, *, ip: str | None = None, **details: Any) -> None:
        """Append one entry. An unwritable log raises ``OSError``: an action that must be
        audited should not pass silently unaudited."""
        entry = {"time": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                 "event": _name(event), "user": _name(user), "ip": _name(ip), "details": _bounded(details)}
        line = (json.dumps(entry, ensure_ascii=False, separators=(", ", ": ")) + "\n").encode("utf-8", "replace")
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            # O_APPEND alone keeps small writes whole on a local disk; the lock also covers a
            # short write's second part and file systems where O_APPEND is not atomic (NFS)
            fcntl.flock(fd, fcntl.LOCK_EX)
            view = memoryview(line)
            while view:
                view = view[os.write(fd, view):]
            # No fsync: the entry is in the kernel's cache once written and survives a crash of
            # the app; an fsync per sign-in would add disk latency to requests.
        finally:
            os.close(fd)

    def tail(self, limit: int = 500) -> Entries:
        """The newest ``limit`` entries, newest first, reading only the end of the file."""
        found = Entries()
        try:
            handle = open(self.path, "rb")
        except FileNotFoundError:
            return found
        with handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_SH)   # no half-written last line
            lines = _last_lines(handle, limit)
        for raw in reversed(lines):
            try:
                entry = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError):
                entry = None
            if isinstance(entry, dict) and isinstance(entry.get("event"), str):
                found.append(entry)
            else:
                found.skipped += 1
        return found


def _last_lines(handle, limit: int) -> list[bytes]:
    """The last ``limit`` non-empty lines, read backwards in chunks from the end."""
    end = handle.seek(0, os.SEEK_END)
    position, buffer = end, b""
    while position > 0 and buffer.count(b"\n") <= limit:
        step = min(_CHUNK, position)
        position -= step
        handle.seek(position)
        buffer = handle.read(step) + buffer
    lines = buffer.split(b"\n")
    if position > 0:
        lines = lines[1:]   # the first piece starts mid-line
    lines = [line for line in lines if line.strip()]
    return lines[-limit:] if limit > 0 else []
