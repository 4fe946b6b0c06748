"""Row callbacks under an ``update()`` budget: chunks sized to the time left (measured per row), and the
cyclic garbage collector kept out of bulk deliveries (a subscription's rows, a big transaction)."""

from __future__ import annotations

import gc
import time
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest

from spacetime_game.sdk._scheduler import GC_PAUSE_ROWS
from spacetime_game.sdk.protocol import SubscribeApplied

from ._support import Script


def _subscribe(game: ModuleType, n: int) -> tuple[Script, Any]:
    s = Script(game).connect()
    h = s.conn.subscribe_multi(["SELECT * FROM point"])
    rows = [game.Point(i, float(i), 0.5) for i in range(n)]
    s.t.feed(SubscribeApplied(s.last_subscribe().request_id, h.query_set_id, s.query_rows({"point": rows})))
    return s, h


@pytest.fixture
def gc_full_collections() -> Iterator[list[int]]:
    """The full (generation 2) collections that ran while the test ran (one entry each)."""
    seen: list[int] = []

    def cb(phase: str, info: dict[str, int]) -> None:
        if phase == "start" and info["generation"] == 2:
            seen.append(info["generation"])

    gc.callbacks.append(cb)
    try:
        yield seen
    finally:
        gc.callbacks.remove(cb)


def test_slow_row_callbacks_are_chunked_to_the_time_left(game: ModuleType) -> None:
    """Each row costs about 0.3 ms: under a 2 ms budget an update() delivers a handful of rows, not a
    fixed chunk of 512 (which took 150 ms here)."""
    s, h = _subscribe(game, 2000)
    seen: list[int] = []

    def slow(row: Any, ev: Any) -> None:
        seen.append(row.id)
        end = time.perf_counter() + 0.0003
        while time.perf_counter() < end:
            pass

    game.Point.on_insert(slow, client=s.conn)
    while not h.is_active:
        s.conn.update(budget=0.002)
    per_call: list[int] = []
    for _ in range(20):
        before = len(seen)
        s.conn.update(budget=0.002)
        per_call.append(len(seen) - before)
    # about 7 rows fit in 2 ms; chunks never exceed half the time left (at least 8 rows): far below 512
    assert 0 < max(per_call) < 100, per_call
    while s.conn.update(budget=0.05) or len(seen) < 2000:
        pass
    assert seen == list(range(2000))  # every row once, in order, across the chunks


def test_chunks_keep_the_order_of_several_callbacks(game: ModuleType) -> None:
    """Chunk by chunk, each callback sees the chunk's rows in order; every row reaches every callback
    exactly once, whatever the chunk sizes."""
    s, h = _subscribe(game, 5000)
    log: list[tuple[str, int]] = []
    game.Point.on_insert(lambda r, e: log.append(("a", r.id)), client=s.conn)
    game.Point.on_insert(lambda r, e: log.append(("b", r.id)), client=s.conn)
    calls = 0
    while not h.is_active or len(log) < 10_000:
        s.conn.update(budget=0.0003)
        calls += 1
        assert calls < 100_000
    assert [i for tag, i in log if tag == "a"] == list(range(5000))
    assert [i for tag, i in log if tag == "b"] == list(range(5000))
    # within a chunk "a" runs first: "b" never gets ahead of "a"
    a_done = b_done = 0
    for tag, i in log:
        if tag == "a":
            a_done = i + 1
        else:
            b_done = i + 1
            assert b_done <= a_done


def test_bulk_row_callbacks_run_with_the_collector_paused(
    game: ModuleType, gc_full_collections: list[int]
) -> None:
    """The objects a game makes for 20,000 rows (its entities) trigger no collection while the rows are
    delivered, in every chunk to the last (a small budget, as on a loaded machine, makes the last chunks
    short); they end in the oldest generation, and the collector is enabled again afterwards."""
    s, h = _subscribe(game, 20_000)
    enabled: list[bool] = []
    made: list[Any] = []

    def spawn(row: Any, ev: Any) -> None:
        enabled.append(gc.isenabled())
        made.append([row, {"id": row.id}])  # container objects: tracked by the collector
        end = time.perf_counter() + 2e-6  # a game's few microseconds per entity: chunks stay short
        while time.perf_counter() < end:
            pass

    game.Point.on_insert(spawn, client=s.conn)
    assert gc.isenabled()
    while not h.is_active:
        s.conn.update(budget=0.004)
    gc.collect()  # nothing pending from earlier tests: only the delivery could trigger a full collection
    gc_full_collections.clear()
    left_at_start: list[int] = []
    while len(made) < 20_000:
        left_at_start.append(20_000 - len(made))
        s.conn.update(budget=0.001)
        assert gc.isenabled()
    assert min(left_at_start) < GC_PAUSE_ROWS  # the last chunks had fewer rows left than a bulk
    assert not any(enabled)
    assert gc_full_collections == []
    oldest = {id(o) for o in gc.get_objects(generation=2)}
    assert all(id(m) in oldest for m in made[::997])


def test_small_batches_and_a_disabled_collector_are_left_alone(game: ModuleType) -> None:
    """A few rows run with the collector as it is; a game that disabled the collector keeps it disabled."""
    s, _ = _subscribe(game, 10)
    enabled: list[bool] = []
    game.Point.on_insert(lambda r, e: enabled.append(gc.isenabled()), client=s.conn)
    while len(enabled) < 10:
        s.conn.update(budget=0.004)
    assert all(enabled)

    s2, _ = _subscribe(game, 5000)
    enabled2: list[bool] = []
    game.Point.on_insert(lambda r, e: enabled2.append(gc.isenabled()), client=s2.conn)
    gc.disable()
    try:
        while len(enabled2) < 5000:
            s2.conn.update(budget=0.004)
            assert not gc.isenabled()
    finally:
        gc.enable()
    assert not any(enabled2)
