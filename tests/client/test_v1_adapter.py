"""The client's v1 translation (``spacetime_game.sdk._v1``, issue #16), with no network: what each session
message becomes on the wire, and what each v1 server message becomes for the session."""

from __future__ import annotations

import struct
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from spacetime_game.sdk._v1 import POOL, V1Adapter
from spacetime_game.sdk.protocol import (
    BsatnRowList,
    CallReducer,
    Compression,
    InitialConnection,
    OneOffQuery,
    OneOffQueryResult,
    PersistentTableRows,
    ReducerErr,
    ReducerOk,
    ReducerResult,
    Subscribe,
    SubscribeApplied,
    SubscriptionError,
    TransactionUpdate,
    Unsubscribe,
    UnsubscribeApplied,
    UnsubscribeFlags,
    v1,
)
from spacetime_game.sdk.sats import DecodeError, TimeDuration, Timestamp
from tests._support import vectors

from ..protocol.test_fuzz import FUZZ, RANDOM, mutations, only_decode_errors
from ._support import conn_id, ident

TS = Timestamp(1_700_000_000_000_000)


def rows(*values: int) -> BsatnRowList:
    return BsatnRowList.from_rows([struct.pack("<I", v) for v in values])


def update(
    *, inserts: tuple[int, ...] = (), deletes: tuple[int, ...] = (), table: str = "t"
) -> v1.DatabaseUpdate:
    q = v1.QueryUpdate(rows(*deletes), rows(*inserts))
    return v1.DatabaseUpdate((v1.TableUpdate(4096, table, len(inserts) + len(deletes), (q,)),))


def greeted(a: V1Adapter, n: int = 1) -> None:
    got, _ = a.incoming(v1.IdentityToken(ident(1), "tok", conn_id(n)))
    assert got == InitialConnection(ident(1), conn_id(n), "tok")


def tx(a: V1Adapter, caller: int, rid: int, status: v1.UpdateStatus) -> v1.TransactionUpdate:
    return v1.TransactionUpdate(
        status,
        TS,
        ident(caller),
        conn_id(caller),
        v1.ReducerCallInfo("add", 2, b"\x07", rid),
        0,
        TimeDuration(9),
    )


def test_what_goes_out() -> None:
    a = V1Adapter()
    assert a.outgoing(CallReducer(5, 0, "add", b"\x07")) == v1.CallReducer("add", b"\x07", 5, 0)
    assert a.outgoing(Subscribe(6, 3, ("SELECT * FROM t",))) == v1.SubscribeMulti(("SELECT * FROM t",), 6, 3)
    assert a.outgoing(Unsubscribe(7, 3, UnsubscribeFlags.DEFAULT)) == v1.UnsubscribeMulti(7, 3)
    assert a.outgoing(OneOffQuery(0x01020304, "SELECT 1")) == v1.OneOffQuery(b"\x04\x03\x02\x01", "SELECT 1")
    frames = a.encode([CallReducer(5, 0, "add", b"")])
    assert frames == [v1.encode_client_frame(v1.CallReducer("add", b"", 5, 0))]


def test_own_calls_become_their_results_and_others_keep_who_called() -> None:
    a = V1Adapter()
    greeted(a, 1)
    a.outgoing(CallReducer(5, 0, "add", b"\x07"))
    # this connection's call (its connection id and a request id in flight): the ReducerResult
    got, call = a.incoming(tx(a, 1, 5, v1.Committed(update(inserts=(1, 2)))))
    assert isinstance(got, ReducerResult) and got.request_id == 5 and got.timestamp == TS and call is None
    assert isinstance(got.result, ReducerOk)
    ((qs,),) = [got.result.transaction_update.query_sets]
    assert qs.query_set_id == POOL
    (rows_,) = qs.tables[0].rows
    assert isinstance(rows_, PersistentTableRows) and len(rows_.inserts) == 2
    # the same request id again is not in flight any more: someone else's (here from another connection)
    other = tx(a, 2, 5, v1.Committed(update(deletes=(1,))))
    got, call = a.incoming(other)
    assert isinstance(got, TransactionUpdate) and call is other
    # a failure of this client's call carries the reducer's message
    a.outgoing(CallReducer(6, 0, "add", b"\x07"))
    got, _ = a.incoming(tx(a, 1, 6, v1.Failed("no way")))
    assert isinstance(got, ReducerResult) and isinstance(got.result, ReducerErr)
    assert got.result.message == "no way"
    # a light update is a plain transaction
    got, call = a.incoming(v1.TransactionUpdateLight(0, update(inserts=(3,))))
    assert isinstance(got, TransactionUpdate) and call is None
    # an empty update has no query set at all
    got, _ = a.incoming(v1.TransactionUpdateLight(0, v1.DatabaseUpdate(())))
    assert got == TransactionUpdate(())


def test_subscriptions_and_one_off_answers() -> None:
    a = V1Adapter()
    greeted(a)
    got, _ = a.incoming(v1.SubscribeMultiApplied(6, 1, 3, update(inserts=(1, 2))))
    assert isinstance(got, SubscribeApplied) and (got.request_id, got.query_set_id) == (6, 3)
    assert [len(t.rows) for t in got.rows.tables] == [2]
    got, _ = a.incoming(v1.UnsubscribeMultiApplied(7, 1, 3, update(deletes=(1, 2))))
    assert isinstance(got, UnsubscribeApplied) and got.rows is not None and len(got.rows.tables[0].rows) == 2
    got, _ = a.incoming(v1.SubscriptionError(0, 8, 4, None, "bad"))
    assert got == SubscriptionError(8, 4, "bad")
    got, _ = a.incoming(
        v1.OneOffQueryResponse(struct.pack("<I", 9), None, (v1.OneOffTable("t", rows(5)),), TimeDuration(1))
    )
    assert isinstance(got, OneOffQueryResult) and got.request_id == 9
    got, _ = a.incoming(v1.OneOffQueryResponse(struct.pack("<I", 10), "nope", (), TimeDuration(1)))
    assert isinstance(got, OneOffQueryResult) and got.result.error == "nope"  # type: ignore[union-attr]


@pytest.mark.parametrize("compression", [Compression.GZIP, Compression.BROTLI])
def test_compressed_query_updates_are_opened(compression: Compression) -> None:
    a = V1Adapter()
    greeted(a)
    packed = v1.compress_query_update(v1.QueryUpdate(rows(), rows(*range(50))), compression)
    got, _ = a.incoming(
        v1.TransactionUpdateLight(0, v1.DatabaseUpdate((v1.TableUpdate(1, "t", 50, (packed,)),)))
    )
    assert isinstance(got, TransactionUpdate)
    (r,) = got.query_sets[0].tables[0].rows
    assert isinstance(r, PersistentTableRows) and len(r.inserts) == 50
    small = V1Adapter(max_message_size=64)  # a compressed update that inflates past the limit is refused
    with pytest.raises(DecodeError, match="max_message_size"):
        small.incoming(
            v1.TransactionUpdateLight(0, v1.DatabaseUpdate((v1.TableUpdate(1, "t", 50, (packed,)),)))
        )


def test_answers_to_requests_never_made_are_errors() -> None:
    a = V1Adapter()
    greeted(a)
    for msg in (
        v1.InitialSubscription(v1.DatabaseUpdate(()), 1, TimeDuration(0)),
        v1.SubscriptionError(0, None, None, None, "drop everything"),
        v1.OneOffQueryResponse(b"xy", None, (), TimeDuration(0)),
    ):
        with pytest.raises(DecodeError):
            a.incoming(msg)


def test_the_protocol_option_forces_a_version(chat: ModuleType) -> None:
    """``DbConnection(protocol=...)`` offers only that protocol; the server (serving all) then uses it."""
    from spacetime_game.sdk import DbConnection
    from spacetime_game.server import DevServer

    from ._support import CHAT_MODULE, pump

    with DevServer(CHAT_MODULE) as server:
        for name, full in (
            ("v1", "v1.bsatn.spacetimedb"),
            ("v2", "v2.bsatn.spacetimedb"),
            (None, "v3.bsatn.spacetimedb"),
        ):
            c = DbConnection(chat.MODULE, server.address, server.database, protocol=name).connect()
            pump([c], lambda c=c: c.is_connected, what=f"connected with {name}")
            assert c.protocol == full
            c.close()
    with pytest.raises(ValueError, match="unknown protocol 'v9'"):
        DbConnection(chat.MODULE, "localhost:3000", "db", protocol="v9")


# ----- fuzz: whatever a v1 server sends, only DecodeError leaves the translation --------------------------------
V1_SERVER = [bytes.fromhex(v["bsatn_hex"]) for v in vectors()["server_messages_v1"]]


def _translated(data: bytes) -> Any:
    """What the client makes of a v1 message (greeted first, so that every kind is translated)."""
    adapter = V1Adapter(max_message_size=1 << 16)
    greeted(adapter)
    message = v1.server_message_codec.decode(data)
    assert v1.server_message_codec.encode(message) == data  # (canonical)
    return adapter.incoming(message)


@FUZZ
@given(mutations(V1_SERVER))
def test_fuzz_mutated_v1_messages_translate_or_fail_cleanly(data: bytes) -> None:
    only_decode_errors(_translated, data)


@RANDOM
@given(st.binary(max_size=200))
def test_fuzz_random_v1_messages_translate_or_fail_cleanly(data: bytes) -> None:
    only_decode_errors(_translated, data)
