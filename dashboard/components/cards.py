"""Page header and the card every chart sits in."""
from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import dcc, html

from dashboard.language import graph_config

GRAPH_CONFIG = {"displaylogo": False, "responsive": True,
                "modeBarButtonsToRemove": ["lasso2d", "autoScale2d", "toImage"]}
INTERACTIVE_CONFIG = {**GRAPH_CONFIG, "modeBarButtonsToRemove": ["lasso2d", "autoScale2d", "toImage", "zoom2d",
                                                                  "pan2d", "zoomIn2d", "zoomOut2d"]}


def page_header(title: str, intro: str | None = None, extra=None) -> html.Div:
    return html.Div([
        html.Div([html.H1(title, className="h3 mb-1"),
                  html.P(intro, className="text-secondary mb-0") if intro else None]),
        extra,
    ], className="page-header d-flex flex-wrap justify-content-between align-items-end gap-2 mb-3")


def graph_card(graph_id: str, figure=None, *, hint: str | None = None, interactive: bool = False,
               class_name: str = "") -> dbc.Card:
    """A chart in a card; ``hint`` tells how to interact with it (e.g. click to filter)."""
    graph = dcc.Graph(id=graph_id, figure=figure if figure is not None else {},
                      config=graph_config(INTERACTIVE_CONFIG if interactive else GRAPH_CONFIG),
                      className="graph")
    body = [graph]
    if hint:
        body.append(html.Div(hint, className="graph-hint small text-secondary"))
    return dbc.Card(dbc.CardBody(body, className="p-2"), className=f"graph-card mb-3 {class_name}")


def legend_key(kind: str, text: str) -> html.Span:
    """One entry of a legend shared by several small charts (kind: good, bad or rate)."""
    return html.Span([html.Span(className=f"legend-swatch {kind}"), text], className="legend-key")
