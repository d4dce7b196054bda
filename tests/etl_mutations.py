"""Malformed raw files derived from a valid raw folder, one mutation class each.

Each mutation edits a copy of the real (or generated) data in place and says what a correct
ETL must do with it (:class:`Expect`): stop with exit code 2 and one line naming file, rule
and (where there is one) row; or load, rejecting exactly the lines it broke, with every other
row identical to the clean build. Rows to break are drawn with the case's seed among rows the
clean build keeps, so the expected effect is exact.
"""
from __future__ import annotations

import codecs
import csv
import gzip
import io
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

CARTS = "carts/data_cart_abandonment.csv"
MARKET = "customers/market_file.csv"
REVENUE = "customers/market_money.csv"
MINUTES = "customers/market_time.csv"
PROFIT = "customers/money.csv"
CUSTOMER_FILES = (MARKET, REVENUE, MINUTES, PROFIT)


@dataclass
class Expect:
    """What the run must do: ``error`` (rule, file, row or None) or load with these effects."""

    error: tuple[str, str, int | None] | None = None
    rejected: dict[str, dict[int, str]] = field(default_factory=dict)   # file -> line -> rule
    also_rejected: dict[str, int] = field(default_factory=dict)         # file -> rows rejected by knock-on rules
    lost_sessions: set[str] = field(default_factory=set)
    lost_customers: set[int] = field(default_factory=set)
    added_lines: dict[str, int] = field(default_factory=dict)           # file -> rows read beyond the clean file
    renamed: bool = False                                                # files renamed or split: compare per subject


@dataclass
class Clean:
    """What the clean build kept, to draw rows whose fate is known."""

    sessions: set[str]
    customers: set[int]


class RawFile:
    """One raw file as text lines (line k of an editor is ``lines[k - 1]``)."""

    def __init__(self, raw: Path, name: str) -> None:
        self.path = raw / name
        self.name = name
        self.lines = self.path.read_bytes().decode("utf-8-sig").split("\n")
        if self.lines[-1] == "":
            self.lines.pop()
        header = self.lines[0]
        self.sep = max((",", ";", "\t"), key=lambda s: len(next(csv.reader([header], delimiter=s))))
        self.header = next(csv.reader([header], delimiter=self.sep))

    def cells(self, line: int) -> list[str]:
        return next(csv.reader([self.lines[line - 1]], delimiter=self.sep))

    def set_cells(self, line: int, cells: list[str]) -> None:
        out = io.StringIO()
        csv.writer(out, delimiter=self.sep, lineterminator="").writerow(cells)
        self.lines[line - 1] = out.getvalue()

    def set_cell(self, line: int, column: str, value: str) -> None:
        cells = self.cells(line)
        cells[self.header.index(column)] = value
        self.set_cells(line, cells)

    def column(self, raw: str) -> str:
        return next(h for h in self.header if h.strip().casefold() == raw.casefold())

    def pick(self, rng: np.random.Generator, clean: Clean) -> int:
        """A data line (not the first rows, which decide the decimal marks) whose row the
        clean build keeps."""
        kept = clean.sessions if self.name == CARTS else {str(c) for c in clean.customers}
        while True:
            line = int(rng.integers(20, len(self.lines) + 1))
            if self.cells(line)[0] in kept:
                return line

    def key(self, line: int):
        first = self.cells(line)[0]
        return first if self.name == CARTS else int(first)

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"

    def write(self, text: str | None = None, encoding: str = "utf-8", data: bytes | None = None) -> None:
        self.path.write_bytes(data if data is not None else (text or self.text()).encode(encoding))


def lost(file: RawFile, line: int) -> dict:
    """The row on ``line`` will be rejected: the session or customer it holds is gone (a side
    file's row takes its customer with it, rejected in market_file.csv by a knock-on rule)."""
    key = file.key(line)
    if file.name == CARTS:
        return {"lost_sessions": {key}}
    if file.name != MARKET:
        return {"lost_customers": {key}, "also_rejected": {MARKET: 1}}
    # a customer rejected in market_file.csv: its side rows are rejected as unknown
    sides = {}
    for side in CUSTOMER_FILES[1:]:
        other = RawFile(file.path.parents[1], side)
        sides[side] = sum(other.cells(i)[0] == str(key) for i in range(2, len(other.lines) + 1))
    return {"lost_customers": {key}, "also_rejected": sides}


def break_row(name: str, edit: Callable[[RawFile, int], None], rule: str) -> Callable:
    """A mutation that breaks one drawn row with ``edit`` and expects it rejected by ``rule``."""
    def mutate(raw: Path, rng: np.random.Generator, clean: Clean) -> Expect:
        file = RawFile(raw, name)
        line = file.pick(rng, clean)
        effect = lost(file, line)
        edit(file, line)
        file.write()
        return Expect(rejected={name: {line: rule}}, **effect)
    return mutate


def set_cell(column: str, value: str) -> Callable[[RawFile, int], None]:
    return lambda file, line: file.set_cell(line, file.column(column), value)


def edit_line(change: Callable[[str], str]) -> Callable[[RawFile, int], None]:
    def edit(file: RawFile, line: int) -> None:
        file.lines[line - 1] = change(file.lines[line - 1])
    return edit


def line_break_in_cell(raw: Path, rng, clean: Clean) -> Expect:
    """A quoted cell with a line break (Alt+Enter in Excel): both physical lines are rejected."""
    file = RawFile(raw, CARTS)
    line = file.pick(rng, clean)
    effect = lost(file, line)
    cells = file.cells(line)
    cells[0] = '"' + cells[0][:4] + "\n" + cells[0][4:] + '"'
    file.lines[line - 1:line] = file.sep.join(cells).split("\n")
    file.write()
    return Expect(rejected={CARTS: {line: "csv structure", line + 1: "csv structure"}},
                  added_lines={CARTS: 1}, **effect)


def one_row_encoded(name: str, file_encoding: str, row: Callable[[str], bytes]) -> Callable:
    """The file in ``file_encoding`` but one drawn row written by ``row``: that row rejected
    (rule ``encoding``), the file read in its own encoding."""
    def mutate(raw: Path, rng, clean: Clean) -> Expect:
        file = RawFile(raw, name)
        line = file.pick(rng, clean)
        effect = lost(file, line)
        data = [ln.encode(file_encoding) for ln in file.lines]
        data[line - 1] = row(file.lines[line - 1])
        file.write(data=b"\n".join(data) + b"\n")
        return Expect(rejected={name: {line: "encoding"}}, **effect)
    return mutate


def blank_cells_row(raw: Path, rng, clean: Clean) -> Expect:
    """A row of empty cells (a spreadsheet's formatted but empty row)."""
    file = RawFile(raw, PROFIT)
    line = int(rng.integers(20, len(file.lines)))
    file.lines.insert(line - 1, file.sep * (len(file.header) - 1))
    file.write()
    return Expect(rejected={PROFIT: {line: "blank row"}}, added_lines={PROFIT: 1})


# --- files that load with every value as in the clean build -------------------------------

def same(edit: Callable[[Path, np.random.Generator], None], renamed: bool = False) -> Callable:
    def mutate(raw: Path, rng, clean: Clean) -> Expect:
        edit(raw, rng)
        return Expect(renamed=renamed)
    return mutate


def reencode(name: str, encoding: str, sep: str | None = None, bom: bytes = b"", newline: str = "\n"):
    def edit(raw: Path, rng) -> None:
        file = RawFile(raw, name)
        rows = [file.cells(i) for i in range(1, len(file.lines) + 1)]
        out = io.StringIO()
        csv.writer(out, delimiter=sep or file.sep, lineterminator=newline).writerows(rows)
        file.write(data=bom + out.getvalue().encode(encoding))
    return edit


def upper_case_extension(raw: Path, rng) -> None:
    (raw / CARTS).rename(raw / CARTS.replace(".csv", ".CSV"))


def split_in_two(raw: Path, rng) -> None:
    file = RawFile(raw, CARTS)
    cut = int(rng.integers(100, len(file.lines) - 100))
    (raw / "carts/part_a.csv").write_text("\n".join(file.lines[:cut]) + "\n", encoding="utf-8")
    (raw / "carts/part_b.CSV").write_text("\n".join(file.lines[:1] + file.lines[cut:]) + "\n", encoding="utf-8")
    file.path.unlink()


def blank_lines(raw: Path, rng) -> None:
    file = RawFile(raw, CARTS)
    for line in sorted(rng.integers(2, len(file.lines), 5), reverse=True):
        file.lines.insert(int(line), "\r" if line % 2 else "")
    file.write()


def extra_column(raw: Path, rng) -> None:
    file = RawFile(raw, MARKET)
    for line in range(1, len(file.lines) + 1):
        file.set_cells(line, file.cells(line) + (["comment"] if line == 1 else [f"note, {line}"]))
    file.write()


def reversed_columns(raw: Path, rng) -> None:
    file = RawFile(raw, MINUTES)
    for line in range(1, len(file.lines) + 1):
        file.set_cells(line, file.cells(line)[::-1])
    file.write()


def shouted_labels(raw: Path, rng) -> None:
    file = RawFile(raw, MARKET)
    column = file.header.index(file.column("Покупательская активность"))
    for line in range(2, len(file.lines) + 1, 3):
        cells = file.cells(line)
        cells[column] = f"  {cells[column].upper()} "
        file.set_cells(line, cells)
    file.write()


def clutter(raw: Path, rng) -> None:
    (raw / "carts/notes.txt").write_text("exported by hand\n", encoding="utf-8")
    (raw / "carts/.~lock.data_cart_abandonment.csv#").write_text("lock\n", encoding="utf-8")
    (raw / "customers/README.md").write_text("# notes\n", encoding="utf-8")


def quote_everything(raw: Path, rng) -> None:
    file = RawFile(raw, REVENUE)
    out = io.StringIO()
    csv.writer(out, delimiter=file.sep, quoting=csv.QUOTE_ALL, lineterminator="\r\n").writerows(
        file.cells(i) for i in range(1, len(file.lines) + 1))
    file.write(out.getvalue())


# --- files that stop the run ---------------------------------------------------------------

def stop(edit: Callable[[Path, np.random.Generator], int | None], rule: str, name: str) -> Callable:
    def mutate(raw: Path, rng, clean: Clean) -> Expect:
        row = edit(raw, rng)
        return Expect(error=(rule, name, row))
    return mutate


def unreadable(raw: Path, rng) -> None:
    path = raw / PROFIT
    if os.geteuid() == 0:          # root reads anything: a link to nowhere cannot be opened either
        path.unlink()
        path.symlink_to(raw / "nowhere.csv")
    else:
        path.chmod(0)


def folder_instead_of_file(raw: Path, rng) -> None:
    (raw / MINUTES).unlink()
    (raw / MINUTES).mkdir()


def empty(raw: Path, rng) -> None:
    (raw / PROFIT).write_bytes(b"")


def header_only(raw: Path, rng) -> None:
    file = RawFile(raw, REVENUE)
    file.lines = file.lines[:1]
    file.write()


def renamed_column(raw: Path, rng) -> None:
    file = RawFile(raw, REVENUE)
    file.lines[0] = file.lines[0].replace("Выручка", "Revenue")
    file.write()


def duplicated_column(raw: Path, rng) -> None:
    file = RawFile(raw, MINUTES)
    file.lines[0] = file.sep.join(file.header[:-1] + [file.header[0]])
    file.write()


def broken_utf16(raw: Path, rng) -> int:
    file = RawFile(raw, PROFIT)
    line = int(rng.integers(20, len(file.lines)))
    data = [codecs.BOM_UTF16_LE] + [(ln + "\r\n").encode("utf-16-le") for ln in file.lines]
    data[line] = data[line][:4] + b"\x00\xd8" + data[line][4:]        # an unpaired high surrogate
    file.write(data=b"".join(data))
    return line


def utf16_without_bom(raw: Path, rng) -> None:
    file = RawFile(raw, PROFIT)
    file.write(encoding="utf-16-le")


def western_encoding(raw: Path, rng) -> None:
    file = RawFile(raw, CARTS)
    text = file.text().replace("Session_ID_", "Sesión_número_")
    file.write(data=text.encode("cp1252"))


def old_mac_line_ends(raw: Path, rng) -> int:
    file = RawFile(raw, CARTS)
    file.write(data=file.text().replace("\n", "\r").encode("utf-8"))
    return 1


def gzipped(raw: Path, rng) -> None:
    path = raw / MINUTES
    path.write_bytes(gzip.compress(path.read_bytes()))


def two_market_files(raw: Path, rng) -> None:
    (raw / MARKET.replace("market_file.csv", "MARKET_FILE.CSV")).write_bytes((raw / MARKET).read_bytes())


def nothing_usable(raw: Path, rng) -> int:
    file = RawFile(raw, PROFIT)
    file.lines = file.lines[:1] + [f"x{file.sep}y"] * (len(file.lines) - 1)
    file.write()
    return 2


CASES: dict[str, Callable[[Path, np.random.Generator, Clean], Expect]] = {
    # one row broken: rejected with its line and rule, the rest loads
    "decimal comma in a decimal-point column": break_row(MARKET, set_cell("Маркет_актив_6_мес", "4,971"), "decimal mark"),
    "decimal point in a decimal-comma column": break_row(PROFIT, set_cell("Прибыль", "4.971"), "decimal mark"),
    "thousands separator": break_row(PROFIT, set_cell("Прибыль", "1.234,5"), "number"),
    "quote left open": break_row(CARTS, edit_line(lambda s: s.replace(",", ',"', 1)), "csv structure"),
    "quote left open in a side file": break_row(REVENUE, edit_line(lambda s: s.replace(",", ',"', 2)), "csv structure"),
    "a cell too many": break_row(CARTS, edit_line(lambda s: s + ",1"), "csv structure"),
    "a cell too few": break_row(MINUTES, edit_line(lambda s: s.rsplit(",", 1)[0]), "csv structure"),
    "lone carriage return": break_row(CARTS, edit_line(lambda s: s.replace(",", "\r,", 1)), "csv structure"),
    "10 MB identifier": break_row(CARTS, edit_line(lambda s: "S" * (10 << 20) + s[s.index(","):]), "text"),
    "10 MB number": break_row(MARKET, set_cell("Длительность", "7" * (10 << 20)), "number"),
    "control character in an identifier": break_row(CARTS, edit_line(lambda s: s.replace("_", "\x01", 1)), "text"),
    "NUL byte in an identifier": break_row(CARTS, edit_line(lambda s: s.replace("_", "\x00", 1)), "text"),
    "superscript digit": break_row(CARTS, set_cell("No_Page_Viewed", "²"), "number"),
    "circled digit": break_row(MINUTES, set_cell("минут", "①"), "number"),
    "number beyond float range": break_row(MARKET, set_cell("Длительность", "1e400"), "number"),
    "NaN": break_row(PROFIT, set_cell("Прибыль", "NaN"), "number"),
    "negative count": break_row(CARTS, set_cell("No_Cart_Items_Viewed", "-3"), "range"),
    "unknown label": break_row(MARKET, set_cell("Тип сервиса", "платиновый"), "allowed labels"),
    "unknown period": break_row(REVENUE, set_cell("Период", "позапрошлый_год"), "allowed labels"),
    "blank required cell": break_row(CARTS, set_cell("ID", ""), "required value"),
    "line break inside a quoted cell": line_break_in_cell,
    "Windows-1251 row in a UTF-8 file": one_row_encoded(MARKET, "utf-8", lambda s: s.encode("cp1251")),
    "UTF-8 row in a Windows-1251 file": one_row_encoded(MARKET, "cp1251", lambda s: s.encode("utf-8")),
    "invalid UTF-8 byte": one_row_encoded(CARTS, "utf-8", lambda s: s.replace("_", "\udcff_", 1).encode(
        "utf-8", errors="surrogateescape")),
    "row of empty cells": blank_cells_row,
    # loads with every value as in the clean build
    "upper-case extension": same(upper_case_extension, renamed=True),
    "carts split in two files": same(split_in_two, renamed=True),
    "Windows-1251, semicolons": same(reencode(MARKET, "cp1251", ";")),
    "KOI8-R": same(reencode(MARKET, "koi8-r")),
    "Mac Cyrillic": same(reencode(MARKET, "mac-cyrillic")),
    "UTF-16 as Excel writes it": same(reencode(MARKET, "utf-16-le", "\t", codecs.BOM_UTF16_LE, "\r\n")),
    "UTF-16 big endian": same(reencode(PROFIT, "utf-16-be", None, codecs.BOM_UTF16_BE)),
    "BOM and CRLF": same(reencode(CARTS, "utf-8", None, codecs.BOM_UTF8, "\r\n")),
    "blank lines": same(blank_lines),
    "extra column with commas": same(extra_column),
    "columns reversed": same(reversed_columns),
    "labels upper case and padded": same(shouted_labels),
    "clutter beside the exports": same(clutter),
    "every cell quoted, CRLF": same(quote_everything),
    # stops the run, the published warehouse untouched
    "file that cannot be opened": stop(unreadable, "readable", PROFIT),
    "folder instead of a file": stop(folder_instead_of_file, "file present", MINUTES),
    "empty file": stop(empty, "not empty", PROFIT),
    "header only": stop(header_only, "not empty", REVENUE),
    "required column renamed": stop(renamed_column, "required column", REVENUE),
    "column twice in the header": stop(duplicated_column, "unique header", MINUTES),
    "invalid UTF-16": stop(broken_utf16, "encoding", PROFIT),
    "UTF-16 without BOM": stop(utf16_without_bom, "encoding", PROFIT),
    "Western European encoding": stop(western_encoding, "encoding", CARTS),
    "old Mac line ends": stop(old_mac_line_ends, "line ends", CARTS),
    "gzip named .csv": stop(gzipped, "encoding", MINUTES),
    "market_file twice (case)": stop(two_market_files, "single file", "customers/market_file.csv"),
    "no usable row": stop(nothing_usable, "number", PROFIT),
}
