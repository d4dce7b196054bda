"""Phone (390x844) and tablet (820x1180) in real Chromium: no page scrolls sideways, the filters
wait off-canvas behind their button on a phone, the KPI cards sit two per row, and a screenshot
of every page at both sizes goes to docs/screenshots/{phone,tablet}-<page>.png (looked at by a
person when the layout changes)."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.serving import EVERY_PAGE, SCREENSHOTS, checked_tab, open_page, with_lang

pytestmark = pytest.mark.browser

SCREENS = {"phone": {"width": 390, "height": 844}, "tablet": {"width": 820, "height": 1180}}
FILTERED_PAGES = ("carts", "customers", "segments")   # the pages whose filters have a toggle
TOUCH = {"is_mobile": True, "has_touch": True, "device_scale_factor": 2}


@pytest.fixture(params=list(SCREENS))
def screen(request, browser, base_url):
    with checked_tab(browser, viewport=SCREENS[request.param], base_url=base_url, **TOUCH) as tab:
        yield request.param, tab


def overflowing(page) -> list[str]:
    """The elements wider than the window (what makes a page scroll sideways), for the message."""
    return page.evaluate("""() => Array.from(document.querySelectorAll('#main *'))
        .filter(el => el.getBoundingClientRect().right > window.innerWidth + 1 && el.offsetParent !== null
                      && !el.closest('.table-responsive, .graph-table, pre, .filter-offcanvas'))
        .slice(0, 5).map(el => el.tagName + '.' + el.className + '#' + el.id)""")


def test_no_page_scrolls_sideways_and_each_is_screenshotted(screen):
    name, page = screen
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    wide = {}
    for page_name, path in EVERY_PAGE.items():
        open_page(page, path)
        width = page.evaluate("document.documentElement.scrollWidth")
        if width > page.evaluate("window.innerWidth"):
            wide[page_name] = (width, overflowing(page))
        page.screenshot(path=str(SCREENSHOTS / f"{name}-{page_name}.png"), full_page=True)
    assert wide == {}, wide


def test_russian_pages_fit_a_phone_too(browser, base_url):
    """Russian words are the longest of the three languages: no page scrolls sideways in it."""
    with checked_tab(browser, viewport=SCREENS["phone"], base_url=base_url, **TOUCH) as page:
        wide = {}
        for page_name, path in EVERY_PAGE.items():
            open_page(page, with_lang(path, "ru"))
            assert page.locator("html").get_attribute("lang") == "ru"
            if page.evaluate("document.documentElement.scrollWidth") > page.evaluate("window.innerWidth"):
                wide[page_name] = overflowing(page)
        open_page(page, "/carts?segment=2&lang=ru")
        page.screenshot(path=str(SCREENSHOTS / "phone-carts-ru.png"))
        assert wide == {}, wide


def test_kpi_cards_sit_two_per_row(screen):
    name, page = screen
    for page_name in ("overview", "carts", "customers"):
        open_page(page, EVERY_PAGE[page_name])
        boxes = [card.bounding_box() for card in page.locator(".kpi-card").all()]
        assert len(boxes) >= 3, page_name
        first, second, third = boxes[:3]
        if name == "phone":
            # two cards share the first row, each about half the width; the third starts a new row
            assert abs(first["y"] - second["y"]) < 2 and third["y"] > first["y"] + first["height"] / 2, page_name
            assert 0.35 * 390 < first["width"] < 0.55 * 390, (page_name, first)
        for box in boxes:
            assert box["x"] >= 0 and box["x"] + box["width"] <= SCREENS[name]["width"], (page_name, box)


@pytest.mark.parametrize("page_name", FILTERED_PAGES)
def test_filters_wait_behind_their_button_on_a_phone(screen, page_name):
    name, page = screen
    open_page(page, EVERY_PAGE[page_name])
    toggle = page.locator(".filter-toggle")
    assert toggle.count() == 1, f"the {page_name} page has no filter button"
    panel = page.locator(f"#{toggle.get_attribute('aria-controls')}")
    if name == "tablet":
        # from tablet width up the filters are a column beside the charts and need no button
        expect(toggle).to_be_hidden()
        expect(panel).to_be_visible()
        return
    expect(panel).to_be_hidden()
    assert toggle.get_attribute("aria-expanded") == "false"
    toggle.click()
    expect(panel).to_be_visible()
    expect(panel).to_have_attribute("role", "dialog")
    assert toggle.get_attribute("aria-expanded") == "true"
    assert panel.evaluate("el => el.contains(document.activeElement)"), "focus did not move into the filters"
    page.wait_for_timeout(300)   # the slide-in
    page.screenshot(path=str(SCREENSHOTS / f"phone-{page_name}-filters.png"))
    page.keyboard.press("Escape")
    expect(panel).to_be_hidden()
    assert toggle.get_attribute("aria-expanded") == "false"
    assert toggle.evaluate("el => el === document.activeElement"), "focus did not return to the button"
    toggle.click()
    page.locator(f"#{toggle.get_attribute('aria-controls')} .filter-close").click()
    expect(panel).to_be_hidden()
