"""Roles over HTTP, on the real data: every server callback of the app (read from the app
itself, tests/dashboard_generators.py), posted with the valid bodies an analyst's pages
produce — real customer ids, session ids and segment views in them — answers a viewer without
a single customer id, session id or raw rejected cell, and the download is refused; the same
requests by an analyst carry the rows.

Twice for the viewer: through the sign-in gate as it is (which refuses the row callbacks with
403 itself), and with that outer wall taken down, so that the query and page layer is shown
to hold on its own.
"""
from __future__ import annotations

import base64
import json
import re

import pytest

from dashboard.auth.identity import Capability
from dashboard.filters import SegmentView
from tests.dashboard_generators import (harvest_pages, page_paths, post_json, router, router_body,
                                        server_callbacks, valid_body)
from tests.test_auth_rls import identity_client

ROWS_NOTE = "need the analyst role"


@pytest.fixture
def app(dashboard_env):
    from dashboard.app import create_app

    return create_app()


@pytest.fixture
def secrets(dashboard_env) -> dict[str, list[re.Pattern]]:
    """Values only row-level answers hold: the riskiest customers' ids, the what-if examples'
    session and customer ids, raw cells of rejected rows (read as the operator, outside any
    request), each as a pattern that does not match inside a longer number or id."""
    from dashboard.queries import at_risk, example_ids, rejected_sample

    customers = [*at_risk(SegmentView(), 10).customer_id.tolist(), *example_ids("customers")]
    sessions = example_ids("carts")
    cells = [c for c in rejected_sample(50).raw_values.tolist() if c and len(c) > 20][:10]
    assert customers and sessions and cells
    return {
        "customer id": [re.compile(rf"(?<![\w.]){int(i)}(?![\w.])") for i in set(customers)],
        "session id": [re.compile(rf"(?<!\w){re.escape(s)}(?!\w)") for s in set(sessions)],
        # as a JSON answer writes them: quotes escaped, UTF-8 as is
        "raw cell": [re.compile(re.escape(json.dumps(c, ensure_ascii=False)[1:-1])) for c in cells],
    }


def leaked(body: bytes, secrets: dict[str, list[re.Pattern]]) -> list[str]:
    text = body.decode("utf-8", "replace")
    return [f"{kind}: {p.pattern}" for kind, patterns in secrets.items() for p in patterns if p.search(text)]


def requests_of(client) -> tuple[list[dict], dict, dict]:
    """(server callbacks, a valid body for each (by output), a router body for each page),
    harvested from the pages as an analyst sees them, so the bodies carry real ids."""
    client.as_("analyst")
    callbacks = server_callbacks(client)
    harvest = harvest_pages(client, callbacks)
    route = router(callbacks)
    bodies = {c["output"]: valid_body(c, harvest) for c in callbacks}
    pages = {path + search: router_body(route, path, search) for path in page_paths()
             for search in ("", "?subject=carts", "?segment=promo_risk_high_profit")}
    return callbacks, bodies, pages


def every_answer(client, who: str, bodies: dict, pages: dict) -> dict[str, bytes]:
    client.as_(who)
    answers = {f"callback {key}": post_json(client, body) for key, body in bodies.items()}
    answers.update({f"page {path}": post_json(client, body) for path, body in pages.items()})
    answers.update({f"GET {path}": client.get(path) for path in page_paths()})
    answers["GET /_dash-layout"] = client.get("/_dash-layout")
    for what, response in answers.items():
        assert response.status_code < 500, what
    return answers


def wall_down(monkeypatch) -> None:
    """Take down the gate's own refusal of row callbacks (the outer wall)."""
    from dashboard.auth import gate

    monkeypatch.setattr(gate, "required_capability", lambda _output: Capability.AGGREGATES)


@pytest.mark.parametrize("wall", ["gate", "query layer alone"])
def test_no_answer_to_a_viewer_holds_a_row(app, monkeypatch, secrets, wall):
    client = identity_client(app, monkeypatch)
    callbacks, bodies, pages = requests_of(client)
    assert len(callbacks) >= 10
    if wall != "gate":
        wall_down(monkeypatch)
    for who in ("viewer", "viewer;service_tier=premium", "viewer;customer_segment=2"):
        for what, response in every_answer(client, who, bodies, pages).items():
            assert not leaked(response.get_data(), secrets), (who, what, leaked(response.get_data(), secrets))


def test_an_analyst_gets_the_rows(app, monkeypatch, secrets):
    client = identity_client(app, monkeypatch)
    _, bodies, pages = requests_of(client)
    answers = every_answer(client, "analyst", bodies, pages)
    found = {kind for response in answers.values() for kind in
             (line.split(":")[0] for line in leaked(response.get_data(), secrets))}
    assert found == set(secrets)        # ids in the grid and the what-if, raw cells on Data quality


def export_body(bodies: dict) -> dict:
    key = next(k for k in bodies if "seg-download" in k)
    body = json.loads(json.dumps(bodies[key]))
    body["changedPropIds"] = ["seg-export-csv.n_clicks"]
    for entry in body["inputs"]:
        entry["value"] = 1 if entry["id"] == "seg-export-csv" else entry.get("value")
    return body


def test_the_download_is_refused_to_a_viewer_and_sent_to_an_analyst(app, monkeypatch, secrets):
    client = identity_client(app, monkeypatch)
    _, bodies, _ = requests_of(client)
    body = export_body(bodies)
    refused = post_json(client.as_("viewer"), body)
    assert refused.status_code == 403 and ROWS_NOTE in refused.get_json()["message"]
    wall_down(monkeypatch)
    for who in ("viewer", "viewer;service_tier=premium"):
        answer = post_json(client.as_(who), body)
        assert answer.status_code == 200
        data = answer.get_json()
        assert "seg-download" not in data.get("response", {})        # nothing sent
        assert ROWS_NOTE in json.dumps(data) and not leaked(answer.get_data(), secrets)
    sent = post_json(client.as_("analyst"), body).get_json()["response"]["seg-download"]["data"]
    csv = base64.b64decode(sent["content"]).decode("utf-8-sig")
    assert sent["filename"].endswith(".csv") and any(p.search(csv) for p in secrets["customer id"])


def test_a_scoped_analyst_exports_only_the_scope(app, monkeypatch, dashboard_env):
    import duckdb

    client = identity_client(app, monkeypatch)
    _, bodies, _ = requests_of(client)
    body = export_body(bodies)
    sent = post_json(client.as_("analyst;service_tier=premium"), body).get_json()["response"]["seg-download"]["data"]
    lines = base64.b64decode(sent["content"]).decode("utf-8-sig").splitlines()[1:]
    ids = {int(line.split(",")[0]) for line in lines}
    with duckdb.connect(dashboard_env["scored"], read_only=True) as con:
        premium = {r[0] for r in con.sql("select customer_id from customer_scores join customers using (customer_id) "
                                         "where service_tier = 'premium'").fetchall()}
    assert ids and ids <= premium
    import os
    from pathlib import Path

    entries = [json.loads(line) for line in (Path(os.environ["STATE_DIR"]) / "audit.jsonl").read_text().splitlines()]
    export = [e for e in entries if e["event"] == "export"][-1]
    assert export["details"]["rows"] == len(ids) and export["details"]["scope"] == "service_tier=premium"


def test_a_viewer_sees_the_aggregates_and_a_note_where_the_rows_would_be(app, monkeypatch):
    client = identity_client(app, monkeypatch).as_("viewer")
    route = router(server_callbacks(client))
    for path, expected in (("/segments", "Customer-level rows need the analyst role"),
                           ("/what-if", "Starting from a real customer or session needs the analyst role"),
                           ("/data-quality", "The raw cells of rejected rows need the analyst role")):
        answer = post_json(client, router_body(route, path, "")).get_data().decode()
        assert expected in answer and '"figure"' in answer, path
    client.as_("analyst;service_tier=premium")
    dq = post_json(client, router_body(route, "/data-quality", "")).get_data().decode()
    assert "cannot be limited to your access" in dq and "Rejections by reason" not in dq and "Rows read" not in dq
