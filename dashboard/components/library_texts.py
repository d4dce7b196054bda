"""Texts that Dash's Dropdown and AG Grid draw themselves in the browser (their own English
defaults), given in the reader's language. The pages' translation tests cannot see them (they
are not in the component tree), so they are listed here once, complete for what the pages use.
"""
from __future__ import annotations

from dashboard.language import _


def dropdown_labels() -> dict[str, str]:
    """``dcc.Dropdown(labels=...)``: Dash 4's search box, select-all and count texts."""
    return {
        "select_all": _("Select all"), "deselect_all": _("Deselect all"),
        "selected_count": _("{num_selected} selected"), "search": _("Search"),
        "clear_search": _("Clear search"), "clear_selection": _("Clear selection"),
        "no_options_found": _("No options found"),
    }


def grid_locale() -> dict[str, str]:
    """``dashGridOptions={"localeText": ...}``: AG Grid's empty, loading and column-filter texts."""
    return {
        "noRowsToShow": _("No rows to show"), "loadingOoo": _("Loading…"), "filterOoo": _("Filter…"),
        "contains": _("Contains"), "notContains": _("Does not contain"), "equals": _("Equals"),
        "notEqual": _("Does not equal"), "startsWith": _("Starts with"), "endsWith": _("Ends with"),
        "blank": _("Blank"), "notBlank": _("Not blank"), "andCondition": _("AND"), "orCondition": _("OR"),
        "applyFilter": _("Apply"), "resetFilter": _("Reset"), "clearFilter": _("Clear"),
        "lessThan": _("Less than"), "greaterThan": _("Greater than"), "inRange": _("Between"),
        "lessThanOrEqual": _("Less than or equal to"), "greaterThanOrEqual": _("Greater than or equal to"),
        "inRangeStart": _("From"), "inRangeEnd": _("To"), "page": _("Page"), "of": _("of"),
        "to": _("to"), "nextPage": _("Next page"), "previousPage": _("Previous page"),
        "firstPage": _("First page"), "lastPage": _("Last page"),
    }
