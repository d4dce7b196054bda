"""Overview, Data quality, Reports, the admin pages, the 404 page and the sign-in pages read
entirely in Spanish and Russian: no English msgid of the catalogs is left as displayed text
(children, labels, placeholders, titles, grid headers, figure titles, axes, traces, hovers), and
the sign-in pages say their language in ``<html lang>``, kept through the redirect to /login."""
from __future__ import annotations

import html as html_lib
import re
from datetime import datetime, timedelta, timezone

import flask
import pytest
from babel.messages.pofile import read_po

from dashboard.auth.identity import Identity, Role, Scope
from dashboard.i18n import LOCALE_DIR
from dashboard.reports.archive import Archive, Delivery
from tests.report_standin import standin_report

ADMIN = Identity("root", Role.ADMIN, source="local")
PASSWORD = "a long enough password"
LANGS = ("es", "ru")
# component properties a reader sees (besides children)
SHOWN_PROPS = ("label", "placeholder", "title", "message", "aria-label", "headerName", "header")
_TAG = re.compile(r"<[^>]+>")


@pytest.fixture
def app(dashboard_env, monkeypatch, tmp_path):
    """The real app on the session's warehouse under AUTH=local, with an admin, an audit log,
    a KPI history and two archived reports (one scoped, one mailed)."""
    monkeypatch.setenv("REPORTS_DIR", str(tmp_path / "reports"))
    for name in ("REPORT_SCHEDULE", "REPORT_RECIPIENTS", "REPORT_ROLE", "REPORT_LANG", "SMTP_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AUTH", "local")
    monkeypatch.setenv("SECRET_KEY", "s" * 32)
    monkeypatch.setenv("HOST", "127.0.0.1")
    from dashboard.app import create_app
    from dashboard.auth.settings import get_auth_config
    from dashboard.auth.state import install
    from dashboard.reports import history

    app = create_app()
    state = install(app.server, get_auth_config())
    state.users.add("root", Role.ADMIN, Scope(), PASSWORD)
    state.audit.record("sign-in", "root", ip="10.1.2.3", source="local")
    state.audit.record("user-added", "root", ip="10.1.2.3", target="bob", role="viewer")
    archive = Archive()
    mailed = standin_report(archive, role="analyst", trigger="schedule")
    archive.record_delivery(mailed.id, Delivery("ana@shop.example", "sent", 1, sent_at=mailed.created))
    archive.record_delivery(mailed.id, Delivery("bob@shop.example", "pending", 2, next_attempt=mailed.created))
    standin_report(archive, role="viewer", scope=["service_tier=premium"])
    start = datetime(2026, 10, 1, 9, tzinfo=timezone.utc)
    for i in range(3):
        history.append(source="report" if i % 2 else "etl", data_version=f"v{i}",
                       kpis={"sessions": 1000 + i, "abandonment_rate": 0.6 + i / 100, "customers": 90 + i},
                       report_id=f"r{i}" if i % 2 else None, now=start + timedelta(days=7 * i))
    return app


def english(lang: str) -> tuple[set[str], list[re.Pattern]]:
    """The catalog's msgids whose ``lang`` translation differs: exact texts, and patterns of
    those with placeholders (at least a few words around them, so "{n} {status}" matches nothing)."""
    with open(LOCALE_DIR / lang / "LC_MESSAGES" / "messages.po", "rb") as handle:
        catalog = read_po(handle, locale=lang)
    exact, patterns = set(), []
    for message in catalog:
        if not message.id:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        for msgid in ids:
            if msgid in strings or not all(strings):
                continue
            if "{" not in msgid:
                exact.add(msgid)
            elif len(re.sub(r"\{\w+\}", "", msgid).strip()) >= 12:
                parts = re.split(r"\{\w+\}", msgid)
                patterns.append(re.compile(".+?".join(re.escape(p) for p in parts), re.S))
    return exact, patterns


def shown_texts(node) -> list[str]:
    """Every text a reader sees in a component tree (components, dicts as Dash serialises them)."""
    if hasattr(node, "to_plotly_json"):
        node = node.to_plotly_json()
    out: list[str] = []
    if isinstance(node, str):
        out.append(node)
    elif isinstance(node, (list, tuple)):
        for item in node:
            out += shown_texts(item)
    elif isinstance(node, dict):
        if "props" in node and "type" in node:   # a component
            props = node["props"]
            for key in SHOWN_PROPS:
                if isinstance(props.get(key), str):
                    out.append(props[key])
            for key in ("children", "options", "columnDefs", "rowData", "figure"):
                if key in props:
                    out += shown_texts(props[key]) if key != "figure" else figure_texts(props[key])
        else:   # options, column definitions, rows
            for key in ("label", "headerName", "event", "children"):
                if key in node:
                    out += shown_texts(node[key])
    return out


def figure_texts(figure) -> list[str]:
    if not isinstance(figure, dict):
        return []
    layout = figure.get("layout", {})
    found = [layout.get("title", {}).get("text")]
    found += [axis.get("title", {}).get("text") for key, axis in layout.items()
              if key.startswith(("xaxis", "yaxis")) and isinstance(axis, dict) and isinstance(axis.get("title"), dict)]
    found += [note.get("text") for note in layout.get("annotations", [])]
    for trace in figure.get("data", []):
        found += [trace.get("name"), trace.get("hovertemplate")]
        found += [str(v) for v in trace.get("y", []) if isinstance(v, str)]
        found += [item for row in trace.get("customdata") or [] if isinstance(row, list) for item in row
                  if isinstance(item, str)]
    pieces = []
    for text in found:
        if isinstance(text, str):
            pieces += [p.strip() for p in _TAG.sub("\n", text.replace("<br>", "\n")).split("\n")]
    return pieces


def untranslated(texts: list[str], lang: str) -> list[str]:
    exact, patterns = english(lang)
    left = []
    for text in texts:
        stripped = text.strip(" :·→\u00a0")
        if stripped in exact or text in exact or any(p.fullmatch(text) for p in patterns):
            left.append(text)
    return sorted(set(left))


def rendered(app, lang: str) -> dict:
    """Each page (and the KPI history callback) as an admin reading ``lang`` sees it."""
    import dash

    from dashboard.language import _
    from dashboard.pages import (admin_audit, admin_data, admin_users, data_quality, not_found_404, overview,
                                 reports)

    with app.server.test_request_context(f"/?lang={lang}", environ_base={"REMOTE_ADDR": "10.9.8.7"}):
        flask.g.identity = ADMIN
        flask.g.response_cache_key = "r:some-key"
        pages = {name: module.layout() for name, module in (
            ("overview", overview), ("data_quality", data_quality), ("reports", reports),
            ("admin_users", admin_users), ("admin_audit", admin_audit), ("admin_data", admin_data),
            ("not_found", not_found_404))}
        pages["history"] = overview.history_card(1)
        registry = [dash.page_registry[m.__name__] for m in (overview, data_quality, reports, admin_users, admin_audit,
                                                              admin_data, not_found_404)]
        pages["registry"] = [entry["title"]() for entry in registry] + [
            entry["description"]() for entry in registry if callable(entry.get("description"))]
        pages["names"] = [_(entry["name"]) for entry in registry]   # as the navigation shows them
    return pages


@pytest.mark.parametrize("lang", LANGS)
def test_the_pages_show_no_english_msgid(app, lang):
    pages = rendered(app, lang)
    for name, tree in pages.items():
        texts = shown_texts(tree)
        assert texts, name
        assert untranslated(texts, lang) == [], name
    # the walk sees what it should: the history chart's titles and a translated word of each page
    overview_texts = " ".join(shown_texts(pages["history"]))
    assert {"es": "Sesiones con carrito", "ru": "Сессии с корзиной"}[lang] in overview_texts
    audit = shown_texts(pages["admin_audit"])
    assert {"es": "Registro de auditoría", "ru": "Журнал аудита"}[lang] in audit
    assert {"es": "inicio de sesión", "ru": "вход"}[lang] in audit   # an event's name


def test_the_walk_finds_english_left_in_a_page(app):
    """The check itself: an English page has msgids in every place the walk looks."""
    pages = rendered(app, "en")
    assert "Add user" in untranslated(shown_texts(pages["admin_users"]), "ru")
    assert "Cart sessions" in untranslated(shown_texts(pages["history"]), "es")
    assert "Page not found" in untranslated(shown_texts(pages["not_found"]), "ru")


def login_texts(page: str) -> list[str]:
    return [html_lib.unescape(t).strip() for t in re.findall(r">([^<]+)<", page.split("</style>")[-1]) if t.strip()]


@pytest.mark.parametrize("lang", LANGS)
def test_the_login_page_is_in_the_asked_language(app, lang):
    client = app.server.test_client()
    by_query = client.get(f"/login?lang={lang}").get_data(as_text=True)
    by_header = client.get("/login", headers={"Accept-Language": f"{lang},en;q=0.5"}).get_data(as_text=True)
    for page in (by_query, by_header):
        assert f'<html lang="{lang}">' in page
        assert untranslated(login_texts(page), lang) == []
    assert {"es": "Iniciar sesión", "ru": "Войти"}[lang] in by_query
    assert '<html lang="en">' in client.get("/login").get_data(as_text=True)


def test_the_language_survives_the_round_trip_through_the_sign_in(app):
    client = app.server.test_client()
    sent = client.get("/data-quality?lang=ru")
    assert sent.status_code == 302 and "lang%3Dru" in sent.headers["Location"]
    form = client.get(sent.headers["Location"]).get_data(as_text=True)
    assert '<html lang="ru">' in form and "Войти" in form
    token = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
    wrong = client.post("/login", data={"csrf_token": token, "next": "/data-quality?lang=ru", "username": "root",
                                        "password": "not the password"})
    assert wrong.status_code == 401
    assert "Неверное имя пользователя или пароль." in wrong.get_data(as_text=True)
    signed = client.post("/login", data={"csrf_token": token, "next": "/data-quality?lang=ru", "username": "root",
                                         "password": PASSWORD})
    assert signed.status_code == 302 and signed.headers["Location"] == "/data-quality?lang=ru"
    # a ?lang= given to the login page itself goes on to the page signed into
    form = client.get("/login?lang=es&next=/carts%3Fsegment%3D1").get_data(as_text=True)
    assert 'action="/login?lang=es"' in form
    token = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
    signed = client.post("/login?lang=es", data={"csrf_token": token, "next": "/carts?segment=1", "username": "root",
                                                 "password": PASSWORD})
    assert signed.headers["Location"] == "/carts?segment=1&lang=es"


def test_the_gate_answers_callbacks_in_the_readers_language(app):
    client = app.server.test_client()
    answer = client.post("/_dash-update-component", json={}, headers={"X-Shopper-Lang": "es"})
    assert answer.status_code == 401 and answer.get_json()["message"] == "Inicie sesión para usar Shopper Insights."
