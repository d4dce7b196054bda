"""Segments, What-if and Model in Spanish and Russian: no English text of the catalogs left in
what the reader sees (page tree, grid headers, figure titles, axes, traces), numbers in the
locale's format; the at-risk list's drill-through to What-if and its refusal for a viewer."""
from __future__ import annotations

import json
import re
from contextlib import contextmanager

import pytest
from babel.messages.pofile import read_po
from flask import g

from dashboard import i18n
from dashboard.auth.identity import Identity, Role

ANALYST = Identity("ana", Role.ANALYST)
VIEWER = Identity("vic", Role.VIEWER)
# props whose text the reader sees (besides children)
SHOWN_PROPS = ("label", "placeholder", "title", "headerName", "headerTooltip", "marks", "hint")


@pytest.fixture
def app(dashboard_env):
    from dashboard.app import create_app

    return create_app()


@contextmanager
def acting(app, path: str, identity: Identity = ANALYST):
    with app.server.test_request_context(path):
        g.identity = identity
        yield


def _tree(component) -> dict:
    return json.loads(json.dumps(component.to_plotly_json(), default=lambda o: o.to_plotly_json()))


def _figure_texts(figure: dict) -> list[str]:
    layout = figure.get("layout") or {}
    texts = [(layout.get("title") or {}).get("text")]
    for key, axis in layout.items():
        if key.startswith(("xaxis", "yaxis")) and isinstance(axis, dict):
            texts.append((axis.get("title") or {}).get("text"))
    texts += [a.get("text") for a in layout.get("annotations") or []]
    for trace in figure.get("data") or []:
        texts.append(trace.get("name"))
        texts.append((trace.get("title") or {}).get("text"))
        for key in ("x", "y", "text"):
            values = trace.get(key)
            if isinstance(values, list):
                texts += [v for v in values if isinstance(v, str)]
        texts.append(trace.get("hovertemplate"))
    return [t for t in texts if isinstance(t, str)]


def shown_texts(node) -> list[str]:
    """Every string a reader sees in a rendered layout (props, figures, grid headers and rows)."""
    out: list[str] = []
    if isinstance(node, str):
        return [node]
    if isinstance(node, list):
        for item in node:
            out += shown_texts(item)
        return out
    if not isinstance(node, dict):
        return out
    props = node.get("props") if "props" in node and "type" in node else None
    if props is None:
        return out
    for key, value in props.items():
        if key == "children":
            out += shown_texts(value)
        elif key == "figure" and isinstance(value, dict):
            out += _figure_texts(value)
        elif key == "options" and isinstance(value, list):
            out += [o["label"] for o in value if isinstance(o, dict) and isinstance(o.get("label"), str)]
        elif key == "columnDefs":
            out += [c[k] for c in value for k in ("headerName", "headerTooltip") if isinstance(c.get(k), str)]
        elif key == "rowData" and isinstance(value, list):
            out += [v for row in value for k, v in row.items() if k != "what_if" and isinstance(v, str)]
        elif key in SHOWN_PROPS:
            if isinstance(value, dict):
                out += [v for v in value.values() if isinstance(v, str)]
            elif isinstance(value, str):
                out.append(value)
        elif isinstance(value, (dict, list)):
            out += shown_texts(value)
    return out


def english_msgids(lang: str) -> list[re.Pattern]:
    """A pattern per msgid whose translation differs from it (placeholders match anything)."""
    with (i18n.LOCALE_DIR / lang / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        catalog = read_po(handle)
    patterns = []
    for message in catalog:
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        for msgid in ids:
            if not msgid or not all(strings) or msgid in strings or len(msgid) < 3:   # untranslated yet: another page's
                continue
            parts = re.split(r"\{[a-z_]+\}", msgid)
            if not re.search("[A-Za-z]{3}", "".join(parts)):     # "{count} {unit}": no English words
                continue
            patterns.append(re.compile(r".+?".join(re.escape(p) for p in parts) + r"\Z"))
    return patterns


def english_left(texts: list[str], lang: str) -> set[str]:
    patterns = english_msgids(lang)
    return {t for t in texts for p in patterns if p.match(t.strip())}


def _pages():
    from dashboard.pages import model, segments, what_if

    return {"/segments": lambda: segments.layout(segment="risk_high_profit"),
            "/what-if": lambda: what_if.layout(subject="customers"),
            "/what-if?subject=carts": lambda: what_if.layout(subject="carts"),
            "/model": lambda: model.layout(subject="customers"),
            "/model?subject=carts": lambda: model.layout(subject="carts")}


@pytest.mark.parametrize("lang", ["es", "ru"])
def test_pages_show_no_english_of_the_catalogs(app, lang):
    for path, layout in _pages().items():
        sep = "&" if "?" in path else "?"
        with acting(app, f"{path}{sep}lang={lang}"):
            tree = _tree(layout())
        texts = shown_texts(tree)
        assert len(texts) > 40, path
        assert "Not available yet" not in texts and not any("could not be drawn" in t for t in texts), path
        assert english_left(texts, lang) == set(), path


@pytest.mark.parametrize(("lang", "decimal"), [("es", ","), ("ru", ",")])
def test_numbers_use_the_locales_format(app, lang, decimal):
    from dashboard.pages import model, segments, what_if

    with acting(app, f"/segments?lang={lang}"):
        out = segments.render(*_view("risk_high_profit"))
        summary = shown_texts(_tree(out.summary))
        grid = segments._columns()
    assert any(re.fullmatch(rf"\d+{decimal}\d\s?%", t.replace("\u00a0", " ")) for t in summary), summary
    rate = next(c for c in grid if c["field"] == "p_decline")["valueFormatter"]["function"]
    assert "formatLocale" in rate and f'"decimal": "{decimal}"' in rate
    with acting(app, f"/model?lang={lang}"):
        metrics = shown_texts(_tree(model.render("customers", 0.5, []).metrics))
        page = shown_texts(_tree(model.layout(subject="customers")))
    assert all(re.fullmatch(rf"\d+{decimal}\d\s?%|–", t.replace("\u00a0", " ")) for t in metrics[1::2]), metrics
    assert not any(re.search(r"\b0\.\d{3}\b", t) for t in page if "=" not in t)    # AUCs, not parameters
    with acting(app, f"/what-if?lang={lang}"):
        verdict = shown_texts(_tree(what_if.layout(subject="customers")))
    assert any(re.fullmatch(rf"\d+{decimal}\d\s?%", t.replace("\u00a0", " ")) for t in verdict)


def _view(segment: str | None = None):
    from dashboard.filters import SegmentView

    return SegmentView(segment, None, None, None), []


def test_an_at_risk_row_opens_what_if_for_that_customer(app):
    from dashboard.pages import segments

    with acting(app, "/segments?lang=ru"):
        out = segments.render(*_view())
        first = out.rows[0]
        link = segments.what_if_link(first["customer_id"])
    assert link == f"/what-if?subject=customers&start={first['customer_id']}&lang=ru"
    assert first["what_if"] == f"[{first['customer_id']}]({link})"
    with acting(app, "/segments"):                        # no ?lang=: the link adds none
        assert segments.what_if_link(7) == "/what-if?subject=customers&start=7"
        answer = segments.open_selected([{"customer_id": 7}])
        assert answer.href == "/what-if?subject=customers&start=7"
        assert segments.open_selected([{"customer_id": "../x"}]) is None and segments.open_selected(None) is None


def _start_field(tree: dict) -> tuple[str, str]:
    """(value of the start box, the message under it) of a rendered What-if page."""
    found: dict[str, object] = {}

    def walk(node):
        if isinstance(node, dict):
            props = node.get("props") or {}
            if props.get("id") in ("wi-start", "wi-start-msg"):
                found[props["id"]] = props.get("value") if props["id"] == "wi-start" else props.get("children")
            for value in props.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(tree)
    return found["wi-start"], found["wi-start-msg"]


def test_what_if_opens_on_the_linked_customer_for_an_analyst_and_refuses_a_viewer(app):
    from dashboard.auth.scoping import START_NOTE
    from dashboard.pages import segments, what_if
    from dashboard.queries import at_risk, subject_row

    with acting(app, "/"):
        customer = int(at_risk(_view()[0], 5).customer_id.iloc[-1])
        expected = subject_row("customers", customer)
    query = {"subject": "customers", "start": str(customer)}
    with acting(app, f"/what-if?subject=customers&start={customer}"):
        value, message = _start_field(_tree(what_if.layout(**query)))
        state = json.dumps(_tree(what_if.layout(**query)))
    assert value == str(customer) and not message
    assert f"start={customer}" in state and f"promo_share={expected['promo_share']}" in state
    with acting(app, f"/what-if?subject=customers&start={customer}", VIEWER):
        value, message = _start_field(_tree(what_if.layout(**query)))
        assert segments.can_read_rows() is False
    assert value == "" and message == START_NOTE
    with acting(app, "/what-if?subject=customers&start=abc&lang=es"):
        value, message = _start_field(_tree(what_if.layout(subject="customers", start="abc")))
    assert value == "" and "abc" in message


def test_the_export_speaks_the_readers_language(app):
    from dashboard.pages import segments

    with acting(app, "/segments?lang=es"):
        frame = segments.export_frame(_view("risk_high_profit")[0])
    assert list(frame.columns)[:3] == ["Cliente", "P(descenso)", segments._("Profit / month")] or \
        list(frame.columns)[0] == "Cliente"
    assert not set(frame["Nivel de servicio"]) - {"premium", "estándar"}
    assert english_left([c for c in frame.columns], "es") == set()


def test_segment_descriptions_and_offers_mirror_what_training_writes():
    """terms repeats training's English descriptions (for extraction) and rebuilds them, with the
    offers' reasons, in the reader's language; an unknown shape stays as stored."""
    from dashboard import terms
    from etl.train import segments

    assert terms.RULE_DESCRIPTIONS == {k: d for k, (_n, d) in segments.RULE_SEGMENTS.items()}
    es = i18n.translator("es")
    text = ("Not promo-driven, P(decline) >= 0.51, profit >= 3.97. Stands out by: high average monthly profit "
            "(4.85 vs 3.95); low marketing contacts / month (6 m) (3.59 vs 4.2).")
    assert terms.segment_description("risk_high_profit", "rule", text, es, "es") == (
        "Sin peso de las promociones, P(descenso) ≥ 0,51, beneficio ≥ 3,97. Destaca por: beneficio mensual medio "
        "por encima de la media (4,85 frente a 3,95); contactos de marketing al mes (6 meses) por debajo de la "
        "media (3,59 frente a 4,20).")
    assert terms.segment_description("risk_high_profit", "rule", "Something else.", es, "es") == "Something else."
    offer = (f"{segments.OFFERS['pages_per_visit', 'below']} — driver: pages per visit (below average, +1.52 "
             f"log-odds towards decline); also: {segments.FALLBACK_OFFER} — who knows.")
    assert terms.offer_reasons(offer, es, "es") == [
        (es(segments.OFFERS["pages_per_visit", "below"]),
         "factor: páginas por visita (por debajo de la media, +1,52 log-odds hacia el descenso)"),
        (es(segments.FALLBACK_OFFER), None)]
