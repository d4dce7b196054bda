"""Locust users replaying recorded dashboard callback requests (see benchmarks/loadtest.py).

``LOADTEST_PAYLOADS`` names a JSON file: ``[{"name": ..., "path": ..., "body": {...}}, ...]``,
the exact bodies the browser sends for carts filter changes and what-if feature changes,
recorded and checked (HTTP 200) through Flask's test client before the run. Users have no
think time: 50 users = 50 requests in flight at any moment (a closed loop). 3 of 4 requests
are carts filter changes, 1 of 4 a what-if.

    locust -f benchmarks/locustfile.py --headless -u 50 -r 50 -t 30s --host http://127.0.0.1:PORT
"""
from __future__ import annotations

import json
import os
import random

from locust import constant, task
from locust.contrib.fasthttp import FastHttpUser

_PAYLOADS = json.loads(open(os.environ["LOADTEST_PAYLOADS"], encoding="utf-8").read())
_BY_NAME: dict[str, list[dict]] = {}
for _p in _PAYLOADS:
    _BY_NAME.setdefault(_p["name"], []).append(_p)
_HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}


class DashboardUser(FastHttpUser):
    wait_time = constant(0)
    connection_timeout = 10.0
    network_timeout = 30.0

    def on_start(self) -> None:
        self.position = random.randrange(10_000)
        self.encoded = {name: [(p["name"], p["path"], json.dumps(p["body"]).encode()) for p in items]
                        for name, items in _BY_NAME.items()}

    def _send(self, name: str) -> None:
        items = self.encoded.get(name) or next(iter(self.encoded.values()))  # no models: carts only
        self.position += 1
        name, path, body = items[self.position % len(items)]
        with self.client.post(path, data=body, headers=_HEADERS, name=name, catch_response=True) as response:
            text = response.content or b""
            if response.status_code != 200:
                response.failure(f"HTTP {response.status_code}")
            elif b'"multi"' not in text[:200] and b'"response"' not in text:
                response.failure("not a Dash callback response")
            elif b'"app-error"' in text:
                response.failure("the app reported an error")
            else:
                response.success()

    @task(3)
    def carts_filter_change(self) -> None:
        self._send("carts filter change")

    @task(1)
    def what_if(self) -> None:
        self._send("what-if")
