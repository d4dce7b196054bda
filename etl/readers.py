"""CSV readers that accept what spreadsheets and other tools actually write.

Accepted: ``,`` ``;`` or tab separators, UTF-8 with or without BOM, UTF-16 (Excel's "Unicode
text"), Windows-1251 (Russian Excel) and the other Cyrillic encodings :mod:`etl.encoding`
recognises, CRLF line endings, header cells with stray spaces, columns in any order. Cells are
read as text unless the caller asks pyarrow to convert some columns (the fast path of
:mod:`etl.validate`, which falls back to text where a cell does not convert); typing rules
live in :mod:`etl.validate`, where a bad cell becomes a rejected row instead of a crash. What
was detected is logged and kept on the :class:`RawSource`, never guessed silently.

Files are streamed in blocks of whole lines and parsed by pyarrow's multi-threaded CSV
parser, so a 10 M-row export is read in seconds with bounded memory. Each row keeps the line
number a person sees in an editor (header = line 1), blank lines included. A file holds one
record per line: a line that cannot be one (a quote left open, as by a line break inside a
cell; the wrong number of cells; a stray carriage return; another encoding) is rejected with
its line number and raw text (:mod:`etl.csv_lines`), and the rest of the file is read.
Where each block starts is remembered, so the raw cells of a few lines can be fetched again
later (:meth:`RawSource.read_lines`) without parsing the whole file a second time.
"""
from __future__ import annotations

import csv
import hashlib
import io
import logging
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from etl.arrow_text import json_rows
from etl.csv_lines import STRUCTURE, blank_out, closes_at, rejected_lines, rest_of_quoted_cell, structure_problems
from etl.encoding import UTF8, UTF8_BOM, UTF16, detect_encoding, foreign_lines, transcode_utf16
from etl.errors import ETLError

log = logging.getLogger(__name__)

SEPARATORS = (",", ";", "\t")
_SNIFF_BYTES = 1 << 20
BLOCK_BYTES = 16 << 20     # small enough that glibc reuses the memory of one block for the next


@dataclass
class RawBlock:
    """Consecutive whole lines of one file, as bytes (UTF-8 or the file's encoding)."""

    data: bytes
    first_line: int          # line number of the first line in ``data`` (header = line 1)

    @cached_property
    def line_count(self) -> int:
        breaks = int(np.count_nonzero(np.frombuffer(self.data, dtype=np.uint8) == ord("\n")))  # 4x bytes.count
        return breaks + (0 if self.data.endswith(b"\n") else 1)

    @cached_property
    def blank_lines(self) -> list[int]:
        """0-based indexes of the blank lines (pyarrow skips those rows)."""
        return _blank_lines(self.data)

    def lines(self, rows: int) -> np.ndarray:
        """Line number of each of the ``rows`` rows pyarrow returned: every line but blank ones.

        When pyarrow returned one row per line and no carriage return stands alone (the only
        other way to change the row count), there is no blank line: no need to look for them.
        """
        lines = self.first_line + np.arange(self.line_count, dtype=np.int64)
        if rows == self.line_count and "blank_lines" not in self.__dict__:
            if b"\r" not in self.data or self.data.count(b"\r") == self.data.count(b"\r\n"):
                self.blank_lines = []
        return np.delete(lines, self.blank_lines) if self.blank_lines else lines

    @property
    def rows(self) -> int:
        return self.line_count - len(self.blank_lines)

    def split(self) -> tuple[RawBlock, RawBlock] | None:
        """Two halves cut at a line boundary near the middle, never inside a quoted cell that
        spans lines; None for a single line."""
        cut = self.data.find(b"\n", len(self.data) // 2) + 1
        if cut <= 0 or cut >= len(self.data):
            cut = self.data.rfind(b"\n", 0, max(len(self.data) - 1, 0)) + 1
        if cut <= 0:
            return None
        if self.data.count(b'"', 0, cut) % 2:
            cut = closes_at(self.data, cut) or cut
            if cut >= len(self.data):
                return None
        return (RawBlock(self.data[:cut], self.first_line),
                RawBlock(self.data[cut:], self.first_line + self.data.count(b"\n", 0, cut)))


@dataclass
class RawBatch:
    """Consecutive data rows of one file, with their line numbers."""

    table: pa.Table          # columns named by normalised header; pa.string() unless converted
    lines: np.ndarray        # int64 line number of each row
    # lines that could not be a row (structure, encoding): line -> (rule, reason, raw text)
    rejected: dict[int, tuple[str, str, str]] = field(default_factory=dict)


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
    # decimal mark of each number column, decided by etl.validate at its first decimal cell:
    # column -> (mark, line where it was decided)
    decimal_marks: dict[str, tuple[str, int]] = field(default_factory=dict)
    extra_columns: list[str] = field(default_factory=list)
    # the UTF-8 copy of a UTF-16 file lives as long as the source (``path`` points into it)
    workdir: tempfile.TemporaryDirectory | None = field(default=None, repr=False)
    # (byte offset, byte length, first line, line count) of each block read by blocks()
    block_index: list[tuple[int, int, int, int]] = field(default_factory=list)

    @property
    def decimal(self) -> str:
        """The decimal marks the file uses, for the run record: ``.``, ``,`` or ``,.`` (mixed)."""
        return "".join(sorted({mark for mark, _ in self.decimal_marks.values()})) or "."

    def blocks(self, block_bytes: int | None = None) -> Iterator[RawBlock]:
        """Stream the data lines in blocks of about ``block_bytes`` (default :data:`BLOCK_BYTES`).

        Hashes the file, counts rows and fills :attr:`block_index` on the way.
        """
        block_bytes = block_bytes or BLOCK_BYTES
        digest = hashlib.sha256()
        line = 2                                   # the header is line 1
        self.rows_read = 0
        self.block_index = []
        with _opened(self.path, self.name) as fh:
            digest.update(fh.readline())
            while True:
                offset = fh.tell()
                data = fh.read(block_bytes)
                if data and not data.endswith(b"\n"):
                    data += fh.readline()          # finish the last line (or reach the end)
                if data.count(b'"') % 2:            # a quoted cell goes on: the block takes it whole
                    data += rest_of_quoted_cell(fh)
                if not data:
                    break
                _prefetch(fh, 2 * block_bytes)      # the disk reads ahead while this block is parsed
                digest.update(data)
                block = RawBlock(data, line)
                self.block_index.append((offset, len(data), line, block.line_count))
                line += block.line_count
                yield block
                self.rows_read += block.rows           # after parsing, which often knows it
        self.sha256 = digest.hexdigest()

    def parse(self, block: RawBlock, column_types: dict[str, pa.DataType] | None = None,
              decimal_point: str = ".") -> RawBatch | None:
        """Parse ``block``: all columns as text, or only ``column_types`` converted by pyarrow.

        Converted parsing returns None when anything in the block is not clean (a cell that
        does not convert, a line that is not a row, a line in another encoding): parse it as
        text to find out which and why. Text parsing takes every line that is a row; the
        others come back in :attr:`RawBatch.rejected` with their reason, so one broken line
        never stops a run. Only a failure no line can be blamed for raises :class:`ETLError`,
        with the first line that fails on its own.
        """
        foreign = foreign_lines(block.data, self.encoding)
        if foreign and column_types is not None:
            return None
        data, rejected = block.data, {}
        if foreign or self.encoding not in _UTF8_CODECS:   # pyarrow reads UTF-8 only
            text = data.decode(_codec(self.encoding), errors="replace")
            data = blank_out(text, foreign).encode("utf-8") if foreign else text.encode("utf-8")
            rejected = rejected_lines(block.data, block.first_line, foreign, "encoding", self.encoding)
        # pyarrow ends a row at a lone carriage return; with a quoted line break elsewhere the
        # row count would still match the lines, so a lone one always means: look line by line
        lone_cr = b"\r" in data and data.count(b"\r") != data.count(b"\r\n")
        table = None if lone_cr and column_types is not None else self._read(data, column_types, decimal_point)
        lines = RawBlock(data, block.first_line).lines(table.num_rows) if table is not None else None
        if column_types is not None:
            return RawBatch(table=table, lines=lines) if lines is not None and len(lines) == table.num_rows else None
        if table is None or len(lines) != table.num_rows or lone_cr:   # a line that is not a row: find them
            text = data.decode("utf-8", errors="replace")
            problems = structure_problems(text, self.separator, len(self.header), block.first_line)
            if not problems:
                raise self._structure_error(RawBlock(data, block.first_line))
            data = blank_out(text, problems).encode("utf-8")
            rejected.update(rejected_lines(block.data, block.first_line, problems, STRUCTURE, self.encoding))
            table = self._read(data, None, decimal_point)
            lines = RawBlock(data, block.first_line).lines(table.num_rows) if table is not None else None
            if table is None or len(lines) != table.num_rows:
                raise self._structure_error(RawBlock(data, block.first_line))
        return RawBatch(table=table, lines=lines, rejected=rejected)

    def _read(self, data: bytes, column_types: dict[str, pa.DataType] | None,
              decimal_point: str) -> pa.Table | None:
        """pyarrow's parse of UTF-8 ``data``, or None when it fails."""
        if column_types is None:
            convert = pacsv.ConvertOptions(column_types={c: pa.string() for c in self.header},
                                           strings_can_be_null=False, quoted_strings_can_be_null=False)
        else:  # blanks become nulls in converted (non-text) columns only
            convert = pacsv.ConvertOptions(column_types=column_types, include_columns=list(column_types),
                                           null_values=[""], strings_can_be_null=False,
                                           quoted_strings_can_be_null=True, decimal_point=decimal_point)
        read = pacsv.ReadOptions(column_names=self.header, encoding="utf8")
        for attempt in range(2):
            try:
                return pacsv.read_csv(io.BytesIO(data), read_options=read,
                                      parse_options=pacsv.ParseOptions(delimiter=self.separator),
                                      convert_options=convert)
            except pa.ArrowInvalid as exc:
                # pyarrow cuts its input in 1 MB chunks and fails on a row longer than one
                # ("straddles two block boundaries"): once more with the block in one chunk
                if attempt or "straddl" not in str(exc):
                    return None
                read = pacsv.ReadOptions(column_names=self.header, encoding="utf8", block_size=len(data) + 1)
        return None

    def read_lines(self, lines: np.ndarray) -> pa.ChunkedArray:
        """Raw cells of each given data line as JSON text (null for a line that holds no row).

        Uses :attr:`block_index` from the first pass: each block holding a wanted line is read
        again and only the wanted lines are cut out of its bytes and parsed.
        """
        lines = np.asarray(lines, dtype=np.int64)
        wanted = _sorted_unique(lines)
        if not self.block_index:                   # not streamed yet: index the file first
            for _ in self.blocks():
                pass
        firsts = np.array([first for _, _, first, _ in self.block_index], dtype=np.int64)
        which = np.searchsorted(firsts, wanted, side="right") - 1
        found_lines, found_json = [np.zeros(0, np.int64)], [pa.array([], pa.string())]
        with _opened(self.path, self.name) as fh:
            for b in _sorted_unique(which[which >= 0]).tolist():
                offset, size, first, count = self.block_index[b]
                mine = wanted[(which == b) & (wanted < first + count)]
                fh.seek(offset)
                byte = np.frombuffer(fh.read(size), dtype=np.uint8)
                bounds = np.concatenate([[0], np.flatnonzero(byte == ord("\n")) + 1, [len(byte)]])
                start, end = bounds[mine - first], bounds[mine - first + 1]
                length = end - start                   # gather the wanted lines' bytes in one go
                text = byte[np.repeat(start - (np.cumsum(length) - length), length) + np.arange(length.sum())]
                text = text.tobytes()
                if not text.endswith(b"\n"):          # the last line of a file without a final break
                    text += b"\n"
                batch = self.parse(RawBlock(text, 0))  # its line numbers index ``mine`` (blank lines skipped)
                found_lines.append(mine[batch.lines])
                found_json.append(json_rows(batch.table))
        found_lines = np.concatenate(found_lines)
        found = pa.chunked_array(found_json, pa.string())
        if np.array_equal(found_lines, lines):        # asked in order, each once: nothing to rearrange
            return found
        if not len(found_lines):
            return pa.chunked_array([pa.nulls(len(lines), pa.string())])
        position = np.minimum(np.searchsorted(found_lines, lines), len(found_lines) - 1)
        return found.take(pa.array(position, mask=found_lines[position] != lines))

    def _structure_error(self, block: RawBlock) -> ETLError:
        """The error for a block pyarrow cannot parse although every line looks like a row:
        the first line that fails on its own (found by halving), and pyarrow's reason."""
        while (halves := block.split()) is not None:
            first, second = halves
            block = first if self._read(first.data, None, ".") is None else second
        try:
            pacsv.read_csv(io.BytesIO(block.data),
                           read_options=pacsv.ReadOptions(column_names=self.header, encoding="utf8"),
                           parse_options=pacsv.ParseOptions(delimiter=self.separator))
            reason = "cannot be parsed together with the lines around it"
        except pa.ArrowInvalid as exc:
            reason = "cannot be parsed: " + str(exc).removeprefix("CSV parse error: ").split(":")[0][:200]
        return ETLError(self.name, row=block.first_line, rule=STRUCTURE, message=reason)


_UTF8_CODECS = (UTF8, UTF8_BOM, UTF16)     # blocks of these files are UTF-8 bytes already


def _codec(encoding: str) -> str:
    return UTF8 if encoding in _UTF8_CODECS else encoding


def _opened(path: Path, name: str):
    try:
        return path.open("rb")
    except OSError as exc:
        raise ETLError(name, rule="readable", message=f"cannot be read: {exc.strerror or exc}") from None


def _prefetch(fh, length: int) -> None:
    """Ask the OS to start reading the next ``length`` bytes of ``fh`` in the background."""
    try:
        os.posix_fadvise(fh.fileno(), fh.tell(), length, os.POSIX_FADV_WILLNEED)
    except (AttributeError, OSError):     # not POSIX, or not a regular file: just read on demand
        pass


def _sorted_unique(values: np.ndarray) -> np.ndarray:
    """``np.unique`` by sorting (numpy's default hash-based unique is slower here)."""
    ordered = np.sort(values)
    return ordered[np.concatenate([[True], ordered[1:] != ordered[:-1]])] if len(ordered) else ordered


def _blank_lines(data: bytes) -> list[int]:
    """0-based indexes of the blank lines in ``data``: empty or only carriage returns.

    Found with numpy from the line breaks (a bytes search for ``\\n\\n`` is several times
    slower on a block of a million short lines).
    """
    if not data:
        return []
    byte = np.frombuffer(data, dtype=np.uint8)
    breaks = np.flatnonzero(byte == ord("\n"))
    starts = np.concatenate([[0], breaks + 1])
    ends = np.concatenate([breaks, [len(data)]])
    if data.endswith(b"\n"):                  # after the last line break: not a line
        starts, ends = starts[:-1], ends[:-1]
    first = byte[np.minimum(starts, len(data) - 1)]
    maybe = np.flatnonzero((ends == starts) | (first == ord("\r")))
    return [i for i in maybe.tolist() if not data[starts[i]:ends[i]].strip(b"\r")]


def normalise_header(cell: str) -> str:
    """Header cells are matched without stray spaces, BOMs or case differences."""
    return re.sub(r"\s+", " ", cell.replace("\ufeff", "")).strip().casefold()


def detect_separator(header_line: str, name: str) -> str:
    """The separator is the candidate that splits the header into the most cells."""
    counts = {sep: len(next(csv.reader([header_line], delimiter=sep))) for sep in SEPARATORS}
    best = max(counts, key=counts.get)
    if counts[best] < 2:
        raise ETLError(name, rule="separator",
                       message="header has a single column; expected ',', ';' or tab separated cells")
    return best


def read_head(path: Path, name: str) -> bytes:
    """The first megabyte of a file; a file that cannot be opened stops the run, named."""
    try:
        with path.open("rb") as fh:
            return fh.read(_SNIFF_BYTES)
    except OSError as exc:
        raise ETLError(name, rule="readable", message=f"cannot be read: {exc.strerror or exc}") from None


def open_raw_csv(path: Path, name: str) -> RawSource:
    """Detect encoding, separator and header; raise :class:`ETLError` when the file is unusable."""
    if not path.exists() and not path.is_symlink():      # a dangling link is there but unreadable
        raise ETLError(name, rule="file present", message="is missing")
    head = read_head(path, name)
    encoding = detect_encoding(head, name, complete=len(head) < _SNIFF_BYTES)
    workdir = None
    if encoding == UTF16:  # read from a UTF-8 copy: same lines, same line numbers
        workdir = tempfile.TemporaryDirectory(prefix="etl-utf16-")
        copy = Path(workdir.name) / path.name
        transcode_utf16(path, name, copy)
        log.info("%s: UTF-16, read through a UTF-8 copy", name)
        head = read_head(copy, name)
        path = copy
    if not head.strip(b"\xef\xbb\xbf \r\n\t"):
        raise ETLError(name, rule="not empty", message="is empty")
    text = head.decode(UTF8_BOM if encoding == UTF8_BOM else _codec(encoding), errors="replace")
    header_line = text.split("\n")[0]
    if len(header_line) == len(text) == _SNIFF_BYTES:
        raise ETLError(name, row=1, rule="header", message="has no line break in its first megabyte")
    header_line = header_line.removesuffix("\r")
    if "\r" in header_line:
        raise ETLError(name, row=1, rule="line ends", message="ends its lines with a carriage return alone "
                       "(old Mac format); save it again as 'CSV UTF-8'")
    separator = detect_separator(header_line, name)
    header = [normalise_header(c) for c in next(csv.reader([header_line], delimiter=separator))]
    duplicated = sorted({c for c in header if header.count(c) > 1})
    if duplicated:
        raise ETLError(name, column=duplicated[0], rule="unique header", message="appears twice in the header")
    log.info("%s: encoding=%s, separator=%r", name, encoding, separator)
    return RawSource(path=path, name=name, encoding=encoding, separator=separator, header=header, workdir=workdir)
