"""The dev server on the v1 protocol (``v1.bsatn.spacetimedb``, issue #16), with the semantics of a 1.x
server: subscriptions by query id, the full TransactionUpdate to the caller and to every subscriber (with
the caller and the arguments), TransactionUpdateLight with ``light=true``, NoSuccessNotify, one-off queries
by message id, the legacy Subscribe, and the limits of v2."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import websocket  # websocket-client
from hypothesis import given

from spacetime_game.sdk import ConnectionId, Identity
from spacetime_game.sdk.protocol import PROTOCOL_V2, PROTOCOL_V3, v1
from spacetime_game.sdk.sats import AlgebraicType, PrimitiveType, compile_codec
from spacetime_game.server._v1 import v1_frame_items
from tests._support import vectors

from ..protocol.test_fuzz import FUZZ, mutations, only_decode_errors
from .conftest import CHAT, ServerThread

TEXT = compile_codec(AlgebraicType.product(x=PrimitiveType("String")))
MESSAGES = "SELECT * FROM message"
USERS = "SELECT * FROM user"


class V1Client:
    """A blocking v1 client for tests."""

    def __init__(
        self, server: ServerThread, query: str = "", protocols: tuple[str, ...] = (v1.PROTOCOL_V1,)
    ) -> None:
        self.ws = websocket.create_connection(
            server.ws_url + ("?" + query if query else ""), subprotocols=list(protocols), timeout=5
        )
        self.protocol = self.ws.getsubprotocol()
        self.request_id = 0

    def recv(self) -> v1.ServerMessage:
        frame = self.ws.recv()
        assert isinstance(frame, bytes), f"expected a binary frame, got {frame!r}"
        return v1.decode_server_frame(frame)

    def recv_type(self, cls: type) -> Any:
        msg = self.recv()
        assert isinstance(msg, cls), f"expected {cls.__name__}, got {msg!r}"
        return msg

    def send(self, msg: v1.ClientMessage) -> None:
        self.ws.send_binary(v1.encode_client_frame(msg))

    def call(self, reducer: str, text: str, flags: int = 0) -> int:
        self.request_id += 1
        self.send(v1.CallReducer(reducer, TEXT.encode({"x": text}), self.request_id, flags))
        return self.request_id

    def subscribe(self, *queries: str, query_id: int) -> v1.SubscribeMultiApplied:
        self.request_id += 1
        self.send(v1.SubscribeMulti(queries, self.request_id, query_id))
        applied = self.recv_type(v1.SubscribeMultiApplied)
        assert applied.request_id == self.request_id and applied.query_id == query_id
        return applied  # type: ignore[no-any-return]

    def nothing_pending(self) -> bool:
        """True when no message is waiting: a one-off query is answered, and nothing came before it."""
        self.send(v1.OneOffQuery(b"ping", "SELECT * FROM user WHERE online = false"))
        msg = self.recv()
        return isinstance(msg, v1.OneOffQueryResponse) and msg.message_id == b"ping"

    def close(self) -> None:
        self.ws.close()


@pytest.fixture()
def server() -> Iterator[ServerThread]:
    s = ServerThread(CHAT)
    try:
        yield s
    finally:
        s.stop()


def rows(update: v1.DatabaseUpdate, table: str, side: str) -> list[bytes]:
    out: list[bytes] = []
    for t in update.tables:
        if t.table_name == table:
            for u in t.updates:
                out += getattr(v1.query_update(u), side).rows()
    return out


def texts(update: v1.DatabaseUpdate) -> list[str]:
    """The text of each inserted message row (sender 32 bytes, sent 8, then the text)."""
    return [row[44:].decode() for row in rows(update, "message", "inserts")]


def connect(server: ServerThread, query: str = "") -> tuple[V1Client, v1.IdentityToken]:
    c = V1Client(server, query)
    assert c.protocol == v1.PROTOCOL_V1
    return c, c.recv_type(v1.IdentityToken)


def test_negotiation_prefers_v3_then_v2_then_v1(server: ServerThread) -> None:
    for offered, chosen in (
        ((v1.PROTOCOL_V1,), v1.PROTOCOL_V1),
        ((v1.PROTOCOL_V1, PROTOCOL_V2), PROTOCOL_V2),
        ((v1.PROTOCOL_V1, PROTOCOL_V3, PROTOCOL_V2), PROTOCOL_V3),
    ):
        c = V1Client(server, protocols=offered)
        assert c.protocol == chosen
        c.close()


def test_calls_reach_the_caller_and_every_subscriber_in_full(server: ServerThread) -> None:
    a, token_a = connect(server)
    b, _ = connect(server)
    light, _ = connect(server, "light=true")
    for c, qid in ((a, 1), (b, 7), (light, 3)):
        applied = c.subscribe(MESSAGES, USERS, query_id=qid)
        assert (
            len(rows(applied.update, "user", "inserts")) == 3
            and rows(applied.update, "user", "deletes") == []
        )
    rid = a.call("send_message", "hello")
    # the caller: the full TransactionUpdate, its request id, its own changed rows
    tx = a.recv_type(v1.TransactionUpdate)
    assert isinstance(tx.status, v1.Committed) and texts(tx.status.update) == ["hello"]
    assert tx.reducer_call.request_id == rid and tx.reducer_call.reducer_name == "send_message"
    assert tx.caller_identity == token_a.identity and tx.caller_connection_id == token_a.connection_id
    # another subscriber: the same, with the caller's identity and arguments (what v2 no longer tells)
    other = b.recv_type(v1.TransactionUpdate)
    assert other.caller_identity == token_a.identity and other.reducer_call.args == TEXT.encode(
        {"x": "hello"}
    )
    assert isinstance(other.status, v1.Committed) and texts(other.status.update) == ["hello"]
    assert other.reducer_call.reducer_id == tx.reducer_call.reducer_id
    # light=true: the rows alone
    lt = light.recv_type(v1.TransactionUpdateLight)
    assert texts(lt.update) == ["hello"]
    # a failure goes to the caller only, with its message
    a.call("send_message", "")
    failed = a.recv_type(v1.TransactionUpdate)
    assert failed.status == v1.Failed("Messages must not be empty")
    assert b.nothing_pending() and light.nothing_pending()
    # an unknown reducer is a failure too
    a.request_id += 1
    a.send(v1.CallReducer("nope", b"", a.request_id))
    assert isinstance(a.recv_type(v1.TransactionUpdate).status, v1.Failed)
    for c in (a, b, light):
        c.close()


def test_no_success_notify(server: ServerThread) -> None:
    a, _ = connect(server)
    a.subscribe(MESSAGES, query_id=1)
    a.call("set_name", "ann", v1.CallReducerFlags.NO_SUCCESS_NOTIFY)  # changes no row a subscribed to
    assert a.nothing_pending()
    a.call("send_message", "seen", v1.CallReducerFlags.NO_SUCCESS_NOTIFY)  # changes one: told
    assert texts(a.recv_type(v1.TransactionUpdate).status.update) == ["seen"]
    a.call("send_message", "", v1.CallReducerFlags.NO_SUCCESS_NOTIFY)  # a failure is always told
    assert isinstance(a.recv_type(v1.TransactionUpdate).status, v1.Failed)
    a.close()


def test_unsubscribe_single_subscriptions_and_one_off_queries(server: ServerThread) -> None:
    a, token = connect(server)
    a.call("send_message", "one")
    a.recv_type(v1.TransactionUpdate)
    a.subscribe(MESSAGES, query_id=5)
    a.send(v1.UnsubscribeMulti(50, 5))
    gone = a.recv_type(v1.UnsubscribeMultiApplied)
    assert (gone.request_id, gone.query_id) == (50, 5) and texts_deleted(gone.update) == ["one"]
    a.send(v1.SubscribeSingle(USERS, 51, 9))
    single = a.recv_type(v1.SubscribeApplied)
    assert (single.request_id, single.query_id, single.rows.table_name) == (51, 9, "user")
    assert single.rows.table_id == single.rows.table_rows.table_id >= 4096
    (user,) = [v1.query_update(u) for u in single.rows.table_rows.updates]
    assert len(user.inserts) == 1 and Identity(user.inserts.rows()[0][:32][::-1]) == token.identity
    a.send(v1.Unsubscribe(52, 9))
    assert a.recv_type(v1.UnsubscribeApplied).request_id == 52
    a.send(v1.OneOffQuery(b"\x00\xffid", MESSAGES))
    answer = a.recv_type(v1.OneOffQueryResponse)
    assert answer.message_id == b"\x00\xffid" and answer.error is None
    assert [t.table_name for t in answer.tables] == ["message"] and len(answer.tables[0].rows) == 1
    a.send(v1.OneOffQuery(b"bad", "SELECT * FROM nowhere"))
    bad = a.recv_type(v1.OneOffQueryResponse)
    assert bad.message_id == b"bad" and bad.error and "nowhere" in bad.error
    a.close()


def texts_deleted(update: v1.DatabaseUpdate) -> list[str]:
    return [row[44:].decode() for row in rows(update, "message", "deletes")]


def test_the_legacy_subscribe_replaces_every_subscription(server: ServerThread) -> None:
    a, _ = connect(server)
    a.subscribe(MESSAGES, query_id=1)
    a.send(v1.Subscribe((USERS,), 9))
    initial = a.recv_type(v1.InitialSubscription)
    assert initial.request_id == 9 and len(rows(initial.database_update, "user", "inserts")) == 1
    a.call("send_message", "not for me any more", v1.CallReducerFlags.NO_SUCCESS_NOTIFY)
    assert a.nothing_pending()  # the message query was dropped
    a.call("set_name", "ann")
    tx = a.recv_type(v1.TransactionUpdate)
    assert len(rows(tx.status.update, "user", "inserts")) == 1  # the user query is live
    a.close()


def test_subscription_errors_and_bad_requests(server: ServerThread) -> None:
    a, _ = connect(server)
    a.send(v1.SubscribeMulti(("SELECT * FROM nowhere",), 4, 2))
    err = a.recv_type(v1.SubscriptionError)
    assert (err.request_id, err.query_id, err.table_id) == (4, 2, None) and "nowhere" in err.error
    # a SubscribeMulti with more query strings than a connection may hold is refused without decoding it
    many = 200_000
    frame = bytes([4]) + struct.pack("<I", many) + b"\x00\x00\x00\x00" * many + struct.pack("<II", 5, 3)
    a.ws.send_binary(frame)
    err = a.recv_type(v1.SubscriptionError)
    assert (err.request_id, err.query_id) == (5, 3) and "limit" in err.error
    # flags no 1.x server knows close the connection, with the reason
    a.send(v1.CallReducer("send_message", TEXT.encode({"x": "x"}), 6, 7))
    while True:
        opcode, data = a.ws.recv_data(control_frame=True)
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            break
    assert struct.unpack("!H", data[:2])[0] == 1011 and b"invalid CallReducer flags 7" in data


def test_others_hear_of_connections_and_scheduled_calls_with_their_reducer(server: ServerThread) -> None:
    a, _ = connect(server)
    a.subscribe(USERS, query_id=1)
    b, token_b = connect(server)
    tx = a.recv_type(v1.TransactionUpdate)  # b's client_connected inserted its user row
    assert tx.reducer_call.reducer_name == "identity_connected" and tx.caller_identity == token_b.identity
    b.close()
    tx = a.recv_type(v1.TransactionUpdate)
    assert tx.reducer_call.reducer_name == "identity_disconnected"
    a.close()


def test_tables_and_reducers_have_stable_ids(server: ServerThread) -> None:
    runtime = server.server.runtime
    assert runtime is not None
    assert [runtime.table_id(t.name) for t in runtime.module.tables] == list(
        range(4096, 4096 + len(runtime.module.tables))
    )
    assert runtime.reducer_id("send_message") != runtime.reducer_id("set_name")


def test_a_server_forced_to_one_protocol() -> None:
    """``protocols=`` limits what is served: a v1-only server refuses a client that offers only v2."""
    from spacetime_game.server import DevServer

    with DevServer(CHAT, protocols=["v1"]) as server:
        ws = websocket.create_connection(server.ws_url, subprotocols=[v1.PROTOCOL_V1, PROTOCOL_V3], timeout=5)
        assert ws.getsubprotocol() == v1.PROTOCOL_V1
        ws.close()
        with pytest.raises(websocket.WebSocketBadStatusException) as refused:
            websocket.create_connection(server.ws_url, subprotocols=[PROTOCOL_V2], timeout=5)
        assert refused.value.status_code == 400
    with pytest.raises(ValueError, match="unknown protocol 'v4'"):
        DevServer(CHAT, protocols=["v4"])


def test_scheduled_calls_and_event_rows_on_v1(tmp_path: Path) -> None:
    """A scheduled reducer's transaction names the reducer and the module as the caller; an event table's
    rows (v1 has none) come inserted and deleted by the same transaction, so nothing stays cached."""
    from .test_schedule_events import MODULE as SCHEDULED

    path = tmp_path / "module.py"
    path.write_text(SCHEDULED)
    server = ServerThread(path, database="sched")
    try:
        a, token = connect(server)
        a.subscribe("SELECT * FROM tick", "SELECT * FROM boom", query_id=1)
        a.request_id += 1
        a.send(v1.CallReducer("boom", struct.pack("<I", 7), a.request_id))
        own = a.recv_type(v1.TransactionUpdate)
        assert isinstance(own.status, v1.Committed)
        (boom,) = own.status.update.tables
        (q,) = [v1.query_update(u) for u in boom.updates]
        assert boom.table_name == "boom" and q.inserts.rows() == q.deletes.rows() == [struct.pack("<I", 7)]
        a.request_id += 1
        a.send(v1.CallReducer("start", struct.pack("<I", 1000), a.request_id))
        started = a.recv_type(v1.TransactionUpdate)  # (its own call: no tick yet)
        assert started.reducer_call.reducer_name == "start"
        tick = a.recv_type(v1.TransactionUpdate)  # the one-shot timer, 50 ms later
        assert tick.reducer_call.reducer_name == "on_timer" and tick.caller_identity != token.identity
        assert tick.caller_connection_id == ConnectionId.zero()
        assert rows(tick.status.update, "tick", "inserts")
        a.close()
    finally:
        server.stop()


# ----- fuzz: whatever a v1 client sends, the server's reader raises only DecodeError --------------------------
V1_CLIENT = [bytes.fromhex(v["bsatn_hex"]) for v in vectors()["client_messages_v1"]]
ROUND_TRIP = (v1.CallReducer, v1.SubscribeMulti, v1.OneOffQuery, v1.UnsubscribeMulti)


@FUZZ
@given(mutations(V1_CLIENT))
def test_fuzz_v1_client_frames_read_or_fail_cleanly(data: bytes) -> None:
    items = only_decode_errors(lambda d: list(v1_frame_items(d, 3, 2)), data)
    for item in items or []:
        if isinstance(item, ROUND_TRIP):
            assert v1.encode_client_frame(item) == data
