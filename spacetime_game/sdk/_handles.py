"""The handles a connection gives back: :class:`ReducerCall`, :class:`SubscriptionHandle` and
:class:`OneOffQueryHandle`.

A handle's callbacks run on the thread calling ``update()``. The connection settles a handle through
its ``set_*`` methods (like ``concurrent.futures.Future.set_result``, they are for the connection, not
for games), passing ``schedule``: it queues each ``(callback, args)`` to run in order within
``update()``'s budget.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Literal

__all__ = [
    "CallStatus",
    "Job",
    "OneOffQueryHandle",
    "ReducerCall",
    "Schedule",
    "SubscriptionHandle",
    "SubscriptionState",
]

log = logging.getLogger("spacetime_game.sdk")

#: One callback to run, with its arguments.
Job = tuple[Callable[..., Any], tuple[Any, ...]]
#: Queues a :data:`Job` to run on the game thread.
Schedule = Callable[[Job], None]

#: Where a reducer call is: ``pending`` until its outcome arrives, then ``committed``, ``failed`` (the
#: reducer refused), ``internal_error`` (the reducer crashed, or the server could not run it) or
#: ``disconnected`` (the connection closed before the outcome arrived; it is unknown).
CallStatus = Literal["pending", "committed", "failed", "internal_error", "disconnected"]

#: Where a query set is: ``pending`` until applied, ``active`` while applied, ``ended`` once
#: unsubscribed, ``error`` when the server rejected or dropped it.
SubscriptionState = Literal["pending", "active", "ended", "error"]


def _run_now(callback: Callable[..., Any], *args: Any) -> None:
    """Run a callback added to a settled handle at once; an exception is logged, not raised (as
    ``concurrent.futures`` does)."""
    try:
        callback(*args)
    except Exception:
        log.exception("a done callback raised: %r", callback)


class ReducerCall:
    """The handle of one reducer call: its outcome arrives through ``update()``."""

    def __init__(self, request_id: int, reducer: str, args: bytes, sent_at: float) -> None:
        self.request_id = request_id
        self.reducer = reducer
        self.args = args
        self.sent_at = sent_at
        #: See :data:`CallStatus`.
        self.status: CallStatus = "pending"
        #: The error message, "" when committed.
        self.message = ""
        #: Round trip in seconds, once done.
        self.round_trip: float | None = None
        self._callbacks: list[Callable[[ReducerCall], None]] = []

    @property
    def done(self) -> bool:
        """True once the outcome is known."""
        return self.status != "pending"

    @property
    def committed(self) -> bool:
        """True when the reducer committed."""
        return self.status == "committed"

    def add_done_callback(self, callback: Callable[[ReducerCall], None]) -> None:
        """Call ``callback(call)`` when the outcome arrives (from ``update()``), or at once if it already
        has (then an exception it raises is logged, not raised)."""
        if self.done:
            _run_now(callback, self)
        else:
            self._callbacks.append(callback)

    def set_outcome(self, status: CallStatus, message: str, round_trip: float, schedule: Schedule) -> None:
        """Record the outcome and schedule the done callbacks (called by the connection, once)."""
        self.status = status
        self.message = message
        self.round_trip = round_trip
        callbacks, self._callbacks = self._callbacks, []
        for cb in callbacks:
            schedule((cb, (self,)))

    def __repr__(self) -> str:
        return f"ReducerCall({self.reducer!r}, request_id={self.request_id}, status={self.status!r})"


class SubscriptionHandle:
    """A query set: applied, failed or ended. ``unsubscribe()`` removes exactly its rows."""

    def __init__(
        self,
        unsubscribe: Callable[[SubscriptionHandle], None],
        query_set_id: int,
        queries: tuple[str, ...],
        legacy: bool = False,
    ) -> None:
        self._unsubscribe = unsubscribe
        self.query_set_id = query_set_id
        self.queries = queries
        #: True for a set made by the documented ``subscribe`` (a newer one replaces it).
        self.legacy = legacy
        #: See :data:`SubscriptionState`.
        self.state: SubscriptionState = "pending"
        #: The server's message once the set failed.
        self.error: str | None = None
        self._on_applied: list[Callable[[SubscriptionHandle], None]] = []
        self._on_error: list[Callable[[SubscriptionHandle, str], None]] = []
        self._on_end: list[Callable[[SubscriptionHandle], None]] = []

    @property
    def is_active(self) -> bool:
        """True while the set is applied on the server."""
        return self.state == "active"

    @property
    def is_ended(self) -> bool:
        """True after unsubscribe or an error."""
        return self.state in ("ended", "error")

    def on_applied(self, callback: Callable[[SubscriptionHandle], None]) -> SubscriptionHandle:
        """Call ``callback(handle)`` when the initial rows are in the cache."""
        self._on_applied.append(callback)
        return self

    def on_error(self, callback: Callable[[SubscriptionHandle, str], None]) -> SubscriptionHandle:
        """Call ``callback(handle, message)`` if the server rejects or drops the set."""
        self._on_error.append(callback)
        return self

    def on_end(self, callback: Callable[[SubscriptionHandle], None]) -> SubscriptionHandle:
        """Call ``callback(handle)`` once the set is unsubscribed and its rows are gone."""
        self._on_end.append(callback)
        return self

    def unsubscribe(self) -> None:
        """Drop this set; its rows (those no other set holds) are deleted with callbacks."""
        self._unsubscribe(self)

    def set_applied(self, schedule: Schedule) -> None:
        """The set's rows are in the cache: it is active (called by the connection)."""
        self.state = "active"
        for cb in self._on_applied:
            schedule((cb, (self,)))

    def set_ended(self, schedule: Schedule) -> None:
        """The set's rows are gone from the cache (called by the connection)."""
        if self.state != "error":
            self.state = "ended"
        for cb in self._on_end:
            schedule((cb, (self,)))

    def set_failed(self, error: str, schedule: Schedule) -> bool:
        """Schedule the ``on_error`` callbacks (called by the connection); False when there is none."""
        for cb in self._on_error:
            schedule((cb, (self, error)))
        return bool(self._on_error)

    def __repr__(self) -> str:
        return f"SubscriptionHandle({self.query_set_id}, {self.queries!r}, {self.state})"


class OneOffQueryHandle:
    """The answer to a one-off query: ``rows`` per table (decoded row objects), or ``error``."""

    def __init__(self, request_id: int, sql: str) -> None:
        self.request_id = request_id
        self.sql = sql
        self.done = False
        self.error: str | None = None
        self.rows: dict[str, list[Any]] = {}
        self._callbacks: list[Callable[[OneOffQueryHandle], None]] = []

    def add_done_callback(self, callback: Callable[[OneOffQueryHandle], None]) -> None:
        """Call ``callback(handle)`` when the answer arrives (from ``update()``), or at once if it already
        has (then an exception it raises is logged, not raised)."""
        if self.done:
            _run_now(callback, self)
        else:
            self._callbacks.append(callback)

    def set_answer(self, rows: dict[str, list[Any]], error: str | None, schedule: Schedule) -> None:
        """Record the answer and schedule the done callbacks (called by the connection, once)."""
        self.rows = rows
        self.error = error
        self.done = True
        callbacks, self._callbacks = self._callbacks, []
        for cb in callbacks:
            schedule((cb, (self,)))
