"""Moments (ETL runs, user changes, report builds) as the reader writes a date and time."""
from __future__ import annotations

from datetime import datetime, timezone

from dashboard.i18n import format_date, format_datetime
from dashboard.language import _, current_lang


def when(value, *, utc: bool = False) -> str:
    """``value`` (a datetime or an ISO text; without a zone it is UTC, as every store of the
    app writes it) as ``25 de noviembre de 2026, 14:05``: in the server's time zone, or in
    UTC and saying so with ``utc``. Anything else is shown as it is."""
    moment = value
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    if not isinstance(moment, datetime):
        return "?" if value is None else str(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    if not utc:
        return format_datetime(moment, current_lang())
    moment = moment.astimezone(timezone.utc)
    return _("{date}, {time} UTC").format(date=format_date(moment, current_lang()), time=f"{moment:%H:%M}")
