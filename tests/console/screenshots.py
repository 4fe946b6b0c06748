"""Refresh the README's pictures of the dev console: the arena module on the embedded server with bots
playing, the console open in headless Chromium.

    python -m tests.console.screenshots          # writes docs/console.png and docs/console-calls.png

``docs/console.png`` shows the ``entity`` table changing as the bots move (and the plots above it);
``docs/console-calls.png`` the reducer feed. Needs Chromium and chromedriver (see tests/console/_browser.py).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
ARENA = ROOT / "demos" / "arena" / "module.py"


def main() -> int:
    from selenium.webdriver.common.by import By

    from demos.arena.bots import Bots
    from spacetime_game.server import DevServer
    from tests.console._browser import start_browser

    with DevServer(ARENA, "blackholio") as server:
        bots = Bots(12, server.address, server.database).start()
        driver = start_browser()
        driver.set_window_size(1600, 940)  # room for the activity column beside the table
        try:
            time.sleep(3)  # the bots join and start moving
            driver.get(server.console_url)
            time.sleep(1)
            driver.find_element(By.CSS_SELECTOR, '#table-list li[data-table="entity"]').click()
            time.sleep(6)  # a few pushes: the rows change and light up; the plots fill
            shot = DOCS / "console.png"
            driver.save_screenshot(str(shot))
            print(f"wrote {shot}")
            driver.find_element(By.CSS_SELECTOR, "#tab-calls").click()
            time.sleep(2)
            shot = DOCS / "console-calls.png"
            driver.save_screenshot(str(shot))
            print(f"wrote {shot}")
        finally:
            driver.quit()
            bots.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
