"""Debian's Chromium, headless, driven by selenium through Debian's chromedriver, offline
(selenium never looks for a browser online)."""

import os
from pathlib import Path

CHROMIUM = Path("/usr/lib/chromium/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")


class MissingBrowser(RuntimeError):
    """Chromium, chromedriver or selenium is not installed; the message says how to fix it."""


def chromium(window="1500,900"):
    """A new headless Chromium session (a selenium WebDriver) with a `window` (W,H) window."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        missing.append("the selenium Python package")
    if missing:
        raise MissingBrowser(f"{', '.join(missing)} not installed: run scripts/setup.sh --test")
    os.environ["SE_OFFLINE"] = "true"
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless", "--no-sandbox", "--disable-dev-shm-usage",
                f"--window-size={window}"):
        options.add_argument(arg)
    return webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
