"""Messages in the page: what to run when data is missing, what was ignored, what failed.

The messages of :class:`Unavailable` and :class:`Forbidden` are passed through :func:`_` here:
a message raised as a marked msgid (``N_``) is translated when it is shown, one raised already
translated (``_(...).format(...)``, for those with values in them) is left as it is."""
from __future__ import annotations

import functools
import logging
from collections.abc import Callable

import dash
import dash_bootstrap_components as dbc
from dash import html, set_props

from dashboard.auth.scoping import Forbidden
from dashboard.language import N_, _
from dashboard.source import Unavailable


def unavailable_alert(exc: Unavailable) -> dbc.Alert:
    """The page cannot be drawn yet; say exactly what to run."""
    return dbc.Alert([
        html.H2(_("Not available yet"), className="h5 alert-heading"),
        html.P(_(exc.message), className="mb-2"),
        html.P(with_code(_("Run {command} and reload this page."), command=exc.command), className="mb-0"),
    ], color="info", className="unavailable")


def with_code(sentence: str, **codes: str) -> list:
    """A translated ``sentence`` whose ``{placeholders}`` become code elements (a command, a
    path), wherever the language puts them: one whole sentence for the translator."""
    parts: list = []
    rest = sentence
    while "{" in rest:
        before, _brace, after = rest.partition("{")
        key, _close, rest = after.partition("}")
        parts += [before, html.Code(codes[key])]
    return [*parts, rest]


IGNORED = N_("Some filters were ignored:")


def problems_alert(problems: list[str], heading: str = IGNORED) -> dbc.Alert | None:
    """Filters (or values) from the link or the request that were ignored, and why."""
    if not problems:
        return None
    return dbc.Alert([
        html.Strong(_(heading)),
        html.Ul([html.Li(p) for p in problems[:10]], className="mb-0"),
    ], color="warning", dismissable=True, className="problems")


def forbidden_alert(message: str) -> dbc.Alert:
    """What the user's role or access scope does not show, said instead of the numbers."""
    return dbc.Alert(_(message), color="secondary", className="forbidden mb-2")


def error_alert(message: str) -> dbc.Alert:
    return dbc.Alert(_(message), color="danger", className="page-error")


def guarded_layout(title: str) -> Callable:
    """A page layout that answers missing data or a failure with a message, never a 500;
    ``title`` is the page's name as a msgid (shown translated).

    Dash draws layouts inside its router callback, so an exception here would fail the
    whole navigation.
    """

    def decorate(render: Callable[..., html.Div]) -> Callable[..., html.Div]:
        @functools.wraps(render)
        def layout(**query) -> html.Div:
            try:
                return render(**query)
            except Unavailable as exc:
                return html.Div([html.H1(_(title), className="h3 mb-3"), unavailable_alert(exc)])
            except Forbidden as exc:
                return html.Div([html.H1(_(title), className="h3 mb-3"), forbidden_alert(exc.message)])
            except Exception:  # noqa: BLE001 - logged; the reader gets a message
                logging.getLogger(__name__).exception("layout of %s failed", title)
                return html.Div([html.H1(_(title), className="h3 mb-3"),
                                 error_alert(_("This page could not be drawn. The details are in the server log."))])

        return layout

    return decorate


def refusing(func: Callable) -> Callable:
    """A callback that answers a request its user may not make (a crafted one: the pages do
    not offer it) with the refusal in the page's message area and no output changed."""

    @functools.wraps(func)
    def callback(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except Forbidden as exc:
            logging.getLogger(__name__).info("refused: %s", exc.message)
            set_props("app-error", {"children": forbidden_alert(exc.message)})
            return dash.no_update

    return callback
