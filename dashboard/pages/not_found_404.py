"""404: a page that does not exist, with the way back."""
from __future__ import annotations

import dash
from dash import dcc, html

from dashboard.language import N_, _, page_title

dash.register_page(__name__, path="/404", name=N_("Not found"), title=page_title(N_("Not found")))


def layout(**_query) -> html.Div:
    return html.Div([
        html.H1(_("Page not found"), className="h3"),
        html.P(_("There is no page at this address. It may have been renamed, or the link is incomplete.")),
        dcc.Link(_("Go to the overview"), href=dash.get_relative_path("/"), className="btn btn-primary"),
    ], className="py-5 text-center not-found")
