"""The CSV readers accept what spreadsheets write and name the file when they cannot."""
from __future__ import annotations

import codecs

import pytest

from etl.errors import ETLError
from etl.raw_specs import MONEY
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
