"""The same data re-saved the way spreadsheets do loads into the same warehouse."""
from __future__ import annotations

import codecs
import csv
import io

import duckdb
import pytest

from etl.pipeline import run_pipeline


def resave(path, *, encoding="utf-8", sep=",", decimal=".", reverse=False, bom=False, pad=False):
    text = path.read_text(encoding="utf-8")
    rows = list(csv.reader(io.StringIO(text), delimiter=";" if path.name == "money.csv" else ","))
    if reverse:
        rows = [r[::-1] for r in rows]
    if pad:
        rows[0] = [f"  {c} " for c in rows[0]]
    out = io.StringIO()
    writer = csv.writer(out, delimiter=sep, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    for i, row in enumerate(rows):
        writer.writerow([c.replace(".", decimal) if i and c.replace(".", "").isdigit() else c for c in row])
    data = out.getvalue().encode(encoding)
    path.write_bytes((codecs.BOM_UTF8 if bom else b"") + data)


def table(path, name, order):
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(f"SELECT * FROM {name} ORDER BY {order}").fetchall()
    finally:
        con.close()


@pytest.mark.slow
def test_excel_style_exports_give_the_same_warehouse(raw_copy, tmp_path):
    reference = tmp_path / "reference.duckdb"
    run_pipeline(raw_copy, str(reference))
    customers = raw_copy / "customers"
    resave(customers / "market_file.csv", encoding="cp1251", sep=";", decimal=",", reverse=True, pad=True)
    resave(customers / "market_money.csv", sep=",", decimal=",", bom=True)       # quoted decimal commas
    resave(customers / "market_time.csv", sep="\t", reverse=True)
    resave(customers / "money.csv", sep=",", decimal=".")
    resaved = tmp_path / "resaved.duckdb"
    run_pipeline(raw_copy, str(resaved))
    assert table(resaved, "customers", "customer_id") == table(reference, "customers", "customer_id")
    assert table(resaved, "sessions", "session_id") == table(reference, "sessions", "session_id")
    # source_files columns: run_id, subject, source_file, rows_read, rows_rejected, encoding, separator, decimal
    detected = {r[2]: r[5:8] for r in table(resaved, "source_files", "source_file")}
    assert detected["customers/market_file.csv"] == ("cp1251", ";", ",")
    assert detected["customers/market_money.csv"] == ("utf-8-sig", ",", ",")
    assert detected["customers/market_time.csv"] == ("utf-8", "\t", ".")
