"""CSV readers that accept what spreadsheets and other tools actually write.

Accepted: ``,`` ``;`` or tab separators, UTF-8 with or without BOM, Windows-1251 (Russian
Excel), CRLF line endings, header cells with stray spaces, columns in any order. Every cell is
read as text; typing happens in :mod:`etl.validate`, where a bad cell becomes a rejected row
instead of a crash. What was detected is logged and kept on the :class:`RawSource`, never
guessed silently.

Files are streamed in blocks of whole lines and parsed by pyarrow's multi-threaded CSV
parser, so a 10 M-row export is read in seconds with bounded memory. Each row keeps the line
number a person sees in an editor (header = line 1), blank lines included; a field with an
embedded line break is therefore not supported and stops the run with the line it is on.
"""
from __future__ import annotations

import codecs
import csv
import hashlib
import io
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from etl.errors import ETLError

log = logging.getLogger(__name__)

SEPARATORS = (",", ";", "\t")
_SNIFF_BYTES = 1 << 20
BLOCK_BYTES = 64 << 20


@dataclass
class RawBatch:
    """Consecutive data rows of one file as text cells, with their line numbers."""

    table: pa.Table          # all columns pa.string(), named by normalised header
    lines: np.ndarray        # int64 line number of each row


@dataclass
class RawSource:
    """One raw file: where it is, how it is encoded, and its header."""

    path: Path
    name: str                # path relative to the raw folder, used in every message
    encoding: str
    separator: str
    header: list[str]        # normalised header cells, in file order
    sha256: str = ""
    rows_read: int = 0
    decimal: str = "."       # set by etl.validate when it meets decimal commas
    extra_columns: list[str] = field(default_factory=list)

    def batches(self, block_bytes: int = BLOCK_BYTES) -> Iterator[RawBatch]:
        """Stream the data rows; hashes the file on the way (the data version needs it)."""
        digest = hashlib.sha256()
        line = 1
        self.rows_read = 0
        with self.path.open("rb") as fh:
            header = fh.readline()
            digest.update(header)
            rest = b""
            while True:
                block = fh.read(block_bytes)
                digest.update(block)
                data = rest + block
                if block:
                    cut = data.rfind(b"\n") + 1
                    data, rest = data[:cut], data[cut:]
                    if not data:
                        continue
                if not data:
                    break
                batch = self._parse(data, line)
                line += data.count(b"\n") + (0 if data.endswith(b"\n") else 1)
                self.rows_read += batch.table.num_rows
                yield batch
                if not block:
                    break
        self.sha256 = digest.hexdigest()

    def _parse(self, data: bytes, first_line: int) -> RawBatch:
        if self.encoding == "cp1251":
            data = data.decode("cp1251").encode("utf-8")
        try:
            table = pacsv.read_csv(
                io.BytesIO(data),
                read_options=pacsv.ReadOptions(column_names=self.header, encoding="utf8"),
                parse_options=pacsv.ParseOptions(delimiter=self.separator),
                convert_options=pacsv.ConvertOptions(
                    column_types={c: pa.string() for c in self.header},
                    strings_can_be_null=False, quoted_strings_can_be_null=False),
            )
        except pa.ArrowInvalid as exc:
            raise self._structure_error(exc, data, first_line) from None
        lines = first_line + 1 + np.arange(table.num_rows, dtype=np.int64)
        for blank in _blank_lines(data):       # pyarrow skips blank lines: shift the rows after
            lines[lines >= first_line + 1 + blank] += 1
        return RawBatch(table=table, lines=lines)

    def _structure_error(self, exc: Exception, data: bytes, first_line: int) -> ETLError:
        message = str(exc).removeprefix("CSV parse error: ")
        row = None
        found = re.search(r": (.*)$", message)
        if found:
            offset = data.find(found.group(1).encode("utf-8", "replace")[:200])
            if offset >= 0:
                row = first_line + 1 + data.count(b"\n", 0, offset)
        text = message.split(": ")[0] if found else message
        return ETLError(self.name, row=row, rule="csv structure", message=f"cannot be parsed: {text}")


def _blank_lines(data: bytes) -> list[int]:
    """0-based indexes of blank lines in ``data`` (rare: only then do we split it)."""
    if not (data.startswith((b"\n", b"\r\n")) or b"\n\n" in data or b"\n\r\n" in data):
        return []
    return [i for i, text in enumerate(data.split(b"\n")[:-1]) if not text.strip(b"\r")]


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
    if b"\x00" in head:
        raise ETLError(name, rule="encoding", message="is binary, not CSV text")
    text = head.decode("cp1251", errors="replace")
    if not re.search("[А-Яа-яЁё]", text):
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


def open_raw_csv(path: Path, name: str) -> RawSource:
    """Detect encoding, separator and header; raise :class:`ETLError` when the file is unusable."""
    if not path.is_file():
        raise ETLError(name, rule="file present", message="is missing")
    with path.open("rb") as fh:
        head = fh.read(_SNIFF_BYTES)
    if not head.strip(b"\xef\xbb\xbf \r\n\t"):
        raise ETLError(name, rule="not empty", message="is empty")
    encoding = detect_encoding(head, name)
    text = head.decode("utf-8-sig" if encoding == "utf-8-sig" else encoding, errors="replace")
    header_line = text.splitlines()[0]
    separator = detect_separator(header_line, name)
    header = [normalise_header(c) for c in next(csv.reader([header_line], delimiter=separator))]
    duplicated = sorted({c for c in header if header.count(c) > 1})
    if duplicated:
        raise ETLError(name, column=duplicated[0], rule="unique header", message="appears twice in the header")
    log.info("%s: encoding=%s, separator=%r", name, encoding, separator)
    return RawSource(path=path, name=name, encoding=encoding, separator=separator, header=header)
