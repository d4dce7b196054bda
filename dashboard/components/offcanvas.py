"""The filter panel's place on the page: a column beside the charts from tablet width up, an
off-canvas panel on phones, opened and closed by a "Filters" button (assets/offcanvas.js:
Escape and the close button close it, focus goes into the panel and back to the button)."""
from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import html

from dashboard.components.cards import chart_words
from dashboard.language import _


def filter_toggle(page: str) -> html.Button:
    """The button that opens the page's filters on a phone (hidden from tablet width up).
    Put it at the top of the charts' column."""
    return html.Button(_("Filters"), type="button",
                       className="btn btn-outline-primary btn-sm filter-toggle d-md-none mb-2",
                       **{"aria-controls": f"{page}-filters", "aria-expanded": "false"})


def filter_column(page: str, panel) -> dbc.Col:
    """The column holding ``panel`` (the page's filter card), id ``{page}-filters``; on a phone
    it is the off-canvas panel, with a close button of its own."""
    close = html.Button("✕", type="button", className="btn btn-outline-secondary btn-sm filter-close d-md-none",
                        title=_("Close filters"), **{"aria-label": _("Close filters")})
    # data-words: what assets/controls.js names the slider thumbs with, in the reader's language
    close_row = html.Div(close, className="filter-close-row d-md-none", **{"data-words": chart_words()})
    return dbc.Col([close_row, panel], id=f"{page}-filters", md=4, lg=3, className="filter-col filter-offcanvas")
