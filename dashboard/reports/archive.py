"""The report archive (``REPORTS_DIR``, default ``data/reports``): one folder per report.

``<REPORTS_DIR>/<report id>/`` holds ``report.html``, ``report.pdf`` (when made) and
``manifest.json``: when it was built, from which data version, in which language, for which
role and scope, its headline KPIs, and one delivery record per recipient. A report is written
into a hidden temporary folder and renamed into place, so a listed report is always complete;
the manifest is rewritten atomically (temp file + rename) under a lock, so the scheduler and
the web workers can record deliveries at the same time. Nothing here deletes a report.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

from etl.settings import PROJECT_ROOT

MANIFEST = "manifest.json"
FILES = {"html": "report.html", "pdf": "report.pdf"}


def reports_dir() -> Path:
    folder = Path(os.environ.get("REPORTS_DIR", "data/reports")).expanduser()
    return folder if folder.is_absolute() else PROJECT_ROOT / folder


@dataclass(frozen=True)
class Delivery:
    to: str
    status: str = "pending"            # pending | sent | failed (after the last retry)
    attempts: int = 0
    last_error: str | None = None
    sent_at: str | None = None
    next_attempt: str | None = None    # ISO time of the next retry while pending


@dataclass(frozen=True)
class Manifest:
    id: str
    created: str                       # ISO-8601 UTC
    data_version: str
    lang: str
    role: str
    scope: list[str]
    formats: list[str]
    headline: dict[str, float | None]  # KPI name -> value
    trigger: str = "command"           # command | schedule | page
    deliveries: list[Delivery] = field(default_factory=list)

    @classmethod
    def from_dict(cls, data: dict) -> Manifest:
        return cls(**{**data, "deliveries": [Delivery(**d) for d in data.get("deliveries", [])]})


def new_id(now: datetime | None = None) -> str:
    """Sortable by time, unique across hosts: ``20261125T070000Z-3f9a``."""
    now = now or datetime.now(timezone.utc)
    return now.strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(2)


class Archive:
    def __init__(self, root: Path | None = None) -> None:
        self.root = root or reports_dir()

    def folder(self, report_id: str) -> Path:
        if not report_id or "/" in report_id or report_id.startswith("."):
            raise ValueError(f"not a report id: {report_id!r}")
        return self.root / report_id

    @contextlib.contextmanager
    def staging(self, report_id: str) -> Iterator[Path]:
        """A private folder to write a report into; renamed to its place when the block ends
        without an error, removed otherwise."""
        self.root.mkdir(parents=True, exist_ok=True)
        temp = self.root / f".{report_id}.tmp"
        temp.mkdir()
        try:
            yield temp
            os.replace(temp, self.folder(report_id))
        except BaseException:
            shutil.rmtree(temp, ignore_errors=True)
            raise

    def write_manifest(self, folder: Path, manifest: Manifest) -> None:
        temp = folder / f".{MANIFEST}.{os.getpid()}"
        temp.write_text(json.dumps(asdict(manifest), ensure_ascii=False, indent=1), encoding="utf-8")
        os.replace(temp, folder / MANIFEST)

    def read(self, report_id: str) -> Manifest:
        return Manifest.from_dict(json.loads((self.folder(report_id) / MANIFEST).read_text(encoding="utf-8")))

    def list(self) -> list[Manifest]:
        """Every complete report, newest first (a folder with a damaged manifest is skipped)."""
        if not self.root.is_dir():
            return []
        found = []
        for folder in sorted(self.root.iterdir(), reverse=True):
            if folder.name.startswith(".") or not (folder / MANIFEST).is_file():
                continue
            try:
                found.append(self.read(folder.name))
            except (ValueError, TypeError, KeyError, OSError):
                continue
        return found

    def file(self, report_id: str, kind: str) -> Path:
        """The path of a report's ``html`` or ``pdf`` (FileNotFoundError when it was not made)."""
        path = self.folder(report_id) / FILES[kind]
        if not path.is_file():
            raise FileNotFoundError(path)
        return path

    @contextlib.contextmanager
    def _locked(self, report_id: str) -> Iterator[None]:
        with open(self.folder(report_id) / ".lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def record_delivery(self, report_id: str, delivery: Delivery) -> Manifest:
        """Replace (or add) the delivery record for ``delivery.to``."""
        with self._locked(report_id):
            manifest = self.read(report_id)
            others = [d for d in manifest.deliveries if d.to != delivery.to]
            updated = replace(manifest, deliveries=[*others, delivery])
            self.write_manifest(self.folder(report_id), updated)
            return updated
