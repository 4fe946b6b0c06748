"""The SDK's events in pygame's queue: the fixed event types, each event with its attributes, from a real
dev server; row events coalesced so that a 100,000-row subscription does not overflow the queue; a full
queue never makes the bridge raise."""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest

import spacetime_game.pygame as sgp
from spacetime_game.pygame import (
    CONNECTED,
    DISCONNECTED,
    EVENT_TYPES,
    REDUCER_RESULT,
    ROW_DELETE,
    ROW_INSERT,
    ROW_UPDATE,
    ROWS_CHANGED,
    SUBSCRIPTION_APPLIED,
    SUBSCRIPTION_ERROR,
    Bridge,
    EventPoster,
)
from spacetime_game.sdk import DbConnection
from spacetime_game.server import DevServer

from .conftest import DOTS_MODULE, MOVE_MODULE, wait_no_sdk_threads

OURS = tuple(EVENT_TYPES.values())


class Queue:
    """Reads the adapter's events from pygame's queue as the game would, keeping the others."""

    def __init__(self, pygame: ModuleType) -> None:
        self.pygame = pygame
        self.seen: list[Any] = []

    def read(self) -> list[Any]:
        got = self.pygame.event.get(OURS)
        self.seen += got
        return got

    def wait(self, bridges: list[Bridge], until: Callable[[Any], bool], what: str) -> Any:
        """Tick until an event for which ``until(event)`` holds is in the queue; return it."""
        deadline = time.monotonic() + 15
        while True:
            for b in bridges:
                b.tick(0.004)
            for e in self.read():
                if until(e):
                    return e
            assert time.monotonic() < deadline, f"timed out waiting for {what}; seen {self.seen}"
            time.sleep(0.004)


def test_the_event_types_are_allocated_once_per_process(pygame: ModuleType) -> None:
    assert len(set(OURS)) == len(OURS) == 9
    assert all(pygame.USEREVENT < t < pygame.NUMEVENTS for t in OURS)
    assert EVENT_TYPES["ROW_INSERT"] == ROW_INSERT and sgp.CONNECTED == CONNECTED
    before = pygame.event.custom_type()
    importlib.reload(sgp)  # importing the package again allocates nothing
    assert sgp.CONNECTED == CONNECTED
    assert pygame.event.custom_type() == before + 1  # nothing allocated in between


def test_sdk_events_arrive_in_the_queue(pygame: ModuleType, mb: ModuleType) -> None:
    with DevServer(MOVE_MODULE, database="move") as server:
        a_conn = DbConnection(mb.MODULE, server.address, server.database)
        b_conn = DbConnection(mb.MODULE, server.address, server.database)
        a = Bridge(a_conn, rows=[mb.Player])
        b = Bridge(b_conn, events=False)
        bridges = [a, b]
        q = Queue(pygame)
        try:
            e = q.wait(bridges, lambda e: e.type == CONNECTED, "CONNECTED")
            assert e.client is a_conn and e.identity == a_conn.identity is not None
            handle = a.subscribe(["SELECT * FROM player"])
            b_conn.subscribe_multi(["SELECT * FROM player"])
            e = q.wait(bridges, lambda e: e.type == SUBSCRIPTION_APPLIED, "SUBSCRIPTION_APPLIED")
            assert e.handle is handle and e.client is a_conn
            bad = a.subscribe(["SELECT * FROM nope"])
            e = q.wait(bridges, lambda e: e.type == SUBSCRIPTION_ERROR, "SUBSCRIPTION_ERROR")
            assert e.handle is bad and "nope" in e.error and e.client is a_conn

            mb.join(1, "a", 1.0, 2.0, client=a_conn)
            e = q.wait(bridges, lambda e: e.type == REDUCER_RESULT, "the join's result")
            assert (e.reducer, e.status, e.args) == ("join", "committed", [1, "a", 1.0, 2.0])
            inserts = [e for e in q.seen if e.type == ROW_INSERT]
            assert [(e.table, e.row, e.origin) for e in inserts] == [
                ("player", mb.Player(1, "a", 1.0, 2.0, 0.0), "own")
            ]
            assert inserts[0].client is a_conn

            mb.move(99, 0.0, 0.0, client=a_conn)
            e = q.wait(bridges, lambda e: e.type == REDUCER_RESULT, "the failed call's result")
            assert (e.reducer, e.status, e.message) == ("move", "failed", "no player 99")
            assert e.event.reducer_name == "move"

            mb.move(1, 5.0, 6.0, client=b_conn)  # another client's change
            e = q.wait(bridges, lambda e: e.type == ROW_UPDATE, "ROW_UPDATE")
            assert (e.table, e.old.x, e.new.x, e.origin) == ("player", 1.0, 5.0, "other")
            mb.leave(1, client=a_conn)
            e = q.wait(bridges, lambda e: e.type == ROW_DELETE, "ROW_DELETE")
            assert (e.table, e.row.id, e.origin) == ("player", 1, "own")
            assert not any(e.type == ROWS_CHANGED for e in q.seen)
            assert a.poster.dropped == 0
        finally:
            a.close()
            b.close()
        e = q.read()
        assert [(x.type, x.state, x.reason) for x in e] == [(DISCONNECTED, "closed", "closed by this client")]
        assert not pygame.event.get(OURS), "the bridge without events posted some"
        wait_no_sdk_threads()


def test_a_100000_row_subscription_does_not_overflow_the_queue(pygame: ModuleType, dots: ModuleType) -> None:
    n = 100_000
    with DevServer(DOTS_MODULE, database="dots") as server:
        writer = DbConnection(dots.MODULE, server.address, server.database).connect()
        calls = [dots.spawn_dots(i, 20_000, client=writer) for i in range(0, n, 20_000)]
        deadline = time.monotonic() + 60
        while not all(c.done for c in calls):
            writer.update()
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert all(c.committed for c in calls)

        conn = DbConnection(dots.MODULE, server.address, server.database)
        bridge = Bridge(conn, rows=[dots.Dot])
        seen_progress: list[float] = []
        try:
            bridge.subscribe(["SELECT * FROM dot"])
            frames = 0
            deadline = time.monotonic() + 120
            # the game does not read its queue while it loads: the worst case
            while not bridge.loaded:
                bridge.tick(0.016)
                frames += 1
                seen_progress.append(bridge.progress)
                assert time.monotonic() < deadline, f"not loaded after {frames} frames"
            bridge.tick(0.016)
            events = pygame.event.get()
        finally:
            bridge.close()
            writer.close()
    assert conn.count_rows("dot") == n
    assert bridge.poster.dropped == 0
    ours = [e for e in events if e.type in OURS]
    summaries = [e for e in ours if e.type == ROWS_CHANGED]
    singles = [e for e in ours if e.type == ROW_INSERT]
    assert summaries, "no summary: the rows were posted one by one"
    assert sum(e.inserts for e in summaries) + len(singles) == n
    assert all(e.table == "dot" and e.updates == 0 and e.deletes == 0 for e in summaries)
    assert len(ours) <= frames + 10  # about one event per frame
    assert len(events) < 1000
    assert seen_progress == sorted(seen_progress) and seen_progress[-1] == 1.0
    assert any(0.0 < p < 1.0 for p in seen_progress), "the load was never seen in progress"
    wait_no_sdk_threads()


class FakeQueue:
    """A queue of ``size`` events that raises like pygame's when full."""

    def __init__(self, pygame: ModuleType, size: int) -> None:
        self.pygame = pygame
        self.size = size
        self.events: list[Any] = []

    def __call__(self, event: Any) -> None:
        if len(self.events) >= self.size:
            raise self.pygame.error("Event queue full")
        self.events.append(event)


def test_row_events_are_posted_one_by_one_up_to_the_limit_then_summarised(pygame: ModuleType) -> None:
    q = FakeQueue(pygame, 1000)
    poster = EventPoster(max_row_events=3, post=q)
    for i in range(3):
        poster.row("a", 0, None, {"table": "a", "row": i, "origin": "other", "client": None})
    for i in range(4):
        poster.row("b", i % 3, None, {"table": "b", "row": i, "origin": "other", "client": None})
    assert q.events == []  # nothing before the end of the frame
    poster.flush()
    assert [(e.type, getattr(e, "row", None)) for e in q.events[:3]] == [
        (ROW_INSERT, 0),
        (ROW_INSERT, 1),
        (ROW_INSERT, 2),
    ]
    summary = q.events[3]
    assert (summary.type, summary.table, summary.inserts, summary.updates, summary.deletes) == (
        ROWS_CHANGED,
        "b",
        2,
        1,
        1,
    )
    assert len(q.events) == 4 and poster.summaries == 1
    poster.flush()
    assert len(q.events) == 4  # each frame starts afresh


def test_a_full_queue_or_pygame_shut_down_never_raises(pygame: ModuleType) -> None:
    q = FakeQueue(pygame, 2)
    poster = EventPoster(max_row_events=10, post=q)
    for i in range(5):
        poster.row("a", 0, None, {"table": "a", "row": i, "origin": "own", "client": None})
    poster.flush()
    assert len(q.events) == 2 and poster.dropped == 1  # the rest of the frame's rows are not tried
    assert not poster.post(CONNECTED, client=None, identity=None) and poster.dropped == 2

    # pygame's own queue, full
    real = EventPoster()
    kind = pygame.event.custom_type()
    posted = 0
    with pytest.raises(pygame.error):
        while posted <= 70_000:
            pygame.event.post(pygame.event.Event(kind))
            posted += 1
    assert not real.post(CONNECTED, client=None, identity=None) and real.dropped == 1
    pygame.event.clear()
    assert real.post(CONNECTED, client=None, identity=None) and real.posted == 1
    pygame.quit()  # and pygame shut down
    assert not real.post(CONNECTED, client=None, identity=None) and real.dropped == 2


def test_max_row_events_is_checked() -> None:
    with pytest.raises(ValueError, match="max_row_events"):
        EventPoster(max_row_events=-1)
