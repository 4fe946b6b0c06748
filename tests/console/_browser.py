"""A real browser for the tests: headless Chromium driven by Selenium.

The browser and its driver are the system's (Debian: ``apt-get install chromium chromium-driver``; ``.ci/run``
installs them), found by :func:`chromium_paths`, or wherever ``CHROMIUM_BINARY`` and ``CHROMEDRIVER`` say.
Both paths are handed to Selenium, so Selenium Manager is never asked to find or download anything.

A test module takes the fixture by importing it::

    from tests.console._browser import browser, console_errors  # noqa: F401  (browser is a fixture)

and then asserts on the page, e.g. that it loaded with no errors in the browser's console::

    def test_page(browser: WebDriver) -> None:  # noqa: F811
        browser.get(url)
        ...
        assert console_errors(browser) == []

Where Chromium, chromedriver or selenium is missing the test skips, naming the install step; in CI
(``CI=true``) it fails instead (:func:`tests.engines._support.unavailable`).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pytest

from tests.engines._support import unavailable

if TYPE_CHECKING:
    from selenium.webdriver.chrome.webdriver import WebDriver

#: The browser window's size (outer size: headless Chromium's viewport is somewhat shorter).
WINDOW_SIZE = (1400, 900)

#: How to get what the fixture needs, for the skip (or CI failure) message.
INSTALL_HINT = (
    "run `apt-get install chromium chromium-driver` (Debian) and `pip install -e '.[dev]'` (selenium), "
    "or set CHROMIUM_BINARY and CHROMEDRIVER to a Chromium and its matching chromedriver"
)

#: Chromium's command-line flags.
CHROMIUM_FLAGS = (
    # the new headless mode: the real browser without a window
    "--headless=new",
    # the sandbox refuses to start as root (CI containers) and where user namespaces are off; the tests
    # load only their own local pages
    "--no-sandbox",
    # a container's /dev/shm is often tiny (Docker: 64 MB); shared memory goes to /tmp instead
    "--disable-dev-shm-usage",
    # no GPU headless; WebGL still works, in software
    "--disable-gpu",
    f"--window-size={WINDOW_SIZE[0]},{WINDOW_SIZE[1]}",
)

_CHROMIUM_NAMES = ("chromium", "chromium-browser")
_CHROMIUM_FALLBACKS = ("/usr/bin/chromium", "/usr/lib/chromium/chromium")
_CHROMEDRIVER_NAMES = ("chromedriver",)
_CHROMEDRIVER_FALLBACKS = ("/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver")


def _find(env: str, names: tuple[str, ...], fallbacks: tuple[str, ...]) -> str | None:
    """The executable named by the environment variable ``env`` when it is set (nothing else then), else
    the first of ``names`` on ``PATH``, else the first of ``fallbacks`` that is executable."""
    wanted = os.environ.get(env, "").strip()
    if wanted:
        return shutil.which(wanted)
    for candidate in (*names, *fallbacks):
        found = shutil.which(candidate)
        if found:
            return found
    return None


def chromium_paths() -> tuple[str, str] | None:
    """``(chromium, chromedriver)``: the paths of the Chromium binary and of its chromedriver, or ``None``
    when either is missing.

    ``CHROMIUM_BINARY`` and ``CHROMEDRIVER``, when set, name them (a path, or a name on ``PATH``); else
    the Debian names are looked for on ``PATH`` and at their Debian paths.
    """
    binary = _find("CHROMIUM_BINARY", _CHROMIUM_NAMES, _CHROMIUM_FALLBACKS)
    driver = _find("CHROMEDRIVER", _CHROMEDRIVER_NAMES, _CHROMEDRIVER_FALLBACKS)
    if binary is None or driver is None:
        return None
    return binary, driver


def start_browser() -> WebDriver:
    """A headless Chromium (a Selenium ``webdriver.Chrome``), its window 1400x900, recording the browser's
    console for :func:`console_errors`; the caller quits it. Skips (fails in CI) when selenium, Chromium or
    chromedriver is missing, and fails when they are there but the browser does not start."""
    try:
        from selenium import webdriver
        from selenium.common.exceptions import WebDriverException
    except ImportError as exc:
        unavailable(f"selenium is not installed ({exc}); {INSTALL_HINT}")
    paths = chromium_paths()
    if paths is None:
        unavailable(f"Chromium or chromedriver not found; {INSTALL_HINT}")
    binary, driver_path = paths
    # Selenium Manager is skipped when the driver's path is given; should it run anyway, it stays offline
    os.environ.setdefault("SE_OFFLINE", "true")

    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = webdriver.ChromeService(executable_path=driver_path)
    try:
        return webdriver.Chrome(service=service, options=options)
    except WebDriverException as exc:
        # installed but broken (e.g. a chromedriver that does not match the browser): a failure, not a skip
        pytest.fail(f"Chromium ({binary}, with {driver_path}) did not start: {exc.msg}", pytrace=False)


@pytest.fixture()
def browser() -> Iterator[WebDriver]:
    """A browser from :func:`start_browser` for one test, quit after it however the test ends."""
    driver = start_browser()
    try:
        yield driver
    finally:
        driver.quit()


def _browser_favicon_miss(entry: dict[str, object]) -> bool:
    """Whether a log entry is the browser's own request for ``/favicon.ico`` failing (every page that
    names no icon makes it, after loading)."""
    message = str(entry.get("message", ""))
    url = message.split(" ", 1)[0]
    return entry.get("source") == "network" and urlsplit(url).path == "/favicon.ico"


def console_errors(driver: WebDriver, *, ignore_favicon: bool = True) -> list[str]:
    """The messages of the ``SEVERE`` entries of the browser console log: uncaught exceptions,
    ``console.error`` calls, failed requests.

    Reading the log empties it: a second call returns only what was logged since the first. Entries
    arrive asynchronously, so wait for what the page does (``WebDriverWait``) before calling this. The
    failure of the browser's automatic ``/favicon.ico`` request, which the page did not ask for, is left
    out unless ``ignore_favicon`` is false.
    """
    # (selenium leaves get_log unannotated: a list of dicts with level, message, source and timestamp)
    entries: list[dict[str, object]] = driver.get_log("browser")  # type: ignore[no-untyped-call]
    return [
        str(entry.get("message", ""))
        for entry in entries
        if entry.get("level") == "SEVERE" and not (ignore_favicon and _browser_favicon_miss(entry))
    ]
