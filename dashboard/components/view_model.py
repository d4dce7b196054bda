"""Typed view models: what a page shows, as a dataclass whose fields are its callback's outputs.

A page's ``render`` returns one of these; its callback declares ``output=`` as a dict with the
same names (checked by :func:`outputs_for` when the page is imported) and returns
:func:`values`, so an output can never be matched to the wrong value by position.
"""
from __future__ import annotations

from dataclasses import fields
from typing import Any


def outputs_for(view_type: type, outputs: dict[str, Any], *, without: tuple[str, ...] = ()) -> dict[str, Any]:
    """``outputs`` (name -> Dash Output, or a dict of them) after checking that they are
    exactly the fields of ``view_type`` (but those ``without``, which are no output)."""
    names = [f.name for f in fields(view_type) if f.name not in without]
    if sorted(names) != sorted(outputs):
        raise TypeError(f"{view_type.__name__} fields {names} differ from the callback outputs {list(outputs)}")
    return outputs


def values(view: Any, *, without: tuple[str, ...] = ()) -> dict[str, Any]:
    """The view's fields by name (shallow: figures and components are passed as they are)."""
    return {f.name: getattr(view, f.name) for f in fields(view) if f.name not in without}
