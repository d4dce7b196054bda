"""Accessibility in real Chromium: an axe-core audit of every page in English and Russian, the
charts' text alternatives against their figures, keyboard use of the filter panel, and the
chart image export (title and active filters in the file).

The bar is WCAG 2.1 AA: axe-core (bundled by axe-playwright-python) runs all its rules and no
violation of impact "critical" or "serious" is allowed. No rule is switched off.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import expect

from tests.browser.serving import EVERY_PAGE, open_page, settle, with_lang

pytestmark = pytest.mark.browser

BLOCKING = ("critical", "serious")

# A chart's figure and the numbers its table and summary were written from, read in the page
FIGURE_AND_TABLE = """id => {
  const box = document.querySelector(`.graph-figure[data-graph="${id}"]`);
  const gd = document.getElementById(id).querySelector('.js-plotly-plot');
  const table = box.querySelector('.graph-table table');
  return {
    label: box.getAttribute('aria-label'),
    summary: document.getElementById(box.getAttribute('aria-describedby')).textContent,
    traces: gd.data.map(t => ({name: t.name || null, type: t.type, orientation: t.orientation || 'v',
                                x: Array.from(t.x || []), y: Array.from(t.y || []), base: t.base ?? null})),
    head: Array.from(table.tHead.rows[0].cells).map(c => c.textContent),
    rows: Array.from(table.tBodies[0].rows).map(r => ({
      label: r.cells[0].textContent,
      values: Array.from(r.cells).slice(1).map(c => c.dataset.value === undefined ? null : Number(c.dataset.value)),
      texts: Array.from(r.cells).slice(1).map(c => c.textContent)})),
  };
}"""


def blocking_violations(page) -> list[str]:
    """axe-core's critical and serious violations on the page as it is now, one line per node."""
    found = []
    for violation in Axe().run(page).response["violations"]:
        if violation["impact"] in BLOCKING:
            found += [f"{violation['id']} ({violation['impact']}): {node['target']} - {violation['help']}"
                      for node in violation["nodes"]]
    return found


@pytest.mark.parametrize("lang", ["en", "ru"])
def test_every_page_passes_axe_without_critical_or_serious_violations(page, lang):
    failures = []
    for name, path in EVERY_PAGE.items():
        open_page(page, with_lang(path, lang))
        assert page.evaluate("document.documentElement.lang") == lang
        failures += [f"{name}: {line}" for line in blocking_violations(page)]
    assert failures == [], "\n".join(failures)


def test_open_filter_panel_on_a_phone_passes_axe(page):
    page.set_viewport_size({"width": 390, "height": 844})
    failures = []
    for name in ("carts", "customers", "segments"):
        open_page(page, EVERY_PAGE[name])
        toggle = page.locator(".filter-toggle")
        if toggle.count():
            toggle.click()
            expect(page.locator(".filter-offcanvas.open")).to_be_visible()
        failures += [f"{name}: {line}" for line in blocking_violations(page)]
    assert failures == [], "\n".join(failures)


def _value(trace: dict, index: int) -> float:
    values = trace["x"] if trace["orientation"] == "h" else trace["y"]
    base = trace["base"]
    base = (base[index] if isinstance(base, list) else base) if base is not None else 0
    return values[index] + base


@pytest.mark.parametrize("graph_id", ["carts-funnel", "carts-by-segment", "carts-dist-items_added"])
def test_chart_summary_and_table_hold_the_figures_numbers(page, graph_id):
    open_page(page, "/carts")
    seen = page.evaluate(FIGURE_AND_TABLE, graph_id)
    traces = [t for t in seen["traces"] if t["type"] != "heatmap"]
    assert seen["head"][1:] == [t["name"] or seen["head"][1 + i] for i, t in enumerate(traces)]
    rows = {row["label"]: row for row in seen["rows"]}
    for column, trace in enumerate(traces):
        labels = trace["y"] if trace["orientation"] == "h" else trace["x"]
        values = [_value(trace, i) for i in range(len(labels))]
        for label, value in zip(labels, values):
            assert rows[str(label)]["values"][column] == pytest.approx(value), (graph_id, label)
        # the summary names the trace, counts its values and gives its highest and lowest
        assert f"{seen['head'][1 + column]}: {len(values)} values" in seen["summary"]
        high = labels[values.index(max(values))]
        assert f"({high})" in seen["summary"], seen["summary"]
    assert seen["label"].startswith("Chart: ")
    # the table opens from the keyboard
    summary = page.locator(f'.graph-figure[data-graph="{graph_id}"] summary')
    summary.focus()
    page.keyboard.press("Enter")
    expect(page.locator(f'.graph-figure[data-graph="{graph_id}"] .graph-table table')).to_be_visible()


def test_chart_text_follows_the_readers_language_and_the_filters(page):
    open_page(page, "/carts?lang=ru")
    label = page.locator('.graph-figure[data-graph="carts-funnel"]').get_attribute("aria-label")
    summary = page.locator("#carts-funnel-summary").text_content()
    assert label.startswith("Диаграмма"), label
    assert re.search(r"\d,\d", summary) and "значени" in summary, summary   # Russian words, decimal comma
    open_page(page, "/carts")
    before = page.locator('.graph-figure[data-graph="carts-funnel"] .graph-table').text_content()
    page.get_by_role("checkbox", name="Type 2").check()
    settle(page)
    assert page.locator('.graph-figure[data-graph="carts-funnel"] .graph-table').text_content() != before


def test_filter_panel_works_from_the_keyboard_alone(page):
    open_page(page, "/carts")
    sessions = page.locator("#carts-kpis .kpi-value").first.inner_text()
    checkbox = page.get_by_role("checkbox", name="Type 2")
    for _ in range(60):   # Tab from the top of the page until the checkbox has focus
        page.keyboard.press("Tab")
        if checkbox.evaluate("el => el === document.activeElement"):
            break
    else:
        pytest.fail("Tab never reached the 'Type 2' checkbox")
    # the focus ring is drawn (not the browser's thin default, not nothing)
    outline = checkbox.evaluate("el => getComputedStyle(el).outlineStyle + ' ' + getComputedStyle(el).outlineWidth")
    assert outline == "solid 3px", outline
    page.keyboard.press("Space")
    expect(page.locator(".chip", has_text="Type 2")).to_be_visible()
    expect(page.locator("#carts-kpis .kpi-value").first).not_to_have_text(sessions)
    settle(page)
    # the slider thumbs are named after their field and move with the arrow keys
    thumb = page.get_by_role("slider", name="Pages viewed: from")
    thumb.focus()
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    expect(page.locator(".chip", has_text="Pages viewed")).to_be_visible()
    assert page.get_by_role("slider", name="Pages viewed: to").count() == 1


@pytest.mark.parametrize("fmt", ["svg", "png"])
def test_chart_image_export_carries_title_and_filters(page, fmt):
    open_page(page, "/carts?segment=2")
    chip = page.locator(".chips .chip").first.inner_text().replace("✕", "").strip()
    box = page.locator('.graph-figure[data-graph="carts-by-segment"]')
    button = box.get_by_role("button", name=f"Save {fmt.upper()}")
    button.focus()   # keyboard reachable, and a keypress saves
    with page.expect_download() as info:
        page.keyboard.press("Enter")
    download = info.value
    assert re.fullmatch(r"abandonment-by-customer-type-\d{4}-\d\d-\d\d\." + fmt, download.suggested_filename)
    data = Path(download.path()).read_bytes()
    if fmt == "png":
        assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 10_000
    else:
        text = data.decode("utf-8")
        assert text.lstrip().startswith("<svg") and "Abandonment by customer type" in text
        assert f"Filters: {chip}" in text, chip
    # the chart on the screen keeps its own title
    assert page.evaluate("document.querySelector('#carts-by-segment .js-plotly-plot').layout.title.text") == \
        "Abandonment by customer type"


def test_mode_bar_saves_a_png_named_after_the_chart(page):
    open_page(page, "/carts")
    graph = page.locator("#carts-funnel")
    graph.hover()
    with page.expect_download() as info:
        graph.locator(".modebar-btn[data-title='Download plot as a PNG']").click()
    assert re.fullmatch(r"checkout-funnel-how-far-sessions-get-\d{4}-\d\d-\d\d\.png", info.value.suggested_filename)
