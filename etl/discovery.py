"""Which files of the raw folder the ETL reads, and which it leaves, each said in the log.

Names are matched without regard to case (``carts/part_b.CSV`` is a cart export: Windows and
Excel do not care about case, so neither do we). Every file taken is logged at INFO, every
file left at WARNING with the reason, so a file that is not read can never go unnoticed; a
folder that cannot be listed stops the run.
"""
from __future__ import annotations

import logging
import os
from fnmatch import fnmatchcase
from pathlib import Path, PurePosixPath

from etl.errors import ETLError
from etl.raw_specs import FileSpec

log = logging.getLogger(__name__)

# Files a spreadsheet or the OS leaves beside the exports; skipped quietly (INFO, not WARNING).
_CLUTTER = ("readme*", ".*", "~$*", "thumbs.db", "desktop.ini")


def discover(raw_dir: Path, specs: tuple[FileSpec, ...]) -> dict[str, list[Path]]:
    """The files of each spec (by pattern), sorted by name; a spec without a file, or a
    single-file spec with several, stops the run."""
    found: dict[str, list[Path]] = {spec.pattern: [] for spec in specs}
    for path in _walk(raw_dir):
        relative = path.relative_to(raw_dir).as_posix()
        spec = next((s for s in specs if _matches(relative, s.pattern)), None)
        if spec is not None:
            found[spec.pattern].append(path)
            log.info("taking %s (%s)", relative, spec.subject)
        elif any(fnmatchcase(path.name.lower(), pattern) for pattern in _CLUTTER):
            log.info("skipping %s: not an export", relative)
        else:
            log.warning("skipping %s: not a file the ETL reads (%s)", relative,
                        ", ".join(s.pattern for s in specs))
    for spec in specs:
        files = sorted(found[spec.pattern], key=lambda p: p.as_posix())
        if not files:
            raise ETLError(str(raw_dir / spec.pattern), rule="file present",
                           message=f"no file matches; the {spec.subject} subject needs it")
        if len(files) > 1 and not spec.many:
            names = ", ".join(p.relative_to(raw_dir).as_posix() for p in files)
            raise ETLError(str(raw_dir / spec.pattern), rule="single file", message=f"matches several files: {names}")
        found[spec.pattern] = files
    return found


def _matches(relative: str, pattern: str) -> bool:
    """``relative`` matches the glob ``pattern`` part by part, ignoring case."""
    parts, wanted = PurePosixPath(relative.lower()).parts, PurePosixPath(pattern.lower()).parts
    return len(parts) == len(wanted) and all(fnmatchcase(p, w) for p, w in zip(parts, wanted))


def _walk(raw_dir: Path):
    def refuse(exc: OSError) -> None:
        raise ETLError(str(exc.filename or raw_dir), rule="readable",
                       message=f"cannot be listed: {exc.strerror or exc}")

    for folder, dirs, files in os.walk(raw_dir, onerror=refuse):
        for hidden in [d for d in dirs if d.startswith(".")]:
            log.info("skipping %s/: a hidden folder", (Path(folder) / hidden).relative_to(raw_dir).as_posix())
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            yield Path(folder) / name
