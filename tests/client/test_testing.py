"""The public in-memory transport (``spacetime_game.sdk.testing``), used the way a game's own test uses
it: only public names, the module docstring's steps."""

from __future__ import annotations

import queue
from types import ModuleType

import pytest

from spacetime_game.sdk import (
    ConnectionId,
    DbConnection,
    Identity,
    Timestamp,
    TransportEvent,
    TransportOpened,
)
from spacetime_game.sdk.protocol import CallReducer, ReducerOkEmpty, ReducerResult
from spacetime_game.sdk.testing import ScriptedServer, ScriptedTransport


def test_a_game_test_drives_a_connection_message_by_message(chat: ModuleType) -> None:
    server = ScriptedServer()
    states: list[str] = []
    conn = DbConnection(
        chat.MODULE,
        "localhost:3000",
        "chat",
        transport_factory=server,
        on_state=states.append,
        reconnect_min_delay=0.001,
        reconnect_max_delay=0.002,
    )
    conn.connect()
    assert server.transport.url == "ws://localhost:3000/v1/database/chat/subscribe?compression=Gzip"
    server.greet(Identity.from_int(1), ConnectionId.from_int(1), "token")
    assert conn.wait(1.0)  # the connection is woken, as by a real transport
    conn.update()
    assert conn.is_connected and conn.identity == Identity.from_int(1) and conn.token == "token"

    call = chat.send_message("hi", client=conn)
    (sent,) = server.transport.of_type(CallReducer)
    assert sent.request_id == call.request_id and server.transport.sent == [sent]
    server.transport.feed(ReducerResult(call.request_id, Timestamp(0), ReducerOkEmpty()))
    conn.update()
    assert call.committed

    server.transport.drop()  # lost: the client tries again on a new transport
    conn.update()
    assert conn.state == "reconnecting"
    while len(server.transports) < 2:
        conn.update()
    conn.close()
    assert server.transport.closed and states == ["connecting", "connected", "reconnecting", "closed"]


def test_a_transport_reports_what_it_is_told() -> None:
    t = ScriptedTransport("ws://x", None, open_on_start=False)
    with pytest.raises(RuntimeError, match="connect"):
        t.drop()  # nothing to report to before the client starts it
    events: queue.SimpleQueue[TransportEvent] = queue.SimpleQueue()
    t.start(events, lambda: None)
    assert events.empty()  # open_on_start=False: the test opens it
    t.open("v3.bsatn.spacetimedb")
    assert events.get_nowait() == TransportOpened("v3.bsatn.spacetimedb")
    t.fail(ConnectionRefusedError("refused"))
    assert [type(events.get_nowait()).__name__ for _ in range(2)] == ["TransportError", "TransportClosed"]
    t.closed = True
    with pytest.raises(ConnectionError):
        t.send([])
