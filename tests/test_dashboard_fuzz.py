"""Property-based tests generated from the app itself (Hypothesis, fixed seeds).

The callback graph is read from ``GET /_dash-dependencies``; valid values, concrete
pattern-matching ids and chart ``customdata`` are harvested from the pages the app renders
(tests/dashboard_generators.py). Every server callback then receives generated payloads (every
JSON type, extreme numbers, unicode categories, control characters, long strings,
missing/extra/renamed inputs, malformed ids and ``changedPropIds``), every registered page is
opened with generated query strings, and every GET route with generated paths. Nothing here
names a page, a callback or a route, so a new one is covered without editing this file.

Each answer must be below HTTP 500 with no traceback in it, the server log must hold no error
and no traceback, and afterwards a valid request must answer exactly as it did before.
"""
from __future__ import annotations

import logging
import time
import zlib
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from dashboard.auth.gate import required_capability
from dashboard.auth.identity import Capability
from tests.dashboard_generators import (NASTY, harvest_pages, page_paths, payloads, post_json, query_strings,
                                        router, router_body, server_callbacks, valid_body)

PAYLOADS_PER_CLASS = 5        # per callback and class of values: x 11 callbacks x 10 classes = 550 payloads
QUERIES_PER_CLASS = 3         # per page and class: x 9 paths (8 pages + an unknown one) x 10 classes,
                              # each a GET and a router request
MIN_PAYLOADS = 300            # issue 8: at least 300 callback payloads

FUZZ_SETTINGS = settings(database=None, deadline=None, print_blob=True, suppress_health_check=list(HealthCheck))


def fixed_seed(*parts: str) -> int:
    """A seed of its own for each (callback or page, class of values), the same on every run:
    one seed for all would repeat one stream of choices, only with other values."""
    return zlib.crc32("|".join(parts).encode())


# --- the log and the answers ---------------------------------------------------------------


class LogWatch(logging.Handler):
    """Every record logged anywhere while the fuzzing runs."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def problems(self) -> list[str]:
        """Errors, tracebacks and multi-line messages: bad input may earn one warning line."""
        found = []
        for record in self.records:
            message = record.getMessage()
            if record.levelno >= logging.ERROR or record.exc_info or "Traceback" in message or "\n" in message:
                found.append(f"{record.levelname} {record.name}: {message[:300]!r} exc_info={bool(record.exc_info)}")
        return found


@pytest.fixture
def watched_log():
    watch = LogWatch()
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(watch)
    root.setLevel(logging.DEBUG)
    try:
        yield watch
    finally:
        root.removeHandler(watch)
        root.setLevel(old_level)


@pytest.fixture
def fuzz_app(dashboard_env, watched_log, monkeypatch):
    from dashboard.app import create_app

    # As an analyst: every page and row callback is fuzzed, while the admin callbacks (which
    # act: add users, start a data refresh of the shared test warehouse) are refused by the
    # gate; tests/test_admin_pages.py feeds those their own refused and garbage inputs.
    monkeypatch.setenv("ANONYMOUS_ROLE", "analyst")

    app = create_app()
    client = app.server.test_client()
    assert client.get("/").status_code == 200  # Dash registers the page callbacks on the first request
    return app, client


def check_answer(response, watch: LogWatch, what) -> None:
    """Call right after the request: the log is checked and then emptied for the next one."""
    body = response.get_data().decode("utf-8", "replace")  # some answers are images
    assert response.status_code < 500, (what, response.status_code, body[:500])
    assert "Traceback" not in body, (what, body[:500])
    problems = watch.problems()
    watch.records.clear()
    assert not problems, (what, problems)


# --- the tests -----------------------------------------------------------------------------


def test_every_server_callback_survives_generated_payloads(fuzz_app, watched_log, capsys):
    app, client = fuzz_app
    callbacks = server_callbacks(client)
    harvest = harvest_pages(client, callbacks)
    keys = [c["output"] for c in callbacks]
    before = {c["output"]: post_json(client, valid_body(c, harvest)) for c in callbacks}
    for key, response in before.items():
        # the comparison at the end means something: answered, declined (a button the harvested
        # page never clicked: 204), or refused for the role
        refused = response.status_code == 403 and required_capability(key) is Capability.ADMIN
        assert response.status_code in (200, 204) or refused, key
        check_answer(response, watched_log, f"valid request to {key}")
    count = {"payloads": 0}
    started = time.perf_counter()

    for callback in callbacks:
        for theme in sorted(NASTY):
            @seed(fixed_seed(callback["output"], theme))
            @settings(FUZZ_SETTINGS, max_examples=PAYLOADS_PER_CLASS)
            @given(body=payloads(callback, harvest, keys, theme))
            def survives(body):
                count["payloads"] += 1
                check_answer(post_json(client, body), watched_log, body)

            survives()

    for callback in callbacks:  # the app still answers a valid request exactly as before
        again = post_json(client, valid_body(callback, harvest))
        assert (again.status_code, again.get_data()) == (before[callback["output"]].status_code,
                                                        before[callback["output"]].get_data()), callback["output"]
    with capsys.disabled():
        print(f"\n[fuzz] {count['payloads']} generated payloads to {len(callbacks)} server callbacks "
              f"in {time.perf_counter() - started:.1f} s")
    assert count["payloads"] >= max(MIN_PAYLOADS, len(callbacks) * len(NASTY) * PAYLOADS_PER_CLASS)


def test_every_page_survives_generated_query_strings(fuzz_app, watched_log, capsys):
    app, client = fuzz_app
    callbacks = server_callbacks(client)
    harvest = harvest_pages(client, callbacks)
    route = router(callbacks)
    words, keys = sorted(harvest.words), sorted(harvest.keys)
    paths = page_paths() + ["/no-such-page"]
    before = {path: post_json(client, router_body(route, path, "")).get_data() for path in paths}
    count = {"requests": 0}

    for path in paths:
        for theme in sorted(NASTY):
            @seed(fixed_seed(path, theme))
            @settings(FUZZ_SETTINGS, max_examples=QUERIES_PER_CLASS)
            @given(search=query_strings(harvest.page_keys.get(path, keys), keys, words, theme))
            def survives(search):
                count["requests"] += 2
                check_answer(client.get(path + search), watched_log, path + search)
                check_answer(post_json(client, router_body(route, path, search)), watched_log, path + search)

            survives()

    for path in paths:
        assert post_json(client, router_body(route, path, "")).get_data() == before[path], path
    with capsys.disabled():
        print(f"\n[fuzz] {count['requests']} page requests with generated query strings on {len(paths)} paths")
    assert count["requests"] >= len(paths) * len(NASTY) * QUERIES_PER_CLASS * 2


ROUTES_PER_RULE = 6


@st.composite
def path_parts(draw):
    """A value for a URL rule's variable: a real-looking file name, a traversal, or noise."""
    return draw(st.one_of(
        st.sampled_from(["x.js", "dash/x.js", "../../etc/passwd", "%2e%2e/app.py", "dcc/dash_core_components.js",
                         "deps/react@18.v4_4_1m1.min.js", "x.v1_2_3m4.js", "a" * 300 + ".css", ".", "%00.js",
                         "embed.js", "app.css", "favicon.ico"]),
        st.text(st.characters(codec="utf-8", exclude_characters="/?#"), min_size=1, max_size=20).map(
            lambda t: quote(t, safe="") + ".js")))


def test_every_route_answers_generated_paths_without_a_server_error(fuzz_app, watched_log, capsys):
    """Every GET rule of the server (Dash's static routes, assets, pages) with generated values in
    its variables: never a 5xx; a script of an unknown package is a 404."""
    app, client = fuzz_app
    rules = sorted({r.rule for r in app.server.url_map.iter_rules() if "GET" in (r.methods or ())})
    count = {"requests": 0}
    for rule in rules:
        if "<" not in rule:
            check_answer(client.get(rule), watched_log, rule)
            count["requests"] += 1
            continue

        @seed(fixed_seed(rule))
        @settings(FUZZ_SETTINGS, max_examples=ROUTES_PER_RULE)
        @given(parts=st.lists(path_parts(), min_size=rule.count("<"), max_size=rule.count("<")))
        def survives(parts):
            path = rule
            for part in parts:
                path = path[:path.index("<")] + part + path[path.index(">") + 1:]
            count["requests"] += 1
            check_answer(client.get(path), watched_log, path)

        survives()
    for package in ("no-such-package", "dash_no_such", "__main__", "os"):
        response = client.get(f"/_dash-component-suites/{package}/x.js")
        assert response.status_code == 404, package
        check_answer(response, watched_log, package)
    assert client.get("/_dash-component-suites/dash/no-such-file.js").status_code == 404
    with capsys.disabled():
        print(f"\n[fuzz] {count['requests']} generated requests to {len(rules)} GET routes")
