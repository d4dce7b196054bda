"""Carts: purchased vs abandoned sessions, for every behaviour, with cross-filtering.

One server callback answers every filter change (panel, chart click, chart selection, clear
chip): it works out the new filters, runs the page's four queries on the pre-aggregated cube
and returns every figure. The URL is then rewritten in the browser (assets/url_state.js).
"""
from __future__ import annotations

from dataclasses import replace

import dash
import dash_bootstrap_components as dbc
from dash import ALL, Input, Output, State, callback, ctx, dcc, html
from dash.exceptions import PreventUpdate

from dashboard import figures
from dashboard.cart_cube import Bins, cart_bins
from dashboard.components.alerts import guarded_layout, problems_alert
from dashboard.components.cards import graph_card, legend_key, page_header
from dashboard.components.filter_panel import checklist, chips, range_slider, yes_no
from dashboard.components.kpi import cart_kpi_cards
from dashboard.filters import (CART_CUBE_RANGES, CART_RANGE_COLUMNS, CartFilters, Range,
                               event_points, parse_cart_filters, parse_range, parse_segments,
                               parse_yes_no, query_dict, range_from_points)
from dashboard.queries import FUNNEL_STAGES, cart_kpis, cart_page
from etl.schema import CUSTOMER_SEGMENT_TYPES, label

dash.register_page(__name__, path="/carts", name="Carts", order=1, title="Carts · Shopper Insights",
                   description="Purchased vs abandoned cart sessions, behaviour by behaviour.")

STATE = {"type": "url-state", "page": "carts"}
SEGMENT_NAMES = {s: f"Type {s}" for s in CUSTOMER_SEGMENT_TYPES}
DETAIL_NAMES = {True: "Viewed product details", False: "Did not view details"}
SLIDER_LABELS = {"items_added": "Items added to cart", "pages_viewed": "Pages viewed",
                 "session_activity_count": "Session activity (actions)"}


def _slider_value(filters: CartFilters, column: str, bins: Bins) -> list[int]:
    """Slider positions are bucket indices, evenly spaced whatever the bucket widths."""
    rng = filters.range(column)
    return [0, bins.last] if rng is None else list(bins.indices(rng))


def _slider_marks(bins: Bins) -> dict:
    """A few labels at round values and the open top, spaced so they never overlap."""
    marks = {bins.last: {"label": f"{bins.edges[-1]}+"}}
    for index, edge in enumerate(bins.edges):
        if edge in (0, 1, 5, 10, 20, 50) and bins.last - index >= 3:
            marks[index] = {"label": str(edge)}
    return marks


def _slider_range(value, column: str, bins: Bins, problems: list[str]) -> Range | None:
    rng = parse_range(value, label(column), problems)
    if rng is None:
        return None
    first = max(0, min(bins.last, int(rng.lo or 0)))
    last = bins.last if rng.hi is None else max(first, min(bins.last, int(rng.hi)))
    if first == 0 and last == bins.last:
        return None
    return Range(None if first == 0 else float(bins.edges[first]),
                 None if last == bins.last else float(bins.bounds(last)[1]))


def _toggle_range(filters: CartFilters, column: str, rng: Range | None) -> CartFilters:
    """A click on the bucket that already is the whole filter clears it."""
    if rng is None:
        return filters
    current = filters.range(column)
    bins = cart_bins()[column]
    if current is not None and bins.snapped(current) == bins.snapped(rng):
        return filters.with_range(column, None)
    return filters.with_range(column, rng)


def render(filters: CartFilters, problems: list[str]) -> dict:
    """Everything the page shows for ``filters`` (shared by the layout and the callback)."""
    page = cart_page(filters)  # bins, cube and summary computed once for the whole page
    bins, effective, outcomes, dist = page["bins"], page["effective"], page["outcomes"], page["distributions"]
    kpis, base = cart_kpis(outcomes), cart_kpis(page["base_outcomes"])
    out = {
        "state": "&".join(f"{k}={v}" for k, v in effective.query().items()),
        "segment": list(filters.segments),
        "details": "all" if filters.details is None else ("yes" if filters.details else "no"),
        "chips": chips("carts", effective.active()),
        "problems": problems_alert(problems),
        "kpis": cart_kpi_cards(kpis, base),
        "funnel": figures.funnel(outcomes, FUNNEL_STAGES),
        "by_segment": figures.outcome_shares(page["by_segment"], "customer_segment", "carts",
                                             names=SEGMENT_NAMES, selected=filters.segments,
                                             title="Abandonment by customer type", height=260),
        "by_details": figures.outcome_shares(page["by_details"], "product_details_viewed", "carts",
                                             names=DETAIL_NAMES,
                                             selected=None if filters.details is None else [filters.details],
                                             title="Abandonment by product details viewed", height=230),
    }
    for column in CART_RANGE_COLUMNS:
        rng = effective.range(column)
        out[f"dist_{column}"] = figures.distribution(dist, column, "carts",
                                                     selected=None if rng is None else (rng.lo, rng.hi))
    for column in CART_CUBE_RANGES:
        out[f"range_{column}"] = _slider_value(filters, column, bins[column])
    return out


def _panel(filters: CartFilters, bins: dict[str, Bins]) -> dbc.Card:
    sliders = [range_slider(f"carts-range-{c}", SLIDER_LABELS[c], 0, bins[c].last, 1,
                            _slider_value(filters, c, bins[c]), marks=_slider_marks(bins[c]), tooltip=False)
               for c in CART_CUBE_RANGES]
    return dbc.Card(dbc.CardBody([
        html.H2("Filters", className="h6 text-uppercase text-secondary"),
        checklist("carts-segment", "Customer type", [{"label": n, "value": s} for s, n in SEGMENT_NAMES.items()],
                  list(filters.segments)),
        yes_no("carts-details", "Product details viewed", filters.details),
        *sliders,
    ]), className="filter-panel mb-3")


@guarded_layout("Carts")
def layout(**query) -> html.Div:
    filters, problems = parse_cart_filters(query)
    bins = cart_bins()
    view = render(filters, problems)
    hint = "Click a bar to filter by it; drag across bars to select a range."
    behaviour_cards = [dbc.Col(graph_card(f"carts-dist-{c}", view[f"dist_{c}"], hint=hint, interactive=True),
                               lg=6, xxl=4) for c in CART_RANGE_COLUMNS]
    return html.Div([
        page_header("Carts", "Purchased vs abandoned sessions, side by side for every behaviour."),
        dcc.Store(id=STATE, data=view["state"]),
        html.Div(view["problems"], id="carts-problems"),
        dbc.Row([
            dbc.Col(_panel(filters, bins), md=4, lg=3, className="filter-col"),
            dbc.Col([
                html.Div(view["chips"], id="carts-chips", className="chips mb-2", **{"aria-live": "polite"}),
                dbc.Row(view["kpis"], id="carts-kpis", className="g-2"),
                dbc.Row([
                    dbc.Col(graph_card("carts-funnel", view["funnel"]), xl=6),
                    dbc.Col([
                        graph_card("carts-by-segment", view["by_segment"], hint="Click a bar to filter by type.",
                                   interactive=True),
                        graph_card("carts-by-details", view["by_details"], hint="Click a bar to filter.",
                                   interactive=True),
                    ], xl=6),
                ], className="g-3"),
                html.H2("Behaviour by behaviour", className="h5 mt-2"),
                html.Div([legend_key("good", "Purchased"), legend_key("bad", "Abandoned"),
                          legend_key("rate", "Abandonment rate in the bucket (right axis)")], className="mb-1"),
                html.P("Bars: share of each outcome's sessions in each bucket. A chart is not filtered by its "
                       "own selection; the selected buckets stay bright.", className="text-secondary small"),
                dbc.Row(behaviour_cards, className="g-3"),
            ], md=8, lg=9),
        ]),
    ])


@callback(
    output={
        "state": Output(STATE, "data"),
        "segment": Output("carts-segment", "value"),
        "details": Output("carts-details", "value"),
        "chips": Output("carts-chips", "children"),
        "problems": Output("carts-problems", "children"),
        "kpis": Output("carts-kpis", "children"),
        "funnel": Output("carts-funnel", "figure"),
        "by_segment": Output("carts-by-segment", "figure"),
        "by_details": Output("carts-by-details", "figure"),
        **{f"range_{c}": Output(f"carts-range-{c}", "value") for c in CART_CUBE_RANGES},
        **{f"dist_{c}": Output(f"carts-dist-{c}", "figure") for c in CART_RANGE_COLUMNS},
    },
    inputs={
        "segment": Input("carts-segment", "value"),
        "details": Input("carts-details", "value"),
        "ranges": {c: Input(f"carts-range-{c}", "value") for c in CART_CUBE_RANGES},
        "segment_click": Input("carts-by-segment", "clickData"),
        "details_click": Input("carts-by-details", "clickData"),
        "clicks": {c: Input(f"carts-dist-{c}", "clickData") for c in CART_RANGE_COLUMNS},
        "selections": {c: Input(f"carts-dist-{c}", "selectedData") for c in CART_RANGE_COLUMNS},
        "clear": Input({"type": "carts-clear", "key": ALL}, "n_clicks"),
        "state": State(STATE, "data"),
    },
    prevent_initial_call=True,
)
def update(segment, details, ranges, segment_click, details_click, clicks, selections, clear, state):  # noqa: ARG001
    filters, problems = parse_cart_filters(query_dict(state))
    values = {"segment": segment, "details": details, "ranges": ranges, "segment_click": segment_click,
              "details_click": details_click, "clicks": clicks, "selections": selections}
    filters = apply_trigger(filters, ctx.triggered_id, values, problems)
    return render(filters, problems)


def apply_trigger(filters: CartFilters, trigger, values: dict, problems: list[str]) -> CartFilters:
    """The filters after the one control the user touched (each value validated here)."""
    if trigger == "carts-segment":
        return replace(filters, segments=parse_segments(values["segment"], problems))
    if trigger == "carts-details":
        return replace(filters, details=parse_yes_no(values["details"], "details", problems))
    if isinstance(trigger, str) and trigger.startswith("carts-range-"):
        column = trigger.removeprefix("carts-range-")
        if column in CART_CUBE_RANGES:
            bins = cart_bins()[column]
            return filters.with_range(column, _slider_range(values["ranges"].get(column), column, bins, problems))
    if trigger == "carts-by-segment":
        picked = [p[0] for p in event_points(values["segment_click"])[:1]]
        chosen = parse_segments(picked, problems)
        return replace(filters, segments=() if chosen == filters.segments else chosen)
    if trigger == "carts-by-details":
        picked = [p[0] for p in event_points(values["details_click"])[:1]]
        chosen = parse_yes_no(picked[0] if picked else None, "details", problems)
        return replace(filters, details=None if chosen == filters.details else chosen)
    if isinstance(trigger, str) and trigger.startswith("carts-dist-"):
        column = trigger.removeprefix("carts-dist-")
        if column not in CART_RANGE_COLUMNS:
            raise PreventUpdate
        prop = ctx.triggered[0]["prop_id"].rsplit(".", 1)[-1] if ctx.triggered else ""
        if prop == "selectedData":
            rng = range_from_points(event_points(values["selections"].get(column)), column)
            if rng is None:  # a cleared selection: nothing to change
                raise PreventUpdate
            return filters.with_range(column, rng)
        return _toggle_range(filters, column, range_from_points(event_points(values["clicks"].get(column))[:1], column))
    if isinstance(trigger, dict) and trigger.get("type") == "carts-clear":
        key = trigger.get("key")
        if key == "__all__":
            return CartFilters()
        if key in ("segment", "details", *CART_RANGE_COLUMNS):
            return filters.without(key)
        problems.append("Ignored a request to clear an unknown filter.")
        return filters
    raise PreventUpdate
