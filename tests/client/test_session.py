"""The I/O-free session core (``ClientSession``) on its own: no threads, no sockets, no cache, no clock
(every time is a number passed in). Each test plays the driver: it calls the session, writes what it has
to send by hand (``wire``), and feeds it server messages."""

from __future__ import annotations

from typing import Any

import pytest

from spacetime_game.sdk import ProtocolError, SubscriptionHandle
from spacetime_game.sdk import _session as session_module
from spacetime_game.sdk._session import (
    CallFinished,
    ClientSession,
    Greeted,
    QueryAnswered,
    SetApplied,
    SetEnded,
    SetFailed,
    TransactionReceived,
)
from spacetime_game.sdk.protocol import (
    CallReducer,
    ClientMessage,
    Err,
    InitialConnection,
    OneOffQuery,
    OneOffQueryResult,
    ProcedureResult,
    QueryRows,
    ReducerErr,
    ReducerInternalError,
    ReducerOk,
    ReducerOkEmpty,
    ReducerResult,
    Subscribe,
    SubscribeApplied,
    SubscriptionError,
    TransactionUpdate,
    Unsubscribe,
    UnsubscribeApplied,
)

from ._support import TS, conn_id, ident

NO_ROWS = QueryRows(())


@pytest.fixture(autouse=True)
def no_jitter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(session_module.random, "random", lambda: 0.5)  # every delay exactly as computed


def wire(s: ClientSession) -> list[ClientMessage]:
    """Write everything the session has to send, as a driver does; returns it."""
    out, s.to_send = s.to_send, []
    for m in out:
        s.sent(m)
    return out


def greet(s: ClientSession, n: int = 1) -> list[ClientMessage]:
    s.opening()
    renewing = tuple(sorted(s._resubscribing))
    ev = s.receive(InitialConnection(ident(1), conn_id(n), "tok"))
    assert ev == Greeted(ident(1), conn_id(n), "tok", renewing)  # (renewed: the sets subscribed again)
    return wire(s)


def connected(**kwargs: Any) -> ClientSession:
    s = ClientSession(**kwargs)
    assert s.start()
    assert greet(s) == []
    assert s.state == "connected"
    return s


def subscribe(s: ClientSession, sql: str = "SELECT * FROM user", legacy: bool = False) -> SubscriptionHandle:
    h = SubscriptionHandle(lambda h: None, s.next_query_set_id(), (sql,), legacy=legacy)
    s.subscribe(h)
    return h


def apply(s: ClientSession, h: SubscriptionHandle, rid: int) -> SetApplied:
    """The server applies ``h``'s set (its Subscribe had request id ``rid``); the driver applies it."""
    ev = s.receive(SubscribeApplied(rid, h.query_set_id, NO_ROWS))
    assert isinstance(ev, SetApplied) and ev.handle is h
    h.set_applied(lambda job: None)
    return ev


def test_ids_are_unique_and_wrap_within_u32() -> None:
    s = ClientSession()
    assert [s.next_request_id() for _ in range(3)] == [1, 2, 3]
    assert [s.next_query_set_id() for _ in range(2)] == [1, 2]
    s._next_request = 0xFFFFFFFF
    assert [s.next_request_id() for _ in range(2)] == [0xFFFFFFFF, 1]  # never 0


def test_what_is_asked_before_the_greeting_waits_then_goes_in_order() -> None:
    s = ClientSession()
    assert s.start() and s.state == "connecting"
    assert not s.start()  # already connecting: no second transport
    call = s.call("attack", b"\x01", now=5.0)
    h = subscribe(s)
    q = s.one_off("SELECT * FROM user")
    assert s.to_send == [] and len(s.outbox) == 3
    sent = greet(s)
    assert sent == [
        CallReducer(call.request_id, 0, "attack", b"\x01"),
        Subscribe(2, h.query_set_id, h.queries),
        OneOffQuery(q.request_id, "SELECT * FROM user"),
    ]
    assert s.outbox == [] and s.state == "connected" and call.sent_at == 5.0


def test_messages_out_of_protocol_raise_before_anything_changes() -> None:
    s = ClientSession()
    s.start()
    s.opening()
    with pytest.raises(ProtocolError, match="before InitialConnection"):
        s.receive(TransactionUpdate(()))
    greet(s)
    with pytest.raises(ProtocolError, match="a second time"):
        s.receive(InitialConnection(ident(1), conn_id(1), "tok"))
    with pytest.raises(ProtocolError, match="matches no reducer call"):
        s.receive(ReducerResult(99, TS, ReducerOkEmpty()))
    with pytest.raises(ProtocolError, match="never calls procedures"):
        s.receive(ProcedureResult(None, TS, None, request_id=7))  # type: ignore[arg-type]
    with pytest.raises(ProtocolError, match="matches no one-off query"):
        s.receive(OneOffQueryResult(5, Err("x")))
    with pytest.raises(ProtocolError, match="never subscribed to"):
        s.receive(SubscribeApplied(1, 42, NO_ROWS))
    assert s.state == "connected"


def test_answers_must_carry_the_request_id_that_was_sent() -> None:
    s = connected()
    h = subscribe(s)
    with pytest.raises(ProtocolError, match="no Subscribe waiting"):
        s.receive(SubscribeApplied(1, h.query_set_id, NO_ROWS))  # not written yet
    (sub,) = wire(s)
    assert isinstance(sub, Subscribe)
    with pytest.raises(ProtocolError, match=f"its Subscribe had request id {sub.request_id}"):
        s.receive(SubscribeApplied(sub.request_id + 1, h.query_set_id, NO_ROWS))
    assert apply(s, h, sub.request_id).replace == ()
    with pytest.raises(ProtocolError, match="never unsubscribed"):
        s.receive(UnsubscribeApplied(77, h.query_set_id, None))
    assert not s.unsubscribe(h)  # connected: the rows go with the server's answer
    (unsub,) = wire(s)
    assert isinstance(unsub, Unsubscribe)
    assert s.receive(UnsubscribeApplied(unsub.request_id, h.query_set_id, None)) == SetEnded(h)
    assert h.query_set_id not in s.subs


def test_reducer_outcomes() -> None:
    s = connected()
    calls = [s.call("attack", b"", now=0.0) for _ in range(4)]
    wire(s)
    outcomes = [
        ReducerOk(b"", TransactionUpdate(())),
        ReducerOkEmpty(),
        ReducerErr(b"no"),
        ReducerInternalError("boom"),
    ]
    got = [s.receive(ReducerResult(c.request_id, TS, o)) for c, o in zip(calls, outcomes, strict=True)]
    assert all(isinstance(e, CallFinished) for e in got)
    assert [(e.call, e.status) for e in got if isinstance(e, CallFinished)] == [
        (calls[0], "committed"),
        (calls[1], "committed"),
        (calls[2], "failed"),
        (calls[3], "internal_error"),
    ]
    assert s.calls == {}
    assert isinstance(s.receive(TransactionUpdate(())), TransactionReceived)


def test_a_one_off_answer() -> None:
    s = connected()
    q = s.one_off("SELECT * FROM user")
    wire(s)
    assert s.receive(OneOffQueryResult(q.request_id, Err("no such table"))) == QueryAnswered(
        q, None, "no such table"
    )
    assert s.one_offs == {}


def test_backoff_doubles_from_the_clock_value_up_to_the_cap() -> None:
    s = connected(reconnect_min_delay=0.5, reconnect_max_delay=3.0)
    retries = []
    now = 100.0
    for _ in range(5):
        lost = s.lost()
        assert lost is not None
        plan = s.plan_reconnect(now)
        assert s.state == "reconnecting" and plan.retry_at is not None
        retries.append(plan.retry_at - now)
        assert not s.retry_due(plan.retry_at - 0.001)
        assert s.retry_due(plan.retry_at)
        assert not s.retry_due(plan.retry_at)  # once
        s.opening()
        now = plan.retry_at
    assert retries == [0.5, 1.0, 2.0, 3.0, 3.0]
    greet(s)
    assert s.attempt == 0  # a successful connection resets the backoff
    s.lost()
    assert s.plan_reconnect(0.0).retry_at == 0.5


def test_a_lost_connection_ends_the_calls_and_renews_the_sets() -> None:
    s = connected()
    active, pending, ended = (
        subscribe(s),
        subscribe(s, "SELECT * FROM message"),
        subscribe(s, "SELECT * FROM x"),
    )
    subs = wire(s)
    apply(s, active, subs[0].request_id)  # type: ignore[attr-defined]
    apply(s, ended, subs[2].request_id)  # type: ignore[attr-defined]
    s.unsubscribe(ended)  # its Unsubscribe will never be answered
    call = s.call("attack", b"", now=0.0)
    s.to_send.clear()  # (the driver's writes failed)
    s.unsent(CallReducer(call.request_id, 0, "attack", b""))
    lost = s.lost()
    assert lost is not None and lost.was_connected and lost.calls == (call,)
    assert s.outbox == []  # the call is reported disconnected: never sent later
    plan = s.plan_reconnect(10.0)
    assert plan.drops == (ended,) and ended.query_set_id not in s.subs
    s.opening()
    assert s.receive(InitialConnection(ident(1), conn_id(2), "tok")) == Greeted(
        ident(1),
        conn_id(2),
        "tok",
        (active.query_set_id,),  # only the set that was active is renewed
    )
    resent = wire(s)
    assert [(type(m), m.query_set_id) for m in resent] == [  # type: ignore[attr-defined]
        (Subscribe, active.query_set_id),
        (Subscribe, pending.query_set_id),
    ]
    # the renewed set's rows replace what it held (a reconcile)
    assert apply(s, active, resent[0].request_id).replace == (active.query_set_id,)  # type: ignore[attr-defined]


def test_without_reconnect_a_lost_connection_closes() -> None:
    s = connected(reconnect=False)
    lost = s.lost()
    assert lost is not None and lost.was_connected
    plan = s.plan_reconnect(0.0)
    assert plan.retry_at is None and s.state == "closed" and s.retry_at is None


def test_after_close_nothing_is_reported_or_retried() -> None:
    s = connected()
    s.lost()
    s.plan_reconnect(0.0)
    s.close()
    assert s.state == "closed" and s.lost() is None and not s.retry_due(1e9)


def test_unsubscribe_while_disconnected_drops_the_rows_here() -> None:
    s = ClientSession()
    s.start()
    h = subscribe(s)
    assert s.unsubscribe(h) and h.state == "ended" and h.query_set_id not in s.subs
    assert not s.unsubscribe(h)  # once


def test_a_new_subscribe_set_replaces_the_older_ones() -> None:
    s = connected()
    old = subscribe(s, legacy=True)
    (sub,) = wire(s)
    apply(s, old, sub.request_id)  # type: ignore[attr-defined]
    new = subscribe(s, "SELECT * FROM message", legacy=True)
    (sub,) = wire(s)
    ev = apply(s, new, sub.request_id)  # type: ignore[attr-defined]
    assert ev.replace == (old.query_set_id,) and old.state == "ended"
    (unsub,) = wire(s)
    assert unsub == Unsubscribe(unsub.request_id, old.query_set_id, unsub.flags)  # type: ignore[attr-defined]


def test_a_set_failing_with_an_unsubscribe_in_flight_expects_its_answer() -> None:
    s = connected()
    h = subscribe(s)
    (sub,) = wire(s)
    apply(s, h, sub.request_id)  # type: ignore[attr-defined]
    s.unsubscribe(h)
    (unsub,) = wire(s)
    ev = s.receive(SubscriptionError(None, h.query_set_id, "dropped by the server"))
    assert ev == SetFailed(h, "dropped by the server", dropped=True)
    assert h.state == "error" and h.error == "dropped by the server"
    # the answer to the Unsubscribe still comes, and is expected; a second one is not
    assert s.receive(UnsubscribeApplied(unsub.request_id, h.query_set_id, None)) is None  # type: ignore[attr-defined]
    with pytest.raises(ProtocolError):
        s.receive(UnsubscribeApplied(unsub.request_id, h.query_set_id, None))  # type: ignore[attr-defined]
