"""The frame around every page: navigation built from the page registry, the page container,
the URL writer and the app-wide error message. ``?embed=1`` hides the chrome (assets/embed.js)."""
from __future__ import annotations

import dash
import dash_bootstrap_components as dbc
from dash import dcc, html


def navbar() -> dbc.Navbar:
    pages = [p for p in dash.page_registry.values() if not p["module"].endswith("not_found_404")]
    links = [dbc.NavItem(dbc.NavLink(p["name"], href=p["relative_path"], active="exact")) for p in pages]
    return dbc.Navbar(dbc.Container([
        dbc.NavbarBrand("Shopper Insights", href=dash.get_relative_path("/")),
        dbc.NavbarToggler(id="nav-toggle"),
        dbc.Collapse(dbc.Nav(links, navbar=True, className="ms-auto"), id="nav-collapse", navbar=True),
    ], fluid=True), color="dark", dark=True, className="app-nav mb-3", expand="lg")


def app_layout() -> html.Div:
    return html.Div([
        html.A("Skip to content", href="#main", className="visually-hidden-focusable skip-link"),
        navbar(),
        dbc.Container([
            html.Div(id="app-error", role="alert", **{"aria-live": "assertive"}),
            html.Main(dash.page_container, id="main"),
        ], fluid=True, className="app-body"),
        # written by the clientside URL writer; nothing reads it
        dcc.Store(id="url-sync"),
    ])
