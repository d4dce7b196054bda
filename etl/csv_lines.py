"""Why a block of CSV lines does not parse, line by line.

pyarrow parses blocks fast but says little when a block fails: a message without the line,
or a wrong one, or an internal ("straddles two block boundaries"). Raw files hold one record
per line (see :mod:`etl.readers`), so a failing block is read again here, one physical line at
a time with Python's :mod:`csv` module configured like pyarrow's parser, and each line that
cannot be a row is named with its reason. The validator rejects those rows (their raw text
kept) and pyarrow parses the rest.
"""
from __future__ import annotations

import csv
import json

from etl.encoding import decode_line

STRUCTURE = "csv structure"
_OPEN = "opens a quote it does not close"
CELL_LINES = 100           # lines a quoted cell may span before its quote is taken for a stray one


def structure_problems(text: str, separator: str, columns: int, first_line: int) -> dict[int, str]:
    """0-based index -> reason for each line of ``text`` that is not one well-formed row.

    A line is well formed when it parses into exactly ``columns`` cells, every quote opened on
    it is closed on it, and it holds no carriage return but a final one (pyarrow would end
    the row there). The lines after one that leaves a quote open belong to that cell, up to
    the line that closes it (within :data:`CELL_LINES`): each is named too, even when it
    would pass for a row alone. (Blocks are cut so that a quoted cell is never split between
    two, see :mod:`etl.readers`.)
    Blank lines are fine: they are skipped as rows.
    """
    problems = {}
    lines = [line[:-1] if line.endswith("\r") else line for line in text.split("\n")]
    index = 0
    while index < len(lines):
        line = lines[index]
        reason = line_problem(line, separator, columns) if line.strip("\r") else None
        if reason:
            problems[index] = reason
        if reason and reason.startswith(_OPEN):
            # the cell goes on to the next line with an odd number of quotes, when one comes
            # soon; otherwise the quote was a stray one and the next lines are rows again
            closing = next((j for j in range(index + 1, min(index + 1 + CELL_LINES, len(lines)))
                            if lines[j].count('"') % 2), None)
            for j in range(index + 1, (closing or index) + 1):
                if lines[j].strip("\r"):       # a blank line is not a row: nothing to reject
                    problems[j] = f"continues a quoted cell opened on line {first_line + index}"
            index = closing or index
        index += 1
    return problems


def line_problem(line: str, separator: str, columns: int) -> str | None:
    """Why one line (without its line break) is not a row, or None."""
    if "\r" in line:
        return "holds a carriage return inside the line (an old Mac line end or a line break in a cell)"
    try:  # strict: the only way the csv module reports a quote left open at the end
        cells = next(csv.reader([line], delimiter=separator, strict=True))
    except csv.Error as exc:
        if "unexpected end of data" in str(exc):
            return _OPEN + ": a line break inside a quoted cell or a stray quote character"
        # lenient like pyarrow: text after a closing quote is part of the cell ("2"x -> 2x)
        cells = next(csv.reader([line], delimiter=separator, strict=False))
    if len(cells) != columns:
        return f"has {len(cells)} cells; the header has {columns}"
    return None


def closes_at(data: bytes, start: int) -> int | None:
    """For ``data`` whose quote count before ``start`` (a line start) is odd, so a quoted cell is
    open there: the end of the line that closes it, when one does within :data:`CELL_LINES`
    lines; None when none does (the quote was a stray one)."""
    position = start
    for _ in range(CELL_LINES):
        end = data.find(b"\n", position)
        end = len(data) if end < 0 else end + 1
        if data.count(b'"', position, end) % 2:
            return end
        if end >= len(data):
            return None
        position = end
    return None


def blank_out(text: str, lines: dict[int, str]) -> str:
    """``text`` with the given lines emptied (line breaks kept, so numbering stays; pyarrow
    skips blank lines and :meth:`RawBlock.lines` leaves them out)."""
    split = text.split("\n")
    for index in lines:
        split[index] = ""
    return "\n".join(split)


def rejected_lines(data: bytes, first_line: int, reasons: dict[int, str], rule: str, encoding: str,
                   ) -> dict[int, tuple[str, str, str]]:
    """Lines that are not rows (0-based index -> reason) as rejections keyed by line number,
    each with its whole text as the raw value."""
    if not reasons:
        return {}
    split = data.split(b"\n")
    return {first_line + i: (rule, reason, json.dumps(
                {"line": decode_line(split[i], encoding).removesuffix("\r")}, ensure_ascii=False))
            for i, reason in reasons.items()}


def rest_of_quoted_cell(fh) -> bytes:
    """The next lines of ``fh`` up to the one that closes an open quoted cell, when one does
    within CELL_LINES lines; nothing (and ``fh`` where it was) when the quote was a stray one."""
    start = fh.tell()
    taken = b"".join(fh.readline() for _ in range(CELL_LINES))
    end = closes_at(b"\n" + taken, 1)
    fh.seek(start + (end - 1 if end else 0))
    return taken[:end - 1] if end else b""
