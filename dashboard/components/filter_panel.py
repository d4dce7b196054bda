"""Labelled, keyboard-reachable filter controls and the chips that clear active filters.
Callers pass labels already translated; the texts of this module are translated here."""
from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import dcc, html

from dashboard.auth.session import current
from dashboard.language import N_, _
from dashboard.language import number as shown_number

YES_NO_ALL = (("all", N_("All")), ("yes", N_("Yes")), ("no", N_("No")))


def labelled(text: str, control, control_id: str, hint: str | None = None) -> html.Div:
    children = [dbc.Label(text, html_for=control_id, className="filter-label", id=f"{control_id}-label"), control]
    if hint:
        children.append(dbc.FormText(hint))
    return html.Div(children, className="filter-field mb-3")


def checklist(control_id: str, text: str, options: list[dict], value: list) -> html.Div:
    return labelled(text, dbc.Checklist(id=control_id, options=options, value=value, inline=True,
                                        input_class_name="me-1"), control_id)


def yes_no(control_id: str, text: str, value: bool | None) -> html.Div:
    current = "all" if value is None else ("yes" if value else "no")
    options = [{"label": _(label), "value": key} for key, label in YES_NO_ALL]
    return labelled(text, dbc.RadioItems(id=control_id, options=options, value=current, inline=True),
                    control_id)


def range_slider(control_id: str, text: str, low: float, high: float, step: float | None,
                 value: list[float], *, marks: dict | None = None, tooltip: bool = True,
                 hint: str | None = None) -> html.Div:
    """A labelled range slider; ``marks`` maps positions to labels (default: the two ends).

    ``tooltip=False`` for sliders whose positions are not the values (bucket indices): no
    tooltip and no number boxes, which would show the positions.
    """
    slider = dcc.RangeSlider(id=control_id, min=low, max=high, step=step, value=value,
                             marks=marks or {low: _short(low), high: _short(high)},
                             allowCross=False, updatemode="mouseup", allow_direct_input=tooltip,
                             tooltip={"placement": "bottom", "always_visible": False} if tooltip else None)
    return labelled(text, html.Div(slider, className="slider-wrap"), control_id, hint)


def _short(value: float) -> str:
    decimals = 0 if float(value).is_integer() else min(3, len(f"{value:g}".partition(".")[2]))
    return shown_number(value, decimals)


def chips(prefix: str, active: list[tuple[str, str]]) -> list:
    """One button per active filter ("× text") plus "Clear all"; pattern ids ``{prefix}-clear``."""
    if not active:
        # "everything" would overstate it for a user whose access is limited (the locked chip above)
        text = (_("No filters: showing everything.") if current().scope.unrestricted
                else _("No filters: showing every row your access includes."))
        return [html.Span(text, className="text-secondary small")]
    buttons = [dbc.Button(["✕ ", text], id={"type": f"{prefix}-clear", "key": key}, size="sm",
                          color="secondary", outline=True, className="me-2 mb-2 chip",
                          title=_("Clear this filter: {filter}").format(filter=text))
               for key, text in active]
    if len(active) > 1:
        buttons.append(dbc.Button(_("Clear all"), id={"type": f"{prefix}-clear", "key": "__all__"}, size="sm",
                                  color="link", className="mb-2 chip-all"))
    return buttons
