"""Figure builders: pure functions of small frames, checked without a browser."""
from __future__ import annotations

import types

import pandas as pd
import plotly.graph_objects as go

from dashboard import figures as builders
from dashboard.queries import FUNNEL_STAGES, REVENUE_PERIODS


def _validated(build):
    """The builders return plain dicts (no go.Figure, for speed); here each one goes through
    go.Figure *with* validation, which raises on any invalid property, and the assertions read
    Plotly's objects."""
    def call(*args, **kwargs):
        out = build(*args, **kwargs)
        assert isinstance(out, dict) and set(out) == {"data", "layout"}, out
        return go.Figure(out)
    return call


# the builders' public names, each returning a validated go.Figure; constants as they are
figures = types.SimpleNamespace(**{name: _validated(value) if callable(value) and name[0].islower() else value
                                   for name, value in vars(builders).items() if not name.startswith("_")})


def outcomes() -> pd.DataFrame:
    return pd.DataFrame({"abandoned": [False, True], "n": [100, 400], "added": [100, 300],
                         "cart_viewed": [80, 200], "initiated": [100, 150], "confirmed": [99, 5],
                         "items_sum": [300, 900]})


def distribution_frame() -> pd.DataFrame:
    rows = []
    for bucket, (lo, hi) in enumerate([(0, 0), (1, 1), (2, None)]):
        for abandoned, n in ((False, 10 + bucket), (True, 30 - bucket)):
            label = f"≥{lo}" if hi is None else str(lo)
            rows.append({"behaviour": "items_added", "bucket": bucket, "abandoned": abandoned, "n": n,
                         "lo": lo, "hi": hi, "label": label, "range_text": label})
    return pd.DataFrame(rows)


def test_palette_is_colour_blind_safe_okabe_ito():
    assert figures.OUTCOME_COLOURS == {False: "#0072B2", True: "#D55E00"}


def test_funnel_has_both_outcomes_side_by_side():
    assert isinstance(builders.funnel(outcomes(), FUNNEL_STAGES), dict)  # sent as it is, no go.Figure
    fig = figures.funnel(outcomes(), FUNNEL_STAGES)
    assert [t.name for t in fig.data] == ["Purchased", "Abandoned"]
    assert [t.marker.color for t in fig.data] == ["#0072B2", "#D55E00"]
    # every session is 100 % of itself: the "Sessions" stage is not drawn
    assert list(fig.data[0].x) == ["Added to cart", "Viewed cart", "Checkout initiated", "Checkout confirmed"]
    assert fig.data[1].y[-1] == 5 / 400


def test_empty_inputs_give_a_message_not_an_error():
    empty = outcomes().assign(n=0)
    fig = figures.funnel(empty, FUNNEL_STAGES)
    assert fig.layout.annotations[0].text == "No data for these filters"
    assert figures.distribution(builders.histograms(distribution_frame().iloc[0:0]).get("items_added"), "items_added", "carts").layout.annotations
    assert figures.outcome_shares(pd.DataFrame(columns=["k", "abandoned", "n"]), "k", "carts").layout.annotations


def test_distribution_carries_ranges_for_cross_filtering_and_highlights_selection():
    fig = figures.distribution(builders.histograms(distribution_frame())["items_added"], "items_added", "carts", selected=(1, None))
    bars = [t for t in fig.data if t.type == "bar"]
    assert len(bars) == 2 and bars[0].customdata[2][0] == "items_added"
    assert bars[0].customdata[2][2] is None  # the last bucket is open above
    assert list(bars[0].marker.opacity) == [figures.DIMMED, 1.0, 1.0]
    shares = list(bars[0].y)
    assert abs(sum(shares) - 1) < 1e-9  # share of each outcome's rows
    assert fig.layout.dragmode == "select"
    rate = [t for t in fig.data if t.type == "scatter"][0]
    assert rate.y[0] == 30 / 40


def test_outcome_shares_dims_unselected_and_names_categories():
    counts = pd.DataFrame({"customer_segment": [0, 0, 1, 1], "abandoned": [False, True, False, True],
                           "n": [10, 90, 50, 50]})
    fig = figures.outcome_shares(counts, "customer_segment", "carts", names={0: "Type 0", 1: "Type 1"},
                                 selected=(1,))
    assert list(fig.data[0].y) == ["Type 0", "Type 1"]
    assert list(fig.data[1].x) == [0.9, 0.5]
    assert list(fig.data[1].marker.opacity) == [figures.DIMMED, 1.0]
    assert fig.data[0].customdata[0][0] == 0  # a click gives back the raw value


def test_correlation_heatmap_is_labelled_and_symmetric_scale():
    matrix = pd.DataFrame([[1.0, 0.5], [0.5, 1.0]], index=["profit", "promo_share"], columns=["profit", "promo_share"])
    fig = figures.correlation_heatmap(matrix)
    heat = fig.data[0]
    assert (heat.zmin, heat.zmax) == (-1, 1)
    assert list(heat.x) == ["Average monthly profit", "Share of promo purchases"]


def test_model_figures():
    roc = figures.roc_curve([0, 0.5, 1], [0, 0.8, 1], 0.9, (0.5, 0.8))
    assert "AUC 0.900" in roc.data[0].name and len(roc.data) == 3
    pr = figures.pr_curve([1, 0.8, 0.5], [0, 0.5, 1], 0.4, None)
    assert pr.data[0].type == "scatter"
    cm = figures.confusion_matrix({"tp": 5, "fp": 1, "fn": 2, "tn": 12}, "customers")
    assert [list(row) for row in cm.data[0].z] == [[12, 1], [2, 5]]
    profit = figures.profit_curve([{"threshold": 0.1, "expected_retained_profit": 3.0}], 0.3)
    assert profit.data[0].x == (0.1,)
    assert figures.profit_curve([], 0.3).layout.annotations
    imp = figures.importances(pd.DataFrame({"feature": ["a", "b"], "importance_mean": [0.2, 0.1],
                                            "importance_std": [0.01, 0.02]}))
    assert list(imp.data[0].y) == ["B", "A"]  # smallest at the bottom, labels humanised


def test_what_if_figures():
    contrib = pd.DataFrame({"feature": ["promo_share", "pages_per_visit"], "value": ["0.9", "3"],
                            "contribution": [1.2, -0.4]})
    fig = figures.contributions(contrib, "customers")
    assert list(fig.data[0].marker.color) == ["#0072B2", "#D55E00"]
    gauge = figures.probability_gauge(0.7, 0.5, "customers")
    assert gauge.data[0].value == 70


def test_other_figures():
    trends = pd.DataFrame({"measure": ["revenue"] * 2 + ["minutes"] * 2, "order": [0, 0, 0, 0],
                           "period": ["Last month"] * 4, "declined": [False, True, False, True],
                           "mean": [1.0, 2.0, 3.0, 4.0]})
    assert len(figures.period_trends(trends).data) == 4
    revenue = figures.revenue_by_period({"revenue_2m_ago": 1}, {"revenue_2m_ago": 2}, REVENUE_PERIODS)
    assert [t.name for t in revenue.data] == ["All customers", "Current filters"]
    reasons = pd.DataFrame({"subject": ["carts"], "source_file": ["x"], "rule": ["r"], "reason": ["why"], "rows": [3]})
    assert figures.rejections(reasons).data[0].x == (3,)
    segments = pd.DataFrame({"segment_id": ["a", "b"], "kind": ["rule", "cluster"], "name": ["A", "B"],
                             "customers": [10, 20], "mean_p_decline": [0.5, 0.2], "total_profit": [5.0, 9.0]})
    fig = figures.segment_overview(segments, "a")
    assert fig.data[0].customdata[1][0] == "a"
    hist = pd.DataFrame({"bucket": [0, 1], "declined": [False, True], "n": [3, 4], "lo": [0.0, 0.05], "hi": [0.05, 0.1]})
    assert len(figures.p_histogram(hist, 0.4).data) == 2
    profile = pd.DataFrame({"feature": ["profit"], "segment": [4.0], "overall": [2.0], "ratio": [2.0]})
    assert figures.profile_bars(profile).data[0].base == 1


def test_profile_bars_do_not_reorder_or_recolour_on_float_noise():
    """The same mean summed in another order (another engine) gives 1.0000000000000002 for 1.0:
    the bars keep the features' order and "same as everyone" is never painted worse."""
    from dashboard.figures.style import BAD, GOOD

    exact = pd.DataFrame({"feature": ["marketing_6m", "profit", "tenure_days"], "segment": [4.0, 3.0, 9.0],
                          "overall": [4.0, 3.0, 3.0], "ratio": [1.0, 1.0, 3.0]})
    noisy = exact.assign(ratio=[1.0000000000000002, 0.9999999999999998, 3.0])
    for frame in (exact, noisy):
        trace = figures.profile_bars(frame).data[0]
        assert [c[0] for c in trace.customdata] == [4.0, 3.0, 9.0]
        assert list(trace.marker.color) == [GOOD, GOOD, BAD]


def test_every_builder_output_passes_plotly_validation():
    """The builders skip validation for speed; here every figure is validated once."""
    counts = pd.DataFrame({"k": [0, 0, 1, 1], "abandoned": [False, True, False, True], "n": [1, 2, 3, 4]})
    trends = pd.DataFrame({"measure": ["revenue", "revenue", "minutes", "minutes"], "order": [0] * 4,
                           "period": ["Last month"] * 4, "declined": [False, True] * 2, "mean": [1.0, 2.0, 3.0, 4.0]})
    built = [
        figures.funnel(outcomes(), FUNNEL_STAGES), figures.empty(), figures.outcome_shares(counts, "k", "carts"),
        figures.distribution(builders.histograms(distribution_frame())["items_added"], "items_added", "carts", selected=(1, 2)),
        figures.period_trends(trends),
        figures.correlation_heatmap(pd.DataFrame([[1.0, 0.2], [0.2, 1.0]], index=["a", "b"], columns=["a", "b"])),
        figures.revenue_by_period({"revenue_2m_ago": 1.0}, {"revenue_2m_ago": 2.0}, REVENUE_PERIODS),
        figures.roc_curve([0, 1], [0, 1], 0.5, (0.2, 0.3)), figures.pr_curve([1, 0], [0, 1], 0.3, (0.5, 0.5)),
        figures.confusion_matrix({"tp": 1, "fp": 1, "fn": 1, "tn": 1}, "carts"),
        figures.profit_curve([{"threshold": 0.1, "expected_retained_profit": 1.0}], 0.2),
        figures.probability_gauge(0.3, 0.5, "carts"),
        figures.contributions(pd.DataFrame({"feature": ["a"], "value": ["1"], "contribution": [0.1]}), "carts"),
        figures.p_histogram(pd.DataFrame({"bucket": [0], "declined": [True], "n": [2], "lo": [0.0], "hi": [0.05]}), 0.4),
        figures.profile_bars(pd.DataFrame({"feature": ["profit"], "segment": [4.0], "overall": [2.0], "ratio": [2.0]})),
        figures.importances(pd.DataFrame({"feature": ["a"], "importance_mean": [0.1], "importance_std": [0.01]})),
        figures.rejections(pd.DataFrame({"subject": ["carts"], "rule": ["r"], "rows": [3]})),
        figures.segment_overview(pd.DataFrame({"segment_id": ["a"], "kind": ["rule"], "name": ["A"], "customers": [3],
                                               "mean_p_decline": [0.5], "total_profit": [2.0]}), None),
    ]
    for fig in built:
        go.Figure(fig.to_dict())  # built with validation already; and its full dict validates again
