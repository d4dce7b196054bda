"""Customers: declined vs same level for every feature, trends, category mix, correlations.

One server callback answers every filter change (panel, chart click or selection, clear chip),
through the same cross-filter mechanism as Carts (:mod:`dashboard.crossfilter`, with the rules
``dashboard/controls/customers.py`` declares); :func:`render` returns a
:class:`CustomersView`, one field per output.

An analyst also gets the customers behind the filters ("Show rows", :mod:`dashboard.components.rows_modal`):
the first rows in a modal and all of them as a CSV, audited like every export.
"""
from __future__ import annotations

import dash
import dash_bootstrap_components as dbc
from dash import ALL, Input, Output, State, callback, dcc, html
from dash.exceptions import PreventUpdate

from dashboard import crossfilter, figures, terms
from dashboard.auth.scoping import allowed_values, clamp_customer_filters
from dashboard.bins import customer_bins
from dashboard.components.library_texts import dropdown_labels
from dashboard.components import rows_modal
from dashboard.components.alerts import guarded_layout, problems_alert, refusing
from dashboard.components.cards import graph_card, legend_key, page_header
from dashboard.components.filter_panel import checklist, labelled, range_slider, yes_no
from dashboard.components.filter_panel import chips as filter_chips
from dashboard.components.kpi import kpi_card
from dashboard.components.offcanvas import filter_column, filter_toggle
from dashboard.components.view_model import outputs_for, values
from dashboard.controls.customers import (CLICK_CHARTS, CONTROLS, IDS, SELECT_CHARTS, SLIDERS, rules,
                                          slider_bounds, slider_value)
from dashboard.crossfilter import NoChange
from dashboard.filters import (CUSTOMER_RANGE_COLUMNS, CustomerFilters, parse_customer_filters, query_dict,
                               query_string, slug)
from dashboard.language import N_, _, lazy, page_title
from dashboard.queries import (customer_categoricals, customer_correlations, customer_distributions,
                               customer_kpis, customer_trends)
from dashboard.queries.rows import customer_row_count, customer_rows
from dashboard.views import CustomersView
from etl.schema import CATEGORIES, SERVICE_TIERS

dash.register_page(__name__, path="/customers", name=N_("Customers"), order=2, title=page_title(N_("Customers")),
                   description=lazy(N_("Regular customers whose activity declined vs those at the same level.")))

STATE = {"type": "url-state", "page": "customers"}
ROWS = rows_modal.ids(IDS)
CONSENT_NAMES = {"true": N_("Consented"), "false": N_("No consent")}  # values arrive as SQL text


def _tier_names() -> dict[str, str]:
    return {t: terms.tier(t, _).capitalize() for t in SERVICE_TIERS}


def _consent_names() -> dict[str, str]:
    return {value: _(text) for value, text in CONSENT_NAMES.items()}


def _category_names() -> dict[str, str]:
    return {c: terms.category(c, _) for c in CATEGORIES}


def _categorical_frame(frame, feature: str):
    return frame.loc[frame.feature == feature].rename(columns={"value": feature})


def render(filters: CustomerFilters, problems: list[str]) -> CustomersView:
    """Everything the page shows for ``filters``, as the current user may see it (Forbidden
    when the user's scope hides customers)."""
    filters = clamp_customer_filters(filters, problems)
    bins = customer_bins()
    now, base = customer_kpis(filters), customer_kpis(CustomerFilters())
    dist = customer_distributions(filters)
    cats = customer_categoricals(filters)
    n = max(1, now["customers"] or 0)

    rows = figures.histograms(dist, outcome="declined")

    def distribution(column: str) -> dict:
        rng = filters.range(column)
        return figures.distribution(rows.get(column), column, "customers",
                                    selected=None if rng is None else (rng.lo, rng.hi))

    return CustomersView(
        state=query_string(filters.query()).lstrip("?"),
        tier=list(filters.tiers),
        consent="all" if filters.consent is None else ("yes" if filters.consent else "no"),
        category=[slug(c) for c in filters.categories],
        sliders={c: slider_value(filters, c, bins[c]) for c in SLIDERS},
        chips=filter_chips(IDS.prefix, filters.active()),
        rows=rows_modal.rows_button(IDS, now["customers"]),
        problems=problems_alert(problems),
        kpis=[
            kpi_card(_("Customers"), now["customers"], base["customers"], "count"),
            kpi_card(_("Activity declined"), now["declined_share"], base["declined_share"], "rate", worse_when="up"),
            kpi_card(_("Average monthly profit"), now["mean_profit"], base["mean_profit"], "number"),
            kpi_card(_("Revenue per customer, this month"), now["revenue"]["revenue_this_month"] / n,
                     base["revenue"]["revenue_this_month"] / max(1, base["customers"]), "money"),
            kpi_card(_("Profit at risk"), now["profit_at_risk"], base["profit_at_risk"], "number", worse_when="up",
                     note=_("Σ P(decline) × profit") if now["profit_at_risk"] is not None else _("needs a model")),
        ],
        trends=figures.period_trends(customer_trends(filters)),
        by_category=figures.outcome_shares(
            _categorical_frame(cats, "top_category"), "top_category", "customers", outcome="declined",
            names=_category_names(), selected=filters.categories or None, title=_("Decline by top category"),
            height=330),
        by_tier=figures.outcome_shares(
            _categorical_frame(cats, "service_tier"), "service_tier", "customers", outcome="declined",
            names=_tier_names(), selected=filters.tiers or None, title=_("Decline by service tier"), height=200),
        by_consent=figures.outcome_shares(
            _categorical_frame(cats, "marketing_consent"), "marketing_consent", "customers", outcome="declined",
            names=_consent_names(),
            selected=None if filters.consent is None else [str(filters.consent).lower()],
            title=_("Decline by marketing consent"), height=200),
        correlations=figures.correlation_heatmap(customer_correlations(filters)),
        distributions={c: distribution(c) for c in CUSTOMER_RANGE_COLUMNS},
    )


def _panel(filters: CustomerFilters) -> dbc.Card:
    bins = customer_bins()
    sliders = []
    for column in SLIDERS:
        low, high, step = slider_bounds(bins[column])
        sliders.append(range_slider(IDS.of(f"range-{column}"), terms.label(column, _), low, high, step,
                                    slider_value(filters, column, bins[column])))
    return dbc.Card(dbc.CardBody([
        html.H2(_("Filters"), className="h6 text-uppercase text-secondary"),
        checklist(IDS.of("tier"), terms.label("service_tier", _),
                  [{"label": name, "value": t} for t, name in _tier_names().items()
                   if t in allowed_values("service_tier", SERVICE_TIERS)],
                  list(filters.tiers)),
        yes_no(IDS.of("consent"), terms.label("marketing_consent", _), filters.consent),
        labelled(terms.label("top_category", _), dcc.Dropdown(
            id=IDS.of("category"),
            options=[{"label": terms.category(c, _), "value": slug(c)}
                     for c in allowed_values("top_category", CATEGORIES)],
            value=[slug(c) for c in filters.categories], multi=True, placeholder=_("All categories"),
            labels=dropdown_labels()),
            IDS.of("category")),
        *sliders,
    ]), className="filter-panel mb-3")


@guarded_layout("Customers")
def layout(**query) -> html.Div:
    filters, problems = parse_customer_filters(query)
    view = render(filters, problems)
    filters = clamp_customer_filters(filters, [])   # the panel shows the filters as applied
    hint = _("Click a bar to filter by it; drag across bars to select a range.")
    feature_cards = [dbc.Col(graph_card(IDS.of(f"dist-{c}"), view.distributions[c], hint=hint, interactive=True),
                             lg=6, xxl=4) for c in CUSTOMER_RANGE_COLUMNS]
    return html.Div([
        page_header(_("Customers"), _("Customers whose purchasing activity declined vs those who kept their level.")),
        dcc.Store(id=STATE, data=view.state),
        html.Div(view.problems, id=IDS.of("problems")),
        *rows_modal.rows_modal(IDS, _("Customers behind the filters")),
        dbc.Row([
            filter_column("customers", _panel(filters)),
            dbc.Col([
                filter_toggle("customers"),
                html.Div([
                    html.Div(view.chips, id=IDS.of("chips"), className="chips mb-2", **{"aria-live": "polite"}),
                    html.Div(view.rows, id=ROWS["bar"], className="ms-auto"),
                ], className="d-flex flex-wrap align-items-start gap-2"),
                dbc.Row(view.kpis, id=IDS.of("kpis"), className="g-2"),
                dbc.Row([
                    dbc.Col(graph_card(IDS.of("trends"), view.trends), xl=7),
                    dbc.Col([
                        graph_card(IDS.of("by-tier"), view.by_tier, interactive=True),
                        graph_card(IDS.of("by-consent"), view.by_consent, interactive=True,
                                   hint=_("Click a bar to filter by it.")),
                    ], xl=5),
                ], className="g-3"),
                graph_card(IDS.of("by-category"), view.by_category, interactive=True,
                           hint=_("Click a category to filter by it (click again to clear).")),
                html.H2(_("Feature by feature"), className="h5 mt-2"),
                html.Div([legend_key("good", _("Same level")), legend_key("bad", _("Declined")),
                          legend_key("rate", _("Decline rate in the bucket (right axis)"))], className="mb-1"),
                dbc.Row(feature_cards, className="g-3"),
                graph_card(IDS.of("correlations"), view.correlations,
                           hint=_("Pearson r over the filtered customers; “{feature}” is 1 for declined.")
                           .format(feature=terms.label("activity_declined", _))),
            ], md=8, lg=9),
        ]),
    ])


OUTPUTS = outputs_for(CustomersView, {
    "state": Output(STATE, "data"),
    "tier": Output(IDS.of("tier"), "value"),
    "consent": Output(IDS.of("consent"), "value"),
    "category": Output(IDS.of("category"), "value"),
    "sliders": {c: Output(IDS.of(f"range-{c}"), "value") for c in SLIDERS},
    "chips": Output(IDS.of("chips"), "children"),
    "rows": Output(ROWS["bar"], "children"),
    "problems": Output(IDS.of("problems"), "children"),
    "kpis": Output(IDS.of("kpis"), "children"),
    "trends": Output(IDS.of("trends"), "figure"),
    "by_category": Output(IDS.of("by-category"), "figure"),
    "by_tier": Output(IDS.of("by-tier"), "figure"),
    "by_consent": Output(IDS.of("by-consent"), "figure"),
    "correlations": Output(IDS.of("correlations"), "figure"),
    "distributions": {c: Output(IDS.of(f"dist-{c}"), "figure") for c in CUSTOMER_RANGE_COLUMNS},
})


@callback(
    output=OUTPUTS,
    inputs={
        "controls": {name: Input(IDS.of(name), "value") for name in CONTROLS},
        "clicks": {name: Input(IDS.of(name), "clickData") for name in CLICK_CHARTS},
        "selections": {name: Input(IDS.of(name), "selectedData") for name in SELECT_CHARTS},
        "clear": Input({"type": IDS.clear_type, "key": ALL}, "n_clicks"),
        "state": State(STATE, "data"),
    },
    prevent_initial_call=True,
)
@refusing
def update(controls, clicks, selections, clear, state):  # noqa: ARG001 - clear: the event names the chip
    filters, problems = parse_customer_filters(query_dict(state))
    try:
        event = crossfilter.from_dash(IDS, controls, clicks, selections)
        filters = crossfilter.apply(filters, event, rules(customer_bins()), problems)
    except NoChange:
        raise PreventUpdate from None
    return values(render(filters, problems))


@callback(Output(ROWS["body"], "children"), Output(ROWS["modal"], "is_open"),
          Input(ROWS["open"], "n_clicks"), State(STATE, "data"), prevent_initial_call=True)
@refusing   # a viewer's request: the row query refuses it, the page says why, nothing is sent
def show_rows(clicks, state):
    filters, _ignored = parse_customer_filters(query_dict(state))
    return rows_modal.opened(clicks, filters, customer_rows, customer_row_count)


@callback(Output(ROWS["download"], "data"), Input(ROWS["csv"], "n_clicks"), State(STATE, "data"),
          prevent_initial_call=True)
@refusing
def download_rows(clicks, state):
    filters, _ignored = parse_customer_filters(query_dict(state))
    return rows_modal.download(clicks, "/customers", filters, customer_rows, "customers.csv")
