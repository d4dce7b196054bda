"""CSV readers that accept what spreadsheets and other tools actually write.

Accepted: ``,`` ``;`` or tab separators, UTF-8 with or without BOM, Windows-1251 (Russian
Excel), CRLF line endings, header cells with stray spaces, columns in any order. Every cell is
read as text; typing happens in :mod:`etl.validate`, where a bad cell becomes a rejected row
instead of a crash. What was detected is logged and returned, never guessed silently.
"""
from __future__ import annotations

import codecs
import csv
import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from etl.errors import ETLError

log = logging.getLogger(__name__)

SEPARATORS = (",", ";", "\t")
_SNIFF_BYTES = 1 << 20


@dataclass
class RawTable:
    """One raw file as text cells plus what was detected while reading it."""

    name: str              # path relative to the raw folder, used in every message
    frame: pd.DataFrame    # all cells as strings; index = 1-based line number in the file
    encoding: str
    separator: str
    sha256: str
    decimal: str = "."     # set by etl.validate.parse_table when it meets decimal commas


def normalise_header(cell: str) -> str:
    """Header cells are matched without stray spaces, BOMs or case differences."""
    return re.sub(r"\s+", " ", cell.replace("\ufeff", "")).strip().casefold()


def detect_encoding(head: bytes, name: str) -> str:
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    try:
        head.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError as exc:
        # A multi-byte character cut by the sniff window is still UTF-8.
        if exc.start >= len(head) - 3:
            return "utf-8"
    try:
        text = head.decode("cp1251")
    except UnicodeDecodeError:
        raise ETLError(name, rule="encoding",
                       message="is neither UTF-8 nor Windows-1251 text") from None
    if not re.search("[А-Яа-яЁё]", text) and re.search(r"[^\x00-\x7f]", text):
        log.warning("%s: not UTF-8; decoding as Windows-1251 although no Cyrillic was seen", name)
    return "cp1251"


def detect_separator(header_line: str, name: str) -> str:
    """The separator is the candidate that splits the header into the most cells."""
    counts = {sep: len(next(csv.reader([header_line], delimiter=sep))) for sep in SEPARATORS}
    best = max(counts, key=counts.get)
    if counts[best] < 2:
        raise ETLError(name, rule="separator",
                       message="header has a single column; expected ',', ';' or tab separated cells")
    return best


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def read_raw_csv(path: Path, name: str) -> RawTable:
    """Read ``path`` as text cells; raise :class:`ETLError` naming the file when it is unusable."""
    if not path.is_file():
        raise ETLError(name, rule="file present", message="is missing")
    with path.open("rb") as fh:
        head = fh.read(_SNIFF_BYTES)
    if not head.strip(b"\xef\xbb\xbf \r\n\t"):
        raise ETLError(name, rule="not empty", message="is empty")
    encoding = detect_encoding(head, name)
    header_line = head.decode(encoding, errors="replace").lstrip("\ufeff").splitlines()[0]
    separator = detect_separator(header_line, name)
    try:
        frame = pd.read_csv(
            path, sep=separator, encoding=encoding, dtype=str, keep_default_na=False,
            skip_blank_lines=False, skipinitialspace=True,
        )
    except UnicodeDecodeError as exc:
        raise ETLError(name, rule="encoding",
                       message=f"is not valid {encoding} text (byte offset {exc.start})") from None
    except pd.errors.ParserError as exc:
        raise ETLError(name, rule="csv structure", message=f"cannot be parsed: {exc}") from None
    frame.columns = [normalise_header(str(c)) for c in frame.columns]
    duplicated = frame.columns[frame.columns.duplicated()].tolist()
    if duplicated:
        raise ETLError(name, column=duplicated[0], rule="unique header",
                       message="has the same column twice")
    # Line numbers as a person sees them in an editor: the header is line 1.
    frame.index = pd.RangeIndex(2, len(frame) + 2, name="source_row")
    blank = (frame == "").all(axis=1)
    frame = frame[~blank]
    if frame.empty:
        raise ETLError(name, rule="not empty", message="has a header but no data rows")
    log.info("%s: %d rows, encoding=%s, separator=%r", name, len(frame), encoding, separator)
    return RawTable(name=name, frame=frame, encoding=encoding, separator=separator,
                    sha256=file_sha256(path))
