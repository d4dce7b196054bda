"""KPI cards: the value for the current filters and its change against the unfiltered base,
numbers in the reader's locale. Callers pass titles and notes already translated."""
from __future__ import annotations

import math

import dash_bootstrap_components as dbc
from dash import html

from dashboard import i18n
from dashboard.language import _, current_lang, money, number, percent, points


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def format_value(value, kind: str) -> str:
    if _missing(value):
        return i18n.MISSING
    if kind == "count":
        return number(int(value))
    if kind == "rate":
        return percent(value)
    if kind == "money":
        return money(value, 0)
    return number(value, 2)


def _same(value, base, kind: str) -> bool:
    """No change worth a sign: under 0.05 points for a rate, 0.05 % for a number."""
    if kind == "rate":
        return abs(value - base) * 100 < 0.05
    return bool(base) and abs(value / base - 1) < 0.0005


def delta_text(value, base, kind: str) -> str:
    """How the filtered value compares with everyone: share, points or percent."""
    if _missing(value) or _missing(base):
        return ""
    if kind == "count":
        return _("{share} of all {total}").format(share=percent(value / base, 0), total=number(int(base))) \
            if base else ""
    if kind != "rate" and not base:
        return ""
    if _same(value, base, kind):
        return _("same as all")
    if kind == "rate":
        return _("{change} pp vs all ({base})").format(change=points(value - base), base=percent(base))
    return _("{change} vs all ({base})").format(
        change=i18n.format_signed_percent(value / base - 1, current_lang()), base=format_value(base, kind))


def kpi_card(title: str, value, base, kind: str, *, worse_when: str | None = None,
             note: str | None = None, card_id: str | None = None) -> dbc.Col:
    """``worse_when`` = "up" or "down" marks the change with an arrow and a colour-blind-safe tone."""
    delta = delta_text(value, base, kind)
    tone = ""
    if worse_when and delta and kind != "count" and not _same(value, base, kind):
        higher = value > base
        tone = "delta-worse" if higher == (worse_when == "up") else "delta-better"
        delta = ("▲ " if higher else "▼ ") + delta
    body = [html.Div(title, className="kpi-title"),
            html.Div(format_value(value, kind), className="kpi-value"),
            html.Div(delta or "\u00a0", className=f"kpi-delta {tone}")]
    if note:
        body.append(html.Div(note, className="kpi-note"))
    card = dbc.Card(dbc.CardBody(body), className="kpi-card h-100")
    if card_id:
        card.id = card_id
    # two cards a row on phones, three on tablets, all in one row from xl up
    return dbc.Col(card, xs=6, md=4, xl=True, className="mb-3")


def cart_kpi_cards(now: dict, base: dict) -> list[dbc.Col]:
    """The cart KPIs (from ``queries.cart_kpis``), one definition for the Overview and Carts pages."""
    return [
        kpi_card(_("Sessions"), now["sessions"], base["sessions"], "count"),
        kpi_card(_("Abandonment rate"), now["abandonment_rate"], base["abandonment_rate"], "rate", worse_when="up"),
        kpi_card(_("Conversion rate"), now["conversion_rate"], base["conversion_rate"], "rate", worse_when="down"),
        kpi_card(_("Items per cart"), now["items_per_cart"], base["items_per_cart"], "number"),
        kpi_card(_("Checkout initiated → confirmed"), now["checkout_completion"], base["checkout_completion"],
                 "rate", worse_when="down", note=_("confirmed ÷ initiated")),
    ]
