"""The per-message hooks ``register_on_applying`` / ``register_on_applied`` (what the engine's frame driver
and entity syncs build on) and ``DbConnection.disconnect_reason``: exact sequences with a scripted server."""

from __future__ import annotations

from types import ModuleType
from typing import Any

from spacetime_game.sdk import AppliedMessage, ReducerEvent
from spacetime_game.sdk.protocol import (
    ReducerErr,
    ReducerOk,
    ReducerResult,
    Subscribe,
    SubscribeApplied,
    Unsubscribe,
    UnsubscribeApplied,
)

from ._support import TS, Recorder, Script, ident

OTHER = ReducerEvent(None, None, None, "committed", "", None)


def sub_id(s: Script, handle: Any) -> int:
    return next(
        m.request_id for m in reversed(s.t.of_type(Subscribe)) if m.query_set_id == handle.query_set_id
    )


def watch(s: Script, chat: ModuleType, rec: Recorder) -> None:
    s.conn.register_on_applying(lambda m: rec.log.append(("applying", m.kind, m.event, dict(m.rows))))
    s.conn.register_on_applied(lambda m: rec.log.append(("applied", m.kind, m.event, dict(m.rows))))
    chat.User.on_insert(rec("user+"), client=s.conn)
    chat.User.on_update(rec("user~"), client=s.conn)
    chat.User.on_delete(rec("user-"), client=s.conn)
    chat.Message.on_insert(rec("message+"), client=s.conn)


def test_each_kind_of_message_is_framed_by_the_hooks(chat: ModuleType) -> None:
    s = Script(chat).connect()
    rec = Recorder()
    watch(s, chat, rec)
    s.conn.register_on_event(lambda m: rec.log.append(("on_event", m.reducer_name)))
    chat.register_on_set_name(rec("on_set_name"), client=s.conn)
    User, Message = chat.User, chat.Message
    u1, u2 = User(ident(1), None, True), User(ident(2), "b", True)
    h = s.conn.subscribe_multi(["SELECT * FROM user", "SELECT * FROM message"])
    h.on_applied(rec("handle_applied"))
    s.feed(SubscribeApplied(sub_id(s, h), h.query_set_id, s.query_rows({"user": [u1, u2], "message": []})))
    assert rec.take() == [
        ("applying", "subscribe", None, {"user": 2}),
        ("user+", u1, None),
        ("user+", u2, None),
        ("applied", "subscribe", None, {"user": 2}),
        ("handle_applied", h),
    ]

    # another client's transaction: two tables
    m1 = Message(ident(2), TS, "hi")
    u2b = User(ident(2), "bee", True)
    s.feed(s.tx(s.set_update(h.query_set_id, {"user": ([u2b], [u2]), "message": ([m1], [])})))
    assert rec.take() == [
        ("applying", "transaction", OTHER, {"user": 1, "message": 1}),
        ("user~", u2, u2b, OTHER),
        ("message+", m1, OTHER),
        ("applied", "transaction", OTHER, {"user": 1, "message": 1}),
        ("on_event", None),
    ]

    # this client's own call: the hooks come before the call's outcome and the reducer callbacks
    u1b = User(ident(1), "alice", True)
    call = chat.set_name("alice", client=s.conn, callback=rec("done"))
    s.feed(
        ReducerResult(
            call.request_id, TS, ReducerOk(b"", s.tx(s.set_update(h.query_set_id, {"user": ([u1b], [u1])})))
        )
    )
    own = ReducerEvent(s.identity, s.connection_id, "set_name", "committed", "", ["alice"], TS)
    assert rec.take() == [
        ("applying", "transaction", own, {"user": 1}),
        ("user~", u1, u1b, own),
        ("applied", "transaction", own, {"user": 1}),
        ("done", call),
        ("on_event", "set_name"),
        ("on_set_name", s.identity, s.connection_id, "committed", "", "alice"),
    ]

    # a failed call applies nothing: no hook
    bad = chat.set_name("", client=s.conn)
    s.feed(ReducerResult(bad.request_id, TS, ReducerErr(b"\x04\x00\x00\x00nope")))
    assert [r[0] for r in rec.take()] == ["on_event", "on_set_name"]

    # the set ends: its rows leave in an "unsubscribe" message
    h.unsubscribe()
    unsub = s.t.of_type(Unsubscribe)[-1]
    s.feed(UnsubscribeApplied(unsub.request_id, h.query_set_id, None))
    log = rec.take()
    assert log[0] == ("applying", "unsubscribe", None, {"user": 2, "message": 1})
    assert sorted(r[1] for r in log[1:3] if r[0] == "user-") == sorted([u1b, u2b])
    assert log[-1] == ("applied", "unsubscribe", None, {"user": 2, "message": 1})
    assert len(log) == 4  # no callback is registered for message deletes


def test_a_transaction_that_changes_nothing_here_is_still_reported(chat: ModuleType) -> None:
    s = Script(chat).connect()
    rec = Recorder()
    watch(s, chat, rec)
    h = s.conn.subscribe_multi(["SELECT * FROM user"])
    s.feed(SubscribeApplied(sub_id(s, h), h.query_set_id, s.query_rows({"user": []})))
    assert rec.take() == [("applying", "subscribe", None, {}), ("applied", "subscribe", None, {})]
    call = chat.set_name("x", client=s.conn)
    s.feed(ReducerResult(call.request_id, TS, ReducerOk(b"", s.tx())))
    own = ReducerEvent(s.identity, s.connection_id, "set_name", "committed", "", ["x"], TS)
    assert rec.take() == [("applying", "transaction", own, {}), ("applied", "transaction", own, {})]


def test_under_a_budget_the_hooks_frame_rows_spread_over_frames(game: ModuleType) -> None:
    s = Script(game).connect()
    Point = game.Point
    seen: list[Any] = []
    Point.on_insert(lambda r, e: seen.append("row"), client=s.conn)
    s.conn.register_on_applying(lambda m: seen.append(("applying", m.rows["point"])))
    s.conn.register_on_applied(lambda m: seen.append(("applied", m.rows["point"])))
    h = s.conn.subscribe_multi(["SELECT * FROM point"])
    n = 30_000
    s.t.feed(
        SubscribeApplied(
            sub_id(s, h), h.query_set_id, s.query_rows({"point": [Point(i, 1.0, 2.0) for i in range(n)]})
        )
    )
    frames = 0
    while not seen or seen[-1] != ("applied", n):
        s.conn.update(budget=0.0005)
        frames += 1
        assert frames < 100_000
    assert frames >= 2
    assert seen[0] == ("applying", n) and seen[-1] == ("applied", n)
    assert seen[1:-1] == ["row"] * n


def test_unregistered_hooks_are_not_called(chat: ModuleType) -> None:
    s = Script(chat).connect()
    got: list[AppliedMessage] = []
    s.conn.register_on_applying(got.append)
    s.conn.register_on_applied(got.append)
    s.conn.unregister_on_applying(got.append)
    s.conn.unregister_on_applied(got.append)
    h = s.conn.subscribe_multi(["SELECT * FROM user"])
    s.feed(SubscribeApplied(sub_id(s, h), h.query_set_id, s.query_rows({"user": []})))
    assert got == []


def test_disconnect_reason_says_why_the_connection_went(chat: ModuleType) -> None:
    s = Script(chat, reconnect_min_delay=10.0).connect()
    assert s.conn.disconnect_reason is None
    s.t.drop(1006, "the server went away")
    s.conn.update()
    assert s.conn.state == "reconnecting"
    assert s.conn.disconnect_reason == "the server went away"
    s.conn.close()
    assert s.conn.state == "closed"
    assert s.conn.disconnect_reason == "closed by this client"
