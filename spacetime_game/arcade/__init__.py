"""The Arcade adapter (arcade 3.x): a networked game is an ``arcade.Window`` subclass.

- :class:`Window`: an ``arcade.Window`` that drives the game's connections (a
  :class:`~spacetime_game.engine.FrameDriver`, ticked before every ``on_update``) and delivers the
  network's news as handler methods on the Window or the current View (:data:`NET_EVENT_TYPES`:
  ``on_connect``, ``on_disconnect``, ``on_row_insert``, ``on_row_update``, ``on_row_delete``,
  ``on_reducer_result``, ``on_transaction``, ``on_subscription_applied``, ``on_subscription_error``, ...),
  in the server's order; closing it closes the connections.
- :class:`NetBridge` (``window.net``): watch tables, subscribe, and keep a :class:`SpriteTable` (an
  ``arcade.SpriteList`` of one sprite per row, at interpolated positions; deferred despawn; the local
  player's sprite predicted) per table
  (:class:`SpriteTableOptions`: its keyword arguments, typed).
- :class:`NetOverlay`: the net debug overlay (F3): state, update rate and jitter, buffer depth, round
  trips with a graph, backlog, bytes/s, loading progress.
- :class:`NetView`: a View with ``net``; :func:`circle_sprite`: an anti-aliased disc sprite.

This package (with the pygame one) is the only place that imports an engine.
"""

from ._overlay import NetOverlay
from ._shapes import circle_sprite, circle_texture
from ._window import (
    FRAMES_ENV,
    NET_EVENT_TYPES,
    SCREENSHOT_ENV,
    NetBridge,
    NetView,
    SpriteTable,
    SpriteTableOptions,
    Window,
)

__all__ = [
    "FRAMES_ENV",
    "NET_EVENT_TYPES",
    "SCREENSHOT_ENV",
    "NetBridge",
    "NetOverlay",
    "NetView",
    "SpriteTable",
    "SpriteTableOptions",
    "Window",
    "circle_sprite",
    "circle_texture",
]
