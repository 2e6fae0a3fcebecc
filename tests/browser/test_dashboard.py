"""The staff dashboard in the Django admin and the shop's footer, in headless Chromium
against the example shop: anonymous and non-staff visitors are turned away, staff see the
figures move and the page refresh on its own; each shop page says how it was served."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from _browser_shop import Shop
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as seen
from selenium.webdriver.support.ui import WebDriverWait


def sign_in_as_staff(browser: WebDriver, shop: Shop) -> None:
    browser.get(shop.url + "/admin/login/?next=/admin/")
    browser.find_element(By.NAME, "username").send_keys("staff")
    browser.find_element(By.NAME, "password").send_keys(shop.password)
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    WebDriverWait(browser, 20).until(seen.presence_of_element_located((By.ID, "user-tools")))


def summary(browser: WebDriver) -> dict[str, str]:
    rows = browser.find_elements(By.CSS_SELECTOR, "#cacheplug-summary tr")
    return {
        row.find_element(By.TAG_NAME, "th").text: row.find_element(By.TAG_NAME, "td").text
        for row in rows
    }


def test_anonymous_visitors_are_sent_to_the_login_page(browser: WebDriver, shop: Shop) -> None:
    browser.delete_all_cookies()
    browser.get(shop.url + "/admin/cacheplug/")
    assert "/admin/login/" in browser.current_url
    assert not browser.find_elements(By.ID, "cacheplug-dashboard")
    browser.get(shop.url + "/admin/cacheplug/data.json")
    assert "/admin/login/" in browser.current_url


def test_signed_in_shoppers_who_are_not_staff_are_turned_away(
    browser: WebDriver, shop: Shop
) -> None:
    browser.get(shop.url + "/catalog/")
    browser.delete_all_cookies()
    browser.add_cookie({"name": "sessionid", "value": shop.shopper_session, "path": "/"})
    browser.get(shop.url + "/admin/cacheplug/")
    assert "/admin/login/" in browser.current_url
    assert not browser.find_elements(By.ID, "cacheplug-dashboard")
    # Signed in indeed: the admin's login page says the account is not staff.
    assert "shopper" in browser.find_element(By.TAG_NAME, "body").text


def test_staff_see_the_figures_refresh_on_their_own(
    browser: WebDriver, shop: Shop, screenshot: Callable[[str], Path]
) -> None:
    browser.delete_all_cookies()
    # The footer: rendered, then served from the store.
    browser.get(shop.url + "/catalog/")
    assert browser.find_element(By.ID, "served-how").get_attribute("data-outcome") == "loaded"
    assert browser.find_element(By.ID, "served-how").text.startswith("Rendered, then stored")
    browser.get(shop.url + "/catalog/")
    assert browser.find_element(By.ID, "served-how").get_attribute("data-outcome") == "hit"
    assert float(browser.find_element(By.ID, "served-ms").text) >= 0
    browser.find_element(By.LINK_TEXT, "Cache dashboard").click()
    assert "/admin/login/" in browser.current_url

    sign_in_as_staff(browser, shop)
    browser.get(shop.url + "/admin/cacheplug/?refresh=1")
    figures = summary(browser)
    assert int(figures["loads"].split()[0]) >= 2  # the page and its sidebar fragment
    assert figures["hits: store"] != "0"
    assert figures["circuit breaker"] == "closed"
    assert figures["pending invalidations"] == "0"
    # The shop's database has the outbox table: its relay runs, nothing is left waiting.
    assert re.fullmatch(r"default: 0 rows, relayed \d+", figures["outbox backlog"])
    assert "stampedes averted" in figures
    assert "load time" in figures
    before = figures["hits / misses"]

    # More traffic in another tab's place: the dashboard picks it up without a reload.
    browser.execute_script("return fetch('/catalog/').then(r => r.text())")
    dashboard = browser.find_element(By.ID, "cacheplug-dashboard")
    WebDriverWait(browser, 20).until(
        lambda _: (
            int(dashboard.get_attribute("data-refreshes") or "0") >= 1
            and summary(browser)["hits / misses"] != before
        )
    )
    assert dashboard.get_attribute("data-error") is None
    screenshot("dashboard-django")


def test_the_flask_blueprint_in_the_flask_shop(
    browser: WebDriver, flask_shop: str, screenshot: Callable[[str], Path]
) -> None:
    browser.delete_all_cookies()
    browser.get(flask_shop + "/catalog/")
    assert browser.find_element(By.ID, "served-how").get_attribute("data-outcome") == "loaded"
    browser.get(flask_shop + "/catalog/")
    assert browser.find_element(By.ID, "served-how").get_attribute("data-outcome") == "hit"
    browser.find_element(By.LINK_TEXT, "Cache dashboard").click()
    WebDriverWait(browser, 20).until(seen.presence_of_element_located((By.ID, "cacheplug-summary")))
    figures = summary(browser)
    assert figures["hit ratio"].endswith("%")
    assert int(figures["loads"].split()[0]) >= 2
    browser.get(flask_shop + "/cacheplug/?refresh=1")
    dashboard = browser.find_element(By.ID, "cacheplug-dashboard")
    WebDriverWait(browser, 20).until(
        lambda _: int(dashboard.get_attribute("data-refreshes") or "0") >= 1
    )
    assert dashboard.get_attribute("data-error") is None
    screenshot("dashboard-flask")
