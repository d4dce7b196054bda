"""Overview: the headline numbers of both subjects, each against the unfiltered base, and
the KPI history of the whole warehouse below them.

Two independent callbacks (carts, customers), so a carts filter never re-runs customer queries.
The KPI history does not depend on the filters: the layout draws it, reading the history once.
"""
from __future__ import annotations

import logging
from dataclasses import replace

import dash
import dash_bootstrap_components as dbc
from dash import Input, Output, callback, dcc, html

from dashboard import figures, terms
from dashboard.auth.scoping import Forbidden, allowed_values, clamp_cart_filters, clamp_customer_filters
from dashboard.auth.state import uncached
from dashboard.components.library_texts import dropdown_labels
from dashboard.components.alerts import forbidden_alert, guarded_layout, problems_alert, refusing, unavailable_alert
from dashboard.components.cards import graph_card, page_header
from dashboard.components.filter_panel import checklist, labelled, yes_no
from dashboard.components.kpi import cart_kpi_cards, kpi_card
from dashboard.components.view_model import outputs_for, values
from dashboard.figures.history import MIN_SNAPSHOTS, SOURCES, source_name, waiting_message
from dashboard.filters import (CATEGORY_SLUGS, TIER_KEYS, CartFilters, CustomerFilters,
                               parse_cart_filters, parse_choices, parse_customer_filters,
                               parse_segments, parse_yes_no, query_string, slug)
from dashboard.language import N_, _, lazy, ngettext, number, page_title
from dashboard.queries import FUNNEL_STAGES, REVENUE_PERIODS, cart_kpis, cart_outcomes, customer_kpis
from dashboard.reports import history
from dashboard.source import Unavailable
from dashboard.views import OverviewCartsView, OverviewCustomersView
from etl.kpi_snapshot import KPIS
from etl.schema import CATEGORIES, CUSTOMER_SEGMENT_TYPES, SERVICE_TIERS

dash.register_page(__name__, path="/", name=N_("Overview"), order=0, title=page_title(N_("Overview")),
                   description=lazy(N_("Headline numbers for cart sessions and regular customers.")))

CART_STATE = {"type": "url-state", "page": "overview-carts"}
CUSTOMER_STATE = {"type": "url-state", "page": "overview-customers"}


def _state(filters) -> str:
    return query_string(filters.query()).lstrip("?")


def render_carts(filters: CartFilters, problems: list[str]) -> OverviewCartsView:
    """The cart section; the baseline is every session the user may see (Forbidden when the
    user's scope hides cart sessions)."""
    filters = clamp_cart_filters(filters, problems)
    outcomes = cart_outcomes(filters)
    now, base = cart_kpis(outcomes), cart_kpis(cart_outcomes(CartFilters()))
    return OverviewCartsView(
        state=_state(filters),
        problems=problems_alert(problems),
        kpis=cart_kpi_cards(now, base),
        funnel=figures.funnel(outcomes, FUNNEL_STAGES),
        link=dash.get_relative_path("/carts") + query_string(filters.query()),
    )


def render_customers(filters: CustomerFilters, problems: list[str]) -> OverviewCustomersView:
    filters = clamp_customer_filters(filters, problems)
    now, base = customer_kpis(filters), customer_kpis(CustomerFilters())
    at_risk_note = (_("Σ P(decline) × profit") if now["profit_at_risk"] is not None
                    else _("needs a model: run {command}").format(command="python -m etl train"))
    return OverviewCustomersView(
        state=_state(filters),
        problems=problems_alert(problems),
        kpis=[
            kpi_card(_("Customers"), now["customers"], base["customers"], "count"),
            kpi_card(terms.label("activity_declined", _), now["declined_share"], base["declined_share"], "rate",
                     worse_when="up"),
            kpi_card(terms.label("profit", _), now["mean_profit"], base["mean_profit"], "number"),
            kpi_card(terms.label("revenue_this_month", _), now["revenue"]["revenue_this_month"],
                     base["revenue"]["revenue_this_month"], "money"),
            kpi_card(terms.label("expected_profit_at_risk", _), now["profit_at_risk"], base["profit_at_risk"],
                     "number", worse_when="up", note=at_risk_note),
        ],
        revenue=figures.revenue_by_period(now["revenue"], base["revenue"], REVENUE_PERIODS),
        link=dash.get_relative_path("/customers") + query_string(filters.query()),
    )


def _section(title: str, controls: list, prefix: str, view: OverviewCartsView | OverviewCustomersView | None,
             graph_id: str, graph_key: str,
             link_text: str, error=None) -> dbc.Card:
    if error is not None:
        return dbc.Card(dbc.CardBody([html.H2(title, className="h5"), error]), className="mb-4")
    return dbc.Card(dbc.CardBody([
        html.Div([html.H2(title, className="h5 mb-0"),
                  dcc.Link(link_text, href=view.link, id=f"{prefix}-link", className="small")],
                 className="d-flex justify-content-between align-items-baseline mb-2"),
        html.Div(view.problems, id=f"{prefix}-problems"),
        dbc.Row([dbc.Col(c, md="auto", className="me-3") for c in controls], className="overview-filters"),
        dbc.Row(view.kpis, id=f"{prefix}-kpis", className="g-2"),
        graph_card(graph_id, getattr(view, graph_key)),
    ]), className="mb-4 section-card")


HISTORY, HISTORY_LOAD = "ov-history", "ov-history-load"


@callback(Output(HISTORY, "children"), Input(HISTORY_LOAD, "data"))
def history_card(_loaded=None) -> dbc.Card:
    """Each KPI's trend over the snapshots of the KPI history (every ETL publish and report).
    The history is of all rows, so a user with a limited scope reads a note instead
    (:func:`dashboard.reports.history.visible` refuses).

    A callback of its own, run once when the page opens: a report appends a snapshot without a
    new release, so this answer must not be replayed from the response cache, while the rest
    of the page (the expensive part) still may be."""
    try:
        snapshots = history.visible()
    except Forbidden as exc:   # the same note for every scoped user: the answer may still be cached
        body = [forbidden_alert(exc.message)]
    except OSError:            # an unreadable state folder costs the history, not the page
        uncached()
        logging.getLogger(__name__).exception("KPI history not readable")
        body = [html.P(_("The KPI history could not be read. The details are in the server log."),
                       className="text-secondary mb-0")]
    else:
        uncached()
        if len(snapshots) < MIN_SNAPSHOTS:
            body = [html.P(waiting_message(len(snapshots)), className="text-secondary mb-0")]
        else:
            key = [html.Span([html.Span(mark, style={"color": SOURCES[source][2]}), f" {source_name(source)}"],
                             className="me-3")
                   for source, mark in (("etl", "●"), ("report", "◆"))]
            lead = ngettext("{n} snapshot of all rows, times in UTC:", "{n} snapshots of all rows, times in UTC:",
                            len(snapshots)).format(n=number(len(snapshots)))
            body = [html.P([lead, " ", *key],
                           className="small text-secondary mb-1"),
                    # three charts a row stay readable on a phone: the card scrolls sideways, not the page
                    html.Div(html.Div(graph_card("ov-history-graph", figures.kpi_history(snapshots, list(KPIS))),
                                      style={"minWidth": "720px"}), style={"overflowX": "auto"})]
    return dbc.Card(dbc.CardBody([html.H2(_("KPI history"), className="h5 mb-2"), *body]),
                    className="mb-4 section-card")


@guarded_layout(N_("Overview"))
def layout(**query) -> html.Div:
    cart_filters, cart_problems = parse_cart_filters(query)
    customer_filters, customer_problems = parse_customer_filters(query)
    # the overview filters only by what both pages share; ranges stay for the deep pages
    cart_filters = replace(cart_filters, ranges=())
    customer_filters = replace(customer_filters, ranges=())
    sections = []
    carts_title, customers_title = _("Cart sessions"), _("Regular customers")
    try:
        carts = render_carts(cart_filters, cart_problems)
        sections.append(_section(carts_title, [
            checklist("ov-carts-segment", terms.label("customer_segment", _), [
                {"label": terms.customer_type(s, _), "value": s}
                for s in allowed_values("customer_segment", CUSTOMER_SEGMENT_TYPES)],
                      list(cart_filters.segments)),
            yes_no("ov-carts-details", terms.label("product_details_viewed", _), cart_filters.details),
        ], "ov-carts", carts, "ov-carts-funnel", "funnel", _("Explore carts →")))
        sections.append(dcc.Store(id=CART_STATE, data=carts.state))
    except Unavailable as exc:
        sections.append(_section(carts_title, [], "ov-carts", None, "", "", "", unavailable_alert(exc)))
    except Forbidden as exc:
        sections.append(_section(carts_title, [], "ov-carts", None, "", "", "", forbidden_alert(exc.message)))
    try:
        customers = render_customers(customer_filters, customer_problems)
        sections.append(_section(customers_title, [
            checklist("ov-cust-tier", terms.label("service_tier", _),
                      [{"label": terms.tier(t, _).capitalize(), "value": t}
                       for t in allowed_values("service_tier", SERVICE_TIERS)],
                      list(customer_filters.tiers)),
            yes_no("ov-cust-consent", terms.label("marketing_consent", _), customer_filters.consent),
            labelled(terms.label("top_category", _), dcc.Dropdown(
                id="ov-cust-category",
                options=[{"label": terms.category(c, _), "value": slug(c)}
                         for c in allowed_values("top_category", CATEGORIES)],
                value=[slug(c) for c in customer_filters.categories], multi=True, placeholder=_("All categories"),
                labels=dropdown_labels(), style={"minWidth": "18rem"}), "ov-cust-category"),
        ], "ov-cust", customers, "ov-cust-revenue", "revenue", _("Explore customers →")))
        sections.append(dcc.Store(id=CUSTOMER_STATE, data=customers.state))
    except Unavailable as exc:
        sections.append(_section(customers_title, [], "ov-cust", None, "", "", "", unavailable_alert(exc)))
    except Forbidden as exc:
        sections.append(_section(customers_title, [], "ov-cust", None, "", "", "", forbidden_alert(exc.message)))
    return html.Div([
        page_header(_("Overview"),
                    _("Each number is for the current filters; the line below compares it with all rows.")),
        *sections,
        html.Div(id=HISTORY),
        dcc.Store(id=HISTORY_LOAD, data=1),
    ])


@callback(
    output=outputs_for(OverviewCartsView, {
        "state": Output(CART_STATE, "data"), "problems": Output("ov-carts-problems", "children"),
        "kpis": Output("ov-carts-kpis", "children"), "funnel": Output("ov-carts-funnel", "figure"),
        "link": Output("ov-carts-link", "href")}),
    inputs=[Input("ov-carts-segment", "value"), Input("ov-carts-details", "value")],
    prevent_initial_call=True,
)
@refusing
def update_carts(segment, details):
    problems: list[str] = []
    filters = CartFilters(segments=parse_segments(segment, problems),
                          details=parse_yes_no(details, "details", problems))
    return values(render_carts(filters, problems))


@callback(
    output=outputs_for(OverviewCustomersView, {
        "state": Output(CUSTOMER_STATE, "data"), "problems": Output("ov-cust-problems", "children"),
        "kpis": Output("ov-cust-kpis", "children"), "revenue": Output("ov-cust-revenue", "figure"),
        "link": Output("ov-cust-link", "href")}),
    inputs=[Input("ov-cust-tier", "value"), Input("ov-cust-consent", "value"), Input("ov-cust-category", "value")],
    prevent_initial_call=True,
)
@refusing
def update_customers(tier, consent, category):
    problems: list[str] = []
    filters = CustomerFilters(tiers=parse_choices(tier, "tier", TIER_KEYS, problems),
                              consent=parse_yes_no(consent, "consent", problems),
                              categories=parse_choices(category, "category", CATEGORY_SLUGS, problems))
    return values(render_customers(filters, problems))
