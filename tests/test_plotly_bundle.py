"""make's partial plotly.js (plotly_bundle/) is the same release as the one the plotly package
ships, so a chart looks the same whichever of the two draws it (the browser tests check that
every chart's trace types are in it)."""
from __future__ import annotations

import json
from pathlib import Path

from plotly.offline import get_plotlyjs_version

BUNDLE = Path(__file__).resolve().parents[1] / "plotly_bundle"


def test_the_bundle_pins_the_plotly_js_of_the_installed_plotly():
    pinned = json.loads((BUNDLE / "package.json").read_text())["dependencies"]["plotly.js"]
    locked = json.loads((BUNDLE / "package-lock.json").read_text())["packages"]["node_modules/plotly.js"]
    assert pinned == locked["version"] == get_plotlyjs_version(), (
        "upgrade plotly_bundle/package.json (npm install --package-lock-only) with the plotly package")
    assert locked["integrity"].startswith("sha512-")
