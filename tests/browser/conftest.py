"""Fixtures of every browser module: one Playwright and one Chromium for the whole session, one
trained warehouse for the modules that only read it, served per module with the default settings."""
from __future__ import annotations

import pytest

from tests.browser.serving import CHROMIUM, CHROMIUM_ARGS, checked_tab, playwright_session, serving, trained_warehouse


@pytest.fixture(scope="session")
def playwright():
    """The session's Playwright: a second sync one cannot start in the same thread while this one
    runs, so a module that launches Chromium its own way (test_embed_browser's profiles) uses it."""
    with playwright_session() as session:
        yield session


@pytest.fixture(scope="session")
def browser(playwright):
    chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    yield chromium
    chromium.close()


@pytest.fixture(scope="session")
def warehouse(tmp_path_factory, dashboard_raw) -> dict:
    """Built once: the ETL and the training take most of a browser module's time."""
    return trained_warehouse(tmp_path_factory.mktemp("browser-shared"), dashboard_raw)


@pytest.fixture(scope="module")
def base_url(warehouse):
    """The app on the shared warehouse with the default settings (AUTH unset: the operator)."""
    with serving(warehouse) as url:
        yield url


@pytest.fixture
def page(browser, base_url):
    """A desktop tab on the app; the test fails on any console error or page error in it."""
    with checked_tab(browser, base_url=base_url, accept_downloads=True) as tab:
        yield tab
