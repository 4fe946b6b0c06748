"""Shared pieces of the arcade adapter's tests: the adapter imported headless, a stepped clock, frames
driven by hand (pyglet's event loop does not run in a test), a second client and the pixels."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from types import ModuleType
from typing import Any

from spacetime_game.engine import FrameDriver
from tests.engines._support import import_arcade

QUERIES = ["SELECT * FROM player", "SELECT * FROM marker", "SELECT * FROM hit"]


def adapter() -> ModuleType:
    """``spacetime_game.arcade``, or the test skips (fails in CI) when headless arcade is unavailable."""
    import_arcade()
    import spacetime_game.arcade as sga

    return sga


class StepClock:
    """A clock that moves only when told: one frame = ``step`` seconds."""

    def __init__(self, step: float = 0.01) -> None:
        self.now = 100.0
        self.step = step

    def __call__(self) -> float:
        return self.now


def frame(win: Any, clock: StepClock | None = None, dt: float = 1 / 60) -> None:
    """One frame as arcade runs it: ``on_update`` dispatched (the adapter ticks the engine first), then
    the window's event queue delivered (outside ``arcade.run`` pyglet queues window events)."""
    if clock is not None:
        clock.now += clock.step
    win.dispatch_event("on_update", dt)
    win.dispatch_events()


def pump(
    win: Any,
    until: Callable[[], bool],
    what: str,
    *,
    clock: StepClock | None = None,
    others: Iterable[FrameDriver] = (),
    timeout: float = 15.0,
    each: Callable[[], None] | None = None,
) -> None:
    """Run frames of ``win`` (and ticks of the ``others``) until ``until()`` holds."""
    others = list(others)
    deadline = time.monotonic() + timeout
    while not until():
        frame(win, clock)
        for d in others:
            d.tick(0.002)
        if each is not None:
            each()
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.002)


def wait_threads_gone(before: set[threading.Thread], timeout: float = 10.0) -> list[threading.Thread]:
    """The threads started since ``before`` still alive after waiting up to ``timeout`` for them."""
    deadline = time.monotonic() + timeout
    while True:
        left = [t for t in threading.enumerate() if t not in before and t.is_alive()]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.02)


def pixel(image: Any, height: int, x: float, y: float) -> tuple[int, ...]:
    """The colour at window coordinates (x, y), origin bottom-left (``get_image`` is top-down)."""
    return tuple(image.getpixel((round(x), height - 1 - round(y))))


def near(a: tuple[int, ...], b: tuple[int, ...], tol: int = 6) -> bool:
    return all(abs(p - q) <= tol for p, q in zip(a[:3], b[:3], strict=True))
