"""The load test's **novel** run: carts filter changes that no cache can answer.

The steady run replays 8 filter changes (and 24 what-ifs) over and over, so after the first
round every answer can come from a cache; it shows what users revisiting a few views cost.
Here every request is a state never requested before in the run: random walks over the carts
page's controls (customer types, product details viewed, every range slider) and chart clicks
(a bar of a category chart or of a behaviour's histogram), recorded through Flask's test
client like the steady payloads (each answered HTTP 200 without an error) and each sent
**once** by locust (``LOADTEST_NOVEL=1``: the users share one queue), so only the intrinsic
cost of a filter change shows: no response cache hit, and query-cache hits only where a part
of a new state was computed before (e.g. the by-segment view does not depend on the segment
filter).
"""
from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path

from benchmarks.dashclient import DashClient, id_key
from benchmarks.scenarios import CARTS_PATH, _controls

NAME = "carts filter change (novel)"
# Every this many changes the walk goes back to the initial view (the "Clear all" chip a
# manager uses), so states do not drift into ever narrower filters that match no session.
RESTART_EVERY = 12


def _choices(client: DashClient, rng: random.Random) -> list[tuple[str, object, str, Callable[[], object]]]:
    """(label, component id, property, random value) for every control of the page."""
    out = []
    for seg in _controls(client, "Checklist"):
        values = [o["value"] for o in seg["options"]]
        out.append(("checklist", seg["id"], "value",
                    lambda values=values: sorted(rng.sample(values, rng.randint(1, len(values))), key=str)))
    for radio in _controls(client, "RadioItems"):
        values = [o["value"] for o in radio["options"]]
        out.append(("radio", radio["id"], "value", lambda values=values: rng.choice(values)))
    for slider in _controls(client, "RangeSlider"):
        lo, hi = int(slider["min"]), int(slider["max"])

        def span(lo=lo, hi=hi):
            a, b = sorted((rng.randint(lo, hi), rng.randint(lo, hi)))
            return [a, b]
        out.append(("slider", slider["id"], "value", span))
    for graph in _controls(client, "Graph", "clickData"):
        ident = graph["id"]

        def click(ident=ident):
            figure = client.value(ident, "figure") or {}
            points = [c for trace in figure.get("data", []) for c in (trace.get("customdata") or [])]
            return {"points": [{"customdata": rng.choice(points)}]} if points else None
        out.append(("click", ident, "clickData", click))
    return out


def novel_payloads(app, count: int, exclude: list[dict] = (), seed: int = 9) -> list[dict]:
    """``count`` carts callback requests, each body different from every other one and from
    those of ``exclude`` (the steady run's); ``[{"name", "path", "body", "status", "ms"}]``."""
    rng = random.Random(seed)
    client = DashClient(app)
    client.open(CARTS_PATH)
    seen = {json.dumps(p["body"], sort_keys=True) for p in exclude}
    payloads: list[dict] = []
    attempts = 0
    while len(payloads) < count:
        attempts += 1
        if attempts > count * 5:
            raise RuntimeError(f"only {len(payloads)} novel states found in {attempts} changes")
        if attempts % RESTART_EVERY == 0:
            client.open(CARTS_PATH)
        # a kind of change first (one of four, evenly), then one control of that kind: otherwise
        # the ten charts' clicks would outnumber the other controls' changes
        choices = _choices(client, rng)
        kind = rng.choice(sorted({c[0] for c in choices}))
        _, ident, prop, value = rng.choice([c for c in choices if c[0] == kind])
        picked = value()
        if picked is None or picked == client.value(ident, prop):
            continue
        interaction = client.change(ident, prop, picked)
        for request in interaction.requests:
            key = json.dumps(request.body, sort_keys=True)
            if request.status != 200 or key in seen:
                continue   # 204 (nothing to update) or a state already sent: not novel
            seen.add(key)
            payloads.append({"name": NAME, "path": request.url, "body": request.body, "status": request.status,
                             "ms": round(request.ms, 1), "change": f"{kind} {id_key(ident)}"})
    return payloads[:count]


def write(app, path: Path, count: int, exclude: list[dict] = ()) -> list[dict]:
    payloads = novel_payloads(app, count, exclude)
    path.write_text(json.dumps(payloads))
    return payloads
