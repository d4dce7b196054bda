"""gunicorn's access log without credentials: an embed link's ``token=`` is a key to the data
until it expires, so it is replaced by ``token=…`` in the request line and query string."""
from __future__ import annotations

import re

from gunicorn.glogging import Logger

_TOKEN = re.compile(r"(?i)(\btoken=)[^&\s]+")


def redact(text: str) -> str:
    return _TOKEN.sub(r"\1…", text)


class RedactingLogger(Logger):
    """``logger_class`` of gunicorn.conf.py."""

    def atoms(self, resp, req, environ, request_time):
        found = super().atoms(resp, req, environ, request_time)
        for key in ("r", "q"):
            if isinstance(found.get(key), str):
                found[key] = redact(found[key])
        return found
