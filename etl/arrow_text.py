"""Arrow text columns: raw cells as JSON, trimmed cells, a quick look at their bytes.

Vectorised with pyarrow compute kernels and numpy views of the data buffers, so a 10 M-row
column is handled without Python strings.
"""
from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# Characters json.dumps escapes besides '"' and '\\' (ensure_ascii=False): control characters.
_JSON_CONTROL = r"[\x00-\x1f]"


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
        if holds_bytes(cells, lambda b: (b < 0x20)):
            control |= pc.match_substring_regex(cells, _JSON_CONTROL).to_numpy(zero_copy_only=False)
        if holds_bytes(cells, lambda b: (b == ord('"')) | (b == ord("\\"))):
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
    if not holds_bytes(pa.chunked_array([cells]), lambda b: (b <= 0x20) | (b >= 0x7F)):
        return cells
    return pc.utf8_trim_whitespace(cells)


def holds_bytes(cells: pa.ChunkedArray, test) -> bool:
    """Whether any byte of the cells' data buffers passes ``test`` (False means none can)."""
    for chunk in cells.chunks:
        data = chunk.buffers()[2]
        if data is not None and test(np.frombuffer(data, dtype=np.uint8)).any():
            return True
    return False
