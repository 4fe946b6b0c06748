"""The net overlay: hidden by default and then free, toggled by F3 through the bridge, drawn with the net
stats, the round-trip graph, the loading progress and the connection state."""

from __future__ import annotations

import os
import time
from pathlib import Path
from types import ModuleType

from spacetime_game.engine import NetMonitor
from spacetime_game.pygame import Bridge, Overlay
from spacetime_game.sdk import DbConnection
from spacetime_game.server import DevServer
from tests.engine._scripted import Net

from .conftest import MOVE_MODULE, wait_no_sdk_threads

BACKGROUND = (40, 120, 60)


def panel_pixels(screen: object, area: object) -> int:
    """How many pixels of ``area`` on ``screen`` differ from the background."""
    n = 0
    for x in range(area.left, area.right, 3):  # type: ignore[attr-defined]
        for y in range(area.top, area.bottom, 3):  # type: ignore[attr-defined]
            if tuple(screen.get_at((x, y)))[:3] != BACKGROUND:  # type: ignore[attr-defined]
                n += 1
    return n


def test_the_overlay_draws_and_toggles(pygame: ModuleType, mb: ModuleType) -> None:
    screen = pygame.display.set_mode((480, 360))
    with DevServer(MOVE_MODULE, database="move") as server:
        conn = DbConnection(mb.MODULE, server.address, server.database)
        bridge = Bridge(conn)
        overlay = bridge.overlay
        assert isinstance(overlay, Overlay) and not overlay.visible and overlay.key == pygame.K_F3
        loading_height = overlay.render().get_height()  # before the first tick: connecting, 0%
        try:
            bridge.subscribe(["SELECT * FROM player"])
            deadline = time.monotonic() + 15
            while not bridge.loaded:
                bridge.tick(0.004)
                assert time.monotonic() < deadline
                time.sleep(0.004)
            mb.join(1, "a", 0.0, 0.0, client=conn)
            for i in range(6):  # a few round trips for the graph
                call = mb.move(1, float(i), 0.0, client=conn)
                while not call.done:
                    bridge.tick(0.004)
                    assert time.monotonic() < deadline
                    time.sleep(0.002)
            bridge.tick(0.004)
            readout = bridge.monitors[0].readout
            assert len(readout.rtt_history) >= 6 and readout.rtt_p50_ms is not None
            assert readout.state == "connected"

            # hidden: nothing drawn, nothing rendered
            overlay.renders = 0
            screen.fill(BACKGROUND)
            assert bridge.draw_overlay(screen) is None and overlay.renders == 0
            assert panel_pixels(screen, screen.get_rect()) == 0

            # F3 shows it
            assert bridge.handle(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_F3, mod=0, unicode=""))
            assert overlay.visible
            area = bridge.draw_overlay(screen)
            assert area is not None and area.topleft == (8, 8) and area.width > 200
            assert overlay.renders == 1
            assert panel_pixels(screen, area) > 0.8 * (area.width // 3) * (area.height // 3)
            assert area.height < loading_height  # no loading bar once loaded
            # drawn again at once: the cached panel, not rendered again
            bridge.draw_overlay(screen)
            assert overlay.renders == 1
            if os.environ.get("SPACETIME_GAME_SCREENSHOTS"):
                folder = Path(os.environ["SPACETIME_GAME_SCREENSHOTS"])
                pygame.image.save(screen, str(folder / "overlay.png"))

            # F3 again hides it; other keys are the game's
            assert not bridge.handle(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_F4, mod=0, unicode=""))
            assert bridge.handle(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_F3, mod=0, unicode=""))
            screen.fill(BACKGROUND)
            assert bridge.draw_overlay(screen) is None and panel_pixels(screen, screen.get_rect()) == 0
        finally:
            bridge.close()
        # the closed state and its reason are shown (one more line)
        closed_height = overlay.render().get_height()
        assert closed_height > area.height
        wait_no_sdk_threads()


def test_figures_not_known_yet_show_as_a_dash_not_zero(pygame: ModuleType, mb: ModuleType) -> None:
    """Before the monitor's first rate window is over, the update rate and the bytes per second are
    unknown: the panel shows a dash for them (a zero next to a measured update interval would contradict
    it); once the window is over, the figures."""
    net = Net(mb).connect()
    monitor = NetMonitor(net.conn, clock=net.clock)
    overlay = Overlay(net.driver, monitor, clock=net.clock, visible=True)
    lines = dict(overlay.lines())  # never sampled: nothing known
    assert lines["updates"] == "\u2013/s" and lines["bytes/s"] == "in \u2013   out \u2013"
    assert lines["jitter"] == "\u2013" and "p50 \u2013" in lines["round trip"]

    row = mb.Player(1, "a", 0.0, 0.0, 0.0)
    h = net.subscribe({"player": [row]})
    net.tick()
    monitor.sample()  # the first rate window starts
    for x in (1.0, 2.0, 3.0):  # three updates, a frame apart
        moved = mb.Player(1, "a", x, 0.0, 0.0)
        net.tx(net.update(h, {"player": ([moved], [row])}))
        row = moved
        net.tick(0.05)
        monitor.sample()
    lines = dict(overlay.lines())
    assert monitor.readout.update_interval_ms is not None
    assert lines["updates"].startswith("\u2013/s  (every "), lines["updates"]
    assert "0.0" not in lines["updates"] and "\u2013" in lines["bytes/s"]
    assert overlay.render().get_width() > 0  # the panel renders with unknown figures

    net.tick(1.0)  # the window is over: the figures are known
    monitor.sample()
    lines = dict(overlay.lines())
    assert lines["updates"].startswith("2.6/s  (every "), lines["updates"]  # 3 updates in 1.15 s
    assert "\u2013" not in lines["bytes/s"] and lines["bytes/s"].startswith("in "), lines["bytes/s"]


def test_a_new_state_is_shown_at_once_the_figures_every_refresh(pygame: ModuleType, mb: ModuleType) -> None:
    """The panel is rendered again at most every ``refresh`` seconds for its figures, but at once when
    the connection state changes or the loading ends (a state shown late contradicts the screen)."""
    screen = pygame.Surface((480, 360))
    net = Net(mb)
    monitor = NetMonitor(net.conn, clock=net.clock)
    overlay = Overlay(net.driver, monitor, clock=net.clock, visible=True, refresh=10.0)
    overlay.draw(screen)
    assert overlay.renders == 1 and net.driver.state == "connecting"
    overlay.draw(screen)
    assert overlay.renders == 1  # nothing new, within the refresh
    net.connect()
    assert net.driver.state == "connected"
    overlay.draw(screen)
    assert overlay.renders == 2  # the new state, before the refresh is due
    net.subscribe({"player": [mb.Player(1, "a", 0.0, 0.0, 0.0)]})
    net.tick()
    assert net.driver.loaded
    overlay.draw(screen)
    assert overlay.renders == 3  # the end of the loading
    overlay.draw(screen)
    assert overlay.renders == 3
