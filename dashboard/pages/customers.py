"""Customers: declined vs same level for every feature, trends, category mix, correlations.

One server callback answers every filter change (panel, chart click or selection, clear chip).
"""
from __future__ import annotations

import math
from dataclasses import replace

import dash
import dash_bootstrap_components as dbc
from dash import ALL, Input, Output, State, callback, ctx, dcc, html
from dash.exceptions import PreventUpdate

from dashboard import figures
from dashboard.components.alerts import guarded_layout, problems_alert
from dashboard.components.cards import graph_card, legend_key, page_header
from dashboard.components.filter_panel import checklist, labelled, range_slider, yes_no
from dashboard.components.filter_panel import chips as filter_chips
from dashboard.components.kpi import kpi_card
from dashboard.filters import (CATEGORY_SLUGS, CUSTOMER_RANGE_COLUMNS, TIER_KEYS, CustomerFilters, Range,
                               event_points, parse_choices, parse_customer_filters, parse_range,
                               parse_yes_no, query_dict, query_string, range_from_points, slug)
from dashboard.queries import (CustomerBins, customer_bins, customer_categoricals, customer_correlations,
                               customer_distributions, customer_kpis, customer_trends)
from etl.schema import CATEGORIES, SERVICE_TIERS, label

dash.register_page(__name__, path="/customers", name="Customers", order=2, title="Customers · Shopper Insights",
                   description="Regular customers whose activity declined vs those at the same level.")

STATE = {"type": "url-state", "page": "customers"}
SLIDERS = ("promo_share", "tenure_days", "profit")
CATEGORICAL = {"service_tier": "cust-by-tier", "marketing_consent": "cust-by-consent", "top_category": "cust-by-category"}
FILTER_KEY = {"service_tier": "tier", "marketing_consent": "consent", "top_category": "category"}
TIER_NAMES = {t: t.capitalize() for t in SERVICE_TIERS}
CONSENT_NAMES = {"true": "Consented", "false": "No consent"}  # values arrive as SQL text


def _slider_bounds(bins: CustomerBins) -> tuple[float, float, float]:
    step = 1.0 if bins.integer else (0.01 if bins.high - bins.low <= 10 else 0.1)
    return math.floor(bins.low / step) * step, math.ceil(bins.high / step) * step, step


def _slider_value(filters: CustomerFilters, column: str, bins: CustomerBins) -> list[float]:
    low, high, _ = _slider_bounds(bins)
    rng = filters.range(column)
    if rng is None:
        return [low, high]
    return [low if rng.lo is None else max(low, rng.lo), high if rng.hi is None else min(high, rng.hi)]


def _slider_range(value, column: str, bins: CustomerBins, problems: list[str]) -> Range | None:
    low, high, _ = _slider_bounds(bins)
    rng = parse_range(value, label(column), problems)
    if rng is None:
        return None
    lo = None if rng.lo is None or rng.lo <= low else rng.lo
    hi = None if rng.hi is None or rng.hi >= high else rng.hi
    return None if lo is None and hi is None else Range(lo, hi)


def _categorical_frame(frame, feature: str):
    rows = frame.loc[frame.feature == feature]
    return rows.rename(columns={"value": feature})


def render(filters: CustomerFilters, problems: list[str]) -> dict:
    bins = customer_bins()
    now, base = customer_kpis(filters), customer_kpis(CustomerFilters())
    dist = customer_distributions(filters)
    cats = customer_categoricals(filters)
    n = max(1, now["customers"] or 0)
    out = {
        "state": query_string(filters.query()).lstrip("?"),
        "tier": list(filters.tiers),
        "consent": "all" if filters.consent is None else ("yes" if filters.consent else "no"),
        "category": [slug(c) for c in filters.categories],
        "chips": filter_chips("cust", filters.active()),
        "problems": problems_alert(problems),
        "kpis": [
            kpi_card("Customers", now["customers"], base["customers"], "count"),
            kpi_card("Activity declined", now["declined_share"], base["declined_share"], "rate", worse_when="up"),
            kpi_card("Average monthly profit", now["mean_profit"], base["mean_profit"], "number"),
            kpi_card("Revenue per customer, this month", now["revenue"]["revenue_this_month"] / n,
                     base["revenue"]["revenue_this_month"] / max(1, base["customers"]), "money"),
            kpi_card("Profit at risk", now["profit_at_risk"], base["profit_at_risk"], "number", worse_when="up",
                     note="Σ P(decline) × profit" if now["profit_at_risk"] is not None else "needs a model"),
        ],
        "trends": figures.period_trends(customer_trends(filters)),
        "by_category": figures.outcome_shares(
            _categorical_frame(cats, "top_category"), "top_category", "customers", outcome="declined",
            selected=filters.categories or None, title="Decline by top category", height=330),
        "by_tier": figures.outcome_shares(
            _categorical_frame(cats, "service_tier"), "service_tier", "customers", outcome="declined",
            names=TIER_NAMES, selected=filters.tiers or None, title="Decline by service tier", height=200),
        "by_consent": figures.outcome_shares(
            _categorical_frame(cats, "marketing_consent"), "marketing_consent", "customers", outcome="declined",
            names=CONSENT_NAMES,
            selected=None if filters.consent is None else [str(filters.consent).lower()],
            title="Decline by marketing consent", height=200),
        "correlations": figures.correlation_heatmap(customer_correlations(filters)),
    }
    for column in CUSTOMER_RANGE_COLUMNS:
        rng = filters.range(column)
        out[f"dist_{column}"] = figures.distribution(dist.rename(columns={"declined": "abandoned"}), column,
                                                     "customers",
                                                     selected=None if rng is None else (rng.lo, rng.hi))
    for column in SLIDERS:
        out[f"range_{column}"] = _slider_value(filters, column, bins[column])
    return out


def _panel(filters: CustomerFilters) -> dbc.Card:
    bins = customer_bins()
    sliders = []
    for column in SLIDERS:
        low, high, step = _slider_bounds(bins[column])
        sliders.append(range_slider(f"cust-range-{column}", label(column), low, high, step,
                                    _slider_value(filters, column, bins[column])))
    return dbc.Card(dbc.CardBody([
        html.H2("Filters", className="h6 text-uppercase text-secondary"),
        checklist("cust-tier", "Service tier", [{"label": n, "value": t} for t, n in TIER_NAMES.items()],
                  list(filters.tiers)),
        yes_no("cust-consent", "Marketing consent", filters.consent),
        labelled("Top category", dcc.Dropdown(
            id="cust-category", options=[{"label": c, "value": slug(c)} for c in CATEGORIES],
            value=[slug(c) for c in filters.categories], multi=True, placeholder="All categories"),
            "cust-category"),
        *sliders,
    ]), className="filter-panel mb-3")


@guarded_layout("Customers")
def layout(**query) -> html.Div:
    filters, problems = parse_customer_filters(query)
    view = render(filters, problems)
    hint = "Click a bar to filter by it; drag across bars to select a range."
    feature_cards = [dbc.Col(graph_card(f"cust-dist-{c}", view[f"dist_{c}"], hint=hint, interactive=True),
                             lg=6, xxl=4) for c in CUSTOMER_RANGE_COLUMNS]
    return html.Div([
        page_header("Customers", "Customers whose purchasing activity declined vs those who kept their level."),
        dcc.Store(id=STATE, data=view["state"]),
        html.Div(view["problems"], id="cust-problems"),
        dbc.Row([
            dbc.Col(_panel(filters), md=4, lg=3, className="filter-col"),
            dbc.Col([
                html.Div(view["chips"], id="cust-chips", className="chips mb-2", **{"aria-live": "polite"}),
                dbc.Row(view["kpis"], id="cust-kpis", className="g-2"),
                dbc.Row([
                    dbc.Col(graph_card("cust-trends", view["trends"]), xl=7),
                    dbc.Col([
                        graph_card("cust-by-tier", view["by_tier"], interactive=True),
                        graph_card("cust-by-consent", view["by_consent"], interactive=True,
                                   hint="Click a bar to filter by it."),
                    ], xl=5),
                ], className="g-3"),
                graph_card("cust-by-category", view["by_category"], interactive=True,
                           hint="Click a category to filter by it (click again to clear)."),
                html.H2("Feature by feature", className="h5 mt-2"),
                html.Div([legend_key("good", "Same level"), legend_key("bad", "Declined"),
                          legend_key("rate", "Decline rate in the bucket (right axis)")], className="mb-1"),
                dbc.Row(feature_cards, className="g-3"),
                graph_card("cust-correlations", view["correlations"],
                           hint="Pearson r over the filtered customers; 'Activity declined' is 1 for declined."),
            ], md=8, lg=9),
        ]),
    ])


@callback(
    output={
        "state": Output(STATE, "data"),
        "tier": Output("cust-tier", "value"),
        "consent": Output("cust-consent", "value"),
        "category": Output("cust-category", "value"),
        "chips": Output("cust-chips", "children"),
        "problems": Output("cust-problems", "children"),
        "kpis": Output("cust-kpis", "children"),
        "trends": Output("cust-trends", "figure"),
        "by_category": Output("cust-by-category", "figure"),
        "by_tier": Output("cust-by-tier", "figure"),
        "by_consent": Output("cust-by-consent", "figure"),
        "correlations": Output("cust-correlations", "figure"),
        **{f"range_{c}": Output(f"cust-range-{c}", "value") for c in SLIDERS},
        **{f"dist_{c}": Output(f"cust-dist-{c}", "figure") for c in CUSTOMER_RANGE_COLUMNS},
    },
    inputs={
        "tier": Input("cust-tier", "value"),
        "consent": Input("cust-consent", "value"),
        "category": Input("cust-category", "value"),
        "ranges": {c: Input(f"cust-range-{c}", "value") for c in SLIDERS},
        "cat_clicks": {f: Input(gid, "clickData") for f, gid in CATEGORICAL.items()},
        "clicks": {c: Input(f"cust-dist-{c}", "clickData") for c in CUSTOMER_RANGE_COLUMNS},
        "selections": {c: Input(f"cust-dist-{c}", "selectedData") for c in CUSTOMER_RANGE_COLUMNS},
        "clear": Input({"type": "cust-clear", "key": ALL}, "n_clicks"),
        "state": State(STATE, "data"),
    },
    prevent_initial_call=True,
)
def update(tier, consent, category, ranges, cat_clicks, clicks, selections, clear, state):  # noqa: ARG001
    filters, problems = parse_customer_filters(query_dict(state))
    values = {"tier": tier, "consent": consent, "category": category, "ranges": ranges,
              "cat_clicks": cat_clicks, "clicks": clicks, "selections": selections}
    filters = apply_trigger(filters, ctx.triggered_id, values, problems)
    return render(filters, problems)


def _toggle(current: tuple, picked) -> tuple:
    return () if current == (picked,) else (picked,)


def apply_trigger(filters: CustomerFilters, trigger, values: dict, problems: list[str]) -> CustomerFilters:
    """The filters after the one control the user touched (each value validated here)."""
    if trigger == "cust-tier":
        return replace(filters, tiers=parse_choices(values["tier"], "tier", TIER_KEYS, problems))
    if trigger == "cust-consent":
        return replace(filters, consent=parse_yes_no(values["consent"], "consent", problems))
    if trigger == "cust-category":
        return replace(filters, categories=parse_choices(values["category"], "category", CATEGORY_SLUGS, problems))
    if isinstance(trigger, str) and trigger.startswith("cust-range-"):
        column = trigger.removeprefix("cust-range-")
        if column in SLIDERS:
            bins = customer_bins()[column]
            return filters.with_range(column, _slider_range(values["ranges"].get(column), column, bins, problems))
    for feature, graph_id in CATEGORICAL.items():
        if trigger == graph_id:
            picked = [p[0] for p in event_points(values["cat_clicks"].get(feature))[:1]]
            if feature == "marketing_consent":
                chosen = parse_yes_no(picked[0] if picked else None, "consent", problems)
                return replace(filters, consent=None if chosen == filters.consent else chosen)
            if feature == "service_tier":
                chosen = parse_choices(picked, "tier", TIER_KEYS, problems)
                return replace(filters, tiers=_toggle(filters.tiers, chosen[0]) if chosen else filters.tiers)
            chosen = parse_choices(picked, "category", CATEGORY_SLUGS, problems)
            return replace(filters, categories=_toggle(filters.categories, chosen[0]) if chosen else filters.categories)
    if isinstance(trigger, str) and trigger.startswith("cust-dist-"):
        column = trigger.removeprefix("cust-dist-")
        if column not in CUSTOMER_RANGE_COLUMNS:
            raise PreventUpdate
        prop = ctx.triggered[0]["prop_id"].rsplit(".", 1)[-1] if ctx.triggered else ""
        if prop == "selectedData":
            rng = range_from_points(event_points(values["selections"].get(column)), column)
            if rng is None:
                raise PreventUpdate
            return filters.with_range(column, rng)
        rng = range_from_points(event_points(values["clicks"].get(column))[:1], column)
        if rng is None:
            raise PreventUpdate
        return filters.with_range(column, None if filters.range(column) == rng else rng)
    if isinstance(trigger, dict) and trigger.get("type") == "cust-clear":
        key = trigger.get("key")
        if key == "__all__":
            return CustomerFilters()
        if key in (*FILTER_KEY.values(), *CUSTOMER_RANGE_COLUMNS):
            return filters.without(key)
        problems.append("Ignored a request to clear an unknown filter.")
        return filters
    raise PreventUpdate
