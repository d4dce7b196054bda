"""Locust users replaying recorded dashboard callback requests (see benchmarks/loadtest.py).

``LOADTEST_PAYLOADS`` names a JSON file: ``[{"name": ..., "path": ..., "body": {...}}, ...]``,
the exact bodies the browser sends for carts filter changes and what-if feature changes (and,
in the refresh run, page opens), recorded and checked (HTTP 200) through Flask's test client
before the run. Users have no think time: 50 users = 50 requests in flight at any moment (a
closed loop). Weights: 3 carts filter changes : 1 what-if (: 1 page open when there are any).

A request fails on an HTTP error, a body that is not a Dash answer, or the app's own message
that it could not answer (the error alert, or a page's "Not available yet" / error notice).

``LOADTEST_ANSWERS`` (the refresh run, benchmarks/refresh.py): every response body is also
hashed, and per payload each distinct body is kept once with its count and the first and last
time it was sent and received; written to that file when locust quits, so each answer can be
compared afterwards with the old and the new data's answer.

    locust -f benchmarks/locustfile.py --headless -u 50 -r 50 -t 30s --host http://127.0.0.1:PORT
"""
from __future__ import annotations

import hashlib
import json
import os
import random
import time
from pathlib import Path

from locust import constant, events
from locust.exception import StopUser
from locust.contrib.fasthttp import FastHttpUser

CARTS, WHAT_IF, PAGE = "carts filter change", "what-if", "page open"
_PAYLOADS = json.loads(open(os.environ["LOADTEST_PAYLOADS"], encoding="utf-8").read())
_BY_NAME: dict[str, list[tuple[int, dict]]] = {}
for _i, _p in enumerate(_PAYLOADS):
    _BY_NAME.setdefault(_p["name"], []).append((_i, _p))
_HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}
if os.environ.get("LOADTEST_COOKIE"):   # the hosts run (AUTH=local) signs in once before the run
    _HEADERS["Cookie"] = os.environ["LOADTEST_COOKIE"]
# the page-level messages of dashboard/components/alerts.py (class names in the JSON)
_NOT_ANSWERED = (b'"unavailable"', b'"page-error"')
MAX_BODIES = 20  # distinct bodies kept per payload (more would be counted, not kept)
_SEEN: dict[int, dict[str, dict]] = {}


def _note(index: int, body: bytes, problem: str | None, sent: float, received: float) -> None:
    digest = hashlib.sha256(body).hexdigest()[:20]
    bodies = _SEEN.setdefault(index, {})
    entry = bodies.get(digest)
    if entry is None:
        entry = bodies[digest] = {"count": 0, "problem": problem, "first_sent": sent, "last_sent": sent,
                                  "first_received": received, "last_received": received,
                                  "body": body.decode("utf-8", errors="replace") if len(bodies) < MAX_BODIES else None}
    entry["count"] += 1
    entry["first_sent"], entry["last_sent"] = min(entry["first_sent"], sent), max(entry["last_sent"], sent)
    entry["first_received"] = min(entry["first_received"], received)
    entry["last_received"] = max(entry["last_received"], received)


# X-Response-Cache of every answer (hit / miss / skip / none): how many the cache served
_CACHE_STATES: dict[str, int] = {}


@events.quitting.add_listener
def _write_answers(**_kwargs) -> None:
    path = os.environ.get("LOADTEST_ANSWERS")
    if path:
        Path(path).write_text(json.dumps(_SEEN))
    path = os.environ.get("LOADTEST_CACHE_STATES")
    if path:
        Path(path).write_text(json.dumps(_CACHE_STATES))


def check(status: int, text: bytes) -> str | None:
    """Why a response is a failure, or None."""
    if status != 200:
        return f"HTTP {status}"
    if b'"multi"' not in text[:200] and b'"response"' not in text:
        return "not a Dash callback response"
    if b'"app-error"' in text:
        return "the app reported an error"
    if any(marker in text for marker in _NOT_ANSWERED):
        return "the page says it cannot be shown"
    return None


def _carts(user) -> None:
    user.send(CARTS)


# LOADTEST_NOVEL=1 (benchmarks/novel.py): every payload is sent exactly once, in order, by
# whichever user is free (gevent: one process, so one shared queue); a user stops when none
# is left, so no body is ever repeated.
_NOVEL = [(_i, _p["path"], json.dumps(_p["body"]).encode()) for _i, _p in enumerate(_PAYLOADS)] \
    if os.environ.get("LOADTEST_NOVEL") else []
_NOVEL.reverse()   # pop() from the end = first payload first


def _novel(user) -> None:
    if not _NOVEL:
        # all sent: end the run now, so requests/s is over the time they took
        user.environment.runner.quit()
        raise StopUser()
    index, path, body = _NOVEL.pop()
    user.post(index, path, body, _p_name(index))


def _p_name(index: int) -> str:
    return _PAYLOADS[index]["name"]


def _what_if(user) -> None:
    user.send(WHAT_IF)


def _page(user) -> None:
    user.send(PAGE)


class DashboardUser(FastHttpUser):
    # task weights; locust turns the dict into its task list when the class is created
    tasks = {_novel: 1} if _NOVEL else {_carts: 3, _what_if: 1, **({_page: 1} if PAGE in _BY_NAME else {})}
    wait_time = constant(0)
    connection_timeout = 10.0
    network_timeout = 30.0

    def on_start(self) -> None:
        self.position = random.randrange(10_000)
        self.encoded = {name: [(i, p["path"], json.dumps(p["body"]).encode()) for i, p in items]
                        for name, items in _BY_NAME.items()}
        self.keep = bool(os.environ.get("LOADTEST_ANSWERS"))

    def send(self, name: str) -> None:
        items = self.encoded.get(name) or self.encoded[CARTS]  # no models: carts only
        self.position += 1
        index, path, body = items[self.position % len(items)]
        self.post(index, path, body, name)

    def post(self, index: int, path: str, body: bytes, name: str) -> None:
        sent = time.time()
        with self.client.post(path, data=body, headers=_HEADERS, name=name, catch_response=True) as response:
            text = response.content or b""
            state = (response.headers or {}).get("X-Response-Cache") or "none"
            _CACHE_STATES[state] = _CACHE_STATES.get(state, 0) + 1
            problem = check(response.status_code, text)
            if self.keep:
                _note(index, text, problem, sent, time.time())
            if problem:
                response.failure(problem)
            else:
                response.success()
