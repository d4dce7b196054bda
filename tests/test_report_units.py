"""Languages, the data's terms, report charts and the KPI history, without building a report:
the catalogs cover every string the code marks (and the .mo files match the .po files), numbers
follow the locale, the translated data terms mirror what ETL and training write, charts are pure
SVG, and the history is append-only and never fails an ETL run."""
from __future__ import annotations

import re

import duckdb
import pytest

from dashboard import i18n
from dashboard.reports import history


def _catalog(lang: str):
    from babel.messages.pofile import read_po

    with (i18n.LOCALE_DIR / lang / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        return read_po(handle)


def test_every_report_string_has_a_translation():
    """Every msgid in the code (Babel's extraction with babel.cfg) is translated in each
    catalog, with the same {placeholders}; an untranslated or fuzzy entry fails."""
    from babel.messages.extract import extract_from_dir
    from babel.messages.frontend import parse_mapping_cfg

    root = i18n.LOCALE_DIR.parents[1]
    with (root / "babel.cfg").open(encoding="utf-8") as handle:
        method_map, options_map = parse_mapping_cfg(handle)
    keywords = {"_": None, "N_": None, "gettext": None}
    used = {message for *_rest, message, _comments, _context in
            extract_from_dir(root, method_map, options_map, keywords=keywords) if message}
    assert len(used) > 150
    for lang in ("es", "ru"):
        catalog = _catalog(lang)
        for msgid in sorted(used):
            entry = catalog.get(msgid)
            assert entry is not None and entry.string and not entry.fuzzy, f"{lang}: no translation of {msgid!r}"
            assert set(re.findall(r"\{\w*\}", entry.string)) == set(re.findall(r"\{\w*\}", msgid)), (lang, msgid)


def test_compiled_catalogs_match_their_po_files():
    """The committed .mo files hold exactly the translations of their .po files (a .po edited
    without `python -m dashboard.i18n` fails here)."""
    import gettext

    for po in i18n.po_files():
        mo = po.with_suffix(".mo")
        assert mo.is_file(), f"{mo} is missing: run `python -m dashboard.i18n`"
        with mo.open("rb") as handle:
            compiled = gettext.GNUTranslations(handle)._catalog
        expected = {}
        for m in _catalog(po.parent.parent.name):
            if not m.id or m.fuzzy:
                continue
            if m.pluralizable:   # the .mo keeps one entry per form: (msgid, index)
                if all(m.string):
                    expected.update({(m.id[0], i): s for i, s in enumerate(m.string)})
            elif m.string:
                expected[m.id] = m.string
        found = {k: v for k, v in compiled.items() if k}
        assert found == expected, f"{mo} differs from {po}: run `python -m dashboard.i18n`"
    assert {p.parent.parent.name for p in i18n.po_files()} == set(i18n.LANGS) - {"en"}


def test_number_formats_follow_the_locale():
    assert i18n.format_percent(0.882, "en") == "88.2%"
    assert i18n.format_percent(0.882, "es") == i18n.format_percent(0.882, "ru") == "88,2\u00a0%"
    assert i18n.format_money(5181.02, "ru") == "5\u00a0181,02"
    assert i18n.format_money(5181.02, "es") == "5.181,02"
    assert i18n.format_money(5181.02, "en") == "5,181.02"
    assert i18n.format_number(4158, "en") == "4,158" and i18n.format_number(3.5, "ru") == "3,50"
    assert i18n.format_number(None, "es") == i18n.format_percent(float("nan"), "ru") == i18n.MISSING
    assert i18n.format_points(-0.0132, "es") == "−1,3"
    assert i18n.translator("ru")("Purchasing activity declined") == "Покупательская активность снизилась"
    assert i18n.translator("es")("Abandonment rate") == "Tasa de abandono del carrito"
    with pytest.raises(ValueError, match="en, es, ru"):
        i18n.translator("de")


def test_the_data_terms_mirror_what_etl_and_training_write():
    """dashboard.terms repeats the English the ETL and training store, so that it is extracted
    for translation; a new label, offer, segment, reason or model family must be added there."""
    from dashboard import terms
    from etl import schema
    from etl.train import explain, search, segments

    assert terms.LABELS == schema.LABELS
    assert set(terms.CATEGORIES) == set(schema.CATEGORIES) and set(terms.SERVICE_TIERS) == set(schema.SERVICE_TIERS)
    assert terms.RULE_SEGMENT_NAMES == {k: name for k, (name, _d) in segments.RULE_SEGMENTS.items()}
    assert set(terms.OFFERS) == {*segments.OFFERS.values(), segments.LOW_RISK_OFFER, segments.FALLBACK_OFFER}
    assert {f: tuple(p.replace("{value}", "{}") for p in pair) for f, pair in terms.PHRASES.items()} == explain.PHRASES
    assert terms.ESTIMATORS == {c.name: c.label for c in search.CANDIDATES}
    _ = i18n.translator("ru")
    assert terms.segment_name("cluster_2", "cluster", "Cluster 2: high share of promo purchases, low pages per visit",
                              _) == "Кластер 2: доля акционных покупок (выше среднего), страниц за визит (ниже среднего)"
    assert terms.offers("Reminder of the unpaid items left in the cart, with a time-limited promo code on them — "
                        "driver: x; also: No retention offer: regular newsletter only.", i18n.translator("es")) == [
        "Recordatorio de los artículos sin pagar que quedaron en el carrito, con un código promocional por tiempo "
        "limitado", "Sin oferta de retención: solo el boletín habitual"]
    assert terms.reason("pages_per_visit", "int", "2", 8, _, "ru") == "мало страниц за визит (2)"
    assert terms.reason("marketing_consent", "bool", "False", True, _, "ru") == "нет согласия на рассылку"
    from dashboard.auth.identity import parse_scope
    scope = parse_scope(["service_tier=premium", "marketing_consent=yes", "top_category=Kids' goods"])
    assert terms.scope_label(scope.columns, _) == ("Согласие на рассылку: да; Тип сервиса: премиум; "
                                                   "Популярная категория: Товары для детей")


# --- charts -------------------------------------------------------------------------------


def test_charts_are_pure_svg_with_a_text_alternative():
    from dashboard.reports import charts

    items = [charts.BarItem("Type 0", 0.933, "93.3%", highlight=True), charts.BarItem("Type <1>", 0.825, "82.5%")]
    svg = charts.bar_chart(items, summary="Abandonment by customer type", maximum=1.0)
    assert svg == charts.bar_chart(items, summary="Abandonment by customer type", maximum=1.0)
    assert svg.startswith("<svg") and 'role="img"' in svg and "<title>Abandonment by customer type</title>" in svg
    assert "Type &lt;1&gt;" in svg and "93.3%" in svg and charts.BAD in svg
    assert re.findall(r"https?://[^\"]+", svg) == ["http://www.w3.org/2000/svg"]   # a namespace, never fetched
    funnel = charts.funnel_chart([charts.BarItem("Sessions", 100, "100"), charts.BarItem("Confirmed", 10, "10")],
                                 summary="Funnel")
    assert funnel.count("<rect") == 2
    long = "A feature name so long that it cannot fit beside its bar, not even when it is broken in two lines"
    psi = charts.psi_chart([charts.BarItem(long, 0.3, "0.300", True)], summary="PSI", threshold=0.2,
                           threshold_text="0.2")
    assert "stroke-dasharray" in psi and psi.count("<tspan") == 2 and "…" in psi


# --- history --------------------------------------------------------------------------------


def test_history_appends_reads_and_skips_a_damaged_line(monkeypatch, tmp_path):
    monkeypatch.setenv("STATE_DIR", str(tmp_path / "state"))
    history.append(source="etl", data_version="v1", kpis={"abandonment_rate": 0.9, "profit_at_risk": None})
    with history.path().open("a") as handle:
        handle.write('{"time": "not a time"\n')
    history.append(source="report", data_version="v1", kpis={"abandonment_rate": float("nan")}, report_id="r1")
    history.append(source="etl", data_version="v2", kpis={"abandonment_rate": 0.8})
    read = history.read()
    assert [(s.source, s.data_version) for s in read] == [("etl", "v1"), ("report", "v1"), ("etl", "v2")]
    assert read[1].report_id == "r1" and read[1].kpis["abandonment_rate"] is None
    assert [v for _t, v in history.series("abandonment_rate")] == [0.9, 0.8]
    assert history.series("profit_at_risk") == []
    with pytest.raises(ValueError):
        history.append(source="cron", data_version="v", kpis={})


def test_a_history_that_cannot_be_written_does_not_fail_the_etl(monkeypatch, tmp_path, caplog):
    from etl import kpi_snapshot

    blocked = tmp_path / "file-not-folder"
    blocked.write_text("x")
    monkeypatch.setenv("STATE_DIR", str(blocked))
    monkeypatch.setenv("WAREHOUSE_URL", str(tmp_path / "w.duckdb"))
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        con.execute("CREATE TABLE etl_runs AS SELECT 'v' AS data_version, 1 AS rows_in, 0 AS rows_rejected, "
                    "now() AS finished_at")
        con.execute("CREATE TABLE sessions AS SELECT true AS abandoned, 2 AS items_added")
        con.execute("CREATE TABLE customers AS SELECT false AS activity_declined, 1 AS customer_id, 3.0 AS profit")
    kpi_snapshot.record_publish(str(tmp_path / "w.duckdb"))        # logs, does not raise
    assert "KPI history not updated" in caplog.text
