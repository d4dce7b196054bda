"""Browser history in real Chromium: every filter change is an entry; Back and Forward bring
the filters (controls, chips, KPIs) back; the first write after a load adds no entry; going
back and forth adds none either (assets/url_state.js)."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.serving import open_page as open_at, settle

pytestmark = pytest.mark.browser


def open_page(page, path: str) -> None:
    open_at(page, path, ready=".kpi-value")   # the KPIs are what every test here reads first


class View:
    """What one page shows of its filters: the KPIs, the chips, the address."""

    def __init__(self, page, prefix: str) -> None:
        self.page, self.prefix = page, prefix

    def kpis(self) -> list[str]:
        return self.page.locator(f"#{self.prefix}-kpis .kpi-value").all_inner_texts()

    def chips(self) -> list[str]:
        return self.page.locator(f"#{self.prefix}-chips .chip").all_inner_texts()

    def now(self) -> dict:
        return {"kpis": self.kpis(), "chips": self.chips(), "search": self.page.evaluate("location.search")}

    def change(self, act) -> dict:
        """Do ``act`` and wait for the KPIs to follow; the view after it."""
        before = self.kpis()[0]
        act()
        expect(self.page.locator(f"#{self.prefix}-kpis .kpi-value").first).not_to_have_text(before)
        settle(self.page)
        return self.now()

    def shows(self, expected: dict) -> None:
        """After Back or Forward: the page re-renders ``expected`` and adds no entry."""
        length = self.page.evaluate("history.length")
        expect(self.page.locator(f"#{self.prefix}-kpis .kpi-value").first).to_have_text(expected["kpis"][0])
        settle(self.page)
        assert self.now() == expected
        assert self.page.evaluate("history.length") == length


def test_carts_back_and_forward_restore_the_filters(page):
    # a link in another order than the page's own: the first write only makes it canonical
    blank = page.evaluate("history.length")     # the new tab's about:blank
    open_page(page, "/carts?details=yes&segment=1")
    assert page.evaluate("[location.search, history.length]") == ["?segment=1&details=yes", blank + 1]

    open_page(page, "/carts")
    view = View(page, "carts")
    start, length = view.now(), page.evaluate("history.length")
    assert start["chips"] == [] and start["search"] == ""

    one_type = view.change(lambda: page.get_by_role("checkbox", name="Type 1").check())
    assert one_type["search"] == "?segment=1" and len(one_type["chips"]) == 1
    with_details = view.change(lambda: page.locator("#carts-details").get_by_role("radio", name="Yes").check())
    assert with_details["search"] == "?segment=1&details=yes" and len(with_details["chips"]) == 2
    assert page.evaluate("history.length") == length + 2

    page.go_back()
    view.shows(one_type)
    assert page.get_by_role("checkbox", name="Type 1").is_checked()
    assert page.locator("#carts-details").get_by_role("radio", name="All").is_checked()
    page.go_back()
    view.shows(start)
    assert not page.get_by_role("checkbox", name="Type 1").is_checked()
    assert "No filters" in page.locator("#carts-chips").inner_text()
    page.go_forward()
    view.shows(one_type)
    page.go_forward()
    view.shows(with_details)
    assert page.locator("#carts-details").get_by_role("radio", name="Yes").is_checked()

    # a change after going back replaces the entries ahead, as in any site
    page.go_back()
    view.shows(one_type)
    one_type_only = view.change(lambda: page.get_by_role("checkbox", name="Type 1").uncheck())
    assert one_type_only["search"] == "" and page.evaluate("history.length") == length + 2


def test_customers_back_to_the_address_the_router_last_read(page):
    """The page loads without filters; a filter pushes an entry the router never read; Back to
    the loaded address must still re-render (dcc.Location alone would see no change)."""
    open_page(page, "/customers")
    view = View(page, "cust")
    start, length = view.now(), page.evaluate("history.length")

    premium = view.change(lambda: page.get_by_role("checkbox", name="Premium").check())
    assert premium["search"] == "?tier=premium"
    page.go_back()
    view.shows(start)
    assert not page.get_by_role("checkbox", name="Premium").is_checked()
    page.go_forward()
    view.shows(premium)
    assert page.get_by_role("checkbox", name="Premium").is_checked()

    consented = view.change(lambda: page.locator("#cust-consent").get_by_role("radio", name="Yes").check())
    assert consented["search"] == "?tier=premium&consent=yes"
    assert page.evaluate("history.length") == length + 2
    page.go_back()
    view.shows(premium)
    page.go_back()
    view.shows(start)
    page.go_forward()
    view.shows(premium)
    page.go_forward()
    view.shows(consented)
    assert page.locator("#cust-consent").get_by_role("radio", name="Yes").is_checked()


def test_another_page_and_back(page):
    """A menu link is a navigation of its own: Back returns to the filtered page as it was."""
    open_page(page, "/carts")
    view = View(page, "carts")
    one_type = view.change(lambda: page.get_by_role("checkbox", name="Type 2").check())
    page.locator(".app-nav .nav-link", has_text="Customers").click()
    page.wait_for_selector("#cust-kpis .kpi-value")
    settle(page)
    assert page.evaluate("location.pathname") == "/customers"
    page.go_back()
    page.wait_for_selector("#carts-kpis .kpi-value")
    view.shows(one_type)
    assert page.get_by_role("checkbox", name="Type 2").is_checked()
