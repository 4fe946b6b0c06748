"""A network debug overlay for pygame: the net stats of a :class:`~spacetime_game.engine.NetMonitor`, a
small round-trip graph, the loading progress and the reconnect state, drawn onto any surface and toggled
by a key (F3 by default). Hidden, it costs one attribute test per frame; shown, its text is rendered a few
times a second into a cached panel that is blitted each frame."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final

import pygame

from spacetime_game.engine import FrameDriver, NetMonitor, NetReadout

__all__ = ["Overlay"]

# the palette: a dark slate panel, light text, muted labels, and one colour per connection state
PANEL: Final = (18, 22, 32, 218)
BORDER: Final = (70, 82, 104)
TEXT: Final = (226, 231, 240)
LABEL: Final = (140, 152, 172)
GOOD: Final = (96, 214, 146)
WARN: Final = (242, 192, 86)
BAD: Final = (240, 102, 102)
IDLE: Final = (150, 150, 160)
GRAPH: Final = (102, 190, 255)
GRAPH_BG: Final = (30, 36, 50)
BAR: Final = (102, 190, 255)

_STATE_COLOUR: Final = {
    "connected": GOOD,
    "connecting": WARN,
    "reconnecting": WARN,
    "idle": WARN,
    "failed": BAD,
    "closed": IDLE,
}

WIDTH: Final = 292
PAD: Final = 10
GRAPH_H: Final = 44


#: What a figure not known yet shows (an en dash), never a zero.
NONE: Final = "\u2013"


def _ms(v: float | None) -> str:
    return NONE if v is None else f"{v:.0f} ms" if v >= 10 else f"{v:.1f} ms"


def _bytes(v: float | None) -> str:
    if v is None:
        return NONE
    if v >= 1_000_000:
        return f"{v / 1_000_000:.1f} MB"
    if v >= 1_000:
        return f"{v / 1_000:.1f} kB"
    return f"{v:.0f} B"


class Overlay:
    """The net overlay of a driver and a monitor (the :class:`Bridge` makes one: ``bridge.overlay``).

    :meth:`handle` toggles it on ``key`` (default ``pygame.K_F3``); :meth:`draw` draws it at
    ``position`` (top left corner) when :attr:`visible`. The text is refreshed every ``refresh``
    seconds. ``font_size`` is in pixels; the font is pygame's default (always available, anti-aliased).
    """

    def __init__(
        self,
        driver: FrameDriver,
        monitor: NetMonitor,
        *,
        key: int | None = pygame.K_F3,
        visible: bool = False,
        position: tuple[int, int] = (8, 8),
        refresh: float = 0.25,
        font_size: int = 18,
        title: str = "network",
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.driver = driver
        self.monitor = monitor
        self._shown: tuple[str, bool] | None = None  # the state and loaded flag the panel shows
        #: The key that toggles the overlay (None: no key).
        self.key = key
        #: Whether :meth:`draw` draws.
        self.visible = visible
        self.position = position
        self.refresh = refresh
        self.font_size = font_size
        self.title = title
        self.clock = clock
        self._font: pygame.font.Font | None = None
        self._panel: pygame.Surface | None = None
        self._drawn_at = -1e9
        #: How many times the panel was rendered (its text is cached in between).
        self.renders = 0

    def handle(self, event: pygame.event.Event) -> bool:
        """Toggle on a KEYDOWN of :attr:`key`; True if the event was that."""
        if self.key is not None and event.type == pygame.KEYDOWN and event.key == self.key:
            self.toggle()
            return True
        return False

    def toggle(self) -> bool:
        """Show or hide the overlay; returns whether it is now visible."""
        self.visible = not self.visible
        self._drawn_at = -1e9  # fresh figures when it appears
        return self.visible

    def draw(self, surface: pygame.Surface) -> pygame.Rect | None:
        """Draw the overlay on ``surface`` if visible; returns the area drawn (None when hidden)."""
        if not self.visible:
            return None
        now = self.clock()
        # the figures every refresh; a new state (or the end of the loading) at once
        shown = (self.driver.state, self.driver.loaded)
        if self._panel is None or now - self._drawn_at >= self.refresh or shown != self._shown:
            self._drawn_at = now
            self._shown = shown
            self._panel = self.render()
        return surface.blit(self._panel, self.position)

    # ----- rendering ---------------------------------------------------------------------------------
    def _text(self, text: str, colour: tuple[int, int, int]) -> pygame.Surface:
        if self._font is None:
            if not pygame.font.get_init():
                pygame.font.init()
            self._font = pygame.font.Font(None, self.font_size)
        return self._font.render(text, True, colour)

    def lines(self, readout: NetReadout | None = None) -> list[tuple[str, str]]:
        """The figures the panel shows, as (label, value) lines, from ``readout`` (default: the
        monitor's). A figure not known yet (no complete rate window, no round trip...) shows as an en
        dash, never as zero."""
        r = self.monitor.readout if readout is None else readout
        interval = "" if r.update_interval_ms is None else f"  (every {_ms(r.update_interval_ms)})"
        rate = f"{NONE}/s" if r.updates_per_s is None else f"{r.updates_per_s:.1f}/s"
        return [
            ("updates", f"{rate}{interval}"),
            ("jitter", _ms(r.jitter_ms)),
            ("buffer", _ms(r.buffer_depth_ms)),
            ("round trip", f"p50 {_ms(r.rtt_p50_ms)}   p95 {_ms(r.rtt_p95_ms)}"),
            ("backlog", f"{r.backlog} msgs   {r.calls_in_flight} calls"),
            ("bytes/s", f"in {_bytes(r.bytes_in_per_s)}   out {_bytes(r.bytes_out_per_s)}"),
            ("reconnects", str(r.reconnects)),
        ]

    def render(self) -> pygame.Surface:
        """Render the panel now (what :meth:`draw` blits; it calls this every ``refresh`` seconds)."""
        self.renders += 1
        r = self.monitor.readout
        driver = self.driver
        state, reason, progress = driver.state, driver.reason, driver.progress
        line_h = self._text("Ag", TEXT).get_height() + 3
        lines = self.lines(r)
        rows = len(lines) + 1  # the title
        if reason:
            rows += 1
        loading = progress < 1.0 and state != "closed"
        height = PAD + rows * line_h + (line_h + 4 if loading else 0) + GRAPH_H + line_h + PAD
        panel = pygame.Surface((WIDTH, height), pygame.SRCALPHA)
        pygame.draw.rect(panel, PANEL, panel.get_rect(), border_radius=8)
        pygame.draw.rect(panel, BORDER, panel.get_rect(), width=1, border_radius=8)

        y = PAD
        colour = _STATE_COLOUR.get(state, IDLE)
        panel.blit(self._text(self.title.upper(), LABEL), (PAD, y))
        status = self._text(state, colour)
        sx = WIDTH - PAD - status.get_width()
        panel.blit(status, (sx, y))
        dot_y = y + status.get_height() // 2
        pygame.draw.circle(panel, colour, (sx - 9, dot_y), 4)
        y += line_h
        if reason:
            text = reason if len(reason) <= 40 else reason[:39] + "\u2026"
            panel.blit(self._text(text, colour), (PAD, y))
            y += line_h
        if loading:
            panel.blit(self._text(f"loading {progress:.0%}", TEXT), (PAD, y))
            bar = pygame.Rect(PAD + 96, y + 3, WIDTH - 2 * PAD - 96, line_h - 8)
            pygame.draw.rect(panel, GRAPH_BG, bar, border_radius=4)
            fill = bar.copy()
            fill.width = max(2, int(bar.width * progress))
            pygame.draw.rect(panel, BAR, fill, border_radius=4)
            y += line_h + 4
        for label, value in lines:
            panel.blit(self._text(label, LABEL), (PAD, y))
            panel.blit(self._text(value, TEXT), (PAD + 96, y))
            y += line_h
        y += 2
        self._graph(panel, pygame.Rect(PAD, y, WIDTH - 2 * PAD, GRAPH_H), r)
        y += GRAPH_H + 2
        panel.blit(self._text(f"round trips, last {len(r.rtt_history)}", LABEL), (PAD, y))
        return panel

    def _graph(self, panel: pygame.Surface, area: pygame.Rect, r: NetReadout) -> None:
        pygame.draw.rect(panel, GRAPH_BG, area, border_radius=4)
        history = r.rtt_history
        if len(history) < 2:
            return
        top = max(10.0, max(history) * 1.15)
        if r.rtt_p50_ms is not None:  # a guide line at the median
            gy = area.bottom - 2 - int((area.height - 4) * r.rtt_p50_ms / top)
            pygame.draw.line(panel, BORDER, (area.left + 2, gy), (area.right - 3, gy))
        n = len(history)
        step = (area.width - 4) / max(1, (history.maxlen or n) - 1)
        x0 = area.right - 2 - step * (n - 1)
        points = [
            (x0 + i * step, area.bottom - 2 - (area.height - 4) * v / top) for i, v in enumerate(history)
        ]
        pygame.draw.aalines(panel, GRAPH, False, points)
