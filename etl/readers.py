"""CSV readers that accept what spreadsheets and other tools actually write.

Accepted: ``,`` ``;`` or tab separators, UTF-8 with or without BOM, Windows-1251 (Russian
Excel), CRLF line endings, header cells with stray spaces, columns in any order. Cells are
read as text unless the caller asks pyarrow to convert some columns (the fast path of
:mod:`etl.validate`, which falls back to text where a cell does not convert); typing rules
live in :mod:`etl.validate`, where a bad cell becomes a rejected row instead of a crash. What
was detected is logged and kept on the :class:`RawSource`, never guessed silently.

Files are streamed in blocks of whole lines and parsed by pyarrow's multi-threaded CSV
parser, so a 10 M-row export is read in seconds with bounded memory. Each row keeps the line
number a person sees in an editor (header = line 1), blank lines included; a field with an
embedded line break is therefore not supported and stops the run with the line it is on.
Where each block starts is remembered, so the raw cells of a few lines can be fetched again
later (:meth:`RawSource.read_lines`) without parsing the whole file a second time.
"""
from __future__ import annotations

import codecs
import csv
import hashlib
import io
import json
import logging
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from etl.errors import ETLError

log = logging.getLogger(__name__)

SEPARATORS = (",", ";", "\t")
_SNIFF_BYTES = 1 << 20
BLOCK_BYTES = 16 << 20     # small enough that glibc reuses the memory of one block for the next
# Characters json.dumps escapes besides '"' and '\\' (ensure_ascii=False): control characters.
_JSON_CONTROL = r"[\x00-\x1f]"


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
        """Two halves cut at a line boundary near the middle; None for a single line."""
        cut = self.data.find(b"\n", len(self.data) // 2) + 1
        if cut <= 0 or cut >= len(self.data):
            cut = self.data.rfind(b"\n", 0, max(len(self.data) - 1, 0)) + 1
        if cut <= 0:
            return None
        return (RawBlock(self.data[:cut], self.first_line),
                RawBlock(self.data[cut:], self.first_line + self.data.count(b"\n", 0, cut)))


@dataclass
class RawBatch:
    """Consecutive data rows of one file, with their line numbers."""

    table: pa.Table          # columns named by normalised header; pa.string() unless converted
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
    # (byte offset, byte length, first line, line count) of each block read by blocks()
    block_index: list[tuple[int, int, int, int]] = field(default_factory=list)

    def blocks(self, block_bytes: int | None = None) -> Iterator[RawBlock]:
        """Stream the data lines in blocks of about ``block_bytes`` (default :data:`BLOCK_BYTES`).

        Hashes the file, counts rows and fills :attr:`block_index` on the way.
        """
        block_bytes = block_bytes or BLOCK_BYTES
        digest = hashlib.sha256()
        line = 2                                   # the header is line 1
        self.rows_read = 0
        self.block_index = []
        with self.path.open("rb") as fh:
            digest.update(fh.readline())
            while True:
                offset = fh.tell()
                data = fh.read(block_bytes)
                if data and not data.endswith(b"\n"):
                    data += fh.readline()          # finish the last line (or reach the end)
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

    def batches(self, block_bytes: int | None = None) -> Iterator[RawBatch]:
        """Every data row as text cells, block by block."""
        for block in self.blocks(block_bytes):
            yield self.parse(block)

    def parse(self, block: RawBlock, column_types: dict[str, pa.DataType] | None = None,
              ) -> RawBatch | None:
        """Parse ``block``: all columns as text, or only ``column_types`` converted by pyarrow.

        Text parsing raises :class:`ETLError` for a structure error (wrong number of cells).
        Converted parsing returns None when any cell does not convert (or the structure is
        wrong): parse the block as text to find out which cell and why.
        """
        data = block.data
        if self.encoding == "cp1251":
            data = data.decode("cp1251").encode("utf-8")
        if column_types is None:
            convert = pacsv.ConvertOptions(column_types={c: pa.string() for c in self.header},
                                           strings_can_be_null=False, quoted_strings_can_be_null=False)
        else:  # blanks become nulls in converted (non-text) columns only
            convert = pacsv.ConvertOptions(column_types=column_types, include_columns=list(column_types),
                                           null_values=[""], strings_can_be_null=False,
                                           quoted_strings_can_be_null=True)
        try:
            table = pacsv.read_csv(
                io.BytesIO(data),
                read_options=pacsv.ReadOptions(column_names=self.header, encoding="utf8"),
                parse_options=pacsv.ParseOptions(delimiter=self.separator),
                convert_options=convert)
        except pa.ArrowInvalid as exc:
            if column_types is not None:
                return None
            raise self._structure_error(exc, data, block.first_line) from None
        lines = block.lines(table.num_rows)
        if len(lines) != table.num_rows:           # a line break inside quotes, or a lone \r
            raise ETLError(self.name, row=block.first_line, rule="csv structure",
                           message="cannot be parsed: a line break inside a field or a lone carriage return")
        return RawBatch(table=table, lines=lines)

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
        with self.path.open("rb") as fh:
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

    def _structure_error(self, exc: Exception, data: bytes, first_line: int) -> ETLError:
        message = str(exc).removeprefix("CSV parse error: ")
        row = None
        found = re.search(r": (.*)$", message)
        if found:
            offset = data.find(found.group(1).encode("utf-8", "replace")[:200])
            if offset >= 0:
                row = first_line + data.count(b"\n", 0, offset)
        text = message.split(": ")[0] if found else message
        return ETLError(self.name, row=row, rule="csv structure", message=f"cannot be parsed: {text}")


def _prefetch(fh, length: int) -> None:
    """Ask the OS to start reading the next ``length`` bytes of ``fh`` in the background."""
    try:
        os.posix_fadvise(fh.fileno(), fh.tell(), length, os.POSIX_FADV_WILLNEED)
    except (AttributeError, OSError):     # not POSIX, or not a regular file: just read on demand
        pass


def json_rows(table: pa.Table) -> pa.Array:
    """Each row of a text table as a JSON object, exactly as ``json.dumps(row, ensure_ascii=False)``.

    Built with pyarrow string kernels; only columns whose bytes hold a quote, a backslash or
    a control character need escaping, and the rare row with a control character in a cell
    is encoded by :mod:`json` itself.
    """
    if table.num_columns == 0:
        return pa.array(["{}"] * table.num_rows, pa.string())
    parts: list[object] = []
    control = np.zeros(table.num_rows, dtype=bool)
    for i, name in enumerate(table.column_names):
        cells = table[name]
        if _holds_bytes(cells, lambda b: (b < 0x20)):
            control |= pc.match_substring_regex(cells, _JSON_CONTROL).to_numpy(zero_copy_only=False)
        if _holds_bytes(cells, lambda b: (b == ord('"')) | (b == ord("\\"))):
            cells = pc.replace_substring(pc.replace_substring(cells, "\\", "\\\\"), '"', '\\"')
        parts += [("{" if i == 0 else ", ") + json.dumps(name, ensure_ascii=False) + ': "', cells, '"']
    parts.append("}")
    rows = pc.binary_join_element_wise(*parts, "")
    if isinstance(rows, pa.ChunkedArray):
        rows = rows.combine_chunks()
    if control.any():
        fixed = rows.to_pylist()
        for i in np.flatnonzero(control).tolist():
            fixed[i] = json.dumps(table.slice(i, 1).to_pylist()[0], ensure_ascii=False)
        rows = pa.array(fixed, pa.string())
    return rows


def trim_whitespace(cells: pa.ChunkedArray | pa.Array) -> pa.Array:
    """Cells without leading and trailing (Unicode) whitespace, as one array.

    Skips the copy when no cell can need it: no byte is an ASCII space or control character
    and none is part of a non-ASCII character.
    """
    if isinstance(cells, pa.ChunkedArray):
        cells = cells.combine_chunks()
    if not _holds_bytes(pa.chunked_array([cells]), lambda b: (b <= 0x20) | (b >= 0x7F)):
        return cells
    return pc.utf8_trim_whitespace(cells)


def _holds_bytes(cells: pa.ChunkedArray, test) -> bool:
    """Whether any byte of the cells' data buffers passes ``test`` (False means none can)."""
    for chunk in cells.chunks:
        data = chunk.buffers()[2]
        if data is not None and test(np.frombuffer(data, dtype=np.uint8)).any():
            return True
    return False


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
