"""The browser tests' fixtures: headless Chromium (Debian's ``chromium`` and
``chromium-driver``, driven by Selenium) and the example shop served in a subprocess.

A missing browser fails the tests (``scripts/test.sh`` installs it): they are never skipped.
Screenshots go to ``tmp_path``, or to ``CACHEPLUG_SCREENSHOTS`` (``docs/img`` to refresh the
documentation's).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from _browser_shop import Shop, serve_flask_shop, serve_shop
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service

CHROMIUM = ("chromium", "chromium-browser")
DRIVER = "chromedriver"


def _found(names: tuple[str, ...]) -> str:
    for name in names:
        path = shutil.which(name)
        if path is not None:
            return path
    pytest.fail(
        f"{' or '.join(names)} is not installed: run 'sudo apt-get install -y chromium "
        "chromium-driver' (scripts/test.sh does as root)"
    )


@pytest.fixture(scope="session")
def browser() -> Iterator[webdriver.Chrome]:
    """Headless Chromium, 1280x900."""
    options = Options()
    options.binary_location = _found(CHROMIUM)
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--window-size=1280,900",
        "--disable-gpu",
    ):
        options.add_argument(argument)
    # The system's driver, named: Selenium would otherwise try to download one.
    driver = webdriver.Chrome(options=options, service=Service(_found((DRIVER,))))
    driver.implicitly_wait(0)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def screenshot(browser: webdriver.Chrome, tmp_path: Path) -> Callable[[str], Path]:
    """``screenshot("name")`` saves the page as ``name.png`` (see the module docstring)."""
    folder = Path(os.environ.get("CACHEPLUG_SCREENSHOTS") or tmp_path)

    def save(name: str) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{name}.png"
        assert browser.save_screenshot(str(path)), f"no screenshot saved at {path}"
        return path

    return save


@pytest.fixture
def toolbar_shop(tmp_path: Path) -> Iterator[Shop]:
    """The shop with Django Debug Toolbar and cacheplug's panel."""
    yield from serve_shop(tmp_path, SHOP_TOOLBAR="1")


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[Shop]:
    """The shop as the demo serves it."""
    yield from serve_shop(tmp_path, SHOP_TOOLBAR="")


@pytest.fixture
def flask_shop(tmp_path: Path) -> Iterator[str]:
    """The Flask shop: its base URL."""
    yield from serve_flask_shop(tmp_path)
