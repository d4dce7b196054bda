"""The CSV readers accept what spreadsheets write and name the file when they cannot."""
from __future__ import annotations

import codecs
import csv
import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from etl import readers, validate
from etl.errors import ETLError
from etl.raw_specs import CARTS, MARKET_FILE, MONEY
from etl.arrow_text import json_rows
from etl.readers import open_raw_csv
from etl.validate import parse_source

ROWS = [("215348", "0,98"), ("215349", "4,16")]


def write(tmp_path, text: str, encoding="utf-8", bom=False, name="money.csv"):
    path = tmp_path / name
    data = text.encode(encoding)
    path.write_bytes((codecs.BOM_UTF8 if bom else b"") + data)
    return path


@pytest.mark.parametrize("sep,decimal,quote", [
    (";", ",", ""), (",", ".", ""), (",", ",", '"'), ("\t", ",", ""), (";", ".", ""),
])
def test_separators_and_decimal_marks(tmp_path, sep, decimal, quote):
    lines = ["id" + sep + "Прибыль"] + [f"{i}{sep}{quote}{p.replace(',', decimal)}{quote}" for i, p in ROWS]
    raw = open_raw_csv(write(tmp_path, "\n".join(lines) + "\n"), "money.csv")
    assert raw.separator == sep
    typed, rejected = parse_source(raw, MONEY)
    assert rejected.empty
    assert typed["profit"].tolist() == [0.98, 4.16]
    assert raw.decimal == ("," if decimal == "," else ".")


def test_bom_crlf_stray_header_spaces_and_column_order(tmp_path):
    text = " Прибыль ;id \r\n0,98;215348\r\n4,16;215349\r\n"
    raw = open_raw_csv(write(tmp_path, text, bom=True), "money.csv")
    assert raw.encoding == "utf-8-sig"
    typed, _ = parse_source(raw, MONEY)
    assert typed["customer_id"].tolist() == [215348, 215349]
    assert typed["profit"].tolist() == [0.98, 4.16]


def test_windows_1251_is_detected(tmp_path):
    text = "id;Прибыль\r\n215348;0,98\r\n"
    raw = open_raw_csv(write(tmp_path, text, encoding="cp1251"), "money.csv")
    assert raw.encoding == "cp1251"
    typed, _ = parse_source(raw, MONEY)
    assert typed["profit"].tolist() == [0.98]


def test_source_rows_are_editor_line_numbers(tmp_path):
    text = "id;Прибыль\n215348;0,98\n\n215349;lots\n"
    raw = open_raw_csv(write(tmp_path, text), "money.csv")
    typed, rejected = parse_source(raw, MONEY)
    assert typed["source_row"].tolist() == [2]
    assert rejected[["source_row", "column_name", "rule"]].values.tolist() == [[4, "Прибыль", "number"]]
    assert "'lots' is not a number" in rejected["reason"].iloc[0]


@pytest.mark.parametrize("text,rule,fragment", [
    ("", "not empty", "is empty"),
    ("\r\n  \r\n", "not empty", "is empty"),
    ("id;Прибыль\n", "not empty", "no data rows"),
    ("just-one-column\n1\n", "separator", "single column"),
])
def test_unusable_files_name_file_and_rule(tmp_path, text, rule, fragment):
    with pytest.raises(ETLError) as err:
        parse_source(open_raw_csv(write(tmp_path, text), "customers/money.csv"), MONEY)
    assert err.value.rule == rule
    assert "customers/money.csv" in str(err.value) and fragment in str(err.value)


def test_missing_file(tmp_path):
    with pytest.raises(ETLError, match="money.csv: is missing"):
        open_raw_csv(tmp_path / "money.csv", "money.csv")


def test_missing_column_names_file_and_column(tmp_path):
    raw = open_raw_csv(write(tmp_path, "id;profit_typo\n1;2\n"), "customers/money.csv")
    with pytest.raises(ETLError) as err:
        parse_source(raw, MONEY)
    assert err.value.column == "Прибыль" and err.value.rule == "required column"
    assert "file customers/money.csv, column 'Прибыль'" in str(err.value)


def test_range_and_integer_rules(tmp_path):
    text = "id;Прибыль\n-5;1\n2.5;1\n7;1\n"
    raw = open_raw_csv(write(tmp_path, text), "money.csv")
    typed, rejected = parse_source(raw, MONEY)
    assert typed["customer_id"].tolist() == [7]
    by_row = dict(zip(rejected["source_row"], rejected["rule"]))
    assert by_row == {2: "range", 3: "number"}


# --- the fast path (pyarrow converts whole blocks) and the cell-by-cell path agree -----------

CART_HEADER = ("ID,Is_Product_Details_viewed,Session_Activity_Count,No_Items_Added_InCart,"
               "No_Items_Removed_FromCart,No_Cart_Viewed,No_Checkout_Confirmed,No_Checkout_Initiated ,"
               "No_Cart_Items_Viewed,No_Customer_Login,No_Page_Viewed,Customer_Segment_Type,Cart_Abandoned")
BAD_CELLS = {  # column index -> cell that breaks a rule (or, for the last ones, does not)
    2: "many", 3: "2.5", 4: "", 11: "7", 1: "Maybe", 5: "-1", 6: "nan", 7: "inf", 8: "0x1F",
    9: '"1,0"', 10: "99999999999",
}


def cart_lines(rows: int, seed: int = 0) -> list[str]:
    """Valid cart rows with, every few hundred rows, a bad cell, a padded or quoted cell."""
    rng = np.random.default_rng(seed)
    lines = []
    for i in range(rows):
        cells = [f"Session_ID_{i}", "Yes" if i % 3 else "No", *map(str, rng.integers(0, 40, 9)),
                 str(i % 3), "1" if i % 7 else "0"]
        if i % 97 == 5:
            cells[3] = ""                                    # blank, allowed: filled later
        if i % 251 == 11:
            column = list(BAD_CELLS)[(i // 251) % len(BAD_CELLS)]
            cells[column] = BAD_CELLS[column]
        if i % 313 == 17:
            cells[2], cells[1], cells[0] = " 12 ", " yes", f'"{cells[0]}"'   # padded and quoted: valid
        if i % 401 == 19:
            cells[9] = "+3"                                  # valid number
        lines.append(",".join(cells))
    return lines


def parse_with(monkeypatch, path, spec, block_bytes=None, small=None, fast=True):
    """parse_source with other block sizes, or without the fast path; also counts fast blocks."""
    fast_blocks = []
    typed_columns = validate._typed_columns if fast else (lambda *args: None)

    def counted(*args):
        columns = typed_columns(*args)
        fast_blocks.append(columns is not None)
        return columns

    monkeypatch.setattr(validate, "_typed_columns", counted)
    if block_bytes:
        monkeypatch.setattr(readers, "BLOCK_BYTES", block_bytes)
    if small:
        monkeypatch.setattr(validate, "SMALL_BLOCK_BYTES", small)
    raw = open_raw_csv(path, "carts/a.csv")
    typed, rejected = parse_source(raw, spec)
    monkeypatch.undo()
    return raw, typed, rejected.sort_values(["source_row", "column_name"], ignore_index=True), sum(fast_blocks)


@pytest.mark.parametrize("block_bytes,small", [(None, None), (4096, 1024), (50_000, 100), (20_000, 20_000)])
def test_fast_path_and_cell_by_cell_path_agree(tmp_path, monkeypatch, block_bytes, small):
    lines = cart_lines(3000)
    lines[100:100] = ["", "\r"]                              # blank lines shift the line numbers
    path = write(tmp_path, "\n".join([CART_HEADER] + lines) + "\n", name="a.csv")
    raw, typed, rejected, fast_blocks = parse_with(monkeypatch, path, CARTS, block_bytes, small)
    _, ref_typed, ref_rejected, none = parse_with(monkeypatch, path, CARTS, fast=False)
    assert none == 0 and (fast_blocks > 0) == (block_bytes is not None)   # default: one small, bad block
    pd.testing.assert_frame_equal(typed, ref_typed, check_dtype=False)
    pd.testing.assert_frame_equal(rejected, ref_rejected)
    assert raw.rows_read == 3000 and len(typed) + rejected["source_row"].nunique() == 3000
    # every line number is the editor's: the cells of that line are the row's raw values
    text = path.read_text().split("\n")
    for row, values in zip(rejected["source_row"], rejected["raw_values"]):
        assert json.loads(values) == dict(zip(raw.header, next(csv.reader([text[row - 1]]))))
    first_valid = typed.iloc[0]
    assert text[first_valid["source_row"] - 1].startswith(first_valid["session_id"] + ",")


@pytest.mark.parametrize("cell,reason", [("nan", "'nan' is not a whole number"),
                                         ("inf", "'inf' is not a whole number"),
                                         ("-inf", "'-inf' is not a whole number"),
                                         ("0x1F", "'0x1F' is not a whole number"),   # pyarrow's int parser takes hex
                                         ("2.5", "'2.5' is not a whole number"),
                                         ("20000000", "20000000.0 is outside [0, 1e+07]")])
def test_bad_numbers_are_rejected_on_either_path(tmp_path, cell, reason):
    rows = [f"Session_ID_1,Yes,{cell},1,0,0,0,0,1,0,0,0,1", "Session_ID_2,Yes, 7 ,1,0,0,0,0,1,0,0,0,1"]
    path = write(tmp_path, "\n".join([CART_HEADER] + rows) + "\n", name="a.csv")
    raw = open_raw_csv(path, "carts/a.csv")
    headers = validate.locate_columns(raw, CARTS)
    types = {headers[c.name]: validate._arrow_type(c) for c in CARTS.columns}
    batch = raw.parse(next(raw.blocks()), types)
    assert batch is None or validate._typed_columns(batch, CARTS, headers) is None   # fast path declines
    typed, rejected = parse_source(raw, CARTS)
    assert typed["session_id"].tolist() == ["Session_ID_2"] and typed["session_activity_count"].tolist() == [7]
    assert rejected[["source_row", "column_name", "reason"]].values.tolist() == [[2, "Session_Activity_Count", reason]]


def test_typed_columns_are_compact(tmp_path):
    path = write(tmp_path, "\n".join([CART_HEADER] + cart_lines(500)) + "\n", name="a.csv")
    typed, _ = parse_source(open_raw_csv(path, "carts/a.csv"), CARTS)
    dtypes = typed.dtypes.astype(str).to_dict()
    assert dtypes["session_activity_count"] == "int8" and dtypes["customer_segment"] == "int8"
    assert dtypes["items_added"] == "float32" and typed["items_added"].isna().any()   # blanks kept
    assert dtypes["abandoned"] == "bool" and dtypes["source_file"] == "category"
    assert dtypes["session_id"] == "str" and dtypes["source_row"] in ("int16", "int32")


def test_labels_become_categories(tmp_path):
    header = ",".join(c.raw for c in MARKET_FILE.columns)
    row = "215348,Снизилась,стандартт,да,3.4,5,100,0.5,Косметика и аксесуары,2,1,0,5"
    path = write(tmp_path, header + "\n" + row + "\n", name="market_file.csv")
    typed, rejected = parse_source(open_raw_csv(path, "market_file.csv"), MARKET_FILE)
    assert rejected.empty
    assert typed["service_tier"].tolist() == ["standard"] and typed["activity_declined"].tolist() == [True]
    assert typed["top_category"].tolist() == ["Cosmetics and accessories"]


# --- raw cells of rejected rows --------------------------------------------------------------

@pytest.mark.parametrize("cells", [
    {"a": "plain", "b": "", "c": "ёлка ∑"},
    {"a": 'say "hi"', "b": "back\\slash", "c": "tab\there"},
    {"a": "bell\x07", "b": "\u2028", "c": "'"},
])
def test_json_rows_are_what_json_dumps_writes(cells):
    table = pa.Table.from_pylist([cells, {k: "x" for k in cells}])
    assert json_rows(table).to_pylist() == [json.dumps(r, ensure_ascii=False) for r in table.to_pylist()]


@pytest.mark.parametrize("encoding,newline,final", [("utf-8", "\n", "\n"), ("cp1251", "\r\n", ""),
                                                   ("utf-8", "\r\n", "")])
def test_read_lines_returns_the_raw_cells_of_any_line(tmp_path, monkeypatch, encoding, newline, final):
    rows = [f"{215348 + i};{i},5" for i in range(40)]
    rows[10:10] = ["", ""]
    path = write(tmp_path, newline.join(["id;Прибыль"] + rows) + final, encoding=encoding)
    monkeypatch.setattr(readers, "BLOCK_BYTES", 64)                # many blocks
    raw = open_raw_csv(path, "money.csv")
    parse_source(raw, MONEY)
    assert len(raw.block_index) > 5
    wanted = np.array([43, 2, 14, 12, 2])                          # last line, first, after blanks, blank, twice
    found = raw.read_lines(wanted).to_pylist()
    assert [json.loads(v) if v else None for v in found] == [
        {"id": "215387", "прибыль": "39,5"}, {"id": "215348", "прибыль": "0,5"},
        {"id": "215358", "прибыль": "10,5"}, None, {"id": "215348", "прибыль": "0,5"}]


# --- decimal marks, encodings and lines that are not rows -----------------------------------

def test_decimal_mark_is_decided_by_the_column_and_contradictions_are_rejected(tmp_path):
    rows = [f"{215348 + i};{i}.5" for i in range(30)] + ["215400;4,971", "215401;7"]
    rows[0] = "215348;1,5"                      # the first row is outvoted, not trusted
    raw = open_raw_csv(write(tmp_path, "\n".join(["id;Прибыль"] + rows) + "\n"), "money.csv")
    typed, rejected = parse_source(raw, MONEY)
    assert raw.decimal_marks["profit"] == (".", 3)
    assert sorted(rejected["source_row"]) == [2, 32] and set(rejected["rule"]) == {"decimal mark"}
    assert "'4,971' uses a decimal comma; this column uses a decimal point" in " ".join(rejected["reason"])
    assert typed["profit"].tolist()[:2] == [1.5, 2.5] and typed["profit"].tolist()[-1] == 7


@pytest.mark.parametrize("encoding", ["cp1251", "koi8-r"])
def test_cyrillic_single_byte_encodings_are_told_apart(tmp_path, encoding):
    text = "id,Период,минут\n" + "".join(f"{215348 + i},текущий_месяц,{i}\n" for i in range(5))
    raw = open_raw_csv(write(tmp_path, text, encoding=encoding), "market_time.csv")
    assert raw.encoding == encoding and raw.header == ["id", "период", "минут"]


def test_utf16_as_excel_writes_it(tmp_path):
    text = "id\tПрибыль\r\n215348\t0,98\r\n215349\t4,16\r\n"
    path = tmp_path / "money.csv"
    path.write_bytes(codecs.BOM_UTF16_LE + text.encode("utf-16-le"))
    typed, rejected = parse_source(open_raw_csv(path, "money.csv"), MONEY)
    assert rejected.empty and typed["profit"].tolist() == [0.98, 4.16] and typed["source_row"].tolist() == [2, 3]


@pytest.mark.parametrize("line,fragment", [
    ('215350;"3,5', "opens a quote it does not close"),
    ("215350;3,5;extra", "has 3 cells; the header has 2"),
    ("215350;3\r,5", "carriage return inside the line"),
])
def test_a_line_that_is_not_a_row_is_rejected_with_its_number(tmp_path, line, fragment):
    rows = ["215348;0,98", "215349;4,16", line, "215351;1,5"]
    raw = open_raw_csv(write(tmp_path, "\n".join(["id;Прибыль"] + rows) + "\n"), "money.csv")
    typed, rejected = parse_source(raw, MONEY)
    assert typed["customer_id"].tolist() == [215348, 215349, 215351]
    assert rejected[["source_row", "rule"]].values.tolist() == [[4, "csv structure"]]
    assert fragment in rejected["reason"].iloc[0]
    assert json.loads(rejected["raw_values"].iloc[0]) == {"line": line}


def test_a_foreign_encoded_row_is_rejected_not_guessed(tmp_path):
    lines = ["id;Прибыль".encode(), "215348;0,98".encode(), "215349;нет".encode("cp1251"), b"215350;1,5"]
    path = tmp_path / "money.csv"
    path.write_bytes(b"\n".join(lines) + b"\n")
    raw = open_raw_csv(path, "money.csv")
    typed, rejected = parse_source(raw, MONEY)
    assert raw.encoding == "utf-8" and typed["customer_id"].tolist() == [215348, 215350]
    assert rejected[["source_row", "rule"]].values.tolist() == [[3, "encoding"]]
    assert "'215349;нет'" in rejected["reason"].iloc[0]


@pytest.mark.parametrize("data,fragment", [
    ("id;Прибыль\n1;2\n".encode("utf-16-le"), "UTF-16 without a byte-order mark"),
    ("id,Categoría\n" + "".join(f"{i},Niños pequeños\n" for i in range(9)), "which this reader does not accept"),
    (b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03", "binary"),
])
def test_an_encoding_it_cannot_read_is_named(tmp_path, data, fragment):
    path = tmp_path / "money.csv"
    path.write_bytes(data.encode("cp1252") if isinstance(data, str) else data)
    with pytest.raises(ETLError) as err:
        open_raw_csv(path, "money.csv")
    assert err.value.rule == "encoding" and fragment in str(err.value)


@pytest.mark.parametrize("block_bytes", [None, 4, 16])
def test_decimal_mark_does_not_depend_on_where_blocks_fall(tmp_path, monkeypatch, block_bytes):
    """'4.0' decides the decimal point even where the fast path reads it (no fraction)."""
    if block_bytes:
        monkeypatch.setattr(readers, "BLOCK_BYTES", block_bytes)
    raw = open_raw_csv(write(tmp_path, "id;Прибыль\n215348;1.5\n215349;4.0\n215350;4,971\n215351;2\n"), "money.csv")
    typed, rejected = parse_source(raw, MONEY)
    assert raw.decimal_marks["profit"][0] == "."
    assert rejected[["source_row", "rule"]].values.tolist() == [[4, "decimal mark"]]
    assert typed["profit"].tolist() == [1.5, 4.0, 2.0]


@pytest.mark.parametrize("block_bytes", [None, 24, 40])
def test_faults_that_cancel_out_are_still_found_and_lines_stay_exact(tmp_path, monkeypatch, block_bytes):
    """A lone carriage return (one row too many) and a quoted line break (one too few) in one
    block; a quoted cell across a block boundary never takes the valid rows after it."""
    if block_bytes:
        monkeypatch.setattr(readers, "BLOCK_BYTES", block_bytes)
    text = "id;Прибыль\n1;1,5\r7;7,5\n2;\"3,5\n\";3\n4;4,5\n5;5,5\n6;6,5\n"
    raw = open_raw_csv(write(tmp_path, text), "money.csv")
    typed, rejected = parse_source(raw, MONEY)
    assert typed[["source_row", "customer_id"]].values.tolist() == [[5, 4], [6, 5], [7, 6]]
    assert sorted(rejected["source_row"]) == [2, 3, 4] and set(rejected["rule"]) == {"csv structure"}
    assert raw.rows_read == len(typed) + len(rejected)


@pytest.mark.parametrize("encoding", ["cp1251", "koi8-r", "cp866", "mac-cyrillic", "iso8859-5"])
@pytest.mark.parametrize("name", ["market_time.csv", "money.csv", "market_money.csv"])
def test_every_cyrillic_single_byte_encoding_is_read_as_itself(tmp_path, generated_raw, encoding, name):
    text = (generated_raw / "customers" / name).read_text(encoding="utf-8")
    for lines in (3, None):                         # a few lines (header, labels) and the whole file
        sample = "\n".join(text.splitlines()[:lines]) + "\n"
        path = tmp_path / name
        path.write_bytes(sample.encode(encoding))
        raw = open_raw_csv(path, name)
        assert raw.encoding == encoding and any("прибыль" in h or "период" in h for h in raw.header)
