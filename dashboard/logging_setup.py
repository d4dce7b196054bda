"""Logging for the dashboard, configured in one place (called by ``create_app``).

- The level comes from ``LOG_LEVEL`` (see dashboard/config.py).
- Every record is one bounded entry: control characters in the message are escaped (a value
  from a request cannot forge a second log line) and the whole entry, traceback included, is
  cut at ``MAX_LINE`` characters, saying how much was cut (a 20 MB request body must never
  reach the log whole).
- Every request gets an id: a sane incoming ``X-Request-ID`` is kept (so a proxy's id follows
  the request), anything else is replaced by a new one. It is in every log line written during
  the request and in the ``X-Request-ID`` response header of every response, errors included,
  which gunicorn's access log prints.
"""
from __future__ import annotations

import logging
import re
import sys
import uuid

from flask import Flask, Response, g, has_request_context, request

MAX_LINE = 2000
REQUEST_ID_HEADER = "X-Request-ID"
_SANE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
# control characters, line/paragraph separators, bidi overrides, lone surrogates (which a UTF-8
# stream cannot even write)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"


def request_id() -> str:
    """This request's id (made on first use), or "-" outside a request."""
    if not has_request_context():
        return "-"
    if "request_id" not in g:
        incoming = request.headers.get(REQUEST_ID_HEADER, "")
        g.request_id = incoming if _SANE_ID.fullmatch(incoming) else uuid.uuid4().hex
    return g.request_id


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id()
        return True


class BoundedFormatter(logging.Formatter):
    """One entry per record, never longer than ``limit`` characters."""

    def __init__(self, fmt: str = FORMAT, limit: int = MAX_LINE) -> None:
        super().__init__(fmt)
        self.limit = limit

    def formatMessage(self, record: logging.LogRecord) -> str:
        # Only the message is escaped: a traceback's own line breaks stay readable.
        record.message = _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"),
                                      record.message)
        return super().formatMessage(record)

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        if len(text) <= self.limit:
            return text
        return f"{text[:self.limit]} … [{len(text) - self.limit:,} more characters cut]"


class _DashboardHandler(logging.StreamHandler):
    """Marks the handler this module installed, so a second app in one process replaces it."""


def configure_logging(level: str, stream=None) -> logging.Handler:
    """Route every logger through one bounded handler on the root logger, at ``level``."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _DashboardHandler)]:
        root.removeHandler(handler)
    handler = _DashboardHandler(stream or sys.stderr)
    handler.setFormatter(BoundedFormatter())
    handler.addFilter(RequestIdFilter())
    root.addHandler(handler)
    root.setLevel(level)
    return handler


def install_request_ids(server: Flask) -> None:
    @server.before_request
    def assign_request_id() -> None:
        request_id()  # before anything else logs

    @server.after_request
    def tag_response(response: Response) -> Response:
        response.headers[REQUEST_ID_HEADER] = request_id()
        return response
