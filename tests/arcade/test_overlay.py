"""The net overlay of an arcade window: hidden it costs nothing (no sampling, no drawing); F3 shows it;
it shows the state, the rates and round trips of a real connection, a round-trip graph and the loading
progress, drawn on a translucent panel over the game (read back as pixels); F3 hides it again."""

from __future__ import annotations

import os
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest

from spacetime_game.sdk import ConnectionId, DbConnection, Identity
from spacetime_game.sdk.testing import ScriptedServer
from spacetime_game.server import DevServer
from tests.engines._support import open_arcade_window

from ._helpers import QUERIES, StepClock, adapter, frame, pixel, pump
from .conftest import MOVE_MODULE

W, H = 420, 260
BACKGROUND = (235, 238, 245, 255)


@pytest.fixture
def sga() -> ModuleType:
    return adapter()


@pytest.fixture
def window(sga: ModuleType, mb: ModuleType) -> Iterator[Any]:
    with DevServer(MOVE_MODULE, database="move") as server:
        conn = DbConnection(mb.MODULE, server.address, server.database)
        win = open_arcade_window(sga.Window, W, H, client=conn)
        try:
            yield win
        finally:
            win.close()


def press(win: Any, key: int) -> None:
    win.dispatch_event("on_key_press", key, 0)
    win.dispatch_events()


def test_the_overlay_toggles_with_f3_and_shows_the_net_stats(window: Any, mb: ModuleType) -> None:
    import arcade

    net = window.net
    overlay = net.overlay
    players = net.sprites(mb.Player, lambda row, c: window_sprite(row))
    net.subscribe(QUERIES)
    pump(window, lambda: net.driver.loaded, "the subscription")
    assert not overlay.visible

    # hidden: the frames neither sample the stats nor draw the overlay
    sampled_at = net.monitor.readout.at
    for _ in range(5):
        frame(window)
        window.flip()
    assert overlay.draws == 0 and net.monitor.readout.at == sampled_at

    press(window, arcade.key.F3)
    assert overlay.visible
    calls = [mb.join(i, f"p{i}", 40.0 + 30 * i, 40.0, client=net.client) for i in range(8)]
    pump(window, lambda: all(c.done for c in calls) and len(players) == 8, "the joins")
    for _ in range(3):
        frame(window)
    lines = {label: (value, colour) for label, value, colour in overlay.lines()}
    assert lines["●"][0] == "connected"
    assert (
        lines["rtt"][0].startswith("p50 ") and "p95 " in lines["rtt"][0] and "\u2013" not in lines["rtt"][0]
    )
    assert "loading" not in lines
    assert {"updates", "buffer", "backlog", "net"} <= set(lines)
    assert len(net.monitor.readout.rtt_history) == 8

    window.clear(color=BACKGROUND)
    players.draw()
    draws = overlay.draws
    overlay.draw()
    assert overlay.draws == draws + 1
    image = arcade.get_image(0, 0, W, H)
    shot = os.environ.get("SPACETIME_GAME_SCREENSHOTS")
    if shot:
        image.save(os.path.join(shot, "arcade_overlay.png"))
    left, _, _, top = overlay.bounds
    inside = pixel(image, H, left + 3, top - 3)
    assert sum(inside[:3]) < 200, f"the panel is dark over a light game: {inside}"
    assert pixel(image, H, W - 3, 3) == BACKGROUND, "outside the panel the game shows"
    # text: bright pixels on the panel
    crop = image.crop((int(left), int(H - top), int(left + 200), int(H - top + 60))).convert("L")
    assert max(crop.getdata()) > 180, "no text on the panel"

    window.flip()
    assert overlay.draws == draws + 2, "the window draws the shown overlay on top of each frame"
    press(window, arcade.key.F3)
    assert not overlay.visible
    window.flip()
    assert overlay.draws == draws + 2


def test_the_overlay_shows_loading_and_the_reason_of_a_failure(sga: ModuleType, mb: ModuleType) -> None:
    conn = DbConnection(mb.MODULE, "127.0.0.1:9", "nowhere", reconnect=False)
    win = open_arcade_window(sga.Window, W, H, client=conn, overlay=True)
    try:
        lines = win.net.overlay.lines()
        assert lines[0][1] == "connecting" and ("loading", "  0 %") in [line[:2] for line in lines]
        pump(win, lambda: win.net.driver.state in ("failed", "closed"), "the failure")
        state, reason = win.net.driver.state, win.net.driver.reason
        head = win.net.overlay.lines()[0]
        assert reason and "refused" in reason
        assert head[1] == state
        why = [value for label, value, _ in win.net.overlay.lines()[1:3]]
        assert " ".join(why).startswith(reason[:20]), why
        win.clear()
        win.net.overlay.draw()
    finally:
        win.close()


def window_sprite(row: Any) -> Any:
    import spacetime_game.arcade as sga

    palette = [(110, 210, 140), (104, 180, 255), (240, 160, 80), (230, 110, 150)]
    return sga.circle_sprite(12, palette[row.id % 4], outline=(255, 255, 255))


def test_figures_not_known_yet_show_as_a_dash_not_zero(sga: ModuleType, mb: ModuleType) -> None:
    """Until the first rate window of the stats is over, the update rate and the bytes per second are
    unknown: the overlay shows a dash for them, not a zero; then the figures."""
    server = ScriptedServer()
    conn = DbConnection(mb.MODULE, "localhost:3000", "db", transport_factory=server)
    clock = StepClock(0.05)
    win = open_arcade_window(sga.Window, W, H, client=conn, overlay=True, clock=clock)
    try:
        frame(win, clock)  # the driver connects
        server.greet(Identity.from_int(1), ConnectionId.from_int(1), "token")
        pump(win, lambda: conn.is_connected, "the connection", clock=clock)
        lines = {label: value for label, value, _ in win.net.overlay.lines()}
        assert win.net.monitor is not None and win.net.monitor.readout.at > 0, "not sampled"
        assert lines["updates"].strip() == "\u2013/s", lines["updates"]
        assert lines["net"] == "\u2193 \u2013  \u2191 \u2013", lines["net"]
        win.clear()
        win.net.overlay.draw()  # it draws with unknown figures

        clock.now += 1.0  # the first window is over
        frame(win, clock)
        lines = {label: value for label, value, _ in win.net.overlay.lines()}
        assert lines["updates"].strip() == "0.0/s", lines["updates"]
        assert "\u2013" not in lines["net"] and lines["net"].endswith(" B/s"), lines["net"]
    finally:
        win.close()


def test_a_new_state_is_shown_at_once_the_figures_every_refresh(sga: ModuleType, mb: ModuleType) -> None:
    """The texts are rewritten at most every ``refresh`` seconds for the figures, but at once when the
    connection state changes (a state shown late contradicts the screen)."""
    server = ScriptedServer()
    conn = DbConnection(mb.MODULE, "localhost:3000", "db", transport_factory=server)
    clock = StepClock(0.001)  # far below the refresh
    win = open_arcade_window(sga.Window, W, H, client=conn, overlay=True, clock=clock)
    try:
        overlay = win.net.overlay
        overlay.refresh = 10.0
        frame(win, clock)  # the driver connects
        win.net.overlay.draw()
        assert overlay._lines[0][1] == "connecting"
        server.greet(Identity.from_int(1), ConnectionId.from_int(1), "token")
        pump(win, lambda: conn.is_connected, "the connection", clock=clock)
        overlay.draw()
        assert overlay._lines[0][1] == "connected"
    finally:
        win.close()
