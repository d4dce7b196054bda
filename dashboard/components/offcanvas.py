"""The filter panel's place on the page: a column beside the charts from tablet width up, an
off-canvas panel on phones, opened and closed by a "Filters" button (assets/offcanvas.js)."""
from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import html

from dashboard.language import _


def filter_toggle(page: str) -> html.Button:
    """The button that opens the page's filters on a phone (hidden from tablet width up).
    Put it at the top of the charts' column."""
    return html.Button(_("Filters"), type="button", className="btn btn-outline-primary btn-sm filter-toggle mb-2",
                       **{"aria-controls": f"{page}-filters", "aria-expanded": "false"})


def filter_column(page: str, panel) -> dbc.Col:
    """The column holding ``panel`` (the page's filter card), id ``{page}-filters``."""
    return dbc.Col(panel, id=f"{page}-filters", md=4, lg=3, className="filter-col")
