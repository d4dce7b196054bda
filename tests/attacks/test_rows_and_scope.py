"""Row-level data and scopes: ids, widening by URL, filter or click, the response cache,
exports and raw cells.

Part of the attack suite of issue 10 (see tests/attacks/support.py).
"""
from __future__ import annotations

import json
import re
import shutil

import pytest

from tests.attacks.support import (USERS, add_users, body_for, clean_env, create_app_for_test,
                                   csv_rows, customer_ids, export_body, exports_of, post_with, signed_in)
from dashboard.auth.gate import ROW_OUTPUTS
from tests.dashboard_generators import router_body


def test_no_answer_to_a_viewer_holds_a_customer_or_session_id(app, callbacks, route, dashboard_data):
    """Every page (through the router, with the pages' own query links) and every callback a
    viewer may post, with the values the pages hold (chart customdata, controls): no customer
    id and no session id in any answer."""
    ids = customer_ids(dashboard_data)
    pattern = re.compile(r"(?<![\d.])(2\d{5})(?![\d.])")
    seen = []
    for client in (signed_in(app, "vera"), signed_in(app, "vic")):
        texts = []
        for page in ("/", "/carts", "/customers", "/segments", "/what-if", "/what-if?subject=carts",
                     "/model", "/model?subject=carts",
                     "/data-quality", "/segments?segment=promo_risk_high_profit"):
            path, _, search = page.partition("?")
            response = post_with(client, router_body(route, path, "?" + search if search else ""))
            assert response.status_code == 200, page
            texts.append(response.get_data(as_text=True))
        for key, body in callbacks.items():
            if "admin-" in key or any(output in key for output in ROW_OUTPUTS):
                continue   # refused to viewers by the gate (tests/test_auth_routes.py)
            response = post_with(client, body)
            assert response.status_code in (200, 204), key
            texts.append(response.get_data(as_text=True))
        text = "\n".join(texts)
        seen.append(len(text))
        leaked = sorted({m for m in pattern.findall(text) if m in ids})
        assert not leaked, leaked[:10]
        assert not re.search(r"Session_ID_\d+", text)
    assert min(seen) > 10000   # the pages were really drawn
    # the same scan does find ids where they are allowed: an analyst's at-risk list
    rows = post_with(signed_in(app, "ana"), router_body(route, "/segments", "")).get_data(as_text=True)
    assert len({m for m in pattern.findall(rows) if m in ids}) > 50


def test_a_scoped_analyst_cannot_widen_the_scope_by_url_filter_or_click(app, callbacks, route, dashboard_data):
    import duckdb

    client = signed_in(app, "pia")   # analyst, service_tier=premium
    rows = csv_rows(post_with(client, export_body(callbacks, "segment=other")))
    assert rows and {r["Service tier"] for r in rows} == {"premium"}
    with duckdb.connect(dashboard_data["scored"], read_only=True) as con:
        outsider = con.sql("select customer_id from customers where service_tier <> 'premium' limit 1").fetchone()[0]
    # a what-if start from a customer outside the scope: the same answer as an unknown id
    body = body_for(callbacks, "wi-start-msg")
    body["state"][0]["value"] = str(outsider)
    body["changedPropIds"] = ["wi-load.n_clicks"]
    body["inputs"][0]["value"] = 1
    answer = post_with(client, body).get_data(as_text=True)
    assert f"No customer with id {outsider}" in answer
    # links asking for other tiers get the scope (and say so); asking for every tier is no filter
    page = post_with(client, router_body(route, "/customers", "?tier=standard")).get_data(as_text=True)
    assert "Ignored service tier standard" in page
    every = post_with(client, router_body(route, "/customers", "?tier=standard,premium")).get_data()
    assert every == post_with(client, router_body(route, "/customers", "")).get_data()
    # the carts pages are hidden altogether for a customers-only scope, whatever the link says
    carts = post_with(client, router_body(route, "/carts", "?segment=0,1,2,3")).get_data(as_text=True)
    assert "not shown" in carts and "funnel" not in carts


def _with_input(body: dict, ident: str, prop: str, value) -> dict:
    body = json.loads(json.dumps(body))
    hits = 0
    for entry in body["inputs"]:
        for item in entry if isinstance(entry, list) else [entry]:
            if item["id"] == ident and item["property"] == prop:
                item["value"] = value
                hits += 1
    assert hits == 1, (ident, prop)
    body["changedPropIds"] = [f"{ident}.{prop}"]
    return body


def test_a_cross_filter_click_outside_the_scope_does_not_widen_it(app, callbacks):
    pia = signed_in(app, "pia")   # service_tier=premium
    customers = body_for(callbacks, '"page":"customers"')
    clicked = _with_input(customers, "cust-by-tier", "clickData", {"points": [{"customdata": ["standard", 1, 2]}]})
    text = post_with(pia, clicked).get_data(as_text=True)
    assert "Ignored service tier standard" in text
    plain = post_with(pia, _with_input(customers, "cust-tier", "value", [])).get_data(as_text=True)
    kpi = re.compile(r'"kpi-value"[^}]*?"children":"([^"]+)"')
    assert kpi.findall(text)[:1] == kpi.findall(plain)[:1]   # the customer count is the scope's
    cara = signed_in(app, "cara")  # customer_segment=2
    carts = body_for(callbacks, '"page":"carts"')
    clicked = _with_input(carts, "carts-by-segment", "clickData", {"points": [{"customdata": [0, 1, 2]}]})
    answer = post_with(cara, clicked)
    assert answer.status_code == 200 and "Ignored customer type 0" in answer.get_data(as_text=True)


# =============================================================================================
# Response cache: the same body from two identities
# =============================================================================================

def test_the_response_cache_never_hands_an_analysts_export_to_a_viewer(app, callbacks):
    body = export_body(callbacks, "segment=risk_low_profit")
    first = post_with(signed_in(app, "ana"), body)
    assert first.status_code == 200 and csv_rows(first)
    again = post_with(signed_in(app, "ana"), body)
    assert again.headers.get("X-Response-Cache") != "hit"   # exports are never kept (each one is audited)
    for viewer in ("vera", "vic"):
        refused = post_with(signed_in(app, viewer), body)
        assert refused.status_code == 403 and b"content" not in refused.get_data()
    narrow = post_with(signed_in(app, "pia"), body)
    assert {r["Service tier"] for r in csv_rows(narrow)} <= {"premium"}
    assert narrow.headers.get("X-Response-Cache") != "hit" or narrow.get_data() != first.get_data()


def test_every_export_is_audited_even_when_the_answer_comes_from_the_response_cache(app, callbacks):
    # FINDING: exports served from the shared response cache are never audited. The export
    # callback writes the audit entry; the response cache (keyed by role|scope + body) answers a
    # repeated export without running the callback, so a second analyst with the same role and
    # scope - or the same analyst again, or an analyst embed link - downloads the whole at-risk
    # list with no trace in the audit log ("exports with their filters and row counts", issue 10).
    # Fix: keep exports out of the response cache (call response_cache.keep_out() in the export
    # callback, or never cache answers that carry a dcc.Download), or audit in the lookup.
    body = export_body(callbacks, "segment=promo_risk_low_profit")
    before = len(exports_of(app))
    for name in ("ana", "alan", "ana"):
        response = post_with(signed_in(app, name), body)
        assert response.status_code == 200 and csv_rows(response)
    new = exports_of(app)[: len(exports_of(app)) - before]
    assert sorted(e["user"] for e in new) == ["alan", "ana", "ana"], \
        f"{len(new)} of 3 exports audited: {[(e['user'], e['details'].get('filters')) for e in new]}"


# =============================================================================================
# Embed links
# =============================================================================================


@pytest.fixture
def messy_quality_app(monkeypatch, tmp_path, dashboard_raw):
    """A warehouse the real ETL built from raw files where one customer's cell holds a note with
    a phone number (an export glitch the ETL rejects, quoting the cell in the reason)."""
    from etl.pipeline import run_pipeline

    raw = tmp_path / "raw"
    shutil.copytree(dashboard_raw, raw, ignore=shutil.ignore_patterns("README.md"))
    for path in raw.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    market = next(raw.rglob("market_file.csv"))
    lines = market.read_text(encoding="utf-8-sig").split("\n")
    header = lines[0].split(",")
    column = header.index("Длительность") if "Длительность" in header else 6
    cells = lines[2].split(",")
    cells[column] = "call +7 916 555-01-23 re refund"
    lines[2] = ",".join(cells)
    market.write_text("\n".join(lines), encoding="utf-8")
    warehouse = tmp_path / "messy.duckdb"
    run_pipeline(raw, str(warehouse))
    clean_env(monkeypatch)
    monkeypatch.setenv("WAREHOUSE_URL", str(warehouse))
    monkeypatch.setenv("MODELS_DIR", str(tmp_path / "no-models"))
    monkeypatch.setenv("CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("RAW_DIR", str(tmp_path / "no-raw"))
    monkeypatch.setenv("AUTH", "local")
    monkeypatch.setenv("SECRET_KEY", "messy-secret-" + "m" * 32)
    add_users(tmp_path / "state")
    return create_app_for_test()


def test_viewers_and_scoped_users_do_not_read_raw_rejected_cells_on_data_quality(messy_quality_app, route):
    # FINDING: the Data quality page withholds the "Raw cells" grid from viewers and scoped users
    # (rejected_sample requires the analyst role and no scope), but its "Rejections by reason"
    # table shows every reason text to everyone, and the ETL writes the offending cell into the
    # reason ("'<cell, up to 40 chars>' is not a whole number", "'<cell>' uses a comma...",
    # "<value> is outside [lo, hi]"). So a viewer - or a user scoped to other rows - reads the
    # raw cells of rejected rows (here a phone number typed into a customer's row), which the
    # issue reserves for analysts ("the Data quality page's raw rejected cells").
    # Fix: for users who may not read raw cells, group rejections by rule/column only (or store
    # a cell-free reason template in rejected_rows and show that), never the quoting text.
    analyst = signed_in(messy_quality_app, "ana")
    page = post_with(analyst, router_body(route, "/data-quality", "")).get_data(as_text=True)
    assert "555-01-23" in page   # the analyst sees it (in the reason and in the raw cells): rightly
    for name in ("vera", "vic", "pia"):
        text = post_with(signed_in(messy_quality_app, name), router_body(route, "/data-quality", "")).get_data(
            as_text=True)
        # a viewer sees the counts by rule and column; a scoped user no data quality at all
        assert "Rejected rows" in text or "cannot be limited to your access" in text
        assert "555-01-23" not in text, f"{name} ({USERS[name][0]}, scope {USERS[name][1]}) reads the raw cell"
