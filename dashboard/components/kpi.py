"""KPI cards: the value for the current filters and its change against the unfiltered base."""
from __future__ import annotations

import math

import dash_bootstrap_components as dbc
from dash import html


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def format_value(value, kind: str) -> str:
    if _missing(value):
        return "–"
    if kind == "count":
        return f"{int(value):,}"
    if kind == "rate":
        return f"{value:.1%}"
    if kind == "money":
        return f"{value:,.0f}"
    return f"{value:,.2f}"


def delta_text(value, base, kind: str) -> str:
    """How the filtered value compares with everyone: share, points or percent."""
    if _missing(value) or _missing(base):
        return ""
    if kind == "count":
        return f"{value / base:.0%} of all {int(base):,}" if base else ""
    if kind == "rate":
        points = (value - base) * 100
        return "same as all" if abs(points) < 0.05 else f"{points:+.1f} pp vs all ({base:.1%})"
    if not base:
        return ""
    change = value / base - 1
    return "same as all" if abs(change) < 0.0005 else f"{change:+.1%} vs all ({format_value(base, kind)})"


def kpi_card(title: str, value, base, kind: str, *, worse_when: str | None = None,
             note: str | None = None, card_id: str | None = None) -> dbc.Col:
    """``worse_when`` = "up" or "down" marks the change with an arrow and a colour-blind-safe tone."""
    delta = delta_text(value, base, kind)
    tone = ""
    if worse_when and delta and delta != "same as all" and kind != "count":
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
    return dbc.Col(card, xs=6, md=4, xl=True, className="mb-3")


def cart_kpi_cards(now: dict, base: dict) -> list[dbc.Col]:
    """The cart KPIs (from ``queries.cart_kpis``), one definition for the Overview and Carts pages."""
    return [
        kpi_card("Sessions", now["sessions"], base["sessions"], "count"),
        kpi_card("Abandonment rate", now["abandonment_rate"], base["abandonment_rate"], "rate", worse_when="up"),
        kpi_card("Conversion rate", now["conversion_rate"], base["conversion_rate"], "rate", worse_when="down"),
        kpi_card("Items per cart", now["items_per_cart"], base["items_per_cart"], "number"),
        kpi_card("Checkout initiated → confirmed", now["checkout_completion"], base["checkout_completion"],
                 "rate", worse_when="down", note="confirmed ÷ initiated"),
    ]
