"""The net debug overlay of an arcade window: the engine's net stats as text in one pyglet Batch, a
small round-trip graph, the loading progress and the connection state, on a translucent panel.

Hidden, it costs nothing (the window skips it). Shown, the texts are refreshed a few times a second
(only those whose value changed: a text's layout is the expensive part) and the panel, graph and bar
are a handful of shape draws per frame.
"""

from __future__ import annotations

import logging
import textwrap
from typing import TYPE_CHECKING, Final

import arcade
import pyglet

if TYPE_CHECKING:
    from ._window import NetBridge

__all__ = ["NetOverlay"]

log = logging.getLogger("spacetime_game.arcade")

# a calm palette: a dark slate panel, soft white text, state colours that read at a glance
PANEL: Final = (16, 20, 30, 215)
EDGE: Final = (120, 140, 180, 70)
TEXT: Final = (226, 232, 244, 255)
DIM: Final = (138, 150, 176, 255)
GOOD: Final = (112, 214, 150, 255)
WARN: Final = (240, 190, 92, 255)
BAD: Final = (238, 104, 104, 255)
GRAPH: Final = (104, 180, 255, 255)
GRAPH_FILL: Final = (104, 180, 255, 40)
P95_LINE: Final = (240, 190, 92, 150)
BAR_BACK: Final = (52, 60, 80, 255)

_STATE_COLOURS: Final = {
    "connected": GOOD,
    "connecting": WARN,
    "reconnecting": WARN,
    "failed": BAD,
    "closed": DIM,
}

FONT_FILE: Final = ":system:fonts/ttf/Liberation/Liberation_Mono_Regular.ttf"
FONT_NAME: Final = "Liberation Mono"

#: What a figure not known yet shows (an en dash).
NONE: Final = "\u2013"

_font_loaded = False


def _load_font() -> str | tuple[str, ...]:
    """The overlay's monospaced font (arcade ships Liberation Mono), loaded once."""
    global _font_loaded
    if not _font_loaded:
        try:
            arcade.load_font(FONT_FILE)
        except Exception:  # a missing resource must not break the game: fall back to a system font
            log.warning("could not load %s for the net overlay; using a system font", FONT_FILE)
        _font_loaded = True
    return (FONT_NAME, "DejaVu Sans Mono", "Courier New", "monospace")


def _ms(value: float | None) -> str:
    return NONE if value is None else f"{value:.0f} ms"


def _rate(bytes_per_s: float | None) -> str:
    if bytes_per_s is None:
        return NONE
    if bytes_per_s >= 1e6:
        return f"{bytes_per_s / 1e6:.1f} MB/s"
    if bytes_per_s >= 1e3:
        return f"{bytes_per_s / 1e3:.1f} kB/s"
    return f"{bytes_per_s:.0f} B/s"


class NetOverlay:
    """The debug overlay of a :class:`~spacetime_game.arcade.Window` (``window.net.overlay``), toggled
    with F3: connection state (and why it is down), updates per second and their jitter, the
    interpolation buffer's depth, reducer round trips (p50/p95, with a graph of the latest), the backlog,
    bytes per second each way, and the loading progress of the first subscription.

    ``corner`` is where it sits (``"top_left"``, ``"top_right"``, ``"bottom_left"``,
    ``"bottom_right"``); ``refresh`` how often (seconds) its texts are rewritten.
    """

    WIDTH: Final = 300
    LINE: Final = 17
    PAD: Final = 10
    GRAPH_H: Final = 46

    def __init__(self, net: NetBridge, *, corner: str = "top_left", refresh: float = 0.25) -> None:
        self.net = net
        #: Whether it is drawn.
        self.visible = False
        self.corner = corner
        self.refresh = refresh
        #: How many times it was drawn (for tests and curiosity).
        self.draws = 0
        self._batch: pyglet.graphics.Batch | None = None
        self._labels: list[arcade.Text] = []
        self._values: list[arcade.Text] = []
        self._title: arcade.Text | None = None
        self._last_refresh = -1e9
        self._shown: tuple[str, bool] | None = None  # the state and loaded flag the panel shows
        self._lines: list[tuple[str, str, tuple[int, int, int, int]]] = []
        self._origin: tuple[float, float] = (0.0, 0.0)
        self._height = 0.0

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """Where the panel was last drawn, in window pixels: (left, right, bottom, top)."""
        left, top = self._origin
        return (left, left + self.WIDTH, top - self._height, top)

    def toggle(self) -> bool:
        """Show it if hidden, hide it if shown; returns whether it is now shown."""
        self.visible = not self.visible
        if self.visible:
            self.net.sample()
            self._last_refresh = -1e9
        return self.visible

    # ----- content ------------------------------------------------------------------------------------
    def lines(self) -> list[tuple[str, str, tuple[int, int, int, int]]]:
        """What the overlay shows now, as (label, value, colour) lines (the first is the state). A figure
        not known yet (no complete rate window, no round trip...) shows as an en dash, never as zero."""
        driver = self.net.driver
        monitor = self.net.monitor
        state = driver.state
        reason = driver.reason
        out: list[tuple[str, str, tuple[int, int, int, int]]] = []
        colour = _STATE_COLOURS.get(state, TEXT)
        out.append(("●", state, colour))
        if reason is not None and state != "connected":  # why it is down, wrapped onto two lines
            for i, part in enumerate(textwrap.wrap(reason, 28, max_lines=2, placeholder=" …")):
                out.append(("why" if i == 0 else "", part, colour))
        if monitor is not None:
            r = monitor.readout
            jitter = "" if r.jitter_ms is None else f" ±{r.jitter_ms:.0f}"
            interval = "" if r.update_interval_ms is None else f"  {r.update_interval_ms:.0f}{jitter} ms"
            rate = f"{NONE:>5}/s" if r.updates_per_s is None else f"{r.updates_per_s:5.1f}/s"
            out.append(("updates", f"{rate}{interval}", TEXT))
            moving = any(t.interpolator.moving for t in self.net.tables if t.interpolator is not None)
            if not moving or r.buffer_depth_ms is None:
                out.append(("buffer", "idle (nothing moving)", DIM))
            else:  # below zero the buffer ran dry: entities are extrapolated or held
                out.append(("buffer", _ms(r.buffer_depth_ms), TEXT if r.buffer_depth_ms >= 0 else WARN))
            out.append(("rtt", f"p50 {_ms(r.rtt_p50_ms)}  p95 {_ms(r.rtt_p95_ms)}", TEXT))
            out.append(("backlog", f"{r.backlog}  in flight {r.calls_in_flight}", TEXT))
            out.append(("net", f"↓ {_rate(r.bytes_in_per_s)}  ↑ {_rate(r.bytes_out_per_s)}", TEXT))
            if r.reconnects:
                out.append(("reconn.", str(r.reconnects), WARN))
        if not driver.loaded:
            out.append(("loading", f"{100.0 * driver.progress:3.0f} %", WARN))
        return out

    # ----- drawing ------------------------------------------------------------------------------------
    def _layout(self, n: int) -> None:
        """(Re)build the Text objects for ``n`` lines in one batch."""
        font = _load_font()
        self._batch = batch = pyglet.graphics.Batch()
        self._labels = []
        self._values = []
        for _ in range(n):
            self._labels.append(arcade.Text("", 0, 0, DIM, 11, font_name=font, batch=batch))
            self._values.append(arcade.Text("", 0, 0, TEXT, 11, font_name=font, batch=batch))

    def _place(self) -> None:
        window = self.net.window
        w, h = window.width, window.height
        n = len(self._lines)
        height = self.PAD * 2 + n * self.LINE + self.GRAPH_H + 8
        left = self.PAD if "left" in self.corner else w - self.WIDTH - self.PAD
        top = h - self.PAD if "top" in self.corner else self.PAD + height
        self._origin = (left, top)
        self._height = height
        y = top - self.PAD - 12
        for i in range(n):
            label, value = self._labels[i], self._values[i]
            if i == 0:  # the state line: a coloured dot, then the state in its colour
                label.position = (left + self.PAD, y)
                value.position = (left + self.PAD + 18, y)
            else:
                label.position = (left + self.PAD, y)
                value.position = (left + self.PAD + 72, y)
            y -= self.LINE

    def _refresh(self) -> None:
        lines = self.lines()
        if self._batch is None or len(lines) != len(self._labels):
            self._layout(len(lines))
            self._lines = []
        changed = len(lines) != len(self._lines)
        for i, (label, value, colour) in enumerate(lines):
            old = self._lines[i] if i < len(self._lines) else None
            if old == (label, value, colour):
                continue
            lt, vt = self._labels[i], self._values[i]
            if lt.text != label:
                lt.text = label
            if vt.text != value:
                vt.text = value
            lt.color = colour if i == 0 else DIM
            vt.color = colour
        self._lines = lines
        if changed or self._origin == (0.0, 0.0):
            self._place()

    def draw(self) -> None:
        """Draw it now (the Window does, on top of each frame, while it is shown), in window pixels."""
        net = self.net
        window = net.window
        now = net.driver.clock()
        # the figures every refresh; a new state (or the end of the loading) at once
        shown = (net.driver.state, net.driver.loaded)
        if now - self._last_refresh >= self.refresh or self._batch is None or shown != self._shown:
            self._last_refresh = now
            self._shown = shown
            self._refresh()
            self._place()
        with window.default_camera.activate():
            left, top = self._origin
            bottom = top - self._height
            right = left + self.WIDTH
            arcade.draw_lrbt_rectangle_filled(left, right, bottom, top, PANEL)
            arcade.draw_lrbt_rectangle_outline(left, right, bottom, top, EDGE, 1)
            self._draw_graph(
                left + self.PAD, right - self.PAD, bottom + self.PAD, bottom + self.PAD + self.GRAPH_H
            )
            self._draw_progress(left + self.PAD, right - self.PAD, bottom + self.PAD + self.GRAPH_H + 4)
            assert self._batch is not None
            self._batch.draw()
        self.draws += 1

    def _draw_graph(self, left: float, right: float, bottom: float, top: float) -> None:
        """The latest round trips as a filled line, scaled to the largest, with the p95 as a line."""
        arcade.draw_lrbt_rectangle_filled(left, right, bottom, top, (255, 255, 255, 10))
        monitor = self.net.monitor
        if monitor is None:
            return
        history = monitor.readout.rtt_history
        n = len(history)
        if n < 2:
            return
        peak = max(max(history), 1.0) * 1.15
        span = right - left
        step = span / (n - 1)
        scale = (top - bottom) / peak
        points = [(left + i * step, bottom + v * scale) for i, v in enumerate(history)]
        arcade.draw_polygon_filled([(left, bottom), *points, (right, bottom)], GRAPH_FILL)
        arcade.draw_line_strip(points, GRAPH, 1.5)
        p95 = monitor.readout.rtt_p95_ms
        if p95 is not None:
            y = bottom + p95 * scale
            arcade.draw_line(left, y, right, y, P95_LINE, 1)

    def _draw_progress(self, left: float, right: float, y: float) -> None:
        driver = self.net.driver
        if driver.loaded:
            return
        arcade.draw_lrbt_rectangle_filled(left, right, y, y + 3, BAR_BACK)
        arcade.draw_lrbt_rectangle_filled(left, left + (right - left) * driver.progress, y, y + 3, WARN)

    def __repr__(self) -> str:
        return f"NetOverlay(visible={self.visible})"
