"""The KPI history: one JSON line per snapshot in ``STATE_DIR/kpi_history.jsonl``.

Every ETL publish (``source: etl``) and every report (``source: report``) appends the headline
KPIs of the whole warehouse (:mod:`etl.kpi_snapshot`). The file lives in ``STATE_DIR``, beside
the users and the audit log and apart from the warehouse, so rebuilding the warehouse keeps it.

Append-only: a line is written with one ``write`` under an exclusive lock (the ETL, the
scheduler and the web workers may append at once), and never rewritten. A damaged line (a
disk that filled up mid-write) is skipped when reading, with a warning, so one bad line does
not hide the rest of the trend.
"""
from __future__ import annotations

import fcntl
import json
import logging
import math
import os
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from dashboard.auth.settings import state_dir
from dashboard.i18n import N_

log = logging.getLogger(__name__)

HISTORY_FILE = "kpi_history.jsonl"
SOURCES = ("etl", "report")


@dataclass(frozen=True)
class Snapshot:
    time: str                                   # ISO-8601 UTC
    data_version: str
    source: str                                 # etl | report
    kpis: dict[str, float | None] = field(default_factory=dict)
    report_id: str | None = None                # the report that appended it

    @property
    def moment(self) -> datetime:
        return datetime.fromisoformat(self.time)


def path() -> Path:
    return state_dir() / HISTORY_FILE


def _clean(value) -> float | int | None:
    """JSON has no NaN: a missing number is null."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return None
    return value


def append(*, source: str, data_version: str, kpis: dict[str, float | None], report_id: str | None = None,
           now: datetime | None = None) -> Snapshot:
    """Append one snapshot and return it."""
    if source not in SOURCES:
        raise ValueError(f"a snapshot's source is one of {', '.join(SOURCES)}, got {source!r}")
    moment = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    snapshot = Snapshot(time=moment.isoformat(timespec="seconds"), data_version=data_version, source=source,
                        kpis={k: _clean(v) for k, v in kpis.items()}, report_id=report_id)
    record = {k: v for k, v in asdict(snapshot).items() if v is not None}
    line = (json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")
    target = path()
    target.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, line)
    finally:
        os.close(fd)   # closing drops the lock
    return snapshot


def read() -> list[Snapshot]:
    """Every readable snapshot, oldest first."""
    try:
        lines = path().read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    found = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            snapshot = Snapshot(time=str(data["time"]), data_version=str(data["data_version"]),
                                source=str(data["source"]), kpis=dict(data.get("kpis") or {}),
                                report_id=data.get("report_id"))
            snapshot.moment  # noqa: B018 - a line whose time cannot be read is damaged
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("%s line %d skipped: %s", path(), number, exc)
            continue
        found.append(snapshot)
    return sorted(found, key=lambda s: s.moment)


def series(kpi: str, *, source: str | None = None) -> list[tuple[datetime, float]]:
    """``[(time, value), ...]`` of ``kpi`` across the snapshots that hold a value for it, oldest
    first (``source``: only ETL runs or only reports)."""
    return [(s.moment, float(s.kpis[kpi])) for s in read()
            if (source is None or s.source == source) and isinstance(s.kpis.get(kpi), (int, float))]


SCOPED_NOTE = N_("The KPI history covers all rows, so it is not shown for limited access.")


def visible() -> list[Snapshot]:
    """:func:`read` for the current identity (the page's reader). The snapshots are totals of
    the whole warehouse, so an identity whose scope limits the rows it sees gets
    :class:`~dashboard.auth.scoping.Forbidden` instead."""
    from dashboard.auth.scoping import Forbidden   # late: the ETL appends without the web app's auth
    from dashboard.auth.session import current

    if not current().scope.unrestricted:
        raise Forbidden(SCOPED_NOTE)
    return read()
