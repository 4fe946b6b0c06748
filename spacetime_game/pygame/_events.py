"""The SDK's events as pygame events: a fixed handful of custom event types, allocated once per process,
and a poster that coalesces row events so that pygame's queue (65,535 events; ``post`` then raises)
never overflows, whatever the size of a subscription.

Row events are posted only for the tables a game opts into. Within one frame, a table's row events are
posted one by one up to a limit; beyond it the table gets one :data:`ROWS_CHANGED` event for the frame
(counts per kind) instead. Every post is guarded: a full queue, or pygame shut down, costs the event
(counted in :attr:`EventPoster.dropped`), never an exception in the game loop.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, Final

import pygame

__all__ = [
    "CONNECTED",
    "DISCONNECTED",
    "EVENT_TYPES",
    "REDUCER_RESULT",
    "ROWS_CHANGED",
    "ROW_DELETE",
    "ROW_INSERT",
    "ROW_UPDATE",
    "SUBSCRIPTION_APPLIED",
    "SUBSCRIPTION_ERROR",
    "EventPoster",
]

log = logging.getLogger("spacetime_game.pygame")

# Allocated once per process, when this module is first imported: pygame cannot free custom types and
# runs out of them after about 32,600, so they are never allocated per bridge.
#: The connection is up (attributes: ``client``, ``identity``).
CONNECTED: Final[int] = pygame.event.custom_type()
#: The connection went down (attributes: ``client``, ``state``: ``"reconnecting"``, ``"failed"`` or
#: ``"closed"``, ``reason``: one line or None).
DISCONNECTED: Final[int] = pygame.event.custom_type()
#: A row appeared (attributes: ``table``, ``row``, ``origin``: ``"initial"``, ``"own"``, ``"other"`` or
#: ``"unsubscribe"``, ``client``).
ROW_INSERT: Final[int] = pygame.event.custom_type()
#: A row changed (attributes: ``table``, ``old``, ``new``, ``origin``, ``client``).
ROW_UPDATE: Final[int] = pygame.event.custom_type()
#: A row went (attributes: ``table``, ``row``, ``origin``, ``client``).
ROW_DELETE: Final[int] = pygame.event.custom_type()
#: Too many row changes of one table in one frame to post one by one: their summary (attributes:
#: ``table``, ``inserts``, ``updates``, ``deletes``, ``client``). Read the rows from the cache.
ROWS_CHANGED: Final[int] = pygame.event.custom_type()
#: The outcome of one of this client's reducer calls (attributes: ``reducer``, ``status``:
#: ``"committed"`` or ``"failed"``, ``message``, ``args``, ``event``: the SDK's ``ReducerEvent``,
#: ``client``).
REDUCER_RESULT: Final[int] = pygame.event.custom_type()
#: A subscription's rows are in the cache (attributes: ``client``, ``handle``: the
#: ``SubscriptionHandle`` when the bridge made or watches it, else None).
SUBSCRIPTION_APPLIED: Final[int] = pygame.event.custom_type()
#: The server rejected or dropped a subscription (attributes: ``client``, ``error``, ``handle``).
SUBSCRIPTION_ERROR: Final[int] = pygame.event.custom_type()

#: Every event type of the adapter, by name.
EVENT_TYPES: Final[Mapping[str, int]] = {
    "CONNECTED": CONNECTED,
    "DISCONNECTED": DISCONNECTED,
    "ROW_INSERT": ROW_INSERT,
    "ROW_UPDATE": ROW_UPDATE,
    "ROW_DELETE": ROW_DELETE,
    "ROWS_CHANGED": ROWS_CHANGED,
    "REDUCER_RESULT": REDUCER_RESULT,
    "SUBSCRIPTION_APPLIED": SUBSCRIPTION_APPLIED,
    "SUBSCRIPTION_ERROR": SUBSCRIPTION_ERROR,
}

_KINDS: Final = ("inserts", "updates", "deletes")


class _TableFrame:
    """One table's row events of the frame being collected."""

    __slots__ = ("client", "counts", "events")

    def __init__(self, client: Any) -> None:
        self.client = client
        self.events: list[tuple[int, dict[str, Any]]] = []
        self.counts = [0, 0, 0]


class EventPoster:
    """Posts the adapter's events into pygame's queue from the game's thread (the :class:`Bridge` makes
    one; a game rarely needs its own).

    Row events are collected during a frame (:meth:`row`) and posted by :meth:`flush`: up to
    ``max_row_events`` per table one by one, in order; beyond that one :data:`ROWS_CHANGED` summary
    for the table. Other events are posted at once (:meth:`post`). ``post`` is the function that puts
    an event in the queue (default ``pygame.event.post``); tests pass their own.
    """

    def __init__(
        self, max_row_events: int = 64, post: Callable[[pygame.event.Event], object] | None = None
    ) -> None:
        if max_row_events < 0:
            raise ValueError(f"max_row_events must be >= 0, got {max_row_events}")
        #: Row events of one table posted one by one per frame, at most (more: one summary).
        self.max_row_events = max_row_events
        self._post = post if post is not None else pygame.event.post
        self._frame: dict[str, _TableFrame] = {}
        #: Events posted since the start.
        self.posted = 0
        #: Events lost because the queue was full or pygame was not running.
        self.dropped = 0
        #: Summaries posted in place of row events.
        self.summaries = 0
        self._warned = False

    def post(self, type: int, **attributes: Any) -> bool:
        """Post one event now; False (and counted in :attr:`dropped`) if the queue refused it."""
        try:
            self._post(pygame.event.Event(type, attributes))
        except pygame.error as exc:  # the queue is full, or pygame is not initialised
            self.dropped += 1
            if not self._warned:
                self._warned = True
                log.warning(
                    "a pygame event was dropped (%s); is the game reading its event queue "
                    "(pygame.event.get() once per frame)? Further drops are counted, not logged",
                    exc,
                )
            return False
        self.posted += 1
        return True

    def row(self, table: str, kind: int, client: Any, attributes: dict[str, Any]) -> None:
        """Collect a row event of ``table`` (``kind``: 0 insert, 1 update, 2 delete) for :meth:`flush`."""
        frame = self._frame.get(table)
        if frame is None:
            frame = self._frame[table] = _TableFrame(client)
        frame.counts[kind] += 1
        if len(frame.events) <= self.max_row_events:  # one more than the limit tells "too many"
            frame.events.append((kind, attributes))

    def flush(self) -> None:
        """Post the row events collected this frame (one by one, or a summary per table)."""
        if not self._frame:
            return
        frames, self._frame = self._frame, {}
        types = (ROW_INSERT, ROW_UPDATE, ROW_DELETE)
        for table, frame in frames.items():
            if sum(frame.counts) <= self.max_row_events:
                for kind, attributes in frame.events:
                    if not self.post(types[kind], **attributes):
                        break
            else:
                self.summaries += 1
                counts = dict(zip(_KINDS, frame.counts, strict=True))
                self.post(ROWS_CHANGED, table=table, client=frame.client, **counts)

    def clear(self) -> None:
        """Forget the row events collected and not posted."""
        self._frame.clear()
