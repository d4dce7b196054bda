"""What a report shows, as typed values: :func:`collect` reads them for one recipient.

The numbers come from the dashboard's own query layer (``dashboard.queries``), asked inside a
request of a small Flask app (:mod:`.reading`) whose ``flask.g.identity`` is the recipient:
the query layer applies the recipient's row scope to every table, hides a subject the scope
does not cover, and refuses customer-level rows to a role without ``Capability.ROWS`` — the
same rules as on the dashboard, so a report never shows a recipient more than the dashboard
would. Texts are in the recipient's language; numbers stay numbers (:mod:`.render` formats
them), so the manifest's headline and the tests read the values themselves.

Sections can be left out with ``REPORT_SECTIONS`` (comma-separated, default all of
:data:`SECTIONS`); the KPI values are collected either way (they are the manifest's headline).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime, timezone

from dashboard import terms
from dashboard.auth.identity import SYSTEM, Capability, Identity
from dashboard.auth.scoping import Forbidden
from dashboard.i18n import N_, check_lang, translator
from dashboard.reports import reading
from dashboard.reports.archive import Archive, Manifest
from dashboard.source import Unavailable

SECTIONS = ("kpis", "carts", "customers", "segments", "at_risk", "models", "quality", "link")
AT_RISK_ROWS = 10

# the report's headline (manifest, mail subject, change since the previous report), in order
HEADLINE = ("abandonment_rate", "declined_share", "conversion_rate", "sessions", "items_per_cart",
            "checkout_completion_rate", "customers", "mean_profit", "revenue_this_month", "profit_at_risk")


@dataclass(frozen=True)
class Kpi:
    key: str
    label: str
    value: float | None
    kind: str                        # count | rate | number | money
    previous: float | None = None    # the same KPI in the previous report for the same scope
    worse_when: str | None = None    # "up" / "down": which change is bad news (None: neither)
    note: str | None = None


@dataclass(frozen=True)
class Bar:
    """One bar of a chart and one row of the table beside it."""
    label: str
    value: float | None              # the bar's length: a count (funnel) or a share (rates)
    count: int | None = None         # rows with the outcome (abandoned, declined)
    total: int | None = None         # all rows behind the bar


@dataclass(frozen=True)
class Chart:
    key: str
    title: str
    kind: str                        # funnel | rate
    headers: tuple[str, ...]         # funnel: stage, sessions, share; rate: label, total, count, rate
    bars: tuple[Bar, ...]


@dataclass(frozen=True)
class SubjectBlock:
    subject: str                     # carts | customers
    title: str
    kpis: tuple[Kpi, ...] = ()
    charts: tuple[Chart, ...] = ()
    note: str | None = None          # why nothing is shown (scope, missing data)


@dataclass(frozen=True)
class SegmentRow:
    kind: str                        # rule | cluster
    name: str
    customers: int
    mean_p_decline: float | None
    profit_at_risk: float | None
    offers: tuple[str, ...]


@dataclass(frozen=True)
class AtRiskRow:
    customer_id: int
    p_decline: float
    profit: float | None
    profit_at_risk: float | None
    segment: str
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class DriftRow:
    feature: str
    psi: float
    flagged: bool


@dataclass(frozen=True)
class ModelHealth:
    subject: str
    title: str
    estimator: str
    trained_at: datetime | None
    metrics: tuple[tuple[str, float | None], ...]   # (label, holdout value)
    holdout_rows: int | None
    current_data: bool                              # trained on the data the report shows
    drift: tuple[DriftRow, ...] = ()
    drift_note: str | None = None


@dataclass(frozen=True)
class RejectionRow:
    subject: str
    rule: str
    rows: int


@dataclass(frozen=True)
class FileRow:
    subject: str
    file: str
    rows_read: int
    rows_kept: int
    rows_rejected: int


@dataclass(frozen=True)
class Quality:
    finished_at: datetime | None
    rows_read: int
    rows_kept: int
    rows_rejected: int
    files: tuple[FileRow, ...]
    rejections: tuple[RejectionRow, ...]
    previous_rows_read: int | None = None          # the previous data version's run (KPI history)
    previous_rows_rejected: int | None = None


@dataclass(frozen=True)
class ReportContent:
    lang: str
    created: datetime
    data_version: str
    role: str
    scope: tuple[str, ...]
    scope_label: str
    sections: tuple[str, ...]
    previous: Manifest | None
    carts: SubjectBlock
    customers: SubjectBlock
    segments: tuple[SegmentRow, ...] = ()
    segments_note: str | None = None
    at_risk: tuple[AtRiskRow, ...] = ()
    at_risk_note: str | None = None
    models: tuple[ModelHealth, ...] = ()
    models_note: str | None = None
    quality: Quality | None = None
    quality_note: str | None = None
    links: dict[str, str] = field(default_factory=dict)
    warehouse_kpis: dict[str, float | None] | None = None   # unscoped, for the KPI history

    def headline(self) -> dict[str, float | None]:
        values = {k.key: k.value for k in (*self.carts.kpis, *self.customers.kpis)}
        return {key: None if values[key] is None else float(values[key]) for key in HEADLINE if key in values}

    def shows(self, section: str) -> bool:
        return section in self.sections


ROLE_NAMES = {"viewer": N_("viewer"), "analyst": N_("analyst"), "admin": N_("admin")}


def enabled_sections() -> tuple[str, ...]:
    raw = os.environ.get("REPORT_SECTIONS", "").strip()
    if not raw:
        return SECTIONS
    chosen = tuple(dict.fromkeys(s.strip() for s in raw.split(",") if s.strip()))
    unknown = [s for s in chosen if s not in SECTIONS]
    if unknown:
        raise ValueError(f"REPORT_SECTIONS: {unknown[0]!r} is not a section; they are {', '.join(SECTIONS)}")
    return chosen


def previous_report(archive: Archive, identity: Identity) -> Manifest | None:
    """The newest archived report for the same scope (another scope's numbers are not comparable)."""
    scope = identity.scope.text()
    return next((m for m in archive.list() if list(m.scope) == scope), None)


def unavailable_note(exc: Unavailable, _) -> str:
    return _("Not available yet: run “{command}”.").format(command=exc.command)


def hidden_note(subject: str, _) -> str:
    return _("Not part of this report: the recipient's access does not include {subject}.").format(
        subject=terms.subject(subject, _).lower())


def collect(identity: Identity = SYSTEM, lang: str = "en", *, archive: Archive | None = None,
            sections: tuple[str, ...] | None = None, now: datetime | None = None) -> ReportContent:
    """Everything one report shows to ``identity``, in ``lang``. Raises
    :class:`~dashboard.source.Unavailable` when there is no warehouse to report on."""
    from dashboard.reports import gather

    _ = translator(check_lang(lang))
    sections = enabled_sections() if sections is None else sections
    previous = previous_report(archive or Archive(), identity)
    before = previous.headline if previous else {}
    with reading.acting_as(identity):
        run = gather.latest_run()          # no warehouse: Unavailable, the report cannot be built
        carts = _guarded("carts", lambda: gather.carts_block(_, before), _)
        customers = _guarded("customers", lambda: gather.customers_block(_, before), _)
        out = dict(carts=carts, customers=customers)
        if "segments" in sections:
            out["segments"], out["segments_note"] = _rows(lambda: gather.segment_rows(_), _)
        if "at_risk" in sections:
            if identity.can(Capability.ROWS):
                out["at_risk"], out["at_risk_note"] = _rows(lambda: gather.at_risk_rows(_, lang, AT_RISK_ROWS), _)
            else:
                out["at_risk_note"] = _("Customer-level rows are left out: the recipient's role ({role}) "
                                        "sees aggregates only.").format(role=_(ROLE_NAMES[identity.role.label]))
        if "models" in sections:
            out["models"], out["models_note"] = _rows(
                lambda: gather.model_health(_, run["data_version"], identity.scope), _)
        if "quality" in sections:
            out["quality"], out["quality_note"] = _rows(lambda: gather.quality(_, run["data_version"]), _)
        warehouse_kpis = reading.warehouse_kpis()
    return ReportContent(
        lang=lang, created=(now or datetime.now(timezone.utc)), data_version=str(run["data_version"]),
        role=identity.role.label, scope=tuple(identity.scope.text()), scope_label=terms.scope_label(identity.scope.columns, _),
        sections=tuple(sections), previous=previous, links=gather.links(lang),
        warehouse_kpis=warehouse_kpis, **out)


def _guarded(subject: str, build, _) -> SubjectBlock:
    try:
        return build()
    except Forbidden:
        return SubjectBlock(subject, terms.subject(subject, _), note=hidden_note(subject, _))
    except Unavailable as exc:
        return SubjectBlock(subject, terms.subject(subject, _), note=unavailable_note(exc, _))


def _rows(build, _) -> tuple[tuple, str | None]:
    """(rows, None), or ((), why not) when the scope hides them or a model is missing."""
    try:
        return build(), None
    except Forbidden:
        return (), _("Not part of this report: the recipient's access does not include these rows.")
    except Unavailable as exc:
        return (), unavailable_note(exc, _)
