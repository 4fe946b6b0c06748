"""The dev console in a real browser (headless Chromium driven by Selenium; issue #15): the page loads with
no console errors, a row a client inserts appears within a second, a reducer called from the form reaches
a connected client, the activity column beside the table shows calls and clients, and a private table is shown to the owner and refused to anyone else."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from spacetime_game.sdk import DbConnection
from spacetime_game.server import DevServer
from tests.console._browser import browser, console_errors  # noqa: F401  (browser is a fixture)
from tests.server.test_console import MODULE as PRIVATE

ROOT = Path(__file__).resolve().parents[2]
CHAT = ROOT / "demos" / "chat" / "module.py"


def wait_for(what: str, check: Any, seconds: float = 5.0, every: float = 0.05) -> Any:
    """Poll ``check()`` until it returns something true; AssertionError naming ``what`` after ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {seconds} s")
        time.sleep(every)


def css(driver: Any, selector: str) -> list[Any]:
    from selenium.webdriver.common.by import By

    return driver.find_elements(By.CSS_SELECTOR, selector)  # type: ignore[no-any-return]


def open_console(driver: Any, server: DevServer) -> None:
    driver.get(server.console_url)
    wait_for(
        "the console's socket is live",
        lambda: "live" in (css(driver, "#ws-status") or [None])[0].text.lower(),
    )


@pytest.fixture()
def chat() -> Iterator[DevServer]:
    with DevServer(CHAT, "quickstart-chat") as server:
        yield server


def bindings_of(module: Path, folder: Path, name: str) -> Any:
    """Generate the bindings of ``module`` as package ``name`` in ``folder`` and import them."""
    import importlib
    import sys

    from spacetime_game.codegen import write_package
    from spacetime_game.sdk.schema import ModuleSchema
    from spacetime_game.server import load_module

    write_package(ModuleSchema.from_json(load_module(module).schema_json()), folder / name, module.name)
    sys.path.insert(0, str(folder))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(folder))


def test_rows_calls_and_the_reducer_form_live(browser: Any, chat: DevServer, tmp_path: Path) -> None:  # noqa: F811
    mb = bindings_of(CHAT, tmp_path, "console_chat_bindings")
    player = DbConnection(mb.MODULE, chat.address, chat.database)
    seen: list[str] = []
    player.on_row("message", "insert", lambda row, ev: seen.append(row.text))
    player.connect()
    wait_for("the player connects", lambda: (player.update(), player.state == "connected")[1])
    player.subscribe_multi(["SELECT * FROM message", "SELECT * FROM user"])
    try:
        open_console(browser, chat)
        assert wait_for("the table list", lambda: css(browser, '#table-list li[data-table="message"]'))
        css(browser, '#table-list li[data-table="message"]')[0].click()
        # a row a client inserts appears within a second
        player.call_reducer(
            "send_message", mb.MODULE.reducer("send_message").encode_args(("hello from the game",))
        )
        t0 = time.monotonic()
        wait_for(
            "the inserted row on the page",
            lambda: any("hello from the game" in r.text for r in css(browser, "#table-view tr[data-row]")),
            seconds=3,
        )
        assert time.monotonic() - t0 < 1.0 + 0.5  # (0.5 s: the polling and the browser's own time)
        player.update()
        # beside the table, the activity column has the call and the client
        assert player.identity is not None
        wait_for(
            "the call in the activity column",
            lambda: any("send_message" in li.text for li in css(browser, "#act-calls li")),
        )
        short = str(player.identity)[:8]
        wait_for("the client in the activity column", lambda: short in css(browser, "#act-clients")[0].text)
        # the reducer form: a call made from the console reaches the connected client
        css(browser, "#tab-call")[0].click()
        from selenium.webdriver.support.ui import Select

        Select(css(browser, "#call-reducer")[0]).select_by_value("send_message")
        field = wait_for("the text field", lambda: css(browser, '#call-form [name="arg-text"]'))[0]
        field.clear()
        field.send_keys("sent from the console")
        css(browser, "#call-submit")[0].click()
        wait_for("the call's outcome", lambda: "committed" in css(browser, "#call-result")[0].text.lower())
        wait_for("the client got the row", lambda: (player.update(), "sent from the console" in seen)[1])
        # the calls feed shows both calls
        css(browser, "#tab-calls")[0].click()
        wait_for(
            "two calls in the feed",
            lambda: len(css(browser, '#calls-feed tr[data-reducer="send_message"]')) >= 2,
        )
        # and the client in the clients tab
        css(browser, "#tab-clients")[0].click()
        wait_for("the client", lambda: css(browser, f'#clients-table tr[data-identity="{player.identity}"]'))
        assert console_errors(browser) == []
    finally:
        player.close()


def test_a_private_table_is_the_owners_only(browser: Any, tmp_path: Path) -> None:  # noqa: F811
    module = tmp_path / "module.py"
    module.write_text(PRIVATE)  # (the server tests' module: a public note, a private secret)
    with DevServer(module, "private-test") as server:
        import urllib.request

        req = urllib.request.Request(
            server.url + "/v1/database/private-test/call/add", data=b'[1, "the treasure is under the tree"]'
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            assert resp.status == 200
        # a browser that did not follow the link: the page says where the link is, the API refuses
        browser.get(server.url + "/")
        assert "console link" in browser.find_element("tag name", "body").text
        status = browser.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "fetch('/_console/api/table/secret').then(r => done(r.status), e => done(String(e)));"
        )
        assert status == 403
        # the owner, signed in by the link, sees the private table and its rows
        open_console(browser, server)
        item = wait_for("the private table", lambda: css(browser, '#table-list li[data-table="secret"]'))[0]
        item.click()
        wait_for(
            "the secret row",
            lambda: any(
                "THE TREASURE IS UNDER THE TREE" in r.text for r in css(browser, "#table-view tr[data-row]")
            ),
        )
