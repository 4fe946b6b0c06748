"""The browser harness itself (tests/console/_browser.py): headless Chromium runs a page's JavaScript, and
:func:`console_errors` reports nothing for a clean page and the error of a page whose script throws."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from tests.console._browser import browser, console_errors  # noqa: F401  (browser is a fixture)

if TYPE_CHECKING:
    from selenium.webdriver.chrome.webdriver import WebDriver

PAGES = {
    "/clean": """<!doctype html><html><head><title>clean</title></head><body>
<p id="out">waiting</p>
<script>
  setTimeout(() => { document.getElementById("out").textContent = "written by " + "JavaScript"; }, 50);
  console.log("a log line is not an error");
</script></body></html>""",
    "/throws": """<!doctype html><html><head><title>throws</title></head><body>
<script>throw new Error("harness-boom");</script></body></html>""",
}


class _Pages(http.server.BaseHTTPRequestHandler):
    """Serves :data:`PAGES`; 404 for anything else."""

    def do_GET(self) -> None:
        page = PAGES.get(self.path)
        if page is None:
            self.send_error(404)
            return
        body = page.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass  # keep the test output quiet


@pytest.fixture()
def site() -> Iterator[str]:
    """The base URL of :data:`PAGES`, served on 127.0.0.1 at an ephemeral port for the test."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Pages)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="test-pages", daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_a_page_runs_and_its_console_errors_are_caught(browser: WebDriver, site: str) -> None:  # noqa: F811
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    assert browser.get_window_size() == {"width": 1400, "height": 900}

    browser.get(site + "/clean")
    WebDriverWait(browser, 10).until(
        lambda d: d.find_element(By.ID, "out").text == "written by JavaScript",
        message="the page's script did not write its text",
    )
    assert console_errors(browser) == []

    # the helper can fail: an uncaught exception is a console error
    browser.get(site + "/throws")
    found: list[str] = []

    def errors_seen(driver: WebDriver) -> bool:
        found.extend(console_errors(driver))  # (each read empties the log: keep what it returns)
        return bool(found)

    WebDriverWait(browser, 10).until(errors_seen, message="the thrown error did not reach the console log")
    assert any("harness-boom" in message for message in found), found
