"""The KPI history on the Overview page (issue 11): one small chart per KPI over the snapshots.

The layout runs inside a request of the real app (the identity the sign-in gate would set) on
a history written through :func:`dashboard.reports.history.append` into the test's own
``STATE_DIR``; the figure builder is also checked alone, as the pure function it is.
"""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import plotly.graph_objects as go
import pytest
from dash import html

from dashboard.auth.identity import Identity, Role
from dashboard.figures import kpi_history
from dashboard.figures.history import look, waiting_message
from dashboard.reports import history
from dashboard.reports.history import Snapshot
from etl.kpi_snapshot import KPIS
from tests.test_auth_rls import ADMIN, acting_as, scoped

START = datetime(2025, 11, 3, 7, 0, tzinfo=timezone.utc)
SCOPED_NOTE = "The KPI history covers all rows, so it is not shown for limited access."


@pytest.fixture
def app(dashboard_env):
    """The real app on the session's warehouse, with this test's own (empty) STATE_DIR."""
    from dashboard.app import create_app

    return create_app()


def kpis(i: int) -> dict[str, float | None]:
    """Snapshot ``i``'s KPIs: every one of etl.kpi_snapshot.KPIS, each changing between snapshots,
    with values found nowhere else in the page (so a leak is visible in its JSON)."""
    return {"sessions": 43_210 + 7 * i, "abandonment_rate": 0.6811 + 0.013 * i, "conversion_rate": 0.3189 - 0.013 * i,
            "items_per_cart": 3.4567 + 0.1 * i, "customers": 1_291 + i, "declined_share": 0.3821 - 0.011 * i,
            "profit_at_risk": 2_345.678 + 100 * i, "rows_read": 57_003 + 10 * i, "rows_rejected": 17 + i}


def write_history(count: int) -> list[Snapshot]:
    """``count`` snapshots appended as the ETL and the reports do (every second one a report)."""
    return [history.append(source="report" if i % 2 else "etl", data_version=f"hist-v{i}", kpis=kpis(i),
                           report_id=f"r{i}" if i % 2 else None, now=START + timedelta(days=7 * i, hours=i))
            for i in range(count)]


def find(node, ident: str):
    """The component of ``ident`` in a Dash layout tree, or None."""
    if getattr(node, "id", None) == ident:
        return node
    children = getattr(node, "children", None) if not isinstance(node, (list, tuple)) else node
    for child in children if isinstance(children, (list, tuple)) else [children]:
        if child is not None and not isinstance(child, (str, int, float)):
            found = find(child, ident)
            if found is not None:
                return found
    return None


def text(layout) -> str:
    return json.dumps(layout.to_plotly_json(), default=str, sort_keys=True, ensure_ascii=False)


def overview_layout(app, identity: Identity):
    """The page's history part, as its callback draws it when the page opens."""
    from dashboard.pages import overview

    with acting_as(app, identity):
        assert find(overview.layout(), overview.HISTORY) is not None
        return html.Div(overview.history_card(1), id=overview.HISTORY)


# --- the page ------------------------------------------------------------------------------


@pytest.mark.parametrize("identity", [ADMIN, Identity("viewer", Role.VIEWER, source="local")],
                         ids=["admin", "unscoped viewer"])
def test_the_overview_draws_each_kpi_over_the_snapshots(app, identity):
    written = write_history(3)
    layout = overview_layout(app, identity)
    card = find(layout, "ov-history")
    assert card is not None and "KPI history" in text(card) and "3 snapshots" in text(card)
    graph = find(card, "ov-history-graph")
    figure = go.Figure(graph.figure)            # validated by Plotly: a wrong property raises
    assert [t.name for t in figure.data] == [look(k)[0] for k in KPIS]      # one chart per KPI, in order
    times = [s.moment.strftime("%Y-%m-%d %H:%M:%S") for s in written]
    for kpi, trace in zip(KPIS, figure.data):
        assert list(trace.x) == times, kpi                                   # 3 points per KPI
        assert list(trace.y) == pytest.approx([s.kpis[kpi] for s in written]), kpi
        assert [c[0] for c in trace.customdata] == ["hist-v0", "hist-v1", "hist-v2"]
        assert [c[1] for c in trace.customdata] == ["data refresh (ETL run)", "report", "data refresh (ETL run)"]
        assert "data version" in trace.hovertemplate and "lines" in trace.mode and "markers" in trace.mode
    # percentages are formatted as percentages, on the axis, in the hover and in each title
    for kpi in ("abandonment_rate", "conversion_rate", "declined_share"):
        index = list(KPIS).index(kpi)
        axis = figure.layout[f"yaxis{index + 1 if index else ''}"]
        assert "%" in axis.tickformat and "%" in figure.data[index].hovertemplate.split("<br>")[0]
    titles = [a.text for a in figure.layout.annotations]
    assert "<b>Abandonment rate</b> · 70.7%" in titles and "<b>Cart sessions</b> · 43,224" in titles
    # the history is read once per layout call, and nothing else was appended by drawing it
    assert len(history.read()) == 3


def test_the_history_is_read_once_per_layout(app, monkeypatch):
    write_history(3)
    calls = []
    read = history.read
    monkeypatch.setattr(history, "read", lambda: calls.append(1) or read())
    overview_layout(app, ADMIN)
    assert len(calls) == 1


def test_a_report_appended_after_an_open_shows_on_the_next_open(app):
    """A report appends a snapshot without a new release, so the Overview answer, which reads
    the history, is never replayed from the response cache (its key is request + release)."""
    from benchmarks.dashclient import DashClient

    write_history(2)
    opened = DashClient(app).open("/").requests              # as the browser sends them on opening the page
    body = next(r.body for r in opened if "ov-history" in r.body["output"])
    client = app.server.test_client()
    first = client.post("/_dash-update-component", json=body)
    assert first.status_code == 200 and "2 snapshots of all rows" in first.get_data(as_text=True)
    assert first.headers.get("X-Response-Cache") != "hit"
    history.append(source="report", data_version="hist-v1", kpis=kpis(2), report_id="r2",
                   now=START + timedelta(days=30))
    again = client.post("/_dash-update-component", json=body)
    assert again.headers.get("X-Response-Cache") != "hit" and "3 snapshots of all rows" in again.get_data(as_text=True)


@pytest.mark.parametrize("count", [0, 1])
def test_fewer_than_two_snapshots_say_so_in_words(app, count):
    write_history(count)
    layout = overview_layout(app, ADMIN)
    card = find(layout, "ov-history")
    assert waiting_message(count) in text(card)
    assert find(card, "ov-history-graph") is None and '"figure"' not in text(card)
    if count == 1:
        assert "The trend appears after the next data refresh or report; 1 snapshot so far." in text(card)


@pytest.mark.parametrize("scope", ["service_tier=premium", "customer_segment=2"])
def test_a_scoped_identity_gets_the_note_and_no_number_of_the_history(app, scope):
    from dashboard.auth.scoping import Forbidden

    write_history(3)
    identity = scoped(scope, Role.VIEWER)
    layout = overview_layout(app, identity)
    shown, card = text(layout), find(layout, "ov-history")
    assert SCOPED_NOTE in text(card) and find(card, "ov-history-graph") is None
    # not one number or data version of the history anywhere in the page
    for leak in ("hist-v", "43,224", "43224", "43217", "2,545", "2545.678", "2445.678", "57023", "0.7071",
                 "snapshots of all rows", "ov-history-graph"):
        assert leak not in shown, leak
    from dashboard.pages import overview

    with acting_as(app, identity):         # the subject the scope covers is still on the page
        page = text(overview.layout())
    assert "kpi-value" in page and "hist-v" not in page
    # the refusal is in the reading function, not only in the page
    with acting_as(app, identity), pytest.raises(Forbidden, match="covers all rows"):
        history.visible()
    with acting_as(app, ADMIN):
        assert len(history.visible()) == 3


# --- the figure builder, alone --------------------------------------------------------------


def snapshots(count: int, **changes) -> list[Snapshot]:
    return [Snapshot(time=(START + timedelta(days=i)).isoformat(), data_version=f"v{i}",
                     source="report" if i == 1 else "etl", kpis={**kpis(i), **changes}) for i in range(count)]


def test_the_builder_is_a_pure_function_of_its_snapshots(tmp_path, monkeypatch):
    monkeypatch.setenv("STATE_DIR", str(tmp_path / "nowhere"))   # it reads no history file
    given = snapshots(4)
    before = [(s.time, dict(s.kpis)) for s in given]
    one, two = kpi_history(given, list(KPIS)), kpi_history(given, list(KPIS))
    assert one == two and set(one) == {"data", "layout"}
    assert [(s.time, dict(s.kpis)) for s in given] == before            # its input is left as it was
    assert not (tmp_path / "nowhere").exists()
    json.dumps(one)                                                      # a plain dict, as Dash sends it
    figure = go.Figure(one)
    assert len(figure.data) == len(KPIS) and all(len(t.x) == 4 for t in figure.data)
    # small multiples: each KPI on its own axes, side by side without overlap, one time window
    domains = [(figure.layout[f"xaxis{i or ''}"].domain, figure.layout[f"yaxis{i or ''}"].domain)
               for i in [0, *range(2, len(KPIS) + 1)]]
    for a, (ax, ay) in enumerate(domains):
        for bx, by in domains[a + 1:]:
            assert ax[1] <= bx[0] or bx[1] <= ax[0] or ay[1] <= by[0] or by[1] <= ay[0]
    assert all(figure.layout[f"xaxis{i}"].matches == "x" for i in range(2, len(KPIS) + 1))
    # a circle for an ETL run, a diamond for a report
    assert list(figure.data[0].marker.symbol) == ["circle", "diamond", "circle", "circle"]


def test_the_builder_in_a_given_order_and_with_a_kpi_never_measured():
    figure = go.Figure(kpi_history(snapshots(3, profit_at_risk=None), ["profit_at_risk", "declined_share"]))
    assert [t.name for t in figure.data] == ["Profit at risk", "Activity declined"]
    assert len(figure.data[0].x) == 0 and "not measured yet" in [a.text for a in figure.layout.annotations]
    assert figure.layout.yaxis2.tickformat == ".1~%" and figure.layout.yaxis2.range[1] <= 1
    # a KPI added to the snapshot later still gets a chart, a rate by its name
    later = [Snapshot(s.time, s.data_version, s.source, {"basket_share": 0.25 + i / 100})
             for i, s in enumerate(snapshots(2))]
    figure = go.Figure(kpi_history(later, ["basket_share"]))
    assert figure.data[0].name == "Basket share" and figure.layout.yaxis.tickformat == ".1~%"


def test_the_builder_says_why_there_is_no_trend_yet():
    assert waiting_message(1) == "The trend appears after the next data refresh or report; 1 snapshot so far."
    assert waiting_message(0).endswith("no snapshot so far.")
    for count in (0, 1):
        figure = go.Figure(kpi_history(snapshots(count), list(KPIS)))
        assert not figure.data and figure.layout.annotations[0].text == waiting_message(count)
