"""Arcade 3.x headless (``ARCADE_HEADLESS=1``, OpenGL through Mesa's EGL): a window drawn on and read
back, a custom event type registered on a window class and dispatched to the current View's handler, the
pyglet event facts the arcade adapter must design around, and a close that leaves no thread behind.

Without the system's EGL library ``import arcade`` itself fails (headless pyglet loads libEGL at import);
without Mesa's EGL driver opening a window raises ``arcade.NoOpenGLException``. Either way these tests
skip with the packages to install, and fail in CI (``CI=true``) instead of skipping.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from types import ModuleType
from typing import Any, ClassVar

import pytest

from ._support import import_arcade, open_arcade_window

WIDTH, HEIGHT = 64, 48
BACKGROUND = (0, 0, 255, 255)
RED = (255, 0, 0, 255)
GREEN = (0, 255, 0, 255)


@pytest.fixture
def arcade() -> ModuleType:
    return import_arcade()


def _window_class(arcade: ModuleType, *events: str) -> type[Any]:
    """A Window subclass with ``events`` registered on its own copy of the event list (pyglet's
    ``register_event_type`` appends to the list the class inherits, shared by every window class)."""

    class NetWindow(arcade.Window):
        event_types: ClassVar[list[str]] = [*arcade.Window.event_types]

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.calls: list[tuple[str, tuple[Any, ...]]] = []

    for name in events:
        if name not in NetWindow.event_types:  # registering twice would list it twice
            NetWindow.register_event_type(name)
    return NetWindow


@pytest.fixture
def window(arcade: ModuleType) -> Iterator[Any]:
    """A headless 64x48 window of a class that registers ``on_row_insert``; closed afterwards."""
    win = open_arcade_window(_window_class(arcade, "on_row_insert"), WIDTH, HEIGHT, title="engines")
    try:
        yield win
    finally:
        win.close()


def _pixel(image: Any, x: int, y: int) -> tuple[int, ...]:
    """The colour at window coordinates (x, y), origin bottom-left (``get_image`` is top-down)."""
    return tuple(image.getpixel((x, HEIGHT - 1 - y)))


def test_the_window_is_headless(arcade: ModuleType, window: Any) -> None:
    import pyglet

    assert pyglet.options.headless
    assert isinstance(window, pyglet.window.headless.HeadlessWindow)
    assert window.ctx.gl_version >= (3, 3)
    assert tuple(int(part) for part in arcade.version.VERSION.split(".")[:2]) >= (3, 3)


def test_shapes_and_a_sprite_list_are_drawn_and_read_back(arcade: ModuleType, window: Any) -> None:
    sprites = arcade.SpriteList(use_spatial_hash=False)  # the list for sprites the network moves
    sprite = arcade.SpriteSolidColor(10, 10, center_x=48, center_y=32, color=GREEN)
    sprites.append(sprite)

    window.clear(color=BACKGROUND)
    arcade.draw_lrbt_rectangle_filled(0, 16, 0, 12, RED)
    sprites.draw()
    image = arcade.get_image(0, 0, WIDTH, HEIGHT)
    assert image.size == (WIDTH, HEIGHT)
    assert _pixel(image, 4, 4) == RED
    assert _pixel(image, 48, 32) == GREEN
    assert _pixel(image, 30, 40) == BACKGROUND
    assert _pixel(image, 20, 12) == BACKGROUND

    sprite.position = (20, 20)  # a position written between frames shows in the next draw
    window.clear(color=BACKGROUND)
    sprites.draw()
    image = arcade.get_image(0, 0, WIDTH, HEIGHT)
    assert _pixel(image, 20, 20) == GREEN
    assert _pixel(image, 48, 32) == BACKGROUND


def test_a_custom_event_reaches_the_view_then_the_window(arcade: ModuleType, window: Any) -> None:
    """Registered before ``show_view``, a custom event type reaches the View's method of that name as a
    native handler, then the Window's own (unless the View's returns ``EVENT_HANDLED``)."""
    import pyglet

    assert "on_row_insert" in type(window).event_types
    assert "on_row_insert" not in arcade.Window.event_types  # the class's own copy took it
    calls: list[tuple[str, Any]] = []
    window.on_row_insert = lambda table, row: calls.append(("window", (table, row)))

    class GameView(arcade.View):
        handled = False

        def on_row_insert(self, table: str, row: Any) -> bool | None:
            calls.append(("view", (table, row)))
            return pyglet.event.EVENT_HANDLED if self.handled else None

    view = GameView()
    window.show_view(view)
    row = {"id": 7, "x": 1.5}
    window.dispatch_event("on_row_insert", "player", row)
    window.dispatch_events()
    assert calls == [("view", ("player", row)), ("window", ("player", row))]
    assert calls[0][1][1] is row

    calls.clear()
    view.handled = True
    window.dispatch_event("on_row_insert", "player", row)
    window.dispatch_events()
    assert calls == [("view", ("player", row))]

    calls.clear()
    window.show_view(arcade.View())  # the first view's handlers leave with it
    window.dispatch_event("on_row_insert", "food", row)
    window.dispatch_events()
    assert calls == [("window", ("food", row))]


def test_dispatch_event_is_queued_outside_the_event_loop(arcade: ModuleType, window: Any) -> None:
    """Until pyglet's event loop runs (``arcade.run`` clears ``Window._enable_event_queue`` for good),
    ``Window.dispatch_event`` only queues the event; ``window.dispatch_events()`` delivers it. A game
    loop of its own (or a headless test) must call that, or dispatch through ``EventDispatcher``."""
    import pyglet

    got: list[str] = []
    window.on_row_insert = lambda table, row: got.append(table)
    queued = pyglet.window.Window._enable_event_queue
    window.dispatch_event("on_row_insert", "a", None)
    assert got == ([] if queued else ["a"])
    window.dispatch_events()
    assert got == ["a"]
    pyglet.event.EventDispatcher.dispatch_event(window, "on_row_insert", "b", None)
    assert got == ["a", "b"]


def test_an_event_registered_after_show_view_reaches_the_view_only_once_shown_again(
    arcade: ModuleType,
) -> None:
    cls = _window_class(arcade)
    win = open_arcade_window(cls, WIDTH, HEIGHT)
    try:
        got: list[int] = []

        class LateView(arcade.View):
            def on_late(self, n: int) -> None:
                got.append(n)

        view = LateView()
        win.show_view(view)
        cls.register_event_type("on_late")
        win.dispatch_event("on_late", 1)
        win.dispatch_events()
        assert got == []
        win.show_view(view)
        win.dispatch_event("on_late", 2)
        win.dispatch_events()
        assert got == [2]
    finally:
        win.close()


def test_pyglet_event_facts(arcade: ModuleType, window: Any) -> None:
    """What the adapter must guard against: the inherited event list is shared by every window class,
    ``dispatch_event`` asserts the type is registered, bound-method handlers are held weakly."""
    import pyglet

    class Plain(arcade.Window):
        pass

    assert "event_types" not in vars(Plain)
    assert Plain.event_types is pyglet.window.BaseWindow.event_types  # register here = register everywhere

    with pytest.raises(AssertionError, match="on_never_registered"):
        pyglet.event.EventDispatcher.dispatch_event(window, "on_never_registered", 1)

    got: list[str] = []

    class Listener:
        def on_row_insert(self, table: str, row: Any) -> None:
            got.append(table)

    def strong(table: str, row: Any) -> None:
        got.append("strong:" + table)

    listener = Listener()
    window.push_handlers(on_row_insert=listener.on_row_insert)
    window.push_handlers(on_row_insert=strong)
    window.dispatch_event("on_row_insert", "a", None)
    window.dispatch_events()
    assert sorted(got) == ["a", "strong:a"]
    got.clear()
    del listener
    gc.collect()
    window.dispatch_event("on_row_insert", "b", None)
    window.dispatch_events()
    assert got == ["strong:b"]  # the bound method went with its object; keep a strong reference


def test_closing_the_window_leaves_no_thread(arcade: ModuleType) -> None:
    """A window's life starts no thread that outlives it. (pyglet's media worker, a daemon thread, starts
    when arcade is imported and belongs to the process: it is already there before the window opens.)"""
    before = set(threading.enumerate())
    win = open_arcade_window(_window_class(arcade, "on_row_insert"), WIDTH, HEIGHT)
    win.show_view(arcade.View())
    win.clear(color=BACKGROUND)
    arcade.draw_circle_filled(32, 24, 8, RED)
    win.flip()
    win.close()
    assert win.closed
    gc.collect()
    left = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    assert left == [], f"threads left after the window closed: {left}"
