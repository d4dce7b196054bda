"""``create_app()``: the Dash app, its pages, cache and response headers. Nothing is read from
the warehouse here; every page queries it when it is drawn."""
from __future__ import annotations

import gc
import logging
import threading
from pathlib import Path

import dash
from dash import _callback as dash_callbacks
from dash import ALL, ClientsideFunction, Input, Output, State, set_props
from dash.exceptions import DependencyException
from flask import Response, jsonify, request
from werkzeug.exceptions import HTTPException

from dashboard import callback_guard, language, portal, release, response_cache
from dashboard.auth import gate, login, oidc
from dashboard.auth.scoping import Forbidden
from dashboard.auth.settings import get_auth_config
from dashboard.auth import state as auth_state
from dashboard.cache import init_cache
from dashboard.compression import install_compression
from dashboard.components.alerts import error_alert, forbidden_alert, unavailable_alert
from dashboard.components.shell import app_layout
from dashboard.config import ASSETS_DIR, get_config
from dashboard.health import register_health
from dashboard.inputs import describe
from dashboard.language import _, current_lang, default_lang
from dashboard.logging_setup import configure_logging, install_request_ids
from dashboard.source import Unavailable

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
# The largest callback request the browser sends is a chart selection of a few hundred points
# (well under 1 MB); anything far bigger is refused (413) before it is parsed or logged.
MAX_REQUEST_BYTES = 4 * 1024 * 1024


def _on_error(err: Exception) -> None:
    """Last line of defence for callbacks: a message in the page, no HTTP 500, no traceback."""
    if isinstance(err, Unavailable):
        alert = unavailable_alert(err)
    elif isinstance(err, Forbidden):   # the role or scope does not show this: said, not logged as a failure
        log.info("refused in a callback: %s", err.message)
        alert = forbidden_alert(err.message)
    else:
        log.exception("callback failed", exc_info=err)
        alert = error_alert(_("This view could not be updated. The details are in the server log; "
                              "reload the page or clear the filters."))
    set_props("app-error", {"children": alert})


def _forget_unclaimed_callbacks() -> None:
    """Dash keeps page callbacks in module globals until an app's first request; an app
    created before this one in the same process (tests) must not hand its copies over."""
    dash_callbacks.GLOBAL_CALLBACK_LIST.clear()
    dash_callbacks.GLOBAL_CALLBACK_MAP.clear()
    dash_callbacks.GLOBAL_INLINE_SCRIPTS.clear()


def _callback_output() -> str | None:
    body = request.get_json(silent=True)
    output = body.get("output") if isinstance(body, dict) else None
    return output if isinstance(output, str) else None


def _callback_page(app: dash.Dash, output: str) -> str | None:
    """The path of the page whose module registered the callback of ``output``."""
    spec = app.callback_map.get(output) or {}
    module = getattr(spec.get("callback"), "__module__", None)
    if module == "dash.dash":
        return gate.ROUTER
    page = dash.page_registry.get(module) if module else None
    return page["path"] if page else None


def _declare_language(app: dash.Dash) -> None:
    """``<html lang>`` of the page as served: screen readers pick their voice by it, and the
    browser's own texts and hyphenation follow it. Dash's index has a bare ``<html>``."""
    index = app.interpolate_index

    def interpolate_index(**kwargs) -> str:
        return index(**kwargs).replace("<html>", f'<html lang="{current_lang()}">', 1)

    app.interpolate_index = interpolate_index


def create_app() -> dash.Dash:
    config = get_config()
    configure_logging(config.log_level)
    auth_config = get_auth_config()   # refuses an unsafe configuration before anything starts
    default_lang()                    # and an unknown DEFAULT_LANG
    _forget_unclaimed_callbacks()
    app = dash.Dash(
        # the package name makes Dash import the pages as dashboard.pages.<page>
        "dashboard",
        use_pages=True,
        pages_folder=str(HERE / "pages"),
        assets_folder=str(ASSETS_DIR),
        requests_pathname_prefix=config.url_prefix,
        routes_pathname_prefix=config.url_prefix,
        title="Shopper Insights",
        update_title=None,
        suppress_callback_exceptions=True,
        on_error=_on_error,
        meta_tags=[{"name": "viewport", "content": "width=device-width, initial-scale=1"}],
        add_log_handler=False,  # Dash's own handler writes unbounded lines to stdout
    )
    language.install(app.server)   # first: every hook after it may draw text
    # a function: the navigation and the banner depend on who asks (pages are registered by now)
    app.layout = app_layout
    _declare_language(app)
    portal.install(app, config)   # the portals that may exchange filter messages (docs/portal.md)
    server = app.server
    server.config["MAX_CONTENT_LENGTH"] = MAX_REQUEST_BYTES
    init_cache(server, config)
    install_request_ids(server)
    release.install(server)
    register_health(server, config.url_prefix)
    from dashboard.pages.reports import install_routes   # after dash.Dash(): the page registers itself
    install_routes(server, config.url_prefix)
    update_path = f"{config.url_prefix}_dash-update-component"
    auth = auth_state.install(server, auth_config)
    login.install(server, auth, config.url_prefix)
    if auth_config.mode == "oidc":
        oidc.install(server, auth_config, prefix=config.url_prefix,
                     on_sign_in=lambda who: auth.audit.record("sign-in", who.name, ip=auth_state.client_ip(),
                                                              source="oidc"),
                     on_refused=lambda name, why: auth.audit.record("sign-in-failed", name,
                                                                    ip=auth_state.client_ip(), reason=why))
    # first of the hooks that read data: nothing below runs for a request it refuses
    gate.install(server, auth, config.url_prefix, update_path, _callback_output,
                 lambda output: _callback_page(app, output))

    @server.before_request
    def check_callback_request():
        # Runs after Dash's own first-request hooks, so the page callbacks are in the map.
        if request.method != "POST" or request.path != update_path:
            return None
        try:
            callback_guard.check(request.get_json(), app.callback_map, config.url_prefix)
        except callback_guard.Malformed as exc:
            log.warning("refused a callback request: %s", exc)
            return jsonify(message=_("The dashboard could not read this request.")), 400
        return None

    # Order matters: compression's after_request must run last (so it is registered first),
    # the response cache's lookup after the request guard and its store before compression.
    install_compression(server, config)
    response_cache.install(server, update_path)

    @server.after_request
    def frame_policy(response: Response) -> Response:
        # Embedding is allowed where FRAME_ANCESTORS says; X-Frame-Options cannot express
        # "these portals", so it is never sent.
        response.headers["Content-Security-Policy"] = f"frame-ancestors {config.frame_ancestors}"
        response.headers.pop("X-Frame-Options", None)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        return response

    @server.errorhandler(DependencyException)
    def unknown_component_file(_exc: DependencyException):
        # Dash raises this for a script of an unregistered package or path: a plain 404.
        return Response(_("Not found."), 404, mimetype="text/plain")

    @server.errorhandler(Exception)
    def unexpected(exc: Exception):
        # A request Dash itself cannot parse (crafted or truncated) ends here: a short 400
        # with a message, never a 500 page or a traceback.
        if isinstance(exc, HTTPException):
            return exc
        if request.path == update_path:
            log.warning("unreadable callback request: %s", describe(f"{type(exc).__name__}: {exc}", 200))
            return jsonify(message=_("The dashboard could not read this request.")), 400
        log.exception("request to %s failed", request.path)
        return Response(_("Shopper Insights could not answer this request; see the server log."), 500,
                        mimetype="text/plain")

    app.clientside_callback(
        ClientsideFunction("shopper", "syncUrl"),
        Output("url-sync", "data"),
        Input({"type": "url-state", "page": ALL}, "data"),
    )
    app.clientside_callback(
        "function(n, open) { return n ? !open : open; }",
        Output("nav-collapse", "is_open"),
        Input("nav-toggle", "n_clicks"),
        State("nav-collapse", "is_open"),
        prevent_initial_call=True,
    )
    return app



def warm_up(server) -> threading.Thread:
    """Compute the cart cube, the held sessions and the unfiltered views in the background, so
    the first visitor after a start does not wait for them (seconds on 10 M sessions). Missing
    data is fine: the pages say what to run."""

    def work() -> None:
        from dashboard.cart_cube import cube
        from dashboard.filters import CartFilters, CustomerFilters
        from dashboard.held_sessions import held_sessions
        from dashboard.queries import cart_distributions, cart_outcomes, customer_kpis

        with server.app_context():
            try:
                # pinned like a request, so a publish meanwhile does not close it under the work
                with release.held():
                    cube()
                    held_sessions()   # written by one worker of the host, mapped by the others
                    cart_outcomes(CartFilters())
                    cart_distributions(CartFilters())
                    customer_kpis(CustomerFilters())
            except Exception as exc:  # noqa: BLE001 - a warm-up must never stop the app
                log.info("warm-up skipped: %s", exc)
        # The app, its imports and the warm data are long-lived: out of the collector's sight,
        # a full collection no longer walks them (measured: ~115 ms each, one off-cube request
        # in 13; off-cube p95 211 -> 99 ms, benchmarks/README.md "Novel filter changes").
        gc.freeze()

    server.extensions["static_compression"].prime()   # quality-11 bundles, in their own threads
    thread = threading.Thread(target=work, name="warm-up", daemon=True)
    thread.start()
    return thread
