"""What the attack suite shares: an intranet attacker against sign-in, roles, row-level
security and embedding (issue 10), one test module per theme in tests/attacks/.

Each test is one attack, run against the real app (AUTH=local unless the test says otherwise)
with real sign-ins, real session cookies, real embed tokens and callback bodies harvested from
the pages (tests/dashboard_generators.py), like tests/test_auth_routes.py.

* Every attack is blocked; each test asserts the secure behaviour.
* ``# FINDING:`` marks the attacks that worked when this review was written (what went wrong
  and why it mattered); the product was then fixed and these tests keep it fixed.

Each module gets its own AUTH=local app (tests/attacks/conftest.py). Tests that build an app
of their own (other modes, URL_PREFIX, another warehouse) come last in their module: creating
a Dash app re-registers the pages, so they run after the module's app is done with.
"""
from __future__ import annotations

import base64
import csv
import io
import json
import re
import shutil
from pathlib import Path

from dashboard.auth.identity import Role, parse_scope
from tests.conftest import AUTH_VARIABLES

ROOT = Path(__file__).resolve().parents[2]
UPDATE = "/_dash-update-component"
PASSWORD = "correct horse battery"
USERS = {"vera": ("viewer", []), "ana": ("analyst", []), "alan": ("analyst", []), "adam": ("admin", []),
         "pia": ("analyst", ["service_tier=premium"]), "vic": ("viewer", ["service_tier=premium"]),
         "cara": ("analyst", ["customer_segment=2"])}
EXPORT = "seg-download.data"
LOAD_ROW = '..{"name":["ALL"],"type":"wi-feature"}.value...wi-start-msg.children..'


def clean_env(env) -> None:
    for name in (*AUTH_VARIABLES, "URL_PREFIX", "FRAME_ANCESTORS", "CACHE_REDIS_URL"):
        env.delenv(name, raising=False)


def private_data(env, root: Path, warehouse_from: str, models: Path) -> None:
    """A private warehouse copy and no raw data, so that an admin callback ("Refresh data now")
    can neither replace the session's shared warehouse nor publish anything."""
    warehouse = root / "warehouse.duckdb"
    shutil.copyfile(warehouse_from, warehouse)
    (root / "no-raw").mkdir(exist_ok=True)
    env.setenv("RAW_DIR", str(root / "no-raw"))
    env.setenv("WAREHOUSE_URL", str(warehouse))
    env.setenv("MODELS_DIR", str(models))
    env.setenv("CACHE_DIR", str(root / "cache"))
    env.setenv("STATE_DIR", str(root / "state"))


def add_users(state_dir: Path) -> None:
    from dashboard.auth.users import UserStore

    store = UserStore(state_dir / "users.json")
    for name, (role, scope) in USERS.items():
        if store.get(name) is None:
            store.add(name, Role.parse(role), parse_scope(scope), PASSWORD)


def create_app_for_test():
    from dashboard.app import create_app

    dash_app = create_app()
    dash_app.server.config["TESTING"] = True
    return dash_app


def csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, html[:500]
    return found.group(1)


def sign_in(client, name: str, password: str = PASSWORD, next_path: str = "/", prefix: str = "/"):
    token = csrf(client.get(f"{prefix}login").get_data(as_text=True))
    return client.post(f"{prefix}login", data={"username": name, "password": password, "csrf_token": token,
                                               "next": next_path})


def signed_in(app, name: str, password: str = PASSWORD):
    client = app.server.test_client()
    response = sign_in(client, name, password)
    assert response.status_code == 302, response.get_data(as_text=True)[:300]
    return client


def state_of(app):
    return app.server.extensions["shopper_auth"]


def body_for(callbacks, needle: str) -> dict:
    found = [body for key, body in callbacks.items() if needle in key]
    assert len(found) == 1, (needle, [k for k in callbacks if needle in k])
    return json.loads(json.dumps(found[0]))   # a private copy: tests edit bodies


def export_body(callbacks, segment_state: str = "") -> dict:
    body = body_for(callbacks, EXPORT)
    body["state"][0]["value"] = segment_state
    return body


def csv_rows(response) -> list[dict]:
    content = response.get_json()["response"]["seg-download"]["data"]["content"]
    text = base64.b64decode(content).decode("utf-8-sig")
    return list(csv.DictReader(io.StringIO(text)))


def exports_of(app) -> list[dict]:
    return [e for e in state_of(app).audit.tail(500) if e["event"] == "export"]


def customer_ids(dashboard_data) -> set[str]:
    import duckdb

    with duckdb.connect(dashboard_data["scored"], read_only=True) as con:
        return {str(row[0]) for row in con.sql("select customer_id from customers").fetchall()}


def embed_token(app, role: Role, page: str, scope: list[str] | None = None, ttl: int = 600) -> str:
    from dashboard.auth.embed import make_token

    return make_token(state_of(app).config.secret_key, role=role, scope=parse_scope(scope or []), page=page, ttl=ttl)


def post_with(client, body, headers=None, path: str = UPDATE):
    return client.post(path, data=json.dumps(body), content_type="application/json", headers=headers or {})


# =============================================================================================
# The gate's public allowlist, paths and methods
# =============================================================================================


def users_body(callbacks, trigger: str, **values) -> dict:
    body = body_for(callbacks, "admin-users-message")
    names = {e["id"]: i for i, e in enumerate(body["state"])}
    for key, value in values.items():
        body["state"][names["admin-users-" + key.replace("_", "-")]]["value"] = value
    for index, entry in enumerate(body["inputs"]):
        entry["value"] = 1 if entry["id"] == "admin-users-" + trigger else None
    prop = "submit_n_clicks" if trigger == "remove" else "n_clicks"
    body["changedPropIds"] = [f"admin-users-{trigger}.{prop}"]
    return body
