"""Server messages that make no sense at this point of the session (issue #9, defect 16): a message before
InitialConnection, a second InitialConnection, answers about query sets never requested or request ids
never sent. Each is a protocol error: ``on_error`` gets a :class:`ProtocolError` naming the message and
why, the cache does not change, no callback fires for it (or for what followed it on that connection),
and the connection is rebuilt (reconnect, re-subscribe, reconcile), or closed when reconnect is off."""

from __future__ import annotations

import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest

from spacetime_game.sdk import ProtocolError, SpacetimeError, TimeDuration
from spacetime_game.sdk.protocol import (
    Err,
    InitialConnection,
    OneOffQueryResult,
    ProcedureInternalError,
    ProcedureResult,
    ReducerOk,
    ReducerResult,
    ServerMessage,
    Subscribe,
    SubscribeApplied,
    SubscriptionError,
    TransactionUpdate,
    UnsubscribeApplied,
)

from ._support import TS, Recorder, Script, conn_id, ident


def subscribe_id(s: Script, handle: Any) -> int:
    """The request id of the last Subscribe sent for ``handle`` on the current connection."""
    (rid, *_) = [
        m.request_id for m in reversed(s.t.of_type(Subscribe)) if m.query_set_id == handle.query_set_id
    ]
    return rid


class Session:
    """A connected client holding two players in an applied set, with every kind of callback recorded."""

    def __init__(self, game: ModuleType, **kwargs: Any) -> None:
        kwargs.setdefault("reconnect_min_delay", 0.001)
        kwargs.setdefault("reconnect_max_delay", 0.002)
        self.s = Script(game, **kwargs).connect()
        self.game = game
        self.rec = Recorder()
        for ev in ("insert", "update", "delete", "row_update"):
            self.s.conn.on_row("player", ev, self.rec(ev))
        self.s.conn.on_reducer("attack", self.rec("attack"))
        self.s.conn.register_on_event(self.rec("event"))
        self.s.conn.register_on_subscription_applied(self.rec("applied"))
        P = game.Player
        self.p1, self.p2 = P(1, "a", 1), P(2, "b", 2)
        self.h = self.s.conn.subscribe_multi(["SELECT * FROM player"])
        self.h.on_applied(self.rec("h_applied")).on_error(self.rec("h_error")).on_end(self.rec("h_end"))
        self.s.feed(
            SubscribeApplied(subscribe_id(self.s, self.h), self.h.query_set_id, self.rows(self.p1, self.p2))
        )
        assert self.rec.take()  # the initial rows arrived
        assert self.h.is_active

    def rows(self, *players: Any) -> Any:
        return self.s.query_rows({"player": list(players)})

    def cache(self) -> list[Any]:
        return sorted(self.game.Player.iter(client=self.s.conn))

    def later(self) -> TransactionUpdate:
        """A good message that follows the bad one on the same connection (it must be dropped too)."""
        return self.s.tx(
            self.s.set_update(self.h.query_set_id, {"player": ([self.game.Player(9, "z", 9)], [])})
        )

    def feed_bad(self, bad: ServerMessage, what: str) -> ProtocolError:
        before = self.cache()
        first = self.s.t
        self.s.t.feed(bad, self.later())
        self.s.conn.update()  # no exception
        errors = [e for e in self.s.errors if isinstance(e, ProtocolError)]
        assert len(errors) == 1 and len(self.s.errors) == 1, self.s.errors
        exc = errors[0]
        assert isinstance(exc, SpacetimeError)
        assert type(bad).__name__ in str(exc) and what in str(exc), str(exc)
        assert exc.message_type == type(bad).__name__
        assert self.rec.take() == []  # no callback for the bad message, nor for the one after it
        assert self.cache() == before  # the cache did not change
        self.s.check_counts()
        assert first.closed
        return exc

    def rebuilt(self) -> None:
        """The connection is rebuilt: reconnect, re-subscribe, reconcile."""
        assert self.s.conn.state == "reconnecting"
        first = self.s.t
        deadline = time.monotonic() + 5
        while self.s.t is first:
            self.s.conn.update()
            assert time.monotonic() < deadline, "no reconnect attempt"
        self.s.t.feed(InitialConnection(self.s.identity, conn_id(2), "token-1"))
        self.s.conn.update()
        assert self.s.conn.is_connected
        P = self.game.Player
        p2b, p3 = P(2, "b", 5), P(3, "c", 3)
        self.s.feed(
            SubscribeApplied(subscribe_id(self.s, self.h), self.h.query_set_id, self.rows(self.p1, p2b, p3))
        )
        log = self.rec.take()
        assert ("update", self.p2, p2b, None) in log and ("insert", p3, None) in log
        assert self.cache() == [self.p1, p2b, p3]
        assert len(self.s.errors) == 1  # nothing else went wrong
        self.s.check_counts()


BAD: dict[str, tuple[Callable[[Session], ServerMessage], str]] = {
    "second_initial_connection": (
        lambda x: InitialConnection(ident(7), conn_id(7), "another-token"),
        "a second time",
    ),
    "applied_for_a_set_never_requested": (
        lambda x: SubscribeApplied(subscribe_id(x.s, x.h), 999, x.rows(x.game.Player(5, "e", 5))),
        "query set 999",
    ),
    "applied_twice": (
        lambda x: SubscribeApplied(
            subscribe_id(x.s, x.h), x.h.query_set_id, x.rows(x.game.Player(5, "e", 5))
        ),
        "query set",
    ),
    "applied_with_a_request_id_never_sent": (
        lambda x: SubscribeApplied(
            4242,
            x.s.conn.subscribe_multi(["SELECT * FROM point"]).query_set_id,
            x.s.query_rows({"point": []}),
        ),
        "request id 4242",
    ),
    "unsubscribe_applied_for_a_set_still_subscribed": (
        lambda x: UnsubscribeApplied(subscribe_id(x.s, x.h), x.h.query_set_id, None),
        "query set",
    ),
    "unsubscribe_applied_for_a_set_never_requested": (
        lambda x: UnsubscribeApplied(7, 999, None),
        "query set 999",
    ),
    "subscription_error_for_a_set_never_requested": (
        lambda x: SubscriptionError(None, 999, "boom"),
        "query set 999",
    ),
    "subscription_error_with_a_request_id_never_sent": (
        lambda x: SubscriptionError(4242, x.h.query_set_id, "boom"),
        "request id 4242",
    ),
    "reducer_result_for_a_call_never_made": (
        lambda x: ReducerResult(
            4242,
            TS,
            ReducerOk(
                b"",
                x.s.tx(x.s.set_update(x.h.query_set_id, {"player": ([x.game.Player(6, "f", 6)], [x.p1])})),
            ),
        ),
        "request id 4242",
    ),
    "one_off_result_for_a_query_never_sent": (
        lambda x: OneOffQueryResult(4242, Err("nope")),
        "request id 4242",
    ),
    "procedure_result_for_a_call_never_made": (
        lambda x: ProcedureResult(ProcedureInternalError("x"), TS, TimeDuration(0), 4242),
        "request id 4242",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_message_out_of_protocol_is_a_protocol_error_and_the_connection_is_rebuilt(
    game: ModuleType, case: str
) -> None:
    x = Session(game)
    make, what = BAD[case]
    bad = make(x)
    x.feed_bad(bad, what)
    x.rebuilt()


@pytest.mark.parametrize(
    "first",
    [
        lambda s: TransactionUpdate(()),
        lambda s: SubscribeApplied(1, 1, s.query_rows({"player": [s.package.Player(1, "a", 1)]})),
        lambda s: ReducerResult(1, TS, ReducerOk(b"", TransactionUpdate(()))),
        lambda s: SubscriptionError(None, 1, "x"),
    ],
    ids=["TransactionUpdate", "SubscribeApplied", "ReducerResult", "SubscriptionError"],
)
def test_anything_before_initial_connection_is_a_protocol_error(game: ModuleType, first: Any) -> None:
    rec = Recorder()
    s = Script(game, reconnect_min_delay=0.001, reconnect_max_delay=0.002)
    s.conn.on_row("player", "insert", rec("insert"))
    h = s.conn.subscribe_multi(["SELECT * FROM player"])
    s.conn.connect()
    call = game.attack(1, 2, client=s.conn)
    bad = first(s)
    s.t.feed(bad, InitialConnection(s.identity, s.connection_id, "token-1"))
    s.conn.update()
    (exc,) = s.errors
    assert isinstance(exc, ProtocolError) and exc.message_type == type(bad).__name__
    assert "before InitialConnection" in str(exc)
    assert rec.take() == [] and s.conn.count_rows("player") == 0
    assert s.transports[0].closed and s.conn.state == "reconnecting"
    assert s.transports[0].sent == []  # nothing was sent on the broken connection
    deadline = time.monotonic() + 5
    while len(s.transports) < 2:
        s.conn.update()
        assert time.monotonic() < deadline, "no reconnect attempt"
    s.t.feed(InitialConnection(s.identity, s.connection_id, "token-1"))
    s.conn.update()
    assert s.conn.is_connected
    # the subscription waiting for the connection goes out on the new one; the call was reported as
    # disconnected, so it is not sent later behind the caller's back
    assert subscribe_id(s, h) and not [m for m in s.t.sent if hasattr(m, "reducer")]
    assert call.status == "disconnected"
    p1 = game.Player(1, "a", 1)
    s.feed(SubscribeApplied(subscribe_id(s, h), h.query_set_id, s.query_rows({"player": [p1]})))
    assert rec.take() == [("insert", p1, None)]
    assert len(s.errors) == 1


def test_without_reconnect_a_protocol_error_closes_the_connection(game: ModuleType) -> None:
    states: list[str] = []
    x = Session(game, reconnect=False, on_state=states.append)
    x.feed_bad(SubscribeApplied(77, 999, x.rows(x.game.Player(5, "e", 5))), "query set 999")
    assert x.s.conn.state == "closed" and states[-1] == "closed"
    time.sleep(0.01)
    x.s.conn.update()
    assert len(x.s.transports) == 1  # no reconnect


def test_the_error_says_what_and_why(game: ModuleType) -> None:
    x = Session(game)
    exc = x.feed_bad(SubscribeApplied(5, 999, x.rows()), "query set 999")
    text = str(exc)
    assert "the server sent" in text and "SubscribeApplied" in text and "never" in text
    assert exc.reason and exc.reason in text


def test_legitimate_races_are_not_protocol_errors(game: ModuleType) -> None:
    """What a correct server may send: rows for a set unsubscribed while its SubscribeApplied was on the
    way, a SubscriptionError without a request id for an applied set, an UnsubscribeApplied for an
    unsubscribed set, a result for a call or query that was sent."""
    x = Session(game)
    s = x.s
    pending = s.conn.subscribe_multi(["SELECT * FROM point"])
    pending.unsubscribe()  # before it was applied
    s.feed(SubscribeApplied(subscribe_id(s, pending), pending.query_set_id, s.query_rows({"point": []})))
    unsub = [m for m in s.t.sent if type(m).__name__ == "Unsubscribe"][-1]
    s.feed(UnsubscribeApplied(unsub.request_id, pending.query_set_id, None))
    call = game.attack(1, 2, client=s.conn)
    s.feed(ReducerResult(call.request_id, TS, ReducerOk(b"", TransactionUpdate(()))))
    assert call.committed
    q = s.conn.one_off_query("SELECT * FROM player")
    s.feed(OneOffQueryResult(q.request_id, Err("nope")))
    assert q.done and q.error == "nope"
    s.feed(SubscriptionError(None, x.h.query_set_id, "the table changed"))
    assert x.h.state == "error"
    # a set fails while its Unsubscribe is on the way: the answer to that Unsubscribe is still expected
    failed: list[Any] = []
    for answer in ("error", "applied"):
        other = s.conn.subscribe_multi(["SELECT * FROM point"]).on_error(lambda h, e: failed.append(e))
        s.feed(SubscribeApplied(subscribe_id(s, other), other.query_set_id, s.query_rows({"point": []})))
        other.unsubscribe()
        unsub = [m for m in s.t.sent if type(m).__name__ == "Unsubscribe"][-1]
        s.feed(SubscriptionError(None, other.query_set_id, "the table changed"))
        if answer == "error":
            s.feed(SubscriptionError(unsub.request_id, other.query_set_id, "no such query set"))
        else:
            s.feed(UnsubscribeApplied(unsub.request_id, other.query_set_id, None))
    assert failed == ["the table changed"] * 2
    assert s.errors == [] and s.conn.is_connected
