"""404: a page that does not exist, with the way back."""
from __future__ import annotations

import dash
from dash import dcc, html

dash.register_page(__name__, path="/404", name="Not found", title="Not found · Shopper Insights")


def layout(**_query) -> html.Div:
    return html.Div([
        html.H1("Page not found", className="h3"),
        html.P("There is no page at this address. It may have been renamed, or the link is incomplete."),
        dcc.Link("Go to the overview", href=dash.get_relative_path("/"), className="btn btn-primary"),
    ], className="py-5 text-center not-found")
