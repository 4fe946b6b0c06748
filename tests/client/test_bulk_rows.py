"""Bulk row callbacks (``on_rows``): a message's rows as lists, in one call without a budget or in
ordered chunks under one, after the per-row callbacks of each chunk; an exception loses only the rest of
its chunk for that callback."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest

from spacetime_game.sdk.protocol import SubscribeApplied

from ._support import Script


def _loaded(game: ModuleType, n: int) -> tuple[Script, Any, list[Any]]:
    s = Script(game).connect()
    h = s.conn.subscribe_multi(["SELECT * FROM point"])
    rows = [game.Point(i, float(i), 0.5) for i in range(n)]
    s.t.feed(SubscribeApplied(s.last_subscribe().request_id, h.query_set_id, s.query_rows({"point": rows})))
    return s, h, rows


def test_inserts_come_whole_without_a_budget_and_in_ordered_chunks_under_one(game: ModuleType) -> None:
    s, h, _ = _loaded(game, 3000)
    calls: list[list[int]] = []
    order: list[str] = []
    s.conn.on_row("point", "insert", lambda r, e: order.append("row") if r.id == 0 else None)
    s.conn.on_rows("point", "insert", lambda rs, e: (calls.append([r.id for r in rs]), order.append("bulk")))
    while not h.is_active or sum(map(len, calls)) < 3000:
        s.conn.update(budget=0.0005)
    assert len(calls) > 1, "one chunk under a tiny budget"
    assert [i for c in calls for i in c] == list(range(3000))  # every row once, in order
    assert order[:2] == ["row", "bulk"]  # the chunk's per-row callbacks first

    s2, _, _ = _loaded(game, 500)
    whole: list[int] = []
    s2.conn.on_rows("point", "insert", lambda rs, e: whole.append(len(rs)))
    s2.conn.update()
    assert whole == [500]


def test_updates_come_as_old_and_new_lists(game: ModuleType) -> None:
    P = game.Player
    s = Script(game).connect()
    h = s.conn.subscribe_multi(["SELECT * FROM player"])
    rows = [P(i, f"p{i}", i) for i in range(20)]
    s.feed(SubscribeApplied(s.last_subscribe().request_id, h.query_set_id, s.query_rows({"player": rows})))
    got: list[tuple[list[Any], list[Any]]] = []
    s.conn.on_rows("player", "update", lambda olds, news, e: got.append((list(olds), list(news))))
    moved = [P(r[0], r[1], r[2] + 100) for r in rows[:10]]
    s.feed(s.tx(s.set_update(h.query_set_id, {"player": (moved, rows[:10])})))
    assert len(got) == 1
    olds, news = got[0]
    assert sorted(olds) == rows[:10] and sorted(news) == moved
    assert [o[0] for o in olds] == [n[0] for n in news]  # old and new of one row at the same position


def test_an_exception_loses_only_its_chunk_for_that_callback(game: ModuleType) -> None:
    s, h, _ = _loaded(game, 2000)
    errors: list[Exception] = []
    s.conn.on_error = errors.append
    seen: list[int] = []
    other: list[int] = []
    chunks = [0]

    def flaky(rs: list[Any], e: Any) -> None:
        chunks[0] += 1
        if chunks[0] == 2:
            raise RuntimeError("a bad chunk")
        seen.extend(r.id for r in rs)

    s.conn.on_rows("point", "insert", flaky)
    s.conn.on_rows("point", "insert", lambda rs, e: other.extend(r.id for r in rs))
    while not h.is_active or len(other) < 2000:
        s.conn.update(budget=0.0005)
    assert other == list(range(2000))  # the other callback got every row
    assert [str(x) for x in errors] == ["a bad chunk"]
    assert 0 < len(seen) < 2000 and seen == sorted(seen)  # the lost chunk only


def test_remove_and_bad_events(game: ModuleType) -> None:
    s, _, _ = _loaded(game, 10)
    got: list[int] = []

    def cb(rs: list[Any], e: Any) -> None:
        got.append(len(rs))

    assert s.conn.on_rows("point", "insert", cb) is cb
    s.conn.remove_on_rows("point", "insert", cb)
    s.conn.remove_on_row("point", "insert", cb)  # not a per-row callback: nothing happens
    s.conn.update()
    assert got == []
    with pytest.raises(ValueError, match="bulk row event"):
        s.conn.on_rows("point", "row_update", cb)  # type: ignore[arg-type]
    with pytest.raises(KeyError):
        s.conn.on_rows("nope", "insert", cb)
