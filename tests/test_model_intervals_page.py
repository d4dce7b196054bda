"""Issue 14 on the pages: holdout metrics with their bootstrap interval, the choice against the
seed's pipeline and the reliability chart, in English, Spanish and Russian."""
from __future__ import annotations

import pytest

from dashboard import i18n
from tests.test_i18n_models_pages import _tree, acting, shown_texts

TITLES = {"en": "Calibration (holdout): predicted vs observed",
          "es": "Calibración (validación): previsto frente a observado",
          "ru": "Калибровка (отложенная выборка): прогноз и факт"}
AXES = {"en": ("Mean predicted probability", "Observed decline rate"),
        "es": ("Probabilidad prevista media", "Tasa de descenso observada"),
        "ru": ("Средняя прогнозная вероятность",
               "Наблюдаемая доля со снижением активности")}
HEADINGS = {"en": "Chosen against the seed's pipeline", "es": "Elección frente al modelo de partida",
            "ru": "Выбор по сравнению с исходной моделью"}


@pytest.fixture
def app(dashboard_env):
    from dashboard.app import create_app

    return create_app()


def _find(node, component_id: str):
    """The component with ``component_id`` in a layout tree (Dash components, not JSON)."""
    if getattr(node, "id", None) == component_id:
        return node
    children = getattr(node, "children", None)
    for child in children if isinstance(children, (list, tuple)) else [children]:
        if child is not None and not isinstance(child, (str, int, float)):
            found = _find(child, component_id)
            if found is not None:
                return found
    return None


def _expected_interval(card, metric: str, lang: str) -> str:
    low, high = card.interval(metric)
    return f"{i18n.format_number(card.holdout[metric], lang, 3)} " \
           f"({i18n.format_number(low, lang, 2)}–{i18n.format_number(high, lang, 2)})"


@pytest.mark.parametrize("lang", ["en", "es", "ru"])
def test_model_page_shows_intervals_choice_and_reliability(app, lang):
    from dashboard.models import read_card
    from dashboard.pages import model

    with acting(app, f"/model?subject=customers&lang={lang}"):
        card = read_card("customers")
        page = model.layout(subject="customers")
        texts = shown_texts(_tree(page))
        for metric in ("roc_auc", "f1", "pr_auc", "brier"):
            assert _expected_interval(card, metric, lang) in texts
        assert HEADINGS[lang] in texts
        verdict = _find(page, "model-verdict").children
        best = next(r for r in card.selection["candidates"] if r["name"] == card.selection["best"])
        assert i18n.format_number(best["difference"], lang, 3) in verdict
        figure = _find(page, "model-reliability").figure
        layout = figure["layout"]
        assert layout["title"]["text"].replace("<br>", " ") == TITLES[lang]   # long titles wrap
        assert (layout["xaxis"]["title"]["text"], layout["yaxis"]["title"]["text"]) == AXES[lang]
        points = figure["data"][1]
        bins = card.calibration["reliability"]
        assert list(points["x"]) == [b["predicted"] for b in bins]
        assert list(points["customdata"]) == [b["rows"] for b in bins]


@pytest.mark.parametrize("lang", ["en", "es", "ru"])
def test_what_if_facts_show_the_auc_interval(app, lang):
    from dashboard.models import read_card
    from dashboard.pages import what_if

    with acting(app, f"/what-if?lang={lang}"):
        card = read_card("customers")
        texts = shown_texts(_tree(what_if._model_facts(card)))
    assert _expected_interval(card, "roc_auc", lang) in texts


def test_a_card_from_before_the_intervals_shows_bare_numbers(app):
    from dashboard.figures.model import reliability_curve
    from dashboard.models import ModelCard
    from dashboard.pages import model

    old = ModelCard.from_dict({"subject": "customers", "threshold": 0.5, "features": [], "sha256": "x",
                               "metrics": {"holdout": {"roc_auc": 0.9103, "rows": 324, "positives": 123}}})
    with acting(app, "/model?lang=es"):
        assert old.interval("roc_auc") is None
        assert model.with_interval(old, "roc_auc") == "0,910"
        assert model._selection(old) is None
        empty = reliability_curve([], "customers")
    assert empty["layout"]["title"]["text"].replace("<br>", " ") == TITLES["es"]
