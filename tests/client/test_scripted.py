"""The client driven by scripted server messages over a fake transport (no network), in the style of the
C# SDK's snapshot tests: each test feeds SubscribeApplied / TransactionUpdate / ReducerResult /
UnsubscribeApplied / SubscriptionError messages built from rows encoded with the generated codecs, and
asserts the exact sequence of callbacks and the state of the cache."""

from __future__ import annotations

import itertools
import logging
import time
from types import ModuleType
from typing import Any

import pytest

from spacetime_game.sdk import ReducerEvent, TransactionUpdateMessage, _session
from spacetime_game.sdk._errors import SubscriptionFailed
from spacetime_game.sdk._tables import TableCache
from spacetime_game.sdk.protocol import (
    BsatnRowList,
    CallReducer,
    Err,
    InitialConnection,
    OneOffQuery,
    OneOffQueryResult,
    PersistentTableRows,
    QueryRows,
    QuerySetUpdate,
    ReducerErr,
    ReducerInternalError,
    ReducerOk,
    ReducerOkEmpty,
    ReducerResult,
    SingleTableRows,
    Subscribe,
    SubscribeApplied,
    SubscriptionError,
    TableUpdate,
    TransactionUpdate,
    Unsubscribe,
    UnsubscribeApplied,
    UnsubscribeFlags,
)
from spacetime_game.sdk.sats import DecodeError, PrimitiveType, compile_codec

from ._support import TS, FakeTransport, Recorder, Script, conn_id, ident

#: the event of a transaction started by another client (v2 carries no reducer, caller or args)
OTHER = ReducerEvent(None, None, None, "committed", "", None)
STRING = compile_codec(PrimitiveType("String"))


def _string(s: str) -> bytes:
    return bytes(STRING.encode(s))


def by_tag(log: list[tuple[Any, ...]]) -> dict[str, list[tuple[Any, ...]]]:
    """Each callback's own calls, in order (different callbacks on one batch of rows may take turns per
    row or per batch)."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    for tag, *args in log:
        out.setdefault(tag, []).append(tuple(args))
    return out


@pytest.fixture
def rec() -> Recorder:
    return Recorder()


def watch_chat(s: Script, rec: Recorder, chat: ModuleType) -> None:
    """Record every row callback of both chat tables, tagged ``user+``, ``user~``, ``user-`` ..."""
    for cls, tag in ((chat.User, "user"), (chat.Message, "message")):
        cls.on_insert(rec(f"{tag}+"), client=s.conn)
        cls.on_update(rec(f"{tag}~"), client=s.conn)
        cls.on_delete(rec(f"{tag}-"), client=s.conn)


def applied(s: Script, handle: Any, tables: dict[str, list[Any]]) -> SubscribeApplied:
    """The SubscribeApplied answering the last Subscribe sent for ``handle`` (with its request id)."""
    return SubscribeApplied(sub_id(s, handle), handle.query_set_id, s.query_rows(tables))


def sub_id(s: Script, handle: Any) -> int:
    """The request id of the last Subscribe sent for ``handle`` on the current connection."""
    return next(
        m.request_id for m in reversed(s.t.of_type(Subscribe)) if m.query_set_id == handle.query_set_id
    )


# ---- overlapping subscriptions --------------------------------------------------------------------
def test_overlapping_sets_count_rows_once(chat: ModuleType, rec: Recorder) -> None:
    s = Script(chat).connect()
    watch_chat(s, rec, chat)
    User = chat.User
    u1, u2, u3 = User(ident(1), "alice", True), User(ident(2), None, False), User(ident(3), "carol", True)
    all_users = s.conn.subscribe_multi(["SELECT * FROM user"])
    online = s.conn.subscribe_multi(["SELECT * FROM user WHERE online = true"])
    assert [m.query_set_id for m in s.t.of_type(Subscribe)] == [
        all_users.query_set_id,
        online.query_set_id,
    ]
    assert all_users.query_set_id != online.query_set_id

    s.feed(applied(s, all_users, {"user": [u1, u2]}))
    assert rec.take() == [("user+", u1, None), ("user+", u2, None)]
    s.feed(applied(s, online, {"user": [u1]}))
    assert rec.take() == []  # u1 is already there: no second insert
    assert s.conn.count_rows("user") == 2
    assert all_users.is_active and online.is_active

    # one transaction inserts u3 into both sets: one insert
    q1, q2 = all_users.query_set_id, online.query_set_id
    s.feed(s.tx(s.set_update(q1, {"user": ([u3], [])}), s.set_update(q2, {"user": ([u3], [])})))
    assert rec.take() == [("user+", u3, OTHER)]
    assert sorted(r.name or "" for r in User.iter(client=s.conn)) == ["", "alice", "carol"]
    s.check_counts()

    # dropping one set keeps the rows the other one holds; only u2 goes
    ended = Recorder()
    all_users.on_end(ended("end"))
    all_users.unsubscribe()
    unsub = s.t.of_type(Unsubscribe)[-1]
    assert unsub.query_set_id == q1
    assert not all_users.is_active
    s.feed(UnsubscribeApplied(unsub.request_id, q1, None))
    assert rec.take() == [("user-", u2, None)]
    assert ended.take() == [("end", all_users)]
    assert {u.identity for u in User.iter(client=s.conn)} == {ident(1), ident(3)}
    s.check_counts()

    # dropping the other set too deletes them
    online.unsubscribe()
    unsub = s.t.of_type(Unsubscribe)[-1]
    s.feed(UnsubscribeApplied(unsub.request_id, q2, None))
    assert rec.take() == [("user-", u1, None), ("user-", u3, None)]
    assert s.conn.count_rows("user") == 0
    assert s.conn.cache.sets == {}
    s.check_counts()


def test_row_deleted_from_one_set_stays_until_deleted_from_both(chat: ModuleType, rec: Recorder) -> None:
    s = Script(chat).connect()
    watch_chat(s, rec, chat)
    m = chat.Message(ident(2), TS, "hi")
    a = s.conn.subscribe_multi(["SELECT * FROM message"])
    b = s.conn.subscribe_multi(["SELECT * FROM message WHERE text = 'hi'"])
    s.feed(applied(s, a, {"message": [m]}), applied(s, b, {"message": [m]}))
    assert rec.take() == [("message+", m, None)]
    s.feed(s.tx(s.set_update(a.query_set_id, {"message": ([], [m])})))
    assert rec.take() == []
    assert list(chat.Message.iter(client=s.conn)) == [m]
    s.feed(s.tx(s.set_update(b.query_set_id, {"message": ([], [m])})))
    assert rec.take() == [("message-", m, OTHER)]
    assert s.conn.count_rows("message") == 0
    s.check_counts()


# ---- the documented subscribe: each call replaces the previous one ---------------------------------
def test_legacy_subscribe_replaces_previous_queries(chat: ModuleType, rec: Recorder) -> None:
    s = Script(chat).connect()
    watch_chat(s, rec, chat)
    legacy: list[tuple[Any, ...]] = []
    chat.User.register_row_update(lambda *a: legacy.append(a), client=s.conn)
    User = chat.User
    u1, u2, u3 = User(ident(1), "a", True), User(ident(2), "b", False), User(ident(3), "c", True)
    first = s.conn.subscribe(["SELECT * FROM user"])
    s.feed(applied(s, first, {"user": [u1, u2, u3]}))
    assert rec.take() == [("user+", u1, None), ("user+", u2, None), ("user+", u3, None)]
    assert legacy == [("insert", None, u1, None), ("insert", None, u2, None), ("insert", None, u3, None)]
    legacy.clear()

    second = s.conn.subscribe(["SELECT * FROM user WHERE online = true"])
    assert second.query_set_id != first.query_set_id
    assert s.t.of_type(Unsubscribe) == []  # nothing is dropped before the new rows are in
    s.feed(applied(s, second, {"user": [u1, u3]}))
    # only the row that no longer matches goes; nothing at all for u1 and u3
    assert rec.take() == [("user-", u2, None)]
    assert legacy == [("delete", u2, None, None)]
    assert first.is_ended and second.is_active
    (unsub,) = s.t.of_type(Unsubscribe)
    assert unsub.query_set_id == first.query_set_id
    s.feed(UnsubscribeApplied(unsub.request_id, first.query_set_id, None))
    assert rec.take() == []
    assert {u.identity for u in User.iter(client=s.conn)} == {ident(1), ident(3)}
    s.check_counts()


def test_updates_for_a_replaced_set_in_flight_are_ignored(chat: ModuleType, rec: Recorder) -> None:
    """Between the new set's SubscribeApplied and the old set's UnsubscribeApplied the server still sends
    updates for the old set. They must not bring back rows of the replaced queries."""
    s = Script(chat).connect()
    watch_chat(s, rec, chat)
    User = chat.User
    u1, u2 = User(ident(1), "a", True), User(ident(2), "b", False)
    u1_off = User(ident(1), "a", False)
    first = s.conn.subscribe(["SELECT * FROM user"])
    s.feed(applied(s, first, {"user": [u1, u2]}))
    second = s.conn.subscribe(["SELECT * FROM user WHERE online = true"])
    s.feed(applied(s, second, {"user": [u1]}))
    assert rec.take()[-1] == ("user-", u2, None)
    # u1 goes offline: it changes in the old set and leaves the new one
    s.feed(
        s.tx(
            s.set_update(first.query_set_id, {"user": ([u1_off], [u1])}),
            s.set_update(second.query_set_id, {"user": ([], [u1])}),
        )
    )
    assert rec.take() == [("user-", u1, OTHER)]
    assert s.conn.count_rows("user") == 0
    s.check_counts()
    (unsub,) = s.t.of_type(Unsubscribe)
    s.feed(UnsubscribeApplied(unsub.request_id, first.query_set_id, None))
    assert rec.take() == []
    s.check_counts()


# ---- event tables ------------------------------------------------------------------------------------
def test_event_table_rows_fire_inserts_and_are_never_stored(game: ModuleType, rec: Recorder) -> None:
    s = Script(game).connect()
    Hit = game.Hit
    Hit.on_insert(rec("hit+"), client=s.conn)
    Hit.on_delete(rec("hit-"), client=s.conn)
    Hit.on_update(rec("hit~"), client=s.conn)
    Hit.register_row_update(rec("hit*"), client=s.conn)
    h = s.conn.subscribe_multi(["SELECT * FROM hit"])
    s.feed(applied(s, h, {"hit": []}))
    assert rec.take() == []
    h1, h2 = Hit(1, 10), Hit(2, 20)
    s.feed(s.tx(s.set_update(h.query_set_id, {}, events={"hit": [h1, h2, h1]})))
    log = by_tag(rec.take())
    assert log == {
        # an event row is an event each time, even when identical; never an update or a delete
        "hit+": [(h1, OTHER), (h2, OTHER), (h1, OTHER)],
        "hit*": [("insert", None, h1, OTHER), ("insert", None, h2, OTHER), ("insert", None, h1, OTHER)],
    }
    assert s.conn.count_rows("hit") == 0
    assert list(Hit.iter(client=s.conn)) == []

    # this client's own call: the event row comes inside the ReducerResult
    call = game.attack(7, 3, client=s.conn)
    s.feed(
        ReducerResult(
            call.request_id,
            TS,
            ReducerOk(b"", s.tx(s.set_update(h.query_set_id, {}, events={"hit": [Hit(7, 3)]}))),
        )
    )
    ev = ReducerEvent(s.identity, s.connection_id, "attack", "committed", "", [7, 3], TS)
    assert by_tag(rec.take()) == {"hit+": [(Hit(7, 3), ev)], "hit*": [("insert", None, Hit(7, 3), ev)]}
    assert s.conn.count_rows("hit") == 0
    h.unsubscribe()
    s.feed(UnsubscribeApplied(s.t.of_type(Unsubscribe)[-1].request_id, h.query_set_id, None))
    assert rec.take() == []  # nothing stored, nothing to delete
    s.check_counts()


def test_event_table_rows_sent_as_inserts_are_events(game: ModuleType, rec: Recorder) -> None:
    """v1 has no event rows: a server sends an event table's rows as ordinary inserts. They are events
    all the same (fired, never stored)."""
    s = Script(game).connect()
    game.Hit.on_insert(rec("hit+"), client=s.conn)
    h = s.conn.subscribe_multi(["SELECT * FROM hit"])
    s.feed(applied(s, h, {"hit": []}))
    hit = game.Hit(3, 30)
    s.feed(s.tx(s.set_update(h.query_set_id, {"hit": ([hit, hit], [])})))
    assert rec.take() == [("hit+", hit, OTHER), ("hit+", hit, OTHER)]
    assert s.conn.count_rows("hit") == 0
    s.check_counts()


# ---- a set that fails after it was applied -----------------------------------------------------------
def test_set_failing_later_takes_exactly_its_rows_away(chat: ModuleType, rec: Recorder) -> None:
    s = Script(chat).connect()
    watch_chat(s, rec, chat)
    User, Message = chat.User, chat.Message
    u1, u2 = User(ident(1), "a", True), User(ident(2), "b", False)
    m1 = Message(ident(1), TS, "one")
    users = s.conn.subscribe_multi(["SELECT * FROM user"])
    online = s.conn.subscribe_multi(["SELECT * FROM user WHERE online = true"])
    messages = s.conn.subscribe_multi(["SELECT * FROM message"])
    s.feed(
        applied(s, users, {"user": [u1, u2]}),
        applied(s, online, {"user": [u1]}),
        applied(s, messages, {"message": [m1]}),
    )
    rec.take()
    errors = Recorder()
    users.on_error(errors("error"))
    users.on_end(errors("end"))
    s.feed(SubscriptionError(None, users.query_set_id, "the table changed"))
    assert rec.take() == [("user-", u2, None)]  # u1 is still held by `online`; messages untouched
    assert ("error", users, "the table changed") in errors.log
    assert users.state == "error" and users.error == "the table changed" and not users.is_active
    assert online.is_active and messages.is_active
    assert {u.identity for u in User.iter(client=s.conn)} == {ident(1)}
    assert list(Message.iter(client=s.conn)) == [m1]
    assert users.query_set_id not in s.conn.cache.sets
    assert s.errors == []  # the handle had its own on_error
    s.check_counts()

    # a set without an on_error of its own reports to the connection's on_error
    s.feed(SubscriptionError(None, messages.query_set_id, "gone"))
    assert rec.take() == [("message-", m1, None)]
    assert len(s.errors) == 1 and isinstance(s.errors[0], SubscriptionFailed)
    assert "gone" in str(s.errors[0])
    s.check_counts()


def test_rejected_subscribe_touches_no_rows(chat: ModuleType, rec: Recorder) -> None:
    s = Script(chat).connect()
    watch_chat(s, rec, chat)
    u1 = chat.User(ident(1), "a", True)
    good = s.conn.subscribe_multi(["SELECT * FROM user"])
    s.feed(applied(s, good, {"user": [u1]}))
    rec.take()
    bad = s.conn.subscribe_multi(["SELECT * FROM nope"])
    errors = Recorder()
    bad.on_error(errors("error"))
    sub = s.last_subscribe()
    s.feed(SubscriptionError(sub.request_id, bad.query_set_id, "no such table: nope"))
    assert errors.take() == [("error", bad, "no such table: nope")]
    assert rec.take() == []
    assert bad.is_ended and not bad.is_active and good.is_active
    assert list(chat.User.iter(client=s.conn)) == [u1]
    s.check_counts()


# ---- updates, cancelling pairs ------------------------------------------------------------------------
def test_pk_update_is_one_update_event(chat: ModuleType, rec: Recorder) -> None:
    s = Script(chat).connect()
    watch_chat(s, rec, chat)
    legacy = Recorder()
    chat.User.register_row_update(legacy("row"), client=s.conn)
    events: list[Any] = []
    s.conn.register_on_event(events.append)
    u1, u2 = chat.User(ident(1), None, True), chat.User(ident(2), "b", True)
    u1b = chat.User(ident(1), "alice", True)
    h = s.conn.subscribe_multi(["SELECT * FROM user"])
    s.feed(applied(s, h, {"user": [u1, u2]}))
    rec.take()
    legacy.take()
    s.feed(s.tx(s.set_update(h.query_set_id, {"user": ([u1b], [u1])})))
    assert rec.take() == [("user~", u1, u1b, OTHER)]
    assert legacy.take() == [("row", "update", u1, u1b, OTHER)]
    assert chat.User.filter_by_identity(ident(1), client=s.conn) == u1b
    assert s.conn.count_rows("user") == 2
    (msg,) = events
    assert isinstance(msg, TransactionUpdateMessage)
    assert msg.reducer_event == OTHER
    assert (msg.reducer_name, msg.caller_identity, msg.caller_address, msg.args) == (None, None, None, None)
    assert msg.status == "committed"
    s.check_counts()


def test_delete_and_insert_of_the_same_row_cancel(chat: ModuleType, rec: Recorder) -> None:
    s = Script(chat).connect()
    watch_chat(s, rec, chat)
    u1 = chat.User(ident(1), "a", True)
    m1, m2 = chat.Message(ident(1), TS, "x"), chat.Message(ident(1), TS, "y")
    h = s.conn.subscribe_multi(["SELECT * FROM user", "SELECT * FROM message"])
    s.feed(applied(s, h, {"user": [u1], "message": [m1]}))
    rec.take()
    q = h.query_set_id
    # a row that is deleted and inserted again in one message: nothing happened
    s.feed(s.tx(s.set_update(q, {"user": ([u1], [u1]), "message": ([m1], [m1])})))
    assert rec.take() == []
    assert list(chat.User.iter(client=s.conn)) == [u1]
    assert list(chat.Message.iter(client=s.conn)) == [m1]
    # a row that is inserted and deleted in one message (not cached before): nothing either
    s.feed(s.tx(s.set_update(q, {"message": ([m2], [m2])})))
    assert rec.take() == []
    assert list(chat.Message.iter(client=s.conn)) == [m1]
    # a delete of a row the cache never had: ignored, no spurious event
    s.feed(s.tx(s.set_update(q, {"message": ([], [m2])})))
    assert rec.take() == []
    s.check_counts()


# ---- reducer results ------------------------------------------------------------------------------------
def test_own_reducer_ok_carries_rows_and_reducer_event(chat: ModuleType, rec: Recorder) -> None:
    s = Script(chat).connect()
    watch_chat(s, rec, chat)
    order = Recorder()
    chat.register_on_set_name(order("on_set_name"), client=s.conn)
    s.conn.register_on_event(lambda m: order.log.append(("on_event", m.reducer_name, m.args, m.status)))
    u1 = chat.User(ident(1), None, True)
    u1b = chat.User(ident(1), "bob", True)
    h = s.conn.subscribe_multi(["SELECT * FROM user"])
    s.feed(applied(s, h, {"user": [u1]}))
    rec.take()
    call = chat.set_name("bob", client=s.conn, callback=order("done"))
    (sent,) = s.t.of_type(CallReducer)
    assert (sent.reducer, sent.request_id, sent.flags) == ("set_name", call.request_id, 0)
    assert sent.args == _string("bob")
    assert call.status == "pending" and not call.done
    s.feed(
        ReducerResult(
            call.request_id,
            TS,
            ReducerOk(b"", s.tx(s.set_update(h.query_set_id, {"user": ([u1b], [u1])}))),
        )
    )
    ev = ReducerEvent(s.identity, s.connection_id, "set_name", "committed", "", ["bob"], TS)
    assert rec.take() == [("user~", u1, u1b, ev)]
    assert order.take() == [
        ("done", call),
        ("on_event", "set_name", ["bob"], "committed"),
        ("on_set_name", s.identity, s.connection_id, "committed", "", "bob"),
    ]
    assert call.status == "committed" and call.committed and call.message == ""
    assert call.round_trip is not None and call.round_trip >= 0
    assert s.conn.stats.round_trip("set_name", 0.5) is not None
    s.check_counts()


def test_other_clients_transaction_has_no_reducer_info(chat: ModuleType, rec: Recorder) -> None:
    s = Script(chat).connect()
    watch_chat(s, rec, chat)
    on_reducer = Recorder()
    chat.register_on_send_message(on_reducer("send"), client=s.conn)
    h = s.conn.subscribe_multi(["SELECT * FROM message"])
    m1 = chat.Message(ident(9), TS, "from someone else")
    s.feed(applied(s, h, {"message": [m1]}))
    assert rec.take() == [("message+", m1, None)]  # subscription rows: event None
    m2 = chat.Message(ident(9), TS, "another")
    s.feed(s.tx(s.set_update(h.query_set_id, {"message": ([m2], [])})))
    ((tag, row, ev),) = rec.take()
    assert (tag, row) == ("message+", m2)
    assert isinstance(ev, ReducerEvent)
    assert (ev.reducer_name, ev.caller_identity, ev.caller_address, ev.args) == (None, None, None, None)
    assert ev.status == "committed"
    assert on_reducer.take() == []  # reducer callbacks are for this client's own calls


@pytest.mark.parametrize(
    ("outcome", "status", "message"),
    [
        (ReducerErr(_string("Names must not be empty")), "failed", "Names must not be empty"),
        (ReducerInternalError("no such reducer"), "internal_error", "no such reducer"),
    ],
)
def test_reducer_failure(chat: ModuleType, rec: Recorder, outcome: Any, status: str, message: str) -> None:
    s = Script(chat).connect()
    watch_chat(s, rec, chat)
    cbs = Recorder()
    chat.register_on_set_name(cbs("on_set_name"), client=s.conn)
    events: list[Any] = []
    s.conn.register_on_event(events.append)
    call = chat.set_name("", client=s.conn)
    s.feed(ReducerResult(call.request_id, TS, outcome))
    assert call.status == status and call.done and not call.committed
    assert call.message == message
    assert cbs.take() == [("on_set_name", s.identity, s.connection_id, "failed", message, "")]
    (ev,) = events
    assert (ev.status, ev.message, ev.reducer_name, ev.args) == ("failed", message, "set_name", [""])
    assert rec.take() == []


def test_reducer_ok_empty_commits(chat: ModuleType) -> None:
    s = Script(chat).connect()
    cbs = Recorder()
    chat.register_on_send_message(cbs("send"), client=s.conn)
    call = chat.send_message("hello", client=s.conn)
    s.feed(ReducerResult(call.request_id, TS, ReducerOkEmpty()))
    assert call.status == "committed"
    assert cbs.take() == [("send", s.identity, s.connection_id, "committed", "", "hello")]


def test_add_done_callback_on_a_finished_call_fires_at_once(chat: ModuleType) -> None:
    """Regression: ``add_done_callback`` on a call whose outcome has arrived used to only append the
    callback, which then never fired."""
    s = Script(chat).connect()
    call = chat.send_message("hello", client=s.conn)
    early: list[Any] = []
    call.add_done_callback(early.append)
    s.feed(ReducerResult(call.request_id, TS, ReducerOkEmpty()))
    assert early == [call]  # added while pending: fired once, by update()
    late: list[Any] = []
    call.add_done_callback(late.append)
    assert late == [call]  # added after the outcome: fired at once, without update()
    s.conn.update()
    assert early == [call] and late == [call]  # and never again


def test_add_done_callback_after_a_disconnect_fires_at_once(chat: ModuleType) -> None:
    s = Script(chat, reconnect=False).connect()
    call = chat.send_message("hello", client=s.conn)
    s.t.drop()
    s.conn.update()
    assert call.status == "disconnected"
    late: list[Any] = []
    call.add_done_callback(late.append)
    assert late == [call]


def test_add_done_callback_on_an_answered_query_fires_at_once(chat: ModuleType) -> None:
    s = Script(chat).connect()
    h = s.conn.one_off_query("SELECT * FROM user")
    sent = s.t.of_type(OneOffQuery)[-1]
    s.feed(OneOffQueryResult(sent.request_id, Err("no such table")))
    assert h.done and h.error == "no such table"
    late: list[Any] = []
    h.add_done_callback(late.append)
    assert late == [h]


def test_a_late_done_callback_that_raises_is_logged(
    chat: ModuleType, caplog: pytest.LogCaptureFixture
) -> None:
    s = Script(chat).connect()
    call = chat.send_message("hello", client=s.conn)
    s.feed(ReducerResult(call.request_id, TS, ReducerOkEmpty()))

    def broken(c: Any) -> None:
        raise RuntimeError("boom")

    with caplog.at_level(logging.ERROR, logger="spacetime_game"):
        call.add_done_callback(broken)  # does not raise into the caller
    assert any("boom" in str(r.exc_info[1]) for r in caplog.records if r.exc_info)


# ---- callback errors ----------------------------------------------------------------------------------
def test_exception_in_a_callback_is_reported_and_the_rest_still_runs(chat: ModuleType) -> None:
    s = Script(chat).connect()
    seen: list[Any] = []

    def broken(row: Any, ev: Any) -> None:
        raise RuntimeError(f"boom {row.name}")

    chat.User.on_insert(lambda r, e: seen.append(("before", r.name)), client=s.conn)
    chat.User.on_insert(broken, client=s.conn)
    chat.User.on_insert(lambda r, e: seen.append(("after", r.name)), client=s.conn)
    applied_cbs: list[str] = []
    s.conn.register_on_subscription_applied(lambda: applied_cbs.append("applied"))
    u1, u2 = chat.User(ident(1), "a", True), chat.User(ident(2), "b", True)
    h = s.conn.subscribe_multi(["SELECT * FROM user"])
    s.feed(applied(s, h, {"user": [u1, u2]}))
    # every callback saw every row, in order (the broken one in between did not stop anything)
    assert [n for t, n in seen if t == "before"] == ["a", "b"]
    assert [n for t, n in seen if t == "after"] == ["a", "b"]
    assert [str(e) for e in s.errors] == ["boom a", "boom b"]
    assert all(isinstance(e, RuntimeError) for e in s.errors)
    assert applied_cbs == ["applied"] and h.is_active
    assert s.conn.count_rows("user") == 2
    s.check_counts()
    # the connection keeps working
    u3 = chat.User(ident(3), "c", True)
    s.feed(s.tx(s.set_update(h.query_set_id, {"user": ([u3], [])})))
    assert sorted(seen[-2:]) == [("after", "c"), ("before", "c")]
    assert len(s.errors) == 3
    assert s.conn.count_rows("user") == 3
    s.check_counts()


@pytest.mark.parametrize("budget", [None, 0.05])
def test_exception_in_an_update_callback_skips_only_that_row(game: ModuleType, budget: float | None) -> None:
    s = Script(game).connect()
    Player = game.Player
    olds = [Player(i, f"p{i}", 0) for i in range(5)]
    news = [Player(i, f"p{i}", 1) for i in range(5)]
    seen: list[Any] = []

    def picky(old: Any, new: Any, ev: Any) -> None:
        if old.id % 2:
            raise KeyError(old.id)
        seen.append((old, new))

    Player.on_update(picky, client=s.conn)
    h = s.conn.subscribe_multi(["SELECT * FROM player"])
    s.feed(applied(s, h, {"player": olds}))
    s.t.feed(s.tx(s.set_update(h.query_set_id, {"player": (news, olds)})))
    s.conn.update(budget=budget)
    # the odd rows raised (reported each), the even ones were all delivered, and the cache is updated
    assert seen == [(olds[i], news[i]) for i in (0, 2, 4)]
    assert [e.args for e in s.errors] == [(1,), (3,)]
    assert sorted(Player.iter(client=s.conn)) == news
    s.check_counts()


def test_exception_in_on_error_does_not_escape(chat: ModuleType) -> None:
    def bad_on_error(exc: BaseException) -> None:
        raise ValueError("on_error broke too")

    s = Script(chat, on_error=bad_on_error).connect()
    chat.User.on_insert(lambda r, e: 1 / 0, client=s.conn)
    h = s.conn.subscribe_multi(["SELECT * FROM user"])
    s.feed(applied(s, h, {"user": [chat.User(ident(1), "a", True)]}))
    assert s.conn.count_rows("user") == 1 and h.is_active


# ---- unique columns use the index -------------------------------------------------------------------
class CountingDict(dict[bytes, Any]):
    """A dict that counts whole-table scans."""

    scans = 0

    def values(self) -> Any:
        CountingDict.scans += 1
        return super().values()

    def items(self) -> Any:
        CountingDict.scans += 1
        return super().items()

    def __iter__(self) -> Any:
        CountingDict.scans += 1
        return super().__iter__()


def test_unique_filter_by_uses_the_index(game: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    s = Script(game).connect()
    Player = game.Player
    players = [Player(i, f"p{i}", i % 7) for i in range(2000)]
    h = s.conn.subscribe_multi(["SELECT * FROM player"])
    s.feed(applied(s, h, {"player": players}))
    tc = s.conn.cache.table("player")
    tc.rows = CountingDict(tc.rows)
    filters: list[str] = []
    real_filter = TableCache.filter

    def counting_filter(self: TableCache, column: str, value: Any) -> Any:
        filters.append(column)
        return real_filter(self, column, value)

    monkeypatch.setattr(TableCache, "filter", counting_filter)
    CountingDict.scans = 0
    assert Player.filter_by_id(1234, client=s.conn) == players[1234]
    assert Player.filter_by_handle("p77", client=s.conn) == players[77]
    assert Player.filter_by_id(99999, client=s.conn) is None
    assert list(s.conn.filter_rows("player", "handle", "p5")) == [players[5]]
    assert list(s.conn.filter_rows("player", "id", 6)) == [players[6]]
    assert CountingDict.scans == 0, "a unique-column lookup scanned the table"
    # a non-unique column does scan (so the counter above can see scans)
    assert sorted(p.id for p in Player.filter_by_score(3, client=s.conn)) == [
        p.id for p in players if p.score == 3
    ]
    assert CountingDict.scans > 0
    assert "score" in filters

    # the index follows updates of the unique column (PK update with a new handle) and deletes
    s.feed(
        s.tx(
            s.set_update(
                h.query_set_id,
                {"player": ([Player(5, "renamed", 5)], [players[5], players[6]])},
            )
        )
    )
    assert Player.filter_by_handle("p5", client=s.conn) is None
    assert Player.filter_by_handle("renamed", client=s.conn) == Player(5, "renamed", 5)
    assert Player.filter_by_id(6, client=s.conn) is None
    assert Player.filter_by_handle("p6", client=s.conn) is None
    s.check_counts()


def test_unique_values_swapped_in_one_message(game: ModuleType) -> None:
    s = Script(game).connect()
    Player = game.Player
    a, b = Player(1, "x", 0), Player(2, "y", 0)
    h = s.conn.subscribe_multi(["SELECT * FROM player"])
    s.feed(applied(s, h, {"player": [a, b]}))
    a2, b2 = Player(1, "y", 0), Player(2, "x", 0)
    s.feed(s.tx(s.set_update(h.query_set_id, {"player": ([a2, b2], [a, b])})))
    assert Player.filter_by_handle("x", client=s.conn) == b2
    assert Player.filter_by_handle("y", client=s.conn) == a2
    s.check_counts()


# ---- update() budgets --------------------------------------------------------------------------------
def test_budget_spreads_a_big_subscription_and_applies_it_atomically(game: ModuleType) -> None:
    s = Script(game).connect()
    Point = game.Point
    n = 100_000
    inserted = [0]
    Point.on_insert(lambda r, e: inserted.__setitem__(0, inserted[0] + 1), client=s.conn)
    h = s.conn.subscribe_multi(["SELECT * FROM point"])
    done: list[int] = []
    h.on_applied(lambda _h: done.append(s.conn.count_rows("point")))
    codec = s.module.table("point").codec
    assert codec.fixed_size == 12
    rows = [Point(i, float(i % 100), 0.5) for i in range(n)]
    msg = SubscribeApplied(sub_id(s, h), h.query_set_id, s.query_rows({"point": rows}))
    s.t.feed(msg)
    progress: list[float] = []
    counts: list[int] = []
    calls = 0
    while not done:
        s.conn.update(budget=0.001)
        calls += 1
        progress.append(s.conn.progress)
        counts.append(s.conn.count_rows("point"))
        assert calls < 10_000
    assert calls >= 3, f"a 100k-row subscription was applied in {calls} update() calls"
    partial = [p for p, c in zip(progress, counts, strict=True) if c == 0]
    assert len(partial) >= 2
    # decoded so far; 1.0 may show for one call when decoding ended right at the budget (ready to apply)
    assert all(0 < p < 1 for p in partial[:-1]) and 0 < partial[-1] <= 1, progress
    assert partial == sorted(partial) and partial[0] < partial[-1]
    # rows appear all at once: never a partial table
    assert set(counts) <= {0, n}
    assert done == [n]
    while s.conn.update(budget=0.001) or inserted[0] < n:
        pass
    assert inserted[0] == n
    assert s.conn.progress == 1.0
    assert s.conn.count_rows("point") == n
    assert sorted(p.id for p in Point.iter(client=s.conn))[:3] == [0, 1, 2]


def test_update_with_nothing_pending_is_cheap(chat: ModuleType) -> None:
    s = Script(chat).connect()
    assert s.conn.update() == 0
    t0 = time.perf_counter()
    for _ in range(20_000):
        assert s.conn.update() == 0
    assert time.perf_counter() - t0 < 0.5


def test_max_messages_caps_each_update(chat: ModuleType) -> None:
    s = Script(chat).connect()
    h = s.conn.subscribe_multi(["SELECT * FROM message"])
    s.feed(applied(s, h, {"message": []}))
    msgs = [chat.Message(ident(1), TS, f"m{i}") for i in range(3)]
    s.t.feed(*(s.tx(s.set_update(h.query_set_id, {"message": ([m], [])})) for m in msgs))
    assert s.conn.update(max_messages=1) == 1
    assert s.conn.count_rows("message") == 1
    assert s.conn.update(max_messages=2) == 2
    assert s.conn.count_rows("message") == 3
    assert s.conn.update() == 0


# ---- disconnects and reconnects ---------------------------------------------------------------------
def test_reconnect_resubscribes_and_reconciles(chat: ModuleType, rec: Recorder) -> None:
    states: list[str] = []
    disconnects: list[Any] = []
    s = Script(
        chat,
        reconnect_min_delay=0.001,
        reconnect_max_delay=0.002,
        on_state=states.append,
        on_disconnect=lambda c, r: disconnects.append(r),
    ).connect()
    watch_chat(s, rec, chat)
    User = chat.User
    u1, u2, u3 = User(ident(1), "a", True), User(ident(2), "b", True), User(ident(3), "c", True)
    h = s.conn.subscribe_multi(["SELECT * FROM user"])
    s.feed(applied(s, h, {"user": [u1, u2, u3]}))
    rec.take()
    pending_call = chat.set_name("zed", client=s.conn)

    s.t.drop(1006, "gone")
    s.conn.update()
    assert s.conn.state == "reconnecting"
    assert disconnects == ["gone"]
    assert pending_call.status == "disconnected"
    assert s.conn.count_rows("user") == 3  # the cache stays while reconnecting
    first = s.t
    deadline = time.monotonic() + 5
    while len(s.transports) < 2:
        s.conn.update()
        assert time.monotonic() < deadline, "no reconnect attempt"
    second = s.t
    assert second is not first and second.token == "token-1"  # the same identity again
    second.feed(InitialConnection(s.identity, conn_id(2), "token-1"))
    s.conn.update()
    assert s.conn.is_connected
    resub = second.of_type(Subscribe)
    assert [(m.query_set_id, m.query_strings) for m in resub] == [(h.query_set_id, h.queries)]

    u2b, u4 = User(ident(2), "b2", True), User(ident(4), "d", True)
    s.feed(applied(s, h, {"user": [u1, u2b, u4]}))
    # only what changed while we were away
    assert rec.take() == [("user-", u3, None), ("user~", u2, u2b, None), ("user+", u4, None)]
    assert h.is_active
    assert s.conn.stats.reconnects == 1
    assert states == ["connecting", "connected", "reconnecting", "connected"]
    s.check_counts()


def test_a_resubscribe_whose_send_failed_is_not_sent_again_later(chat: ModuleType, rec: Recorder) -> None:
    """Found by the fault suite (SIGKILL under churn): the resubscribe of a new connection fails to send
    (the connection is already gone), stays in the outbox, and must not go out on the connection after
    that next to that connection's own resubscribe: the server would see two Subscribes for one set
    and the client would take the answer to the newer one for a protocol error."""
    s = Script(chat, reconnect_min_delay=0.001, reconnect_max_delay=0.002).connect()
    h = s.conn.subscribe_multi(["SELECT * FROM user"])
    s.feed(applied(s, h, {"user": [chat.User(ident(1), "a", True)]}))

    def reconnect() -> FakeTransport:
        before = len(s.transports)
        deadline = time.monotonic() + 5
        while len(s.transports) == before:
            s.conn.update()
            assert time.monotonic() < deadline, "no reconnect attempt"
        return s.t

    s.t.drop(1006, "gone")
    s.conn.update()
    second = reconnect()
    second.closed = True  # dead already: every send to it raises
    second.feed(InitialConnection(s.identity, conn_id(2), "token-1"))
    second.drop(1006, "gone again")
    s.conn.update()
    third = reconnect()
    third.feed(InitialConnection(s.identity, conn_id(3), "token-1"))
    s.conn.update()
    subs = third.of_type(Subscribe)
    assert [m.query_set_id for m in subs] == [h.query_set_id], subs
    s.feed(applied(s, h, {"user": [chat.User(ident(1), "a", True)]}))
    assert s.errors == [] and h.is_active and s.conn.is_connected


def test_unsubscribe_in_flight_at_disconnect_drops_the_rows(chat: ModuleType, rec: Recorder) -> None:
    """An Unsubscribe sent just before the connection dropped is never answered (the new connection has
    no such set): the set's rows must not stay in the cache forever."""
    s = Script(chat, reconnect_min_delay=0.001, reconnect_max_delay=0.002).connect()
    watch_chat(s, rec, chat)
    u1 = chat.User(ident(1), "a", True)
    m1 = chat.Message(ident(1), TS, "x")
    users = s.conn.subscribe_multi(["SELECT * FROM user"])
    messages = s.conn.subscribe_multi(["SELECT * FROM message"])
    s.feed(applied(s, users, {"user": [u1]}), applied(s, messages, {"message": [m1]}))
    rec.take()
    ended = Recorder()
    users.on_end(ended("end"))
    users.unsubscribe()
    s.t.drop()
    deadline = time.monotonic() + 5
    while len(s.transports) < 2:
        s.conn.update()
        assert time.monotonic() < deadline
    s.t.feed(InitialConnection(s.identity, s.connection_id, "token-1"))
    s.conn.update()
    resub = s.t.of_type(Subscribe)
    assert [m.query_set_id for m in resub] == [messages.query_set_id]
    s.feed(applied(s, messages, {"message": [m1]}))
    s.conn.update()
    assert rec.take() == [("user-", u1, None)]
    assert ended.take() == [("end", users)]
    assert s.conn.count_rows("user") == 0 and s.conn.count_rows("message") == 1
    s.check_counts()


def test_close_while_reconnecting_stays_closed(chat: ModuleType) -> None:
    s = Script(chat, reconnect_min_delay=0.01, reconnect_max_delay=0.02).connect()
    s.t.drop()
    s.conn.update()
    assert s.conn.state == "reconnecting"
    s.conn.close()
    assert s.conn.state == "closed"
    time.sleep(0.05)
    for _ in range(5):
        s.conn.update()
    assert len(s.transports) == 1, "update() after close() opened a new connection"
    assert s.conn.state == "closed"


def test_failed_connection_attempts_back_off(chat: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_session.random, "random", lambda: 0.5)  # no jitter: delays 0.02, 0.04, 0.08 ...
    s = Script(chat, reconnect_min_delay=0.02, reconnect_max_delay=0.08).connect()
    s.t.drop()
    s.conn.update()
    starts: list[float] = []
    deadline = time.monotonic() + 0.5
    while time.monotonic() < deadline:
        n = len(s.transports)
        s.conn.update()
        if len(s.transports) > n:
            starts.append(time.monotonic())
            s.t.fail(ConnectionRefusedError("refused"))
        time.sleep(0.001)
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert 3 <= len(starts) <= 10, starts
    assert gaps[0] >= 0.035  # the second delay (0.04 s), not a busy loop
    assert all(g >= 0.075 for g in gaps[2:])  # capped at reconnect_max_delay, never shorter
    assert all(g < 0.2 for g in gaps)
    assert sum(isinstance(e, ConnectionRefusedError) for e in s.errors) >= 3
    assert s.conn.state == "reconnecting"
    s.conn.close()


def test_messages_sent_while_disconnected_are_flushed_after_connecting(chat: ModuleType) -> None:
    s = Script(chat)
    s.conn.connect()
    call = chat.send_message("early", client=s.conn)
    h = s.conn.subscribe_multi(["SELECT * FROM message"])
    assert s.t.sent == []
    s.t.feed(InitialConnection(s.identity, s.connection_id, "tok"))
    s.conn.update()
    kinds = [type(m).__name__ for m in s.t.sent]
    assert sorted(kinds) == ["CallReducer", "Subscribe"]
    assert s.t.of_type(CallReducer)[0].request_id == call.request_id
    assert s.last_subscribe().query_set_id == h.query_set_id
    assert s.conn.token == "tok"


def test_unknown_tables_are_skipped_and_unsubscribe_is_sent_once(chat: ModuleType, rec: Recorder) -> None:
    s = Script(chat).connect()
    watch_chat(s, rec, chat)
    h = s.conn.subscribe_multi(["SELECT * FROM user"])
    # a table the bindings do not know is skipped, the known one applied
    extra = SingleTableRows("not_in_bindings", BsatnRowList.from_rows([b"\x01\x02"]))
    rows = s.query_rows({"user": [chat.User(ident(1), "a", True)]})
    s.feed(SubscribeApplied(sub_id(s, h), h.query_set_id, QueryRows((extra, *rows.tables))))
    assert [t for t, *_ in rec.take()] == ["user+"]
    h.unsubscribe()
    (u,) = s.t.of_type(Unsubscribe)
    assert u.flags in (UnsubscribeFlags.DEFAULT, UnsubscribeFlags.SEND_DROPPED_ROWS)
    h.unsubscribe()  # twice: no second message
    assert len(s.t.of_type(Unsubscribe)) == 1


def test_several_table_updates_in_one_message_are_one_diff(chat: ModuleType, rec: Recorder) -> None:
    """Several TableUpdates of one table inside one set, and one table in two sets of the same
    transaction: all applied as one diff."""
    s = Script(chat).connect()
    watch_chat(s, rec, chat)
    h = s.conn.subscribe_multi(["SELECT * FROM message"])
    s.feed(applied(s, h, {"message": []}))
    m1, m2 = chat.Message(ident(1), TS, "1"), chat.Message(ident(1), TS, "2")
    tu1 = TableUpdate(
        "message",
        (
            PersistentTableRows(s.rowlist("message", [m1]), s.rowlist("message", [])),
            PersistentTableRows(s.rowlist("message", [m2]), s.rowlist("message", [])),
        ),
    )
    tu2 = TableUpdate("message", (PersistentTableRows(s.rowlist("message", []), s.rowlist("message", [m1])),))
    s.feed(TransactionUpdate((QuerySetUpdate(h.query_set_id, (tu1, tu2)),)))
    assert rec.take() == [("message+", m2, OTHER)]
    s.check_counts()


def test_rows_of_an_unknown_table_are_ignored_with_a_warning(
    chat: ModuleType, rec: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    s = Script(chat).connect()
    watch_chat(s, rec, chat)
    u1 = chat.User(ident(1), "alice", True)
    h = s.conn.subscribe_multi(["SELECT * FROM user"])
    rows = s.query_rows({"user": [u1]})
    stranger = SingleTableRows("added_later", BsatnRowList.from_rows([b"\x01\x02", b"\x03\x04"]))
    with caplog.at_level(logging.WARNING, logger="spacetime_game.sdk.cache"):
        s.feed(SubscribeApplied(sub_id(s, h), h.query_set_id, QueryRows((*rows.tables, stranger))))
    assert rec.take() == [("user+", u1, None)]  # the known table is applied as usual
    assert any("added_later" in r.getMessage() for r in caplog.records)
    assert h.is_active
    s.check_counts()


@pytest.mark.parametrize(
    "bad",
    [
        # a row of the right size whose string length runs past the row
        lambda s: BsatnRowList(None, (0,), b"\x01\x00\x00\x00\xff\x00\x00\x00ab\x05\x00\x00\x00"),
        # offsets that point outside the rows' bytes
        lambda s: BsatnRowList(None, (0, 400), s.enc("player", s.package.Player(9, "x", 1))),
        # a size hint that does not divide the bytes
        lambda s: BsatnRowList(7, None, b"\x00" * 10),
    ],
)
def test_malformed_rows_are_reported_and_the_connection_is_rebuilt(
    game: ModuleType, rec: Recorder, bad: Any
) -> None:
    """A message whose rows cannot be read loses nothing: update() does not raise, the error goes to
    on_error, the message and what followed it are dropped, and the reconnect reconciles the cache."""
    s = Script(game, reconnect_min_delay=0.001, reconnect_max_delay=0.002).connect()
    Player = game.Player
    for ev in ("insert", "update", "delete"):
        s.conn.on_row("player", ev, rec(ev))
    p1, p2 = Player(1, "a", 1), Player(2, "b", 2)
    h = s.conn.subscribe_multi(["SELECT * FROM player"])
    s.feed(applied(s, h, {"player": [p1, p2]}))
    rec.take()
    first = s.t
    rows = bad(s)
    broken = TransactionUpdate(
        (QuerySetUpdate(h.query_set_id, (TableUpdate("player", (PersistentTableRows(rows, rows),)),)),)
    )
    later = s.tx(s.set_update(h.query_set_id, {"player": ([Player(3, "c", 3)], [])}))
    s.t.feed(broken, later)
    s.conn.update()  # no exception
    assert len(s.errors) == 1 and isinstance(s.errors[0], DecodeError)
    assert first.closed and s.conn.state == "reconnecting"
    assert rec.take() == []  # neither the broken message nor the one after it was applied
    assert sorted(Player.iter(client=s.conn)) == [p1, p2]
    deadline = time.monotonic() + 5
    while len(s.transports) < 2:
        s.conn.update()
        assert time.monotonic() < deadline, "no reconnect attempt"
    s.t.feed(InitialConnection(s.identity, conn_id(2), "token-1"))
    s.conn.update()
    p2b, p3 = Player(2, "b", 5), Player(3, "c", 3)
    s.feed(applied(s, h, {"player": [p1, p2b, p3]}))
    assert rec.take() == [("update", p2, p2b, None), ("insert", p3, None)]
    s.check_counts()
