"""The dev server over a real socket: the v2/v3 message flows, HTTP routes, and bad input."""

from __future__ import annotations

import contextlib
import json
import os
import struct
import urllib.error
import urllib.request
from typing import Any

import pytest
import websocket

from spacetime_game.sdk import Identity
from spacetime_game.sdk.protocol import (
    PROTOCOL_V3,
    CallReducer,
    InitialConnection,
    OneOffQuery,
    OneOffQueryResult,
    ReducerErr,
    ReducerInternalError,
    ReducerOk,
    ReducerResult,
    Subscribe,
    SubscribeApplied,
    SubscriptionError,
    TransactionUpdate,
    Unsubscribe,
    UnsubscribeApplied,
    UnsubscribeFlags,
)
from spacetime_game.sdk.sats import AlgebraicType, PrimitiveType, compile_codec
from spacetime_game.server._auth import TokenAuthority

from .conftest import Client, ServerThread

USER = compile_codec(
    AlgebraicType.product(
        identity=AlgebraicType.special("identity"),
        name=AlgebraicType.option(PrimitiveType("String")),
        online=PrimitiveType("Bool"),
    )
)


def _users(rows: Any) -> list[dict[str, Any]]:
    return [USER.decode(r) for r in rows.rows()]


def _expect_close(c: Client) -> tuple[int, str]:
    """Read until the server's close frame; its code and reason."""
    while True:
        try:
            opcode, data = c.ws.recv_data(control_frame=True)
        except (websocket.WebSocketConnectionClosedException, ConnectionError):
            return -1, "closed without a close frame"
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            return struct.unpack("!H", data[:2])[0], data[2:].decode(errors="replace")


def _post(url: str, body: bytes = b"", token: str | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=body, method="POST")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_two_clients_chat_flow(server: ServerThread) -> None:
    a = Client(server.ws_url)
    hello_a = a.recv_type(InitialConnection)
    b = Client(server.ws_url, protocol=PROTOCOL_V3)
    hello_b = b.recv_type(InitialConnection)
    assert hello_a.identity != hello_b.identity

    a.send(Subscribe(1, 1, ("SELECT * FROM user", "SELECT * FROM message")))
    applied = a.recv_type(SubscribeApplied)
    users = {u["identity"]: u for t in applied.rows.tables if t.table == "user" for u in _users(t.rows)}
    assert users[hello_a.identity]["online"] and users[hello_b.identity]["online"]
    b.send(Subscribe(1, 7, ("SELECT * FROM user",)))
    b.recv_type(SubscribeApplied)

    rid = a.call("set_name", "alice")
    result = a.recv_type(ReducerResult)
    assert result.request_id == rid and isinstance(result.result, ReducerOk)
    (own,) = result.result.transaction_update.query_sets  # the caller's change rides in its result
    assert own.query_set_id == 1
    update = b.recv_type(TransactionUpdate)  # the other client gets a TransactionUpdate
    (qs,) = update.query_sets
    assert qs.query_set_id == 7
    rows = qs.tables[0].rows[0]
    assert [u["name"] for u in _users(rows.inserts)] == ["alice"]
    assert [u["name"] for u in _users(rows.deletes)] == [None]

    rid = a.call("set_name", "")
    bad = a.recv_type(ReducerResult)
    assert isinstance(bad.result, ReducerErr) and bad.result.message == "Names must not be empty"

    b.close()
    gone = a.recv_type(TransactionUpdate)
    (offline,) = _users(gone.query_sets[0].tables[0].rows[0].inserts)
    assert offline["identity"] == hello_b.identity and offline["online"] is False

    a.send(OneOffQuery(9, "SELECT * FROM user WHERE online = true"))
    one = a.recv_type(OneOffQueryResult)
    assert [u["identity"] for t in one.result.value.tables for u in _users(t.rows)] == [hello_a.identity]

    a.send(Unsubscribe(10, 1, UnsubscribeFlags.SEND_DROPPED_ROWS))
    dropped = a.recv_type(UnsubscribeApplied)
    assert dropped.rows is not None
    assert {t.table for t in dropped.rows.tables if len(t.rows)} == {"user"}
    a.close()


def test_reconnect_with_saved_token_keeps_identity(server: ServerThread) -> None:
    a = Client(server.ws_url)
    first = a.recv_type(InitialConnection)
    a.close()
    again = Client(server.ws_url, token=first.token)
    assert again.recv_type(InitialConnection).identity == first.identity
    again.close()


def test_bad_input_is_answered_and_others_keep_working(server: ServerThread) -> None:
    good = Client(server.ws_url)
    good.recv_type(InitialConnection)

    c = Client(server.ws_url)
    c.recv_type(InitialConnection)
    c.call("no_such_reducer", "x")
    r = c.recv_type(ReducerResult)
    assert isinstance(r.result, ReducerInternalError) and "No such reducer" in r.result.message
    c.send(CallReducer(5, 0, "set_name", b"\x07"))
    r = c.recv_type(ReducerResult)
    assert isinstance(r.result, ReducerInternalError) and "invalid arguments" in r.result.message
    c.send(Subscribe(6, 3, ("SELECT * FROM nope",)))
    err = c.recv_type(SubscriptionError)
    assert err.request_id == 6 and "nope" in err.error
    c.send(Subscribe(7, 4, ("SELECT * FROM user",)))
    c.recv_type(SubscribeApplied)
    c.send(Subscribe(8, 4, ("SELECT * FROM user",)))  # the id is in use: the connection is closed
    code, reason = _expect_close(c)
    assert code == 1011 and "already in use" in reason

    d = Client(server.ws_url)
    d.recv_type(InitialConnection)
    d.ws.send_binary(b"\x09" + os.urandom(63))  # tag 9 is no ClientMessage
    code, reason = _expect_close(d)
    assert code == 1011 and "ClientMessage" in reason

    e = Client(server.ws_url)
    e.recv_type(InitialConnection)
    e.ws.send("hello")  # a text frame
    code, reason = _expect_close(e)
    assert code == 1011 and "text frames" in reason

    # the good client is still served
    good.call("set_name", "still here")
    assert isinstance(good.recv_type(ReducerResult).result, ReducerOk)
    good.close()


def test_http_routes(server: ServerThread) -> None:
    status, body = _post(server.http + "/v1/identity")
    assert status == 200
    ident = json.loads(body)
    assert Identity.from_string(ident["identity"])
    status, body = _post(server.http + "/v1/identity/websocket-token", token=ident["token"])
    assert status == 200 and json.loads(body)["token"]
    status, _ = _post(server.http + "/v1/identity/websocket-token", token="forged.token.here")
    assert status in (400, 401)
    with urllib.request.urlopen(server.http + f"/v1/database/{server.database}/schema?version=9") as resp:
        schema = json.loads(resp.read())
    assert [t["name"] for t in schema["tables"]] == ["message", "user"]
    status, body = _post(
        server.http + f"/v1/database/{server.database}/call/send_message", b'["hi"]', ident["token"]
    )
    assert status == 200, body
    status, body = _post(
        server.http + f"/v1/database/{server.database}/call/send_message", b'[""]', ident["token"]
    )
    assert status == 530 and body == b"Messages must not be empty"
    status, _ = _post(server.http + f"/v1/database/{server.database}/call/nope", b"[]")
    assert status == 404
    status, _ = _post(server.http + f"/v1/database/{server.database}/call/send_message", b"[1]")
    assert status == 400
    status, body = _post(server.http + f"/v1/database/{server.database}/sql", b"SELECT * FROM message")
    assert status == 200
    (result,) = json.loads(body)
    assert [r[2] for r in result["rows"]] == ["hi"]
    status, _ = _post(server.http + "/v1/database/missing/sql", b"SELECT * FROM message")
    assert status == 404


def test_upgrade_refusals(server: ServerThread) -> None:
    with pytest.raises(websocket.WebSocketBadStatusException) as info:
        websocket.create_connection(server.ws_url, subprotocols=["v1.json.spacetimedb"], timeout=5)
    assert info.value.status_code == 400
    with pytest.raises(websocket.WebSocketBadStatusException) as info:
        Client(server.ws_url, token="not-a-jwt")  # malformed
    assert info.value.status_code == 400
    with pytest.raises(websocket.WebSocketBadStatusException) as info:
        Client(server.ws_url, token="eyJhbGciOiJFUzI1NiJ9.e30.c2ln")  # a JWT with a bogus signature
    assert info.value.status_code == 401
    forged = TokenAuthority(None).mint().token  # well formed, signed by another server's key
    with pytest.raises(websocket.WebSocketBadStatusException) as info:
        Client(server.ws_url, token=forged)
    assert info.value.status_code == 401
    with pytest.raises(websocket.WebSocketBadStatusException) as info:
        Client(server.ws_url, query=f"token={forged}")
    assert info.value.status_code == 401
    with pytest.raises(websocket.WebSocketBadStatusException) as info:
        Client(server.ws_url, query="connection_id=00000000000000000000000000000000")
    assert info.value.status_code == 400
    good = Client(server.ws_url)  # the server keeps serving
    assert good.recv_type(InitialConnection).identity
    good.close()


def test_oversize_frame_is_refused(server: ServerThread) -> None:
    c = Client(server.ws_url)
    c.recv_type(InitialConnection)
    # the server may reset the socket while the frame is still being written
    with contextlib.suppress(ConnectionError, websocket.WebSocketConnectionClosedException):
        c.ws.send_binary(b"\x00" * (32 * 1024 * 1024 + 16))
    code, _ = _expect_close(c)
    assert code in (1009, -1)  # 1009: message too big; -1: closed before we read the close frame
    fresh = Client(server.ws_url)
    assert fresh.recv_type(InitialConnection).identity  # the server keeps serving
    fresh.close()
