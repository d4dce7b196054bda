"""The same numbers on every backend: DuckDB, PostgreSQL and Spark, from the same raw files.

Each backend gets its own ``python -m etl run`` and ``python -m etl train --fast`` (the real
data when ``../shared/data`` is there), then the dashboard opens every page on it the way a
browser does (:class:`benchmarks.dashclient.DashClient`: the page, then every callback its
controls trigger). Compared across backends:

* the ETL run (data version, row counts) and each model card's metrics and chosen model;
* every page's component tree: every KPI text, every chart's data (numbers equal to 1e-9
  relative: sums of doubles may be added in another order by another engine), every table's
  rows (the at-risk list included).

What legitimately differs is taken out first (:func:`_comparable`): the warehouse's URL, when a
model was trained or the ETL ran (the time of day) and how long it took ("0.2 s").
"""
from __future__ import annotations

import json
import math
import re

import pytest

pytestmark = [pytest.mark.servers, pytest.mark.slow]

BACKENDS = ("duckdb", "postgres", "pyspark")
REL_TOL = 1e-9


@pytest.fixture(scope="module")
def postgres_server():
    from localservers.postgres import served

    yield from served(pytest)


@pytest.fixture(scope="module")
def spark_ready():
    from localservers import ServerMissing, find_binary, skip_or_fail

    try:
        find_binary("java", "openjdk-17-jre-headless")
    except ServerMissing as exc:
        skip_or_fail(pytest, exc)


@pytest.fixture(scope="module")
def published(dashboard_raw, tmp_path_factory, postgres_server, spark_ready) -> dict[str, dict]:
    """{backend: {"url", "models", "cards"}}: the ETL and fast training run on each backend."""
    from etl.cli import main
    from etl.prepare import warehouse_version

    root = tmp_path_factory.mktemp("parity")
    urls = {"duckdb": str(root / "warehouse.duckdb"), "postgres": postgres_server.new_database(),
            "pyspark": f"pyspark://{root / 'spark-warehouse'}"}
    out = {}
    for name, url in urls.items():
        models = root / f"models-{name}"
        assert main(["-q", "run", "--raw", str(dashboard_raw), "--warehouse", url]) == 0, name
        assert main(["-q", "train", "--fast", "--warehouse", url, "--models", str(models)]) == 0, name
        cards = {subject: json.loads((models / f"{subject}.json").read_text()) for subject in ("carts", "customers")}
        out[name] = {"url": url, "models": models, "cards": cards, "version": warehouse_version(url)}
    return out


def test_the_etl_publishes_the_same_data_everywhere(published):
    versions = {name: found["version"] for name, found in published.items()}
    assert len(set(versions.values())) == 1 and None not in versions.values(), versions


@pytest.mark.parametrize("subject", ["carts", "customers"])
def test_training_gives_the_same_models_everywhere(published, subject):
    """Training pulls the published tables into a local build, so every backend must hand it
    the same rows in the same order: then the search, the choice and every metric agree."""
    cards = {name: found["cards"][subject] for name, found in published.items()}
    reference = _card_facts(cards["duckdb"])
    for name in BACKENDS[1:]:
        _assert_same(_card_facts(cards[name]), reference, f"{subject} card on {name}")


def _card_facts(card: dict) -> dict:
    facts = {key: card[key] for key in ("estimator", "metrics", "threshold", "thresholds", "features", "curves",
                                         "permutation_importance", "segments", "data_version") if key in card}
    assert "metrics" in facts and facts["metrics"], f"the card has no metrics: {sorted(card)}"
    return facts


@pytest.fixture(scope="module")
def pages(published, tmp_path_factory) -> dict[str, dict[str, object]]:
    """{backend: {path: the page's component tree after its callbacks}} as an admin sees it."""
    import dash

    from benchmarks.dashclient import DashClient
    from tests.conftest import loopback_admin_env

    trees: dict[str, dict[str, object]] = {}
    for name, found in published.items():
        with pytest.MonkeyPatch.context() as patch:
            state = tmp_path_factory.mktemp(f"state-{name}")
            loopback_admin_env(patch, state, found["url"], found["models"])
            from dashboard.app import create_app

            app = create_app()
            browser = DashClient(app, client=app.server.test_client())
            trees[name] = {}
            for page in dash.page_registry.values():
                if "{" in page["path"]:
                    continue
                browser.open(page["path"])
                trees[name][page["path"]] = _comparable(browser.tree, {
                    found["url"]: "<warehouse>", str(found["models"]): "<models>", str(state): "<state>"})
    return trees


def test_every_page_shows_the_same_numbers_everywhere(pages):
    reference = pages["duckdb"]
    assert len(reference) >= 10
    for name in BACKENDS[1:]:
        assert sorted(pages[name]) == sorted(reference)
        for path, tree in reference.items():
            _assert_same(pages[name][path], tree, f"{path} on {name}")


def test_the_pages_are_not_empty(pages):
    """A parity of empty pages would prove nothing: the Carts page draws figures with data."""
    text = json.dumps(pages["duckdb"]["/carts"])
    assert text.count('"type": "bar"') >= 5 and "page-error" not in text


# --- comparison --------------------------------------------------------------------------
_TRAINED_AT = re.compile(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?")
_CLOCK = re.compile(r"(?<![\d:])\d{1,2}:\d{2}(?::\d{2})?(?![\d:])")        # "00:38 UTC": when the ETL ran
_DURATION = re.compile(r"(?<![\w.,])\d+(?:[.,]\d+)? ?(?:ms|s|min)\b")   # "0.2 s": how long training took


def _comparable(tree: object, places: dict[str, str]) -> object:
    """``tree`` as JSON-like data without what may differ between backends: where each one's
    warehouse, models and state are (``places``: path or URL -> placeholder), and times."""
    from etl.backends import redact

    text = json.dumps(tree, sort_keys=True, default=str)
    for place, placeholder in places.items():
        for shown in {place, redact(place)}:
            text = text.replace(json.dumps(shown)[1:-1], placeholder)
    text = _CLOCK.sub("<clock>", _DURATION.sub("<duration>", _TRAINED_AT.sub("<time>", text)))
    return json.loads(text)


def _assert_same(got: object, want: object, where: str, at: str = "") -> None:
    if isinstance(want, dict):
        assert isinstance(got, dict) and sorted(got) == sorted(want), f"{where}{at}: keys {sorted(got or {})} != {sorted(want)}"
        for key in want:
            _assert_same(got[key], want[key], where, f"{at}.{key}")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), f"{where}{at}: {len(got or [])} items != {len(want)}"
        for i, (g, w) in enumerate(zip(got, want)):
            _assert_same(g, w, where, f"{at}[{i}]")
    elif isinstance(want, float) and isinstance(got, (int, float)) and not isinstance(got, bool):
        assert math.isclose(got, want, rel_tol=REL_TOL, abs_tol=1e-12), f"{where}{at}: {got!r} != {want!r}"
    else:
        assert got == want, f"{where}{at}: {got!r} != {want!r}"


def test_the_comparison_catches_a_difference():
    """The checker itself: a changed count, a changed share and a reordered list all fail."""
    base = {"data": [{"x": ["a", "b"], "y": [0.25, 0.75], "n": 4}]}
    _assert_same(json.loads(json.dumps(base)), base, "same")
    for changed in ({"data": [{"x": ["a", "b"], "y": [0.25, 0.75], "n": 5}]},
                    {"data": [{"x": ["a", "b"], "y": [0.2500001, 0.75], "n": 4}]},
                    {"data": [{"x": ["b", "a"], "y": [0.25, 0.75], "n": 4}]}):
        with pytest.raises(AssertionError):
            _assert_same(changed, base, "changed")


def test_urls_and_times_are_the_only_things_left_out(tmp_path):
    tree = {"children": [f"Warehouse {tmp_path}/w.duckdb", "trained 2026-11-25 10:00:01", "in 0.2 s", 0.5,
                         "4.5 sessions", "12 %", "November 26, 2026, 00:38 UTC"]}
    assert _comparable(tree, {f"{tmp_path}/w.duckdb": "<warehouse>"}) == {
        "children": ["Warehouse <warehouse>", "trained <time>", "in <duration>", 0.5, "4.5 sessions", "12 %",
                     "November 26, 2026, <clock> UTC"]}
