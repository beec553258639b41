"""Headless Chromium from Debian's packages, driven through Selenium and Debian's chromedriver.

``Service(CHROMEDRIVER)`` names the driver, so Selenium Manager downloads nothing; the flags are
what Chromium needs as root on a closed network (no background or component traffic, which this
machine's network refuses). ``make browser`` installs the packages (``.ci/run`` too, as root).
"""
from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path
from typing import Callable, Optional

import pytest

CATALOG = Path(__file__).with_name("checkout_catalog.json")  # a name with <&> and quotes: shown as text
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--window-size=1000,1200", "--lang=zh-CN",
)


@pytest.fixture(scope="module")
def checkout_stack(local_dir, tmp_path_factory):
    """``python -m local.run`` on a free port, pricing from the tests' catalog (PRODUCT_CATALOG,
    as a shop sets it), so the checkout offers the same products whatever make run's default is."""
    from tests.e2e.conftest import free_port, start

    running = start([sys.executable, "-m", "local.run"], free_port(), local_dir, tmp_path_factory.mktemp("log") / "stack.log",
                    env={"PRODUCT_CATALOG": str(CATALOG)})
    yield running
    running.stop()


def missing() -> Optional[str]:
    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.access(path, os.X_OK):
            return f"{path} is missing: `make browser` installs chromium and chromium-driver (Debian packages)"
    return None


def chromium(profile: Path):
    """A fresh headless Chromium (its own --user-data-dir) under Debian's chromedriver."""
    reason = missing()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(reason)  # CI installs them (.ci/run): a missing browser there is a failure
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    return driver


class Pages:
    """The driver plus a screenshot of each page it looks at, under the test's temporary folder."""

    def __init__(self, driver, folder: Path) -> None:
        self.driver = driver
        self.folder = folder
        self.count = 0

    def shot(self, name: str) -> Path:
        self.count += 1
        path = self.folder / f"{self.count:02d}-{name}.png"
        self.driver.save_screenshot(str(path))
        return path

    def text(self, element_id: str) -> str:
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.ID, element_id).text

    def click(self, element_id: str, navigates: bool = True) -> None:
        """Click, and (for a link or a form's button) wait until the next page has replaced this one."""
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions
        from selenium.webdriver.support.ui import WebDriverWait

        before = self.driver.find_element(By.TAG_NAME, "html")
        self.driver.find_element(By.ID, element_id).click()
        if navigates:
            WebDriverWait(self.driver, 15).until(expected_conditions.staleness_of(before))

    def wait_for_url(self, prefix: str, timeout: float = 15.0) -> None:
        """Until the browser is at a URL starting with ``prefix`` (after redirects and refreshes)."""
        from selenium.webdriver.support.ui import WebDriverWait

        WebDriverWait(self.driver, timeout).until(lambda driver: driver.current_url.startswith(prefix))

    def body(self) -> str:
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.TAG_NAME, "body").text

    def until(self, shows: Callable[[str], bool], timeout: float = 15.0, refresh: bool = True) -> str:
        """Reload (as a person would) until the page's text ``shows`` what is awaited."""
        from selenium.common.exceptions import WebDriverException

        deadline = time.monotonic() + timeout
        while True:
            try:
                text = self.body()
            except WebDriverException:  # the page was replaced while being read (a redirect): read again
                text = ""
            if shows(text):
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.driver.current_url} never showed it; last text:\n{text}")
            time.sleep(0.2)
            if refresh:
                self.driver.refresh()


def cleanup(profile: Path) -> None:
    shutil.rmtree(profile, ignore_errors=True)
