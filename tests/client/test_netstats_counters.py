"""The counters of ``DbConnection.stats`` that an engine diffs between frames: ``transactions`` (one per
transaction applied, none for subscriptions or failed calls) and ``round_trip_counts`` (every round
trip recorded, also beyond the 512 that ``round_trips`` keeps)."""

from __future__ import annotations

from types import ModuleType

from spacetime_game.sdk.protocol import (
    ReducerErr,
    ReducerOk,
    ReducerOkEmpty,
    ReducerResult,
    Subscribe,
    SubscribeApplied,
)

from ._support import TS, Script, ident


def _subscribed(s: Script, chat: ModuleType) -> int:
    h = s.conn.subscribe_multi(["SELECT * FROM user"])
    (sub,) = s.t.of_type(Subscribe)
    s.feed(SubscribeApplied(sub.request_id, h.query_set_id, s.query_rows({"user": []})))
    return int(h.query_set_id)


def test_transactions_count_each_applied_transaction_and_nothing_else(chat: ModuleType) -> None:
    s = Script(chat).connect()
    qs = _subscribed(s, chat)
    assert s.conn.stats.transactions == 0  # a subscription is not a transaction
    users = [chat.User(ident(i), None, True) for i in range(3)]
    # two transactions fed in one frame: both counted by the one update() that applies them
    s.t.feed(s.tx(s.set_update(qs, {"user": ([users[0]], [])})))
    s.t.feed(s.tx(s.set_update(qs, {"user": ([users[1]], [])})))
    assert s.conn.stats.transactions == 0  # received, not applied yet
    s.conn.update()
    assert s.conn.stats.transactions == 2
    # a budget of one message a frame: counted as applied, not as received
    s.t.feed(
        s.tx(s.set_update(qs, {"user": ([users[2]], [])})), s.tx(s.set_update(qs, {"user": ([], [users[2]])}))
    )
    s.conn.update(max_messages=1)
    assert s.conn.stats.transactions == 3
    s.conn.update()
    assert s.conn.stats.transactions == 4
    # this client's calls: committed with rows counts; committed with nothing, or failed, does not
    ok = chat.set_name("a", client=s.conn)
    s.feed(
        ReducerResult(ok.request_id, TS, ReducerOk(b"", s.tx(s.set_update(qs, {"user": ([], [users[0]])}))))
    )
    empty = chat.set_name("b", client=s.conn)
    s.feed(ReducerResult(empty.request_id, TS, ReducerOkEmpty()))
    failed = chat.set_name("", client=s.conn)
    s.feed(ReducerResult(failed.request_id, TS, ReducerErr(b"\x04\x00\x00\x00nope")))
    assert (ok.status, empty.status, failed.status) == ("committed", "committed", "failed")
    assert s.conn.stats.transactions == 5
    assert s.conn.stats.summary()["transactions"] == 5


def test_round_trip_counts_go_on_past_the_kept_round_trips(chat: ModuleType) -> None:
    s = Script(chat).connect()
    for i in range(520):
        call = chat.send_message(f"m{i}", client=s.conn)
        s.feed(ReducerResult(call.request_id, TS, ReducerOkEmpty()))
    failed = chat.set_name("", client=s.conn)
    s.feed(ReducerResult(failed.request_id, TS, ReducerErr(b"\x04\x00\x00\x00nope")))
    stats = s.conn.stats
    assert len(stats.round_trips["send_message"]) == 512  # only the latest are kept
    assert stats.round_trip_counts["send_message"] == 520  # but every one is counted
    assert stats.round_trip_counts["set_name"] == 1  # a failed call has a round trip too
    assert dict(stats.round_trip_counts) == {"send_message": 520, "set_name": 1}
