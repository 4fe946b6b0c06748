"""An input throttle: send an input reducer at most N times a second, skip unchanged input, and never lose
the last change (engine-neutral, pure: times are passed in)."""

from __future__ import annotations

import logging
import operator
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["InputThrottle"]

log = logging.getLogger("spacetime_game.engine")

I = TypeVar("I")  # noqa: E741 - the input value
R = TypeVar("R")  # what ``send`` returns (a generated reducer function returns a ReducerCall)

_NOTHING = object()


class InputThrottle(Generic[I, R]):
    """Sends input through ``send(value)`` at most ``rate`` times a second, skipping input equal to what
    was last sent, and sending the last change at most ``1/rate`` seconds after it was made.

    Call :meth:`set` whenever the input is read (every frame is fine) and :meth:`advance` once per frame
    (the driver does, it is a ``Stepper``): a change made while the interval has not passed is held and
    sent by the first ``advance`` after it has, unless the input went back to the sent value meanwhile.
    ``send`` is typically a generated reducer function; what it returns (a ``ReducerCall``) is kept in
    :attr:`last_call`. If ``send`` raises, the error is logged and the value is tried again at the next
    interval (the game loop never sees the exception).

    Example (Blackholio's ``update_player_input`` at 20 Hz)::

        throttle = InputThrottle(update_player_input, rate=20.0)
        # every frame:
        throttle.set(DbVector2(dx, dy), now)
        driver.tick(dt)   # or throttle.advance(now)
    """

    def __init__(
        self,
        send: Callable[[I], R],
        rate: float = 20.0,
        *,
        equal: Callable[[I, I], bool] = operator.eq,
    ) -> None:
        if not rate > 0:
            raise ValueError(f"InputThrottle rate must be > 0 (sends per second), got {rate!r}")
        self._send = send
        self._equal = equal
        #: The least time between two sends, in seconds (``1 / rate``).
        self.period: float = 1.0 / rate
        self._sent: object = _NOTHING
        self._pending: object = _NOTHING
        self._next = -float("inf")
        self._failing = False
        #: How many times ``send`` was called successfully.
        self.sends: int = 0
        #: What the last successful ``send`` returned (``None`` before the first).
        self.last_call: R | None = None

    @property
    def pending(self) -> bool:
        """True when a change waits for the interval to pass."""
        return self._pending is not _NOTHING

    @property
    def last_sent(self) -> I | None:
        """The value last sent, or ``None`` before the first send."""
        return None if self._sent is _NOTHING else self._sent  # type: ignore[return-value]

    def set(self, value: I, now: float) -> R | None:
        """The input is ``value`` at time ``now`` (seconds). Returns what ``send`` returned if it was sent
        now, else ``None`` (unchanged, or held until the interval has passed)."""
        if self._sent is not _NOTHING and self._equal(value, self._sent):  # type: ignore[arg-type]
            self._pending = _NOTHING  # back to what the server has: nothing to send
            return None
        self._pending = value
        if now >= self._next:
            return self._flush(now)
        return None

    def advance(self, now: float) -> None:
        """Send the held change if the interval has passed (call once per frame)."""
        if self._pending is not _NOTHING and now >= self._next:
            self._flush(now)

    def reset(self) -> None:
        """Forget what was sent (after a reconnect: the next input is sent even if unchanged)."""
        self._sent = _NOTHING
        self._next = -float("inf")

    def _flush(self, now: float) -> R | None:
        value: I = self._pending  # type: ignore[assignment]
        # two sends are at least one period apart (less a hair for rounding: 3 frames of 1/60 s make 0.05)
        self._next = now + self.period - 1e-9
        try:
            call = self._send(value)
        except Exception:
            if not self._failing:
                log.exception("InputThrottle: sending input %r failed; it will be retried", value)
            self._failing = True
            return None
        self._failing = False
        self._pending = _NOTHING
        self._sent = value
        self.sends += 1
        self.last_call = call
        return call
