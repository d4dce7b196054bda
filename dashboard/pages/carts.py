"""Carts: purchased vs abandoned sessions, for every behaviour, with cross-filtering.

One server callback answers every filter change (panel, chart click, chart selection, clear
chip): :mod:`dashboard.crossfilter` turns it into an event and the new filters (by the rules
``dashboard/controls/carts.py`` declares once with the controls and charts), the page's queries run on the pre-aggregated cube
and :func:`render` returns a :class:`CartsView` whose fields are the callback's outputs. The
URL is then rewritten in the browser (assets/url_state.js).

An analyst also gets the sessions behind the filters ("Show rows", :mod:`dashboard.components.rows_modal`):
the first rows in a modal and all of them as a CSV, audited like every export.
"""
from __future__ import annotations

import dash
import dash_bootstrap_components as dbc
from dash import ALL, Input, Output, State, callback, dcc, html
from dash.exceptions import PreventUpdate

from dashboard import crossfilter, figures, terms
from dashboard.auth.scoping import allowed_values, clamp_cart_filters
from dashboard.bins import Bins, cart_bins
from dashboard.components import rows_modal
from dashboard.components.alerts import guarded_layout, problems_alert, refusing
from dashboard.components.cards import graph_card, legend_key, page_header
from dashboard.components.filter_panel import checklist, chips, range_slider, yes_no
from dashboard.components.kpi import cart_kpi_cards
from dashboard.components.offcanvas import filter_column, filter_toggle
from dashboard.components.view_model import outputs_for, values
from dashboard.controls.carts import CLICK_CHARTS, CONTROLS, IDS, SELECT_CHARTS, rules, slider_value
from dashboard.crossfilter import NoChange
from dashboard.filters import CART_CUBE_RANGES, CART_RANGE_COLUMNS, CartFilters, parse_cart_filters, query_dict
from dashboard.language import N_, _, lazy, number, page_title
from dashboard.queries import FUNNEL_STAGES, cart_kpis, cart_page
from dashboard.queries.rows import cart_row_count, cart_rows
from dashboard.views import CartsView
from etl.schema import CUSTOMER_SEGMENT_TYPES

dash.register_page(__name__, path="/carts", name=N_("Carts"), order=1, title=page_title(N_("Carts")),
                   description=lazy(N_("Purchased vs abandoned cart sessions, behaviour by behaviour.")))

STATE = {"type": "url-state", "page": "carts"}
ROWS = rows_modal.ids(IDS)
DETAIL_NAMES = {True: N_("Viewed product details"), False: N_("Did not view details")}


def _segment_names() -> dict[int, str]:
    return {s: terms.customer_type(s, _) for s in CUSTOMER_SEGMENT_TYPES}


def _detail_names() -> dict[bool, str]:
    return {value: _(text) for value, text in DETAIL_NAMES.items()}


def _slider_marks(bins: Bins) -> dict:
    """A few labels at round values and the open top, spaced so they never overlap."""
    marks = {bins.last: {"label": f"{number(bins.edges[-1])}+"}}
    for index, edge in enumerate(bins.edges):
        if edge in (0, 1, 5, 10, 20, 50) and bins.last - index >= 3:
            marks[index] = {"label": number(edge)}
    return marks


def render(filters: CartFilters, problems: list[str]) -> CartsView:
    """Everything the page shows for ``filters`` (shared by the layout and the callback), as
    the current user may see it (Forbidden when the user's scope hides cart sessions)."""
    filters = clamp_cart_filters(filters, problems)
    page = cart_page(filters)  # bins, cube and summary computed once for the whole page
    bins, effective, outcomes, dist = page["bins"], page["effective"], page["outcomes"], page["distributions"]
    kpis, base = cart_kpis(outcomes), cart_kpis(page["base_outcomes"])

    rows = figures.histograms(dist)

    def distribution(column: str) -> dict:
        rng = effective.range(column)
        return figures.distribution(rows.get(column), column, "carts",
                                    selected=None if rng is None else (rng.lo, rng.hi))

    return CartsView(
        state="&".join(f"{k}={v}" for k, v in effective.query().items()),
        segment=list(filters.segments),
        details="all" if filters.details is None else ("yes" if filters.details else "no"),
        sliders={c: slider_value(filters, c, bins[c]) for c in CART_CUBE_RANGES},
        chips=chips(IDS.prefix, effective.active()),
        rows=rows_modal.rows_button(IDS, kpis["sessions"]),
        problems=problems_alert(problems),
        kpis=cart_kpi_cards(kpis, base),
        funnel=figures.funnel(outcomes, FUNNEL_STAGES),
        by_segment=figures.outcome_shares(page["by_segment"], "customer_segment", "carts",
                                          names=_segment_names(), selected=filters.segments,
                                          title=_("Abandonment by customer type"), height=260),
        by_details=figures.outcome_shares(page["by_details"], "product_details_viewed", "carts",
                                          names=_detail_names(),
                                          selected=None if filters.details is None else [filters.details],
                                          title=_("Abandonment by product details viewed"), height=230),
        distributions={c: distribution(c) for c in CART_RANGE_COLUMNS},
    )


def _panel(filters: CartFilters, bins: dict[str, Bins]) -> dbc.Card:
    sliders = [range_slider(IDS.of(f"range-{c}"), terms.label(c, _), 0, bins[c].last, 1,
                            slider_value(filters, c, bins[c]), marks=_slider_marks(bins[c]), tooltip=False)
               for c in CART_CUBE_RANGES]
    return dbc.Card(dbc.CardBody([
        html.H2(_("Filters"), className="h6 text-uppercase text-secondary"),
        checklist(IDS.of("segment"), terms.label("customer_segment", _),
                  [{"label": terms.customer_type(s, _), "value": s}
                   for s in allowed_values("customer_segment", CUSTOMER_SEGMENT_TYPES)],
                  list(filters.segments)),
        yes_no(IDS.of("details"), terms.label("product_details_viewed", _), filters.details),
        *sliders,
    ]), className="filter-panel mb-3")


@guarded_layout("Carts")
def layout(**query) -> html.Div:
    filters, problems = parse_cart_filters(query)
    bins = cart_bins()
    view = render(filters, problems)
    filters = clamp_cart_filters(filters, [])   # the panel shows the filters as applied
    hint = _("Click a bar to filter by it; drag across bars to select a range.")
    behaviour_cards = [dbc.Col(graph_card(IDS.of(f"dist-{c}"), view.distributions[c], hint=hint, interactive=True),
                               lg=6, xxl=4) for c in CART_RANGE_COLUMNS]
    return html.Div([
        page_header(_("Carts"), _("Purchased vs abandoned sessions, side by side for every behaviour.")),
        dcc.Store(id=STATE, data=view.state),
        html.Div(view.problems, id=IDS.of("problems")),
        *rows_modal.rows_modal(IDS, _("Sessions behind the filters")),
        dbc.Row([
            filter_column("carts", _panel(filters, bins)),
            dbc.Col([
                filter_toggle("carts"),
                html.Div([
                    html.Div(view.chips, id=IDS.of("chips"), className="chips mb-2", **{"aria-live": "polite"}),
                    html.Div(view.rows, id=ROWS["bar"], className="ms-auto"),
                ], className="d-flex flex-wrap align-items-start gap-2"),
                dbc.Row(view.kpis, id=IDS.of("kpis"), className="g-2"),
                dbc.Row([
                    dbc.Col(graph_card(IDS.of("funnel"), view.funnel), xl=6),
                    dbc.Col([
                        graph_card(IDS.of("by-segment"), view.by_segment, hint=_("Click a bar to filter by type."),
                                   interactive=True),
                        graph_card(IDS.of("by-details"), view.by_details, hint=_("Click a bar to filter."),
                                   interactive=True),
                    ], xl=6),
                ], className="g-3"),
                html.H2(_("Behaviour by behaviour"), className="h5 mt-2"),
                html.Div([legend_key("good", _("Purchased")), legend_key("bad", _("Abandoned")),
                          legend_key("rate", _("Abandonment rate in the bucket (right axis)"))], className="mb-1"),
                html.P(_("Bars: share of each outcome's sessions in each bucket. A chart is not filtered by its "
                         "own selection; the selected buckets stay bright."), className="text-secondary small"),
                dbc.Row(behaviour_cards, className="g-3"),
            ], md=8, lg=9),
        ]),
    ])


OUTPUTS = outputs_for(CartsView, {
    "state": Output(STATE, "data"),
    "segment": Output(IDS.of("segment"), "value"),
    "details": Output(IDS.of("details"), "value"),
    "sliders": {c: Output(IDS.of(f"range-{c}"), "value") for c in CART_CUBE_RANGES},
    "chips": Output(IDS.of("chips"), "children"),
    "rows": Output(ROWS["bar"], "children"),
    "problems": Output(IDS.of("problems"), "children"),
    "kpis": Output(IDS.of("kpis"), "children"),
    "funnel": Output(IDS.of("funnel"), "figure"),
    "by_segment": Output(IDS.of("by-segment"), "figure"),
    "by_details": Output(IDS.of("by-details"), "figure"),
    "distributions": {c: Output(IDS.of(f"dist-{c}"), "figure") for c in CART_RANGE_COLUMNS},
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
    filters, problems = parse_cart_filters(query_dict(state))
    try:
        event = crossfilter.from_dash(IDS, controls, clicks, selections)
        filters = crossfilter.apply(filters, event, rules(cart_bins()), problems)
    except NoChange:
        raise PreventUpdate from None
    return values(render(filters, problems))


@callback(Output(ROWS["body"], "children"), Output(ROWS["modal"], "is_open"),
          Input(ROWS["open"], "n_clicks"), State(STATE, "data"), prevent_initial_call=True)
@refusing   # a viewer's request: the row query refuses it, the page says why, nothing is sent
def show_rows(clicks, state):
    filters, _ignored = parse_cart_filters(query_dict(state))
    return rows_modal.opened(clicks, filters, cart_rows, cart_row_count)


@callback(Output(ROWS["download"], "data"), Input(ROWS["csv"], "n_clicks"), State(STATE, "data"),
          prevent_initial_call=True)
@refusing
def download_rows(clicks, state):
    filters, _ignored = parse_cart_filters(query_dict(state))
    return rows_modal.download(clicks, "/carts", filters, cart_rows, "cart-sessions.csv")
