"""cacheplug's Debug Toolbar panel, in headless Chromium against the example shop (the real
django-debug-toolbar): the first visit of a cached page shows it rendered and its loads; the
next one shows it served from the cache; a page not cached whole shows its fragment's hit."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from _browser_shop import Shop
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait


def toolbar(browser: WebDriver) -> Any:
    """Where the toolbar's elements are: the shadow root of its ``djDebugRoot`` (the
    toolbar's default since 6.0), or the document (older releases, as in the oldest lock)."""
    for root in browser.find_elements(By.ID, "djDebugRoot"):
        if browser.execute_script("return arguments[0].shadowRoot", root) is not None:
            return root.shadow_root
    return browser


def by_id(scope: Any, name: str) -> WebElement:
    return scope.find_element(By.CSS_SELECTOR, f"#{name}")  # type: ignore[no-any-return]


def open_panel(browser: WebDriver, url: str) -> WebElement:
    """Load ``url``, open the toolbar and cacheplug's panel; the panel's content."""
    browser.get(url)
    wait = WebDriverWait(browser, 20)
    wait.until(lambda driver: driver.find_elements(By.CSS_SELECTOR, "#djDebugRoot, #djDebug"))
    scope = toolbar(browser)
    wait.until(
        lambda _: (
            by_id(scope, "djDebugToolbar").is_displayed()
            or by_id(scope, "djShowToolBarButton").is_displayed()
        )
    )
    if not by_id(scope, "djDebugToolbar").is_displayed():
        by_id(scope, "djShowToolBarButton").click()
    link = scope.find_element(By.CSS_SELECTOR, "a.CachePlugPanel")
    wait.until(lambda _: link.is_displayed())
    link.click()
    wait.until(lambda _: by_id(scope, "cacheplug-panel").is_displayed())
    return by_id(scope, "cacheplug-panel")


def outcomes(panel: WebElement) -> list[str]:
    rows = panel.find_elements(By.CSS_SELECTOR, "tr.cacheplug-call")
    return [row.get_attribute("data-outcome") or "" for row in rows]


def page_outcome(panel: WebElement) -> str:
    return panel.find_element(By.ID, "cacheplug-page").get_attribute("data-outcome") or ""


def test_the_panel_shows_a_render_then_a_hit(
    browser: WebDriver, toolbar_shop: Shop, screenshot: Callable[[str], Path]
) -> None:
    panel = open_panel(browser, toolbar_shop.url + "/catalog/")
    assert page_outcome(panel) == "loaded"
    assert "loaded" in outcomes(panel)  # the page, and the sidebar fragment
    loads = panel.find_elements(By.CSS_SELECTOR, "#cacheplug-loads li code")
    assert any("page:" in load.text for load in loads)
    assert "rendered" in panel.find_element(By.ID, "cacheplug-page").text

    panel = open_panel(browser, toolbar_shop.url + "/catalog/")
    assert page_outcome(panel) in ("l1", "hit")
    assert "served from" in panel.find_element(By.ID, "cacheplug-page").text
    assert "loaded" not in outcomes(panel)
    keys = [cell.text for cell in panel.find_elements(By.CSS_SELECTOR, "tr.cacheplug-call code")]
    assert any("/catalog/" in key for key in keys)
    nav = toolbar(browser).find_element(By.CSS_SELECTOR, "a.CachePlugPanel").text
    assert "0 load(s)" in nav
    screenshot("toolbar-panel")


def test_a_page_not_cached_whole_shows_its_fragment(browser: WebDriver, toolbar_shop: Shop) -> None:
    browser.get(toolbar_shop.url + "/catalog/")  # renders the sidebar fragment once
    panel = open_panel(browser, toolbar_shop.url + "/products/1/")
    assert page_outcome(panel) == ""  # the product page is not cached whole
    assert "not cached whole" in panel.find_element(By.ID, "cacheplug-page").text
    assert outcomes(panel)
    assert "loaded" not in outcomes(panel)  # the sidebar came from the cache
    items = panel.find_elements(By.CSS_SELECTOR, "#cacheplug-invalidations li")
    assert [item.text for item in items] == ["None."]  # a read invalidates nothing
