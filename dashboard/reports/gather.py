"""The report's sections from the query layer, one function each, called inside
:func:`dashboard.reports.reading.acting_as` (so every read is the recipient's).

Each takes the reader's gettext function ``_`` and returns the typed values of
:mod:`dashboard.reports.content`; a scope that hides a subject raises ``Forbidden`` and a
missing model ``Unavailable``, which :func:`dashboard.reports.content.collect` turns into a note.
"""
from __future__ import annotations

import os
import socket
from datetime import datetime, timezone

import ibis

from dashboard import queries, terms
from dashboard.auth.identity import Scope
from dashboard.filters import CartFilters, CustomerFilters, SegmentView
from dashboard.i18n import N_
from dashboard.models import read_card
from dashboard.reports import history
from dashboard.reports.content import (AtRiskRow, Bar, Chart, DriftRow, FileRow, Kpi, ModelHealth, Quality,
                                       RejectionRow, SegmentRow, SubjectBlock)
from dashboard.source import Unavailable, table
from etl.schema import CUSTOMER_CONTRIBUTIONS

FUNNEL_LABELS = {"n": N_("Sessions"), "added": N_("Added to cart"), "cart_viewed": N_("Viewed cart"),
                 "initiated": N_("Checkout initiated"), "confirmed": N_("Checkout confirmed")}
METRICS = (("roc_auc", "ROC-AUC"), ("pr_auc", "PR-AUC"), ("f1", "F1"), ("brier", "Brier"))
PAGES = {"overview": "", "carts": "carts", "customers": "customers", "segments": "segments", "model": "model",
         "quality": "data-quality"}


def latest_run() -> dict:
    return queries.latest_run()


def _kpi(key: str, label: str, value, kind: str, before: dict, worse_when: str | None = None,
         note: str | None = None) -> Kpi:
    previous = before.get(key)
    return Kpi(key, label, value, kind, previous if isinstance(previous, (int, float)) else None, worse_when, note)


def carts_block(_, before: dict) -> SubjectBlock:
    everything = CartFilters()
    outcomes = queries.cart_outcomes(everything)
    k = queries.cart_kpis(outcomes)
    kpis = (
        _kpi("sessions", _("Sessions"), k["sessions"], "count", before),
        _kpi("abandonment_rate", _("Abandonment rate"), k["abandonment_rate"], "rate", before, "up"),
        _kpi("conversion_rate", _("Conversion rate"), k["conversion_rate"], "rate", before, "down"),
        _kpi("items_per_cart", _("Items per cart"), k["items_per_cart"], "number", before),
        _kpi("checkout_completion_rate", _("Checkouts completed"), k["checkout_completion"], "rate", before, "down",
             _("confirmed ÷ initiated")),
    )
    totals = outcomes.sum(numeric_only=True)
    first = float(totals["n"]) or 1.0
    funnel = Chart("funnel", _("Checkout funnel"), "funnel", (_("Stage"), _("Sessions"), _("Share of sessions")),
                   tuple(Bar(_(FUNNEL_LABELS[c]), int(totals[c]), total=int(first)) for c, _l in queries.FUNNEL_STAGES))
    by_type = queries.cart_by_segment(everything)
    bars = []
    for segment, rows in by_type.groupby("customer_segment", sort=True):
        n = int(rows["n"].sum())
        abandoned = int(rows.loc[rows["abandoned"], "n"].sum())
        bars.append(Bar(terms.customer_type(int(segment), _), abandoned / n if n else None, abandoned, n))
    by_type_chart = Chart("abandonment_by_type", _("Abandonment by customer type"), "rate",
                          (_("Customer type"), _("Sessions"), _("Abandoned"), _("Abandonment rate")), tuple(bars))
    return SubjectBlock("carts", terms.subject("carts", _), kpis, (funnel, by_type_chart))


def customers_block(_, before: dict) -> SubjectBlock:
    everything = CustomerFilters()
    k = queries.customer_kpis(everything)
    kpis = (
        _kpi("customers", _("Customers"), k["customers"], "count", before),
        _kpi("declined_share", _("Purchasing activity declined"), k["declined_share"], "rate", before, "up"),
        _kpi("mean_profit", _("Average monthly profit"), k["mean_profit"], "money", before),
        _kpi("revenue_this_month", _("Revenue this month"), k["revenue"]["revenue_this_month"], "money", before),
        _kpi("profit_at_risk", _("Profit at risk"), k["profit_at_risk"], "money", before, "up",
             _("Σ P(decline) × profit") if k["profit_at_risk"] is not None
             else _("Not available yet: run “{command}”.").format(command="python -m etl train")),
    )
    frame = queries.customer_categoricals(everything)
    charts = []
    for feature, title, head, name in (
            ("top_category", _("Decline by top category"), _("Top category"), terms.category),
            ("service_tier", _("Decline by service tier"), _("Service tier"), terms.tier)):
        rows = frame[frame["feature"] == feature]
        bars = []
        for value, group in rows.groupby("value", sort=True):
            n = int(group["n"].sum())
            declined = int(group.loc[group["declined"], "n"].sum())
            bars.append(Bar(name(value, _), declined / n if n else None, declined, n))
        bars.sort(key=lambda b: -(b.value or 0))
        charts.append(Chart(f"decline_by_{feature}", title, "rate",
                            (head, _("Customers"), _("Declined"), _("Share declined")), tuple(bars)))
    return SubjectBlock("customers", terms.subject("customers", _), kpis, tuple(charts))


def segment_rows(_) -> tuple[SegmentRow, ...]:
    frame = queries.segments()
    out = []
    for kind in ("rule", "cluster"):
        for row in frame[frame["kind"] == kind].itertuples(index=False):
            summary = queries.segment_summary(SegmentView(segment=row.segment_id))
            out.append(SegmentRow(kind, terms.segment_name(row.segment_id, kind, row.name, _),
                                  int(row.customers), _float(row.mean_p_decline), _float(summary.get("at_risk")),
                                  tuple(terms.offers(row.offer, _))))
    return tuple(out)


def at_risk_rows(_, lang: str, limit: int) -> tuple[AtRiskRow, ...]:
    """The customers most likely to decline, each with the three largest contributions towards
    decline worded in ``lang`` (the stored ``top_reasons`` are English)."""
    ranked = queries.at_risk(SegmentView(), limit=limit)          # Forbidden without Capability.ROWS
    if ranked.empty:
        return ()
    card = read_card("customers")
    ids = [int(i) for i in ranked["customer_id"]]
    c = table(CUSTOMER_CONTRIBUTIONS)
    found = c.filter(c.customer_id.isin(ids), c.contribution > 0).order_by(
        "customer_id", ibis.desc("contribution"), "feature").to_pyarrow().to_pylist()
    reasons: dict[int, list[str]] = {}
    for item in found:
        mine = reasons.setdefault(int(item["customer_id"]), [])
        if len(mine) < 3:
            kind = (card.feature_specs.get(item["feature"]) or {}).get("kind", "float")
            mine.append(terms.reason(item["feature"], kind, item["value"], card.baseline.get(item["feature"]),
                                     _, lang))
    names = {row.segment_id: terms.segment_name(row.segment_id, row.kind, row.name, _)
             for row in queries.segments().itertuples(index=False)}
    return tuple(AtRiskRow(int(r.customer_id), float(r.p_decline), _float(r.profit), _float(r.expected_profit_at_risk),
                           names.get(r.segment, r.segment),
                           tuple(reasons.get(int(r.customer_id)) or [_(terms.NOTHING_STANDS_OUT)]))
                 for r in ranked.itertuples(index=False))


def model_health(_, data_version: str, scope: Scope) -> tuple[ModelHealth, ...]:
    """Holdout metrics, age and drift of each model whose subject the recipient may see."""
    from dashboard import drift

    out = []
    for subject in ("carts", "customers"):
        if not scope.shows(subject):
            continue
        try:
            card = read_card(subject)
        except Unavailable:
            continue
        try:
            found = sorted(drift.feature_drift(subject), key=lambda d: -d.psi)
            rows, note = tuple(DriftRow(terms.label(d.feature, _), float(d.psi), bool(d.flagged)) for d in found), None
        except Unavailable as exc:
            rows, note = (), _("Drift not measured: this model was trained before drift was recorded; "
                               "run “{command}”.").format(command=exc.command)
        out.append(ModelHealth(
            subject, terms.subject(subject, _), terms.estimator(card.chosen_candidate, card.estimator_label, _),
            _when(card.trained_at), tuple((label, _float(card.holdout.get(key))) for key, label in METRICS),
            _int(card.holdout.get("rows")), card.data_version == data_version, rows, note))
    if not out:
        raise Unavailable("no model", "python -m etl train")
    return tuple(out)


def quality(_, data_version: str) -> Quality:
    run = queries.latest_run()
    files = queries.source_files()
    reasons = queries.rejection_reasons()
    by_rule = reasons.groupby(["subject", "rule"], sort=False)["rows"].sum().reset_index()
    rejections = tuple(RejectionRow(terms.subject(r.subject, _), terms.rule(r.rule, _), int(r.rows))
                       for r in by_rule.sort_values("rows", ascending=False).itertuples(index=False))
    file_rows = tuple(FileRow(terms.subject(f.subject, _), f.source_file, int(f.rows_read), int(f.rows_kept),
                              int(f.rows_rejected)) for f in files.itertuples(index=False))
    earlier = [s for s in history.read() if s.data_version != data_version and s.kpis.get("rows_read") is not None]
    before = earlier[-1].kpis if earlier else {}
    return Quality(_when(run.get("finished_at")), sum(f.rows_read for f in file_rows),
                   sum(f.rows_kept for f in file_rows), sum(f.rows_rejected for f in file_rows), file_rows,
                   rejections, _int(before.get("rows_read")), _int(before.get("rows_rejected")))


def base_url() -> str:
    """``REPORT_BASE_URL``, else where the server binds (``HOST``:``PORT`` under ``URL_PREFIX``)."""
    given = os.environ.get("REPORT_BASE_URL", "").strip()
    if given:
        return given.rstrip("/") + "/"
    from dashboard.config import get_config
    from etl.settings import get_settings

    settings = get_settings()
    host = settings.host
    if host in ("0.0.0.0", "::", ""):    # bound to every address: the machine's name reaches it
        host = socket.getfqdn()
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.port}{get_config().url_prefix}"


def links(lang: str) -> dict[str, str]:
    """The live view of each section (``?lang=`` carries the language, as the dashboard's URLs will)."""
    base = base_url()
    query = "" if lang == "en" else f"?lang={lang}"
    return {key: base + path + query for key, path in PAGES.items()}


def _float(value) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if number != number else number


def _int(value) -> int | None:
    return None if value is None else int(value)


def _when(value) -> datetime | None:
    if value is None:
        return None
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)   # the ETL stores UTC
