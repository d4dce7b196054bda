"""The dashboard in real headless Chromium (Debian's ``chromium``, driven by Playwright).

Builds a warehouse with the real ETL, trains real models (``--fast``), serves the app from a
thread on a free loopback port, then opens every page, changes filters, cross-filters by
clicking and selecting, exports a file, and fails on any browser console error. Screenshots of
every page go to docs/screenshots/ (they illustrate the README).
"""
from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect
from plotly.offline import get_plotlyjs_version as plotly_js_version

from tests.browser.serving import EVERY_PAGE, SCREENSHOTS, open_page, settle

pytestmark = pytest.mark.browser

# page name -> a link that shows it at its most telling (also what the screenshot shows): the
# pages with charts, and the not-found page (the others have no chart to check)
PAGES = {name: path for name, path in EVERY_PAGE.items()
         if name not in ("reports", "admin-users", "admin-audit", "admin-data")}


def kpi(page, prefix: str, index: int = 0) -> str:
    return page.locator(f"#{prefix}-kpis .kpi-value").nth(index).inner_text()


def kpi_changes(page, prefix: str, before: str) -> None:
    expect(page.locator(f"#{prefix}-kpis .kpi-value").first).not_to_have_text(before)


# every trace type each chart on the page asked for, and those the loaded plotly.js can draw
TRACE_TYPES = """() => ({
    drawn: [...document.querySelectorAll('.js-plotly-plot')].flatMap(gd => (gd.data || []).map(t => t.type || 'scatter')),
    known: Object.keys(window.Plotly.PlotSchema.get().traces),
    version: window.Plotly.version,
})"""


def test_every_page_renders_without_errors_and_is_screenshotted(page):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    scripts = []
    page.on("request", lambda request: scripts.append(request.url) if request.resource_type == "script" else None)
    for name, path in PAGES.items():
        open_page(page, path)
        # make's plotly.js with only our trace types draws every chart (plotly_bundle/entry.js);
        # a type missing from it would be an empty chart, not an error
        traces = page.evaluate(TRACE_TYPES)
        assert set(traces["drawn"]) <= set(traces["known"]), (name, traces["drawn"])
        assert traces["version"] == plotly_js_version()
        body = page.locator("body").inner_text()
        assert "could not be drawn" not in body and "Not available yet" not in body, name
        if name == "not-found":
            assert "Page not found" in body
        else:
            assert page.locator(".js-plotly-plot").count() >= 1, name
            assert page.locator(".app-nav").is_visible()
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))
    assert any(url.split("?")[0].endswith("/assets/plotly-charts.min.js") for url in scripts)
    assert not [url for url in scripts if "plotly.min.js" in url], "the full plotly.js was loaded too"


def test_navigation_lists_every_page_from_the_registry(page):
    open_page(page, "/")
    links = page.locator(".app-nav .nav-link").all_inner_texts()
    # on loopback without sign-in the visitor is the operator: the admin pages are in a menu
    assert links == ["Overview", "Carts", "Customers", "Segments", "What-if", "Model", "Data quality", "Reports",
                     "Admin", "Language:\nEnglish"]
    page.locator(".nav-admin .nav-link").click()
    assert page.locator(".nav-admin .dropdown-item").all_inner_texts() == ["Users", "Audit log", "Data refresh"]
    page.keyboard.press("Escape")
    page.locator(".app-nav .nav-link", has_text="Data quality").click()
    page.wait_for_url(re.compile(r"/data-quality$"))
    settle(page)
    assert page.locator("#dq-files").is_visible()


def test_the_language_switcher_keeps_the_view_and_later_callbacks_answer_in_it(page):
    open_page(page, "/carts?segment=2")
    page.locator(".nav-lang .nav-link").click()
    page.locator(".lang-option", has_text="Русский").click()
    page.wait_for_url(re.compile(r"lang=ru"))
    settle(page)
    assert "segment=2" in page.url
    assert page.locator("html").get_attribute("lang") == "ru"
    expect(page.locator("h1")).to_have_text("Корзины")
    expect(page.locator(".chip", has_text="Тип 2")).to_be_visible()
    kpi = page.locator("#carts-kpis").inner_text()
    assert re.search(r"\d,\d", kpi) and not re.search(r"\d\.\d", kpi)   # a decimal comma
    # a callback after the reload (Dash requests carry no ?lang=) still answers in Russian
    page.get_by_label("Тип 1").check()
    settle(page)
    expect(page.locator(".chip", has_text="Тип 1")).to_be_visible()
    assert "lang=ru" in page.url and "segment=1,2" in page.url


def test_carts_filter_changes_kpis_graphs_and_url(page):
    open_page(page, "/carts")
    sessions = kpi(page, "carts")
    funnel = page.locator("#carts-funnel .bars").first.inner_html()
    page.get_by_label("Type 2").check()
    kpi_changes(page, "carts", sessions)
    settle(page)
    assert page.locator("#carts-funnel .bars").first.inner_html() != funnel
    assert "segment=2" in page.url
    # the link reproduces the view
    page.goto(page.url)
    settle(page)
    assert page.get_by_label("Type 2").is_checked()
    assert page.locator(".chip", has_text="Customer type: Type 2").is_visible()


def test_clicking_a_bar_cross_filters_and_the_chip_clears_it(page):
    open_page(page, "/carts")
    sessions = kpi(page, "carts")
    # the bars of the "by customer type" chart: click the second row's bar
    page.locator("#carts-by-segment .barlayer .point").nth(1).click(force=True)
    expect(page.locator(".chip", has_text="Customer type")).to_be_visible()
    kpi_changes(page, "carts", sessions)
    settle(page)
    assert "segment=" in page.url
    page.locator(".chip", has_text="Customer type").click()
    expect(page.locator(".chip", has_text="Customer type")).to_have_count(0)
    settle(page)
    assert kpi(page, "carts") == sessions and "segment=" not in page.url


def test_selecting_a_range_in_a_histogram_filters_the_others(page):
    open_page(page, "/carts")
    sessions = kpi(page, "carts")
    drag = page.locator("#carts-dist-items_added .nsewdrag").first
    drag.scroll_into_view_if_needed()
    box = drag.bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] * 0.08, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.3, y, steps=8)
    page.mouse.up()
    expect(page.locator(".chip", has_text="Items added to cart")).to_be_visible()
    kpi_changes(page, "carts", sessions)
    settle(page)
    assert "items_added=" in page.url


def test_customers_filters_and_category_click(page):
    open_page(page, "/customers")
    customers = kpi(page, "cust")
    page.get_by_label("Premium").check()
    kpi_changes(page, "cust", customers)
    settle(page)
    assert "tier=premium" in page.url
    page.locator("#cust-by-category .barlayer .point").first.click(force=True)
    expect(page.locator(".chip", has_text="Category")).to_be_visible()
    settle(page)
    assert "category=" in page.url


def test_segment_export_downloads_exactly_the_filtered_list(page):
    open_page(page, "/segments?segment=promo_risk_high_profit&profit=4")
    shown = page.locator("#seg-shown").inner_text()
    expected = int(re.search(r"([\d,]+) customers", shown).group(1).replace(",", ""))
    with page.expect_download() as info:
        page.get_by_role("button", name="Export CSV").click()
    download = info.value
    assert download.suggested_filename == "at-risk-promo_risk_high_profit.csv"
    rows = list(csv.DictReader(io.StringIO(Path(download.path()).read_text(encoding="utf-8-sig"))))
    assert len(rows) == expected and all(float(r["Profit / month"]) >= 4 for r in rows)
    with page.expect_download() as info:
        page.get_by_role("button", name="Export XLSX").click()
    assert info.value.suggested_filename.endswith(".xlsx")


def test_segment_builder_lives_in_the_url(page):
    open_page(page, "/segments")
    page.get_by_label("P(decline) at least").fill("0.8")
    page.get_by_label("P(decline) at least").press("Enter")
    expect(page.locator("#seg-heading")).to_contain_text("P(decline) ≥ 0.8")
    settle(page)
    assert "p=0.8" in page.url


def test_what_if_updates_live(page):
    open_page(page, "/what-if?subject=customers")
    field = page.get_by_label("Share of promo purchases")
    value = "0.99" if float(field.input_value()) < 0.5 else "0.12"
    field.fill(value)
    field.press("Enter")
    settle(page)
    # the contributions chart now explains the new value, and the link carries it
    expect(page.locator("#wi-contributions")).to_contain_text(f"Share of promo purchases = {value}")
    assert f"promo_share={value}" in page.url
    assert "chance this customer's activity declines" in page.locator("#wi-verdict").inner_text()
    field.fill("42")
    field.press("Enter")
    settle(page)
    assert "must be between" in page.locator("#wi-problems").inner_text()


def test_model_threshold_slider_is_keyboard_reachable(page):
    open_page(page, "/model?subject=carts")
    before = page.locator("#model-metrics").inner_text()
    page.locator("#model-threshold [role=slider]").first.focus()
    for _ in range(10):
        page.keyboard.press("ArrowRight")
    expect(page.locator("#model-metrics")).not_to_have_text(before)
    settle(page)
    assert "t=" in page.url


def test_embed_mode_has_no_navigation_and_keeps_embed_in_links(page):
    open_page(page, "/carts?embed=1")
    assert not page.locator(".app-nav").is_visible()
    page.get_by_label("Type 1").check()
    expect(page.locator(".chip", has_text="Customer type: Type 1")).to_be_visible()
    settle(page)
    assert "embed=1" in page.url and "segment=1" in page.url


def test_tablet_width_is_usable(page):
    page.set_viewport_size({"width": 820, "height": 1180})
    open_page(page, "/carts")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 820  # no horizontal scrolling
    assert page.get_by_label("Type 0").is_visible()
