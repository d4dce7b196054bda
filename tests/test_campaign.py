"""Campaign simulator: the pure rules on a small known frame, the interval, the URL, and the
Segments page's section on the real data (a viewer sees totals only, every language)."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from dashboard.auth.scoping import Forbidden
from dashboard.campaign import Campaign, apply_actions, bootstrap_interval, parse_campaign, simulate
from dashboard.filters import SegmentView, query_dict
from tests.test_i18n_models_pages import ANALYST, VIEWER, _tree, acting, english_left, shown_texts

SPECS = {"promo_share": {"kind": "float", "min": 0.11, "max": 0.99},
         "service_errors": {"kind": "int", "min": 0, "max": 9}}
FEATURES = ["promo_share", "service_errors"]
THRESHOLD = 0.5


def known() -> pd.DataFrame:
    return pd.DataFrame({"customer_id": [1, 2, 3, 4, 5], "profit": [2.0, 4.0, 1.0, 3.0, 5.0],
                         "promo_share": [0.55, 0.62, 0.45, 0.90, 0.15],
                         "service_errors": [1, 0, 3, 9, 2]})


def risk(frame: pd.DataFrame) -> np.ndarray:
    """A stand-in model: the promo share plus 0.01 per service error."""
    return frame["promo_share"].to_numpy(dtype=float) + 0.01 * frame["service_errors"].to_numpy(dtype=float)


def test_an_action_that_lowers_risk_moves_exactly_the_expected_customers():
    outcome = simulate(risk, known(), FEATURES, SPECS, Campaign((("promo_share", -10.0),), 0.5), THRESHOLD)
    # before 0.56, 0.62, 0.48, 0.99, 0.17; after 0.46, 0.52, 0.38, 0.89, 0.13 (0.15 clipped to 0.11)
    assert outcome.customer_id[outcome.movers].tolist() == [1]
    assert outcome.targeted == 5 and outcome.at_risk_before == 3 and outcome.at_risk_after == 2
    assert outcome.kept == pytest.approx(0.1 * 4 + 0.04)
    assert outcome.retained == pytest.approx(0.1 * (2 + 4 + 1 + 3) + 0.04 * 5)
    assert outcome.net == pytest.approx(outcome.retained - 0.5 * 5)


def test_a_zero_action_moves_nobody_and_keeps_nothing_but_costs():
    outcome = simulate(risk, known(), FEATURES, SPECS, Campaign((), 2.0), THRESHOLD)
    assert not outcome.movers.any() and outcome.kept == 0 and outcome.retained == 0
    assert outcome.net == -2.0 * 5 and outcome.interval() == (-10.0, -10.0)


def test_an_empty_segment_targets_nobody_and_asks_the_model_nothing():
    def never(_frame):
        raise AssertionError("the model was asked about no rows")

    outcome = simulate(never, known().iloc[0:0], FEATURES, SPECS, Campaign((("promo_share", -10.0),), 1.0), THRESHOLD)
    assert outcome.targeted == 0 and not outcome.movers.any() and outcome.net == 0
    assert outcome.interval() == (0.0, 0.0)


def test_changes_stay_within_each_features_range():
    frame = known()[FEATURES]
    up = apply_actions(frame, {"promo_share": 0.5, "service_errors": 5}, SPECS)
    down = apply_actions(frame, {"promo_share": -0.5, "service_errors": -5}, SPECS)
    assert up.promo_share.max() == 0.99 and down.promo_share.min() == 0.11
    assert up.service_errors.max() == 9 and down.service_errors.min() == 0
    assert up.service_errors.dtype == frame.service_errors.dtype       # whole numbers stay whole
    assert frame.equals(known()[FEATURES])                               # the input is not changed


def test_the_interval_holds_the_estimate_and_is_reproducible():
    gain = np.random.default_rng(1).gamma(0.5, 2.0, 400)
    low, high = bootstrap_interval(gain, 0.3)
    assert low < gain.sum() - 0.3 * 400 < high
    assert (low, high) == bootstrap_interval(gain, 0.3)                 # fixed seed
    assert bootstrap_interval(np.array([]), 1.0) == (0.0, 0.0)


def test_the_campaign_round_trips_through_the_url_and_bad_values_are_said():
    campaign = Campaign((("marketing_this_month", 1.0), ("promo_share", -10.0), ("service_errors", -2.0)), 1.25)
    assert campaign.query() == {"act_marketing_this_month": "1", "act_promo_share": "-10",
                                "act_service_errors": "-2", "cost": "1.25"}
    assert parse_campaign(campaign.query()) == (campaign, [])
    assert campaign.changes()["promo_share"] == pytest.approx(-0.1)
    parsed, problems = parse_campaign({"act_promo_share": "-80", "act_service_errors": "1.5", "cost": "cheap",
                                       "act_marketing_6m": ["0.5", "x"], "act_unpaid_items_quarter": "0"},
                                      features=("promo_share", "service_errors", "unpaid_items_quarter"))
    assert parsed == Campaign()
    assert problems == ["Ignored act_promo_share=-80: expected a number from -50 to 50.",
                        "Ignored act_marketing_6m: the model does not use this feature.",
                        "Ignored act_service_errors=1.5: expected a whole number from -5 to 5.",
                        "Ignored cost=cheap: expected a number from 0 to 1,000,000."]
    assert parse_campaign(None) == (Campaign(), []) and parse_campaign({"cost": {"$gt": 1}})[0] == Campaign()


# --- on the real data ------------------------------------------------------------------------

QUERY = {"act_promo_share": "-20", "act_service_errors": "-3", "cost": "0.1"}


@pytest.fixture
def app(dashboard_env):
    from dashboard.app import create_app

    return create_app()


def test_the_section_on_real_data_counts_movers_and_a_viewer_gets_no_ids(app):
    from dashboard.components import campaign_panel
    from dashboard.queries.campaign import campaign_movers, campaign_outcome

    campaign, problems = parse_campaign(QUERY)
    assert problems == []
    with acting(app, "/segments", ANALYST):
        outcome = campaign_outcome(SegmentView(), campaign)
        movers = campaign_movers(SegmentView(), campaign)
        seen = campaign_panel.render(SegmentView(), campaign, [])
        exported = campaign_panel.export_frame(SegmentView(), campaign)
    low, high = outcome.interval()
    assert outcome.targeted > 1000 and 0 < len(movers) == int(outcome.movers.sum())
    assert low <= outcome.net <= high and outcome.kept > 0
    assert [r["customer_id"] for r in seen.rows] == movers.customer_id.tolist()[:campaign_panel.GRID_ROWS]
    assert len(exported) == len(movers) and list(exported.columns)[0] != "customer_id"
    with acting(app, "/segments", VIEWER):
        answer = campaign_panel.render(SegmentView(), campaign, [])
        page = json.dumps(_tree(campaign_panel.section(SegmentView(), QUERY, {}, {})))
        with pytest.raises(Forbidden):
            campaign_panel.export_frame(SegmentView(), campaign)
        with pytest.raises(Forbidden):
            campaign_movers(SegmentView(), campaign)
    text = json.dumps({"answer": [answer.rows, answer.shown, _tree(answer.kpis)], "page": page})
    assert answer.rows == [] and "analyst" in answer.shown
    assert not [i for i in movers.customer_id if f"{int(i)}" in text]


def test_the_page_keeps_the_campaign_in_its_url(app):
    from dashboard.components import campaign_panel
    from dashboard.pages import segments

    with acting(app, "/segments"):
        page = _tree(segments.layout(segment="promo_risk_high_profit", **QUERY, act_marketing_6m="9"))
    state = component(page, campaign_panel.STATE)["data"]
    assert parse_campaign(query_dict(state)) == parse_campaign(QUERY)
    link = component(page, "seg-camp-link")["children"]
    assert link.startswith("/segments?segment=promo_risk_high_profit&") and state in link
    problems = json.dumps(component(page, "seg-camp-problems"))
    assert "act_marketing_6m=9: expected a number from -3 to 3" in problems


def component(node, ident):
    """The props of the component with id ``ident`` in a layout tree (JSON form)."""
    if isinstance(node, dict):
        if node.get("props", {}).get("id") == ident:
            return node["props"]
        node = list(node.values())
    if isinstance(node, list):
        for item in node:
            found = component(item, ident)
            if found is not None:
                return found
    return None


@pytest.mark.parametrize("lang", ["es", "ru"])
def test_the_section_is_in_the_readers_language(app, lang):
    from dashboard.components import campaign_panel

    with acting(app, f"/segments?lang={lang}"):
        tree = _tree(campaign_panel.section(SegmentView(), {**QUERY, "cost": "x"}, {}, {}))
    texts = shown_texts(tree)
    assert len(texts) > 20 and english_left(texts, lang) == set()
    assert "Campaign simulator" not in texts and not any("Ignored" in t for t in texts)
