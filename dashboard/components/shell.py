"""The frame around every page: navigation built from the page registry, who is signed in,
the page container, the URL writer and the app-wide error message. ``?embed=1`` hides the
chrome (assets/embed.js) but not the scope notice or the open-access banner.

A function of the identity: the navigation lists only the pages the role may open (hiding a
link is convenience; every admin page and callback checks the role on the server itself).
"""
from __future__ import annotations

import dash
import dash_bootstrap_components as dbc
from dash import dcc, html

from dashboard.auth.identity import Capability, Identity, Role
from dashboard.auth.session import current
from dashboard import terms
from dashboard.auth.state import NotInstalled, stores
from dashboard.language import LANGS, N_, NAMES, _, current_lang, link_lang


# the role names, shown in the open-access banner (and the admin pages)
ROLE_NAMES = (N_("viewer"), N_("analyst"), N_("admin"))


def _visible(page: dict, identity: Identity) -> bool:
    if page["module"].endswith("not_found_404"):
        return False
    return not page.get("admin") or identity.can(Capability.ADMIN)


def _href(page: dict) -> str:
    """A page's link; a language chosen in the address (``?lang=``) goes along with it."""
    lang = link_lang()
    return page["relative_path"] + (f"?lang={lang}" if lang else "")


def _page_name(page: dict) -> str:
    name = page["name"]   # marked N_() where the page registers itself
    return _(name)


def language_switcher() -> dbc.DropdownMenu:
    """Links that reload the page in another language. assets/language.js keeps the current
    page's filters in them; without script they still open the page in that language."""
    lang = current_lang()
    items = [dbc.DropdownMenuItem(html.Span(NAMES[code], lang=code), href=f"?lang={code}", external_link=True,
                                  active=code == lang, className="lang-option")
             for code in LANGS]
    label = [html.Span(_("Language") + ": ", className="visually-hidden"), html.Span(NAMES[lang], lang=lang)]
    return dbc.DropdownMenu(items, label=label, nav=True, in_navbar=True, align_end=True,
                            className="nav-lang", toggle_class_name="nav-lang-toggle")


def navbar(identity: Identity) -> dbc.Navbar:
    pages = [p for p in dash.page_registry.values() if _visible(p, identity)]
    links = [dbc.NavItem(dbc.NavLink(_page_name(p), href=_href(p), active="exact"))
             for p in pages if not p.get("admin")]
    admin = [dbc.DropdownMenuItem(_page_name(p), href=_href(p)) for p in pages if p.get("admin")]
    if admin:   # one menu, so the analysts' pages keep the bar to themselves
        links.append(dbc.DropdownMenu(admin, label=_("Admin"), nav=True, in_navbar=True, align_end=True,
                                      className="nav-admin"))
    links.append(language_switcher())
    if identity.source in ("local", "oidc"):
        links.append(dbc.NavItem(dbc.NavLink(_("Sign out ({name})").format(name=identity.name),
                                             href=_href({"relative_path": dash.get_relative_path("/logout")}),
                                             external_link=True, className="nav-signout")))
    return dbc.Navbar(dbc.Container([
        dbc.NavbarBrand("Shopper Insights", href=dash.get_relative_path("/")),
        dbc.NavbarToggler(id="nav-toggle"),
        dbc.Collapse(dbc.Nav(links, navbar=True, className="ms-auto"), id="nav-collapse", navbar=True),
    ], fluid=True), color="dark", dark=True, className="app-nav mb-3", expand="lg")


def access_notices(identity: Identity) -> list:
    """What limits (or does not limit) what this person sees, shown on every page."""
    notices = []
    try:
        auth = stores()
    except NotInstalled:   # a layout drawn outside the server (tests of the pages)
        auth = None
    if auth is not None and auth.config.anonymous_public and identity.source == "none":
        notices.append(dbc.Alert(_("Open access: anyone who can reach this address sees this dashboard as "
                                   "{role} (AUTH=none with AUTH_ALLOW_ANONYMOUS=1).").format(role=_(identity.role.label)),
                                 color="warning", className="open-access mb-2"))
    if not identity.scope.unrestricted:
        scope = terms.scope_label(identity.scope.columns, _)
        notices.append(html.Div([
            dbc.Badge(["🔒 ", scope], color="secondary", pill=True, className="scope-chip",
                      title=_("Your access is limited to these rows; no filter can widen it.")),
        ], className="scope-notice mb-2",
            **{"aria-label": _("Your access is limited to {scope}").format(scope=scope)}))
    return notices


# Dash draws the layout once before the first request's hooks (to validate it), when no
# identity exists yet; that copy is never served, so it gets the least of everything.
_VALIDATION = Identity("nobody", Role.VIEWER, source="none")


def app_layout() -> html.Div:
    try:
        identity = current()
    except PermissionError:
        identity = _VALIDATION
    return html.Div([
        html.A(_("Skip to content"), href="#main", className="visually-hidden-focusable skip-link"),
        navbar(identity),
        dbc.Container([
            *access_notices(identity),
            html.Div(id="app-error", role="alert", **{"aria-live": "assertive"}),
            html.Main(dash.page_container, id="main"),
        ], fluid=True, className="app-body"),
        # written by the clientside URL writer; nothing reads it
        dcc.Store(id="url-sync"),
    ])
