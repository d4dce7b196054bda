"""Which text encoding a raw file is in, decided once per file, and the lines that break it.

A file is UTF-8 (with or without BOM), UTF-16 (Excel's "Unicode text": BOM, tab separated), or
a Cyrillic single-byte encoding (Windows-1251 from Russian Excel, KOI8-R, ...) whose reading of
the file is Russian words. Anything else stops the run with the name :mod:`charset_normalizer`
gives it, instead of being misread.

The decision is made for the whole file from its first megabyte. A line that contradicts it
(a Windows-1251 row pasted into a UTF-8 export, or a UTF-8 row inside a Windows-1251 one) is
not guessed at: :func:`foreign_lines` finds it so the validator can reject that row, with its
line number and a readable preview, and keep the rest of the file.
"""
from __future__ import annotations

import codecs
import logging
import re
from pathlib import Path

import numpy as np
from charset_normalizer import from_bytes

from etl.errors import ETLError

log = logging.getLogger(__name__)

UTF8, UTF8_BOM, UTF16 = "utf-8", "utf-8-sig", "utf-16"
# Single-byte Cyrillic encodings Python decodes exactly, tried in this order on a tie.
_CANDIDATES = ("cp1251", "koi8-r", "cp866", "mac-cyrillic", "iso8859-5")
_RUSSIAN_LOWER = set("абвгдеёжзийклмнопрстуфхцчшщъыьэюя")
_RUSSIAN = _RUSSIAN_LOWER | {c.upper() for c in _RUSSIAN_LOWER}
_SIGNS = set("«»–—№…„“”‘’·°")
_RUSSIAN_WORD = re.compile(r"[А-Яа-яЁё]{2,}")
_CAPITALISED = re.compile(r"(?<![А-Яа-яЁё])[А-ЯЁ][а-яё]")
_TRANSCODE_BYTES = 8 << 20
_UTF8_PAIR = re.compile(rb"[\xc2-\xf4][\x80-\xbf]")


def detect_encoding(head: bytes, name: str, complete: bool) -> str:
    """The encoding of a file from its first bytes ``head`` (``complete``: the whole file).

    A header with non-ASCII text decides (the tool that wrote it chose the encoding). Under an
    ASCII header the file is UTF-8 unless most of its lines are not: a few lines that are not
    valid UTF-8 are rejected rows, not a reason to read the whole file in another encoding.
    """
    if head.startswith(codecs.BOM_UTF8):
        return UTF8_BOM
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return UTF16
    if _looks_utf16_without_bom(head):
        raise ETLError(name, rule="encoding", message="is UTF-16 without a byte-order mark; "
                       "save it again as 'CSV UTF-8' or as 'Unicode text' (which writes one)")
    if b"\x00" in head.split(b"\n", 1)[0] or head.count(b"\x00") * 100 > len(head):
        # a NUL in a cell is a bad cell; in the header or all over, the file is not text
        raise ETLError(name, rule="encoding", message="holds NUL bytes: it is a binary file, not CSV text")
    lines = head.split(b"\n")
    if not complete and len(lines) > 1:
        lines = lines[:-1]                        # the last line may be cut by the sniff window
    header, data = lines[0], [line for line in lines[1:] if line.strip(b"\r")]
    if max(header, default=0) >= 0x80:            # the tool that wrote the header chose the encoding
        return UTF8 if _is_utf8(header) else _legacy_encoding(header + b"\n" + b"\n".join(data), name)
    invalid = [line for line in data if max(line, default=0) >= 0x80 and not _is_utf8(line)]
    if len(invalid) * 2 <= len(data):
        return UTF8                               # mostly UTF-8 (or ASCII): the odd lines are rejected
    return _legacy_encoding(b"\n".join(invalid), name)


def _is_utf8(line: bytes) -> bool:
    try:
        line.decode(UTF8)
        return True
    except UnicodeDecodeError:
        return False


def _looks_utf16_without_bom(head: bytes) -> bool:
    """ASCII text in UTF-16 has a NUL in every other byte."""
    sample = np.frombuffer(head[: len(head) // 2 * 2][:4096], dtype=np.uint8)
    if len(sample) < 8:
        return False
    zeros = sorted([(sample[0::2] == 0).mean(), (sample[1::2] == 0).mean()])
    return bool(zeros[1] > 0.3 and zeros[0] < 0.05)   # Cyrillic UTF-16 has 0x04, not 0, beside letters


def _legacy_encoding(sample: bytes, name: str) -> str:
    """A single-byte Cyrillic encoding whose reading of ``sample`` is Russian words, else a
    clear refusal naming what the text looks like.

    charset detection alone confuses these encodings on the short texts of an export (a
    header, a few labels: Windows-1251 read as KOI8-R, Mac Cyrillic as Windows-1251), so each
    candidate's reading is scored instead: Russian letters in words, mostly lower case.
    """
    scores = {enc: _russian_score(sample, enc) for enc in _CANDIDATES}
    best = max(scores, key=scores.get)
    if scores[best] > 0:
        log.info("%s: not UTF-8; the text reads as Russian in %s", name, best)
        return best
    found = from_bytes(sample).best()
    guesses = list(found.could_be_from_charset) if found is not None else []
    looks = f"it looks like {guesses[0]}" + (f" ({found.language})" if found.language != "Unknown" else "") \
        if guesses else "its encoding cannot be recognised"
    raise ETLError(name, rule="encoding",
                   message=f"is not UTF-8 and {looks}, which this reader does not accept; "
                           "save it as 'CSV UTF-8' (or Windows-1251 for Russian Excel)")


def _russian_score(sample: bytes, encoding: str) -> float:
    """How much ``sample`` read in ``encoding`` looks like Russian text; 0 when it does not.

    Every non-ASCII character must be a Russian letter (or a typographic sign Russian text
    uses) and sit in a word of two or more letters; the score then favours lower case, which
    is what tells Windows-1251 from KOI8-R (they swap the cases).
    """
    text = sample.decode(encoding, errors="replace")
    high = [c for c in text if ord(c) >= 0x80]
    if not high:
        return 0.0
    russian = sum(c in _RUSSIAN for c in high)
    if russian < 0.9 * len(high) - sum(c in _SIGNS for c in high):
        return 0.0
    in_words = sum(len(w) for w in _RUSSIAN_WORD.findall(text))
    if in_words < 0.8 * russian:
        return 0.0
    lower = sum(c in _RUSSIAN_LOWER for c in high)
    capital_starts = len(_CAPITALISED.findall(text))
    return (lower + capital_starts) / len(high)


def transcode_utf16(path: Path, name: str, target: Path) -> None:
    """Write the UTF-16 file ``path`` to ``target`` as UTF-8, streaming, line breaks kept.

    The readers then treat it like any UTF-8 file (same blocks, same line numbers). An invalid
    sequence (an unpaired surrogate, an odd byte at the end) stops the run with its line.
    """
    line = 1
    strict = codecs.getincrementaldecoder(UTF16)(errors="strict")
    with path.open("rb") as raw, target.open("wb") as out:
        while True:
            chunk = raw.read(_TRANSCODE_BYTES)
            try:
                text = strict.decode(chunk, final=not chunk)
            except UnicodeDecodeError as exc:
                # where in the chunk: the first replacement character of a lenient decode
                lenient = codecs.getincrementaldecoder(UTF16)(errors="replace")
                lenient.setstate(strict.getstate())
                seen = lenient.decode(chunk, final=not chunk)
                line += seen[: max(seen.find("\ufffd"), 0)].count("\n")
                raise ETLError(name, row=line, rule="encoding",
                               message=f"is not valid UTF-16 ({exc.reason})") from None
            line += text.count("\n")
            out.write(text.encode(UTF8))
            if not chunk:
                break


def foreign_lines(data: bytes, encoding: str) -> dict[int, str]:
    """0-based indexes of the lines of ``data`` that contradict the file's encoding, with why.

    In a UTF-8 file: lines that are not valid UTF-8 (the reason shows them read as
    Windows-1251, the usual culprit). In a legacy file: lines whose non-ASCII bytes are all
    valid multi-byte UTF-8. Only lines holding non-ASCII bytes are looked at, one by one.
    """
    utf8 = encoding in (UTF8, UTF8_BOM, UTF16)
    try:
        data.decode(UTF8 if utf8 else encoding)
        if utf8 or not _UTF8_PAIR.search(data):
            return {}
    except UnicodeDecodeError:
        pass
    found = {}
    byte = np.frombuffer(data, dtype=np.uint8)
    breaks = np.flatnonzero(byte == ord("\n"))
    starts = np.concatenate([[0], breaks + 1])
    ends = np.concatenate([breaks, [len(data)]])
    high = np.flatnonzero(byte >= 0x80)
    for index in np.unique(np.searchsorted(breaks, high)).tolist():
        line = data[starts[index]:ends[index]]
        is_utf8 = _is_utf8(line)
        if utf8 and not is_utf8:
            found[index] = ("is not valid UTF-8 (read as Windows-1251 it says "
                            f"{_preview(line.decode('cp1251', errors='replace'))})")
        elif not utf8 and is_utf8:
            found[index] = f"is UTF-8 text inside a {encoding} file ({_preview(line.decode(UTF8))})"
        elif not utf8:
            try:
                line.decode(encoding)
            except UnicodeDecodeError as exc:
                found[index] = f"holds a byte that is not {encoding} ({exc.reason} at character {exc.start + 1})"
    return found


def decode_line(line: bytes, encoding: str) -> str:
    """A line as text for a message or a rejected row's raw cells; never raises."""
    return line.decode(UTF8 if encoding in (UTF8_BOM, UTF16) else encoding, errors="replace")


def _preview(text: str, width: int = 60) -> str:
    text = text.rstrip("\r")
    return repr(text if len(text) <= width else text[:width] + "…")
