"""A report as one self-contained HTML file, and as a PDF printed from it by headless Chromium.

The HTML holds everything inline: CSS in one ``<style>``, charts as SVG
(:mod:`.charts`), no script, no image file, no font file, no link to another host but the live
dashboard's own pages; each chart's numbers are also in a table, so a mail client that strips
SVG (or CSS) still shows them. The same file, printed by Debian's headless Chromium, is the
PDF: A4 from CSS ``@page``, page numbers in its bottom margin, table headers repeated on every
page and rows never cut in two.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from datetime import datetime
from html import escape
from pathlib import Path

from dashboard.i18n import (MISSING, format_age, format_datetime, format_money, format_number, format_percent,
                            format_points, format_signed_percent, translator)
from dashboard.reports import charts
from dashboard.reports.content import Chart, Kpi, ReportContent

from dashboard.drift import PSI_FLAG   # one threshold for the Model page and the reports

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
PDF_TIMEOUT = 180       # seconds; a report prints in a few on two shared cores


class RenderError(Exception):
    """The PDF could not be made; the message says why and what to do."""


CSS = """
@page { size: A4; margin: 16mm 14mm 18mm 14mm;
  @bottom-right { content: %(page)s; font: 9pt %(font)s; color: #52606D; }
  @bottom-left { content: "Shopper Insights"; font: 9pt %(font)s; color: #52606D; } }
* { box-sizing: border-box; }
body { margin: 0; background: #FFFFFF; color: #1F2933; font: 14px/1.45 %(font)s;
  font-variant-ligatures: none; }  /* "ff" stays two letters: the PDF's text can be searched and copied */
main { max-width: 760px; margin: 0 auto; padding: 20px 18px 28px; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 28px 0 10px; padding-bottom: 4px; border-bottom: 2px solid #0072B2;
  break-after: avoid; page-break-after: avoid; }
h3 { font-size: 15px; margin: 18px 0 6px; break-after: avoid; page-break-after: avoid; }
p { margin: 4px 0 8px; }
.meta { color: #52606D; font-size: 13px; }
.note { background: #FFF8E6; border-left: 4px solid #E69F00; padding: 6px 10px; margin: 8px 0; }
.kpis { font-size: 0; margin: 4px -4px; }
.kpi { display: inline-block; vertical-align: top; width: 33.333%%; padding: 4px; font-size: 13px;
  break-inside: avoid; page-break-inside: avoid; }
.kpi > div { border: 1px solid #D9E2EC; border-radius: 6px; padding: 8px 10px; min-height: 92px; }
.kpi-label { color: #52606D; font-size: 12px; }
.kpi-value { font-size: 22px; font-weight: bold; margin: 2px 0; }
.kpi-change { font-size: 12px; color: #52606D; }
.worse { color: #B34700; } .better { color: #005A8C; }
figure { margin: 8px 0 16px; break-inside: avoid; page-break-inside: avoid; }
figcaption { font-weight: bold; margin-bottom: 4px; }
table { border-collapse: collapse; width: 100%%; margin: 6px 0 14px; font-size: 12.5px; }
thead { display: table-header-group; }
tr { break-inside: avoid; page-break-inside: avoid; }
th, td { text-align: left; padding: 4px 6px; border-bottom: 1px solid #D9E2EC; vertical-align: top; }
th { background: #F0F4F8; font-weight: bold; }
td.num, th.num { text-align: right; white-space: nowrap; }
ul.plain { margin: 0; padding-left: 16px; }
table.details tbody { break-inside: avoid; page-break-inside: avoid; }
table.details tr:first-child td { border-bottom: none; }
table.details tr.detail td { color: #52606D; padding-top: 0; }
table.segments tr:first-child td:first-child { width: 44%%; }
.live { margin: 6px 0 0; font-size: 13px; }
.flag { color: #B34700; font-weight: bold; }
footer { margin-top: 28px; padding-top: 8px; border-top: 1px solid #D9E2EC; color: #52606D; font-size: 12.5px; }
a { color: #005A8C; }
@media (max-width: 560px) { .kpi { width: 50%%; } .kpi-value { font-size: 19px; overflow-wrap: anywhere; }
  table { font-size: 12px; } th, td { padding: 3px 4px; } main { padding: 12px 10px 20px; } }
@media print { main { max-width: none; padding: 0; } a { text-decoration: none; } }
"""


def _css(_) -> str:
    # "Page {page} of {pages}" in the reader's language, as a CSS content value
    text = _("Page {page} of {pages}")
    parts = []
    for token in text.replace("{page}", "\0page\0").replace("{pages}", "\0pages\0").split("\0"):
        if token in ("page", "pages"):
            parts.append(f"counter({token})")
        elif token:
            parts.append('"' + token.replace("\\", "\\\\").replace('"', '\\"') + '"')
    return CSS % {"page": " ".join(parts), "font": charts.FONT}


def value_text(value, kind: str, lang: str) -> str:
    if kind == "count":
        return format_number(value, lang, 0)
    if kind == "rate":
        return format_percent(value, lang)
    if kind == "money":
        return format_money(value, lang)
    return format_number(value, lang, 2)


def change_text(kpi: Kpi, lang: str, _) -> tuple[str, str]:
    """(text, css class) of a KPI's change since the previous report ("" when there is none)."""
    if kpi.value is None or kpi.previous is None:
        return "", ""
    if kpi.kind == "rate":
        delta = kpi.value - kpi.previous
        same = abs(delta) < 0.0005
        text = _("{change} pp since the previous report").format(change=format_points(delta, lang))
    else:
        if not kpi.previous:
            return "", ""
        delta = kpi.value / kpi.previous - 1
        same = abs(delta) < 0.0005
        text = _("{change} since the previous report").format(change=format_signed_percent(delta, lang))
    if same:
        return _("same as the previous report"), ""
    tone = ""
    if kpi.worse_when:
        tone = "worse" if (delta > 0) == (kpi.worse_when == "up") else "better"
    return ("▲ " if delta > 0 else "▼ ") + text, tone


def _kpis(kpis, lang: str, _) -> str:
    cards = []
    for kpi in kpis:
        change, tone = change_text(kpi, lang, _)
        note = f'<div class="kpi-change">{escape(kpi.note)}</div>' if kpi.note else ""
        cards.append(f'<div class="kpi"><div><div class="kpi-label">{escape(kpi.label)}</div>'
                     f'<div class="kpi-value">{escape(value_text(kpi.value, kpi.kind, lang))}</div>'
                     f'<div class="kpi-change {tone}">{escape(change) or "&nbsp;"}</div>{note}</div></div>')
    return f'<div class="kpis">{"".join(cards)}</div>'


def _table(headers, rows, numeric: set[int] = frozenset(), cls: str = "") -> str:
    head = "".join(f'<th scope="col"{" class=num" if i in numeric else ""}>{escape(h)}</th>'
                   for i, h in enumerate(headers))
    body = "".join("<tr>" + "".join(f'<td{" class=num" if i in numeric else ""}>{cell}</td>'
                                    for i, cell in enumerate(row)) + "</tr>" for row in rows)
    return f'<table{f" class={cls}" if cls else ""}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _chart(chart: Chart, lang: str, _) -> str:
    if chart.kind == "funnel":
        first = chart.bars[0].total if chart.bars else 0
        items = [charts.BarItem(b.label, b.value or 0,
                                f"{format_number(b.value, lang, 0)} · {format_percent((b.value or 0) / first, lang)}"
                                if first else format_number(b.value, lang, 0)) for b in chart.bars]
        svg = charts.funnel_chart(items, summary=chart.title + ": " + "; ".join(f"{i.label} {i.text}" for i in items))
        rows = [(escape(b.label), format_number(b.value, lang, 0),
                 format_percent((b.value or 0) / first, lang) if first else MISSING) for b in chart.bars]
        table = _table(chart.headers, rows, {1, 2})
    else:
        worst = max((b.value or 0 for b in chart.bars), default=0)
        items = [charts.BarItem(b.label, b.value or 0, format_percent(b.value, lang),
                                highlight=len(chart.bars) > 1 and (b.value or 0) == worst) for b in chart.bars]
        svg = charts.bar_chart(items, summary=chart.title + ": " + "; ".join(f"{i.label} {i.text}" for i in items),
                               maximum=1.0)
        rows = [(escape(b.label), format_number(b.total, lang, 0), format_number(b.count, lang, 0),
                 format_percent(b.value, lang)) for b in chart.bars]
        table = _table(chart.headers, rows, {1, 2, 3})
    return f'<figure><figcaption>{escape(chart.title)}</figcaption>{svg}</figure>{table}'


def _subject(block, content: ReportContent, _) -> str:
    parts = [f'<section id="{block.subject}"><h2>{escape(block.title)}</h2>']
    if block.note:
        parts.append(f'<p class="note">{escape(block.note)}</p>')
    if content.shows("kpis") and block.kpis:
        parts.append(_kpis(block.kpis, content.lang, _))
    if content.shows(block.subject):
        parts.extend(_chart(c, content.lang, _) for c in block.charts)
    return "".join(parts) + "</section>"


def _open(anchor: str, title: str) -> str:
    return f'<section id="{anchor}"><h2>{escape(title)}</h2>'


def _h3(text: str) -> str:
    return f"<h3>{escape(text)}</h3>"


def _note(text: str | None) -> str:
    return f'<p class="note">{escape(text)}</p>' if text else ""


def _detail_table(heads, numeric: set[int], groups, cls: str) -> str:
    """A table whose every entry is a row of cells and, under it across the table, a line of
    detail (offers, reasons): a last column would squeeze that text into a narrow strip. Each
    entry is one ``tbody`` kept on one page."""
    head = "".join(f'<th scope="col"{" class=num" if i in numeric else ""}>{escape(h)}</th>' for i, h in enumerate(heads))
    body = "".join(
        '<tbody class="entry"><tr>' + "".join(f'<td{" class=num" if i in numeric else ""}>{c}</td>'
                                             for i, c in enumerate(cells))
        + f'</tr><tr class="detail"><td colspan="{len(heads)}">{detail}</td></tr></tbody>' for cells, detail in groups)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead>{body}</table>'


def _segments(content: ReportContent, _) -> str:
    lang = content.lang
    parts = [_open("segments", _("Segments and offers")), _note(content.segments_note)]
    heads = (_("Segment"), _("Customers"), _("Mean P(decline)"), _("Profit at risk"))
    offer = escape(_("Recommended offer")) + ": "
    for kind, title in (("rule", _("Segments by risk, promotions and profit")), ("cluster", _("Behaviour clusters"))):
        groups = [((f"<b>{escape(s.name)}</b>", format_number(s.customers, lang, 0),
                    format_percent(s.mean_p_decline, lang), format_money(s.profit_at_risk, lang)),
                   offer + escape(" · ".join(s.offers))) for s in content.segments if s.kind == kind]
        if groups:
            parts.append(_h3(title) + _detail_table(heads, {1, 2, 3}, groups, "details segments"))
    return "".join(parts) + "</section>"


def _at_risk(content: ReportContent, _) -> str:
    lang = content.lang
    why = escape(_("Why")) + ": "
    groups = [((f"<b>{r.customer_id}</b>", format_percent(r.p_decline, lang), format_money(r.profit, lang),
                format_money(r.profit_at_risk, lang), escape(r.segment)), why + escape("; ".join(r.reasons)))
              for r in content.at_risk]
    table = _detail_table((_("Customer"), _("P(decline)"), _("Monthly profit"), _("Profit at risk"), _("Segment")),
                          {1, 2, 3}, groups, "details at-risk") if groups else ""
    return _open("at-risk", _("Customers most at risk")) + _note(content.at_risk_note) + table + "</section>"


def _models(content: ReportContent, _) -> str:
    lang = content.lang
    parts = [_open("models", _("Model health")), _note(content.models_note)]
    for m in content.models:
        age = format_age(content.created - m.trained_at, lang) if m.trained_at else MISSING
        trained = format_datetime(m.trained_at, lang) if m.trained_at else MISSING
        parts.append(_h3(f"{m.title}: {m.estimator}"))
        parts.append("<p>" + escape(_("Trained {date} ({age}); measured on rows held out from training.").format(
            date=trained, age=age)) + " " + escape(
            _("Trained on the data this report shows.") if m.current_data
            else _("Trained on older data than this report shows: retrain with “python -m etl train”.")) + "</p>")
        parts.append(_table((*(name for name, _v in m.metrics), _("Holdout rows")),
                            [(*(format_number(value, lang, 3) for _n, value in m.metrics),
                              format_number(m.holdout_rows, lang, 0))], set(range(len(m.metrics) + 1))))
        if m.drift:
            flagged = [d for d in m.drift if d.flagged]
            summary = (_("Drift since training: {features} above {threshold}.").format(
                features=", ".join(d.feature for d in flagged), threshold=format_number(PSI_FLAG, lang, 1))
                if flagged else _("Drift since training: no feature above {threshold}.").format(
                threshold=format_number(PSI_FLAG, lang, 1)))
            items = [charts.BarItem(d.feature, d.psi, format_number(d.psi, lang, 3), d.flagged) for d in m.drift]
            svg = charts.psi_chart(items, summary=summary, threshold=PSI_FLAG,
                                   threshold_text=format_number(PSI_FLAG, lang, 1))
            caption = _("Population stability index per feature")
            parts.append(f"<figure><figcaption>{escape(caption)}</figcaption><p>{escape(summary)}</p>{svg}</figure>")
            flag = '<span class="flag">' + escape(_("retrain suggested")) + "</span>"
            parts.append(_table((_("Feature"), _("PSI"), _("Flag")),
                                [(escape(d.feature), format_number(d.psi, lang, 3), flag if d.flagged else "")
                                 for d in m.drift], {1}))
        parts.append(_note(m.drift_note))
    return "".join(parts) + "</section>"


def _quality(content: ReportContent, _) -> str:
    lang, q = content.lang, content.quality
    parts = [_open("quality", _("Data quality")), _note(content.quality_note)]
    if q:   # None, or () when the recipient's scope leaves it out
        when = format_datetime(q.finished_at, lang) if q.finished_at else MISSING
        parts.append("<p>" + escape(_("Last ETL run {date}: {read} rows read, {kept} kept, {rejected} rejected.").format(
            date=when, read=format_number(q.rows_read, lang, 0), kept=format_number(q.rows_kept, lang, 0),
            rejected=format_number(q.rows_rejected, lang, 0))))
        if q.previous_rows_read is not None:
            parts.append(" " + escape(_("Previous data: {read} rows read, {rejected} rejected.").format(
                read=format_number(q.previous_rows_read, lang, 0),
                rejected=format_number(q.previous_rows_rejected, lang, 0))))
        parts.append("</p>")
        if q.rejections:
            parts.append(_h3(_("Rejected rows by reason")))
            parts.append(_table((_("Subject"), _("Reason"), _("Rows")),
                                [(escape(r.subject), escape(r.rule), format_number(r.rows, lang, 0))
                                 for r in q.rejections], {2}))
        parts.append(_h3(_("Source files")))
        parts.append(_table((_("Subject"), _("File"), _("Read"), _("Kept"), _("Rejected")),
                            [(escape(f.subject), escape(f.file), format_number(f.rows_read, lang, 0),
                              format_number(f.rows_kept, lang, 0), format_number(f.rows_rejected, lang, 0))
                             for f in q.files], {2, 3, 4}))
    return "".join(parts) + "</section>"


def render_html(content: ReportContent) -> str:
    _, lang = translator(content.lang), content.lang
    title = _("Shopper Insights report")
    audience = _("For: {role}").format(role=_(content.role))
    if content.scope_label:
        audience += " · " + _("access limited to {scope}").format(scope=content.scope_label)
    since = (_("Changes are since the previous report of {date}.").format(
        date=format_datetime(datetime_of(content.previous.created), lang)) if content.previous
        else _("This is the first report for this audience: no changes to compare yet."))
    parts = [f"<header><h1>{escape(title)}</h1>",
             '<p class="meta">' + escape(" · ".join((
                 _("Built {date}").format(date=format_datetime(content.created, lang)),
                 _("data version {version}").format(version=content.data_version), audience))) + "</p>",
             f'<p class="meta">{escape(since)}</p>', _live(content, _), '</header>',
             _subject(content.carts, content, _), _subject(content.customers, content, _)]
    for key, render in (("segments", _segments), ("at_risk", _at_risk), ("models", _models), ("quality", _quality)):
        if content.shows(key):
            parts.append(render(content, _))
    if content.shows("link") and content.links:
        names = {"overview": _("Overview"), "carts": _("Carts"), "customers": _("Customers"),
                 "segments": _("Segments"), "model": _("Model"), "quality": _("Data quality")}
        links = " · ".join(f'<a href="{escape(url)}">{escape(names.get(key, key))}</a>'
                           for key, url in content.links.items())
        parts.append("<footer><p>" + escape(_("Open the live dashboard:")) + f" {links}</p></footer>")
    return (f'<!DOCTYPE html>\n<html lang="{lang}"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{escape(title)}</title><style>{_css(_)}</style></head>"
            f'<body><main>{"".join(parts)}</main></body></html>\n')


def datetime_of(iso: str) -> datetime:
    return datetime.fromisoformat(iso)


def _live(content: ReportContent, _) -> str:
    url = content.links.get("overview") if content.shows("link") else None
    if not url:
        return ""
    return '<p class="live">' + escape(_("Live dashboard:")) + f' <a href="{escape(url)}">{escape(url)}</a></p>'


def chromium() -> str | None:
    """The headless browser that prints PDFs: ``CHROMIUM`` or the first of :data:`CHROMIUM_NAMES` found."""
    given = os.environ.get("CHROMIUM", "").strip()
    if given:
        return shutil.which(given) or (given if Path(given).is_file() else None)
    return next((found for name in CHROMIUM_NAMES if (found := shutil.which(name))), None)


def require_chromium() -> str:
    found = chromium()
    if found is None:
        raise RenderError("PDF reports are printed by headless Chromium, which is not installed: "
                          "`apt-get install chromium` (Debian), set CHROMIUM to its path, or ask for --format html")
    return found


def render_pdf(html_file: Path, pdf_file: Path, *, timeout: int = PDF_TIMEOUT) -> None:
    """Print ``html_file`` to ``pdf_file`` with headless Chromium, with every network request
    refused (the report must not need one; a stray one fails instead of leaking)."""
    binary = require_chromium()
    with tempfile.TemporaryDirectory(prefix="report-chromium-") as profile:
        command = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
                   "--disable-background-networking", "--disable-sync", "--no-default-browser-check",
                   f"--user-data-dir={profile}", "--host-resolver-rules=MAP * ~NOTFOUND",
                   "--no-pdf-header-footer", f"--print-to-pdf={pdf_file}", html_file.resolve().as_uri()]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                                  env={**os.environ, "HOME": profile})
        except subprocess.TimeoutExpired:
            raise RenderError(f"Chromium did not print the PDF within {timeout} s") from None
    if done.returncode != 0 or not pdf_file.is_file() or pdf_file.read_bytes()[:5] != b"%PDF-":
        tail = " | ".join(line for line in (done.stderr or "").splitlines()[-3:] if line.strip())
        raise RenderError(f"Chromium could not print the PDF (exit {done.returncode}): {tail or 'no output'}")
