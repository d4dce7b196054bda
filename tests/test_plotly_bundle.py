"""make's partial plotly.js (plotly_bundle/) is the same release as the one the plotly package
ships, so a chart looks the same whichever of the two draws it (the browser tests check that
every chart's trace types are in it)."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from plotly.offline import get_plotlyjs_version

BUNDLE = Path(__file__).resolve().parents[1] / "plotly_bundle"
BUILT = Path(__file__).resolve().parents[1] / "assets" / "plotly-charts.min.js"


def test_the_bundle_pins_the_plotly_js_of_the_installed_plotly():
    pinned = json.loads((BUNDLE / "package.json").read_text())["dependencies"]["plotly.js"]
    locked = json.loads((BUNDLE / "package-lock.json").read_text())["packages"]["node_modules/plotly.js"]
    assert pinned == locked["version"] == get_plotlyjs_version(), (
        "upgrade plotly_bundle/package.json (npm install --package-lock-only) with the plotly package")
    assert locked["integrity"].startswith("sha512-")


def test_the_built_bundle_is_that_release_with_our_trace_types():
    if not BUILT.is_file():
        if os.environ.get("CI"):
            pytest.fail("make test builds assets/plotly-charts.min.js before the tests")
        pytest.skip("not built here: make run and make test build it")
    banner = BUILT.read_text(encoding="utf-8")[:200]
    assert banner.startswith(f"/* plotly.js v{get_plotlyjs_version()}: core (scatter), bar, heatmap, indicator")
    for trace in ("bar", "heatmap", "indicator"):
        assert f"require('plotly.js/lib/{trace}')" in (BUNDLE / "entry.js").read_text()
