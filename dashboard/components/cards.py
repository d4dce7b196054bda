"""Page header and the card every chart sits in.

Every chart has a text alternative: the card's figure container is named after the chart
(``aria-label``, "Chart: <title>.") and described by a generated summary (``aria-describedby``,
a visually hidden paragraph: per trace its values' count, highest and lowest), and a
"Show as table" disclosure holds the chart's numbers; ``assets/charts.js`` writes all three
whenever Plotly (re)draws the graph. (The summary is a description rather than part of the
name so that a field's label, e.g. "Type 2", names only its control, not every chart that
mentions it.) The words that script needs come
from ``data-words``, rendered here in the reader's language. The same script handles the
"Save PNG" / "Save SVG" buttons, whose files carry the chart's title and the page's filters.
"""
from __future__ import annotations

import datetime as dt
import json
import re

import dash
import dash_bootstrap_components as dbc
from dash import dcc, html

from dashboard.filters import query_string
from dashboard.language import _, graph_config, lang_params, ngettext

# The mode bar keeps its image button (toImageButtonOptions are set per chart in graph_card).
# sendChartToCloud would upload the chart's data to Plotly Cloud.
GRAPH_CONFIG = {"displaylogo": False, "responsive": True,
                "modeBarButtonsToRemove": ["lasso2d", "autoScale2d", "sendChartToCloud"]}
INTERACTIVE_CONFIG = {**GRAPH_CONFIG, "modeBarButtonsToRemove": ["lasso2d", "autoScale2d", "sendChartToCloud",
                                                                  "zoom2d", "pan2d", "zoomIn2d", "zoomOut2d"]}
# Intl.PluralRules category -> a count that has it; ngettext of that count is the category's form
PLURAL_SAMPLES = {"zero": 0, "one": 1, "two": 2, "few": 2, "many": 5, "other": 2}


def page_header(title: str, intro: str | None = None, extra=None) -> html.Div:
    return html.Div([
        html.Div([html.H1(title, className="h3 mb-1"),
                  html.P(intro, className="text-secondary mb-0") if intro else None]),
        extra,
    ], className="page-header d-flex flex-wrap justify-content-between align-items-end gap-2 mb-3")


def chart_words() -> str:
    """What assets/charts.js writes, in the reader's language, as the JSON of ``data-words``."""
    values = {category: ngettext("{n} value", "{n} values", count) for category, count in PLURAL_SAMPLES.items()}
    return json.dumps({
        "chart": _("Chart"),
        "titled": _("Chart: {title}."),
        "trace": _("{name}: {values}, highest {high} ({high_label}), lowest {low} ({low_label})."),
        "values": values,
        "noData": _("No data to show."),
        "label": _("Label"),
        "value": _("Value"),
        "filters": _("Filters: {filters}"),
        "noFilters": _("No filters"),
        "caption": _("The numbers of the chart “{title}”"),
        # the two thumbs of a range slider (assets/offcanvas.js names them after their field)
        "sliderFrom": _("{field}: from"),
        "sliderTo": _("{field}: to"),
    }, ensure_ascii=False)


def _title(figure) -> str | None:
    """The figure's title text, when it is a dict figure with one (Plotly's ``title.text``)."""
    if not isinstance(figure, dict):
        return None
    title = (figure.get("layout") or {}).get("title")
    text = title.get("text") if isinstance(title, dict) else title
    return " ".join(re.sub(r"<[^>]+>", " ", text).split()) if isinstance(text, str) and text.strip() else None


def image_filename(title: str | None, graph_id: str, today: dt.date | None = None) -> str:
    """``abandonment-by-customer-type-2025-06-01``: the chart's title (any script) and the date."""
    stem = re.sub(r"[^\w]+", "-", (title or graph_id).lower()).strip("-_") or "chart"
    return f"{stem[:60]}-{(today or dt.date.today()).isoformat()}"


def subject_tabs(path: str, subject: str, names: dict[str, str]) -> dbc.Nav:
    """One pill per subject (``names``: subject -> N_-marked name) linking to ``path`` for it,
    in the reader's language (a chosen ``lang`` goes along)."""
    return dbc.Nav([dbc.NavItem(dbc.NavLink(_(name), active=key == subject, href=dash.get_relative_path(path)
                                            + query_string({"subject": key, **lang_params()})))
                    for key, name in names.items()], pills=True, className="mb-3")


def graph_card(graph_id: str, figure=None, *, hint: str | None = None, interactive: bool = False,
               class_name: str = "") -> dbc.Card:
    """A chart in a card; ``hint`` tells how to interact with it (e.g. click to filter)."""
    config = graph_config(INTERACTIVE_CONFIG if interactive else GRAPH_CONFIG)
    config = {**config, "toImageButtonOptions": {"format": "png", "scale": 2,
                                                 "filename": image_filename(_title(figure), graph_id)}}
    graph = dcc.Graph(id=graph_id, figure=figure if figure is not None else {}, config=config, className="graph")
    save = [html.Button(text, type="button", className="btn btn-outline-secondary btn-sm graph-save",
                        title=tip, **{"data-format": fmt, "data-graph": graph_id})
            for fmt, text, tip in (("png", _("Save PNG"), _("Save this chart as a PNG image, with its filters")),
                                   ("svg", _("Save SVG"), _("Save this chart as an SVG image, with its filters")))]
    tools = html.Div([
        html.Details([html.Summary(_("Show as table"), className="small"),
                      html.Div(className="graph-table table-responsive", id=f"{graph_id}-table")],
                     className="graph-details"),
        html.Div(save, className="graph-export"),
    ], className="graph-tools d-flex flex-wrap justify-content-between align-items-start gap-2 px-2")
    body = [graph, html.Div(id=f"{graph_id}-summary", className="visually-hidden graph-summary")]
    if hint:
        body.append(html.Div(hint, className="graph-hint small text-secondary"))
    body.append(tools)
    figure_box = html.Div(body, role="figure", className="graph-figure",
                          **{"aria-label": _title(figure) or _("Chart"), "aria-describedby": f"{graph_id}-summary",
                             "data-graph": graph_id, "data-words": chart_words()})
    return dbc.Card(dbc.CardBody(figure_box, className="p-2"), className=f"graph-card mb-3 {class_name}")


def legend_key(kind: str, text: str) -> html.Span:
    """One entry of a legend shared by several small charts (kind: good, bad or rate)."""
    return html.Span([html.Span(className=f"legend-swatch {kind}"), text], className="legend-key")
