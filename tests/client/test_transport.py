"""The WebSocket transport's reader thread, over a scripted stand-in for websocket-client's socket: frames
in order, v3 batches, compression, pings both ways, dead-peer detection, bad frames, failed connects,
and a clean stop. And ``build_url``."""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from types import SimpleNamespace
from typing import Any

import pytest
import websocket

from spacetime_game.sdk import (
    ConnectionFailed,
    TransportClosed,
    TransportError,
    TransportEvent,
    TransportMessage,
    TransportOpened,
)
from spacetime_game.sdk._transport import WebSocketTransport, build_url
from spacetime_game.sdk.protocol import (
    PROTOCOL_V2,
    PROTOCOL_V3,
    CallReducer,
    Compression,
    InitialConnection,
    QueryRows,
    SubscribeApplied,
    decode_client_frame,
    encode_server_frame,
)
from spacetime_game.sdk.sats import DecodeError

from ._support import conn_id, ident, sdk_threads_after_close

OP = websocket.ABNF
URL = "ws://127.0.0.1:1/v1/database/db/subscribe?compression=Gzip"


class FakeSocket:
    """What the transport uses of ``websocket.WebSocket``; ``script`` items are ``(opcode, data)``
    frames, ``"quiet"`` (a receive timeout) or an exception to raise."""

    def __init__(self, script: list[Any], protocol: str = PROTOCOL_V3) -> None:
        self.script = deque(script)
        self.protocol = protocol
        self.timeout = 1.0
        self.connected = True
        self.pings = 0
        self.pongs: list[bytes] = []
        self.sent: list[bytes] = []
        self.closed: tuple[Any, ...] | None = None

    def getsubprotocol(self) -> str:
        return self.protocol

    def settimeout(self, t: float) -> None:
        self.timeout = t

    def recv_data_frame(self, control_frame: bool) -> tuple[int, Any]:
        item = self.script.popleft() if self.script else "quiet"
        if item == "quiet":
            time.sleep(self.timeout)
            raise websocket.WebSocketTimeoutException("timed out")
        if isinstance(item, BaseException):
            raise item
        opcode, data = item
        if opcode == websocket.ABNF.OPCODE_PING:
            self.pong(data)  # websocket-client answers a ping itself, before returning it
        return opcode, SimpleNamespace(opcode=opcode, data=data)

    def ping(self) -> None:
        self.pings += 1

    def pong(self, data: bytes) -> None:
        self.pongs.append(data)

    def send_binary(self, data: bytes) -> None:
        self.sent.append(data)

    def close(self, status: int = 1000, reason: bytes = b"", timeout: float | None = None) -> None:
        self.closed = (status, reason)
        self.connected = False

    def send_close(self, status: int = 1000, reason: bytes = b"") -> None:
        """The client's close frame: a well-behaved server answers with its own."""
        self.closed = (status, reason)
        self.connected = False
        self.script.appendleft((OP.OPCODE_CLOSE, status.to_bytes(2, "big")))

    def shutdown(self) -> None:
        self.connected = False


@pytest.fixture
def connect(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Make ``websocket.create_connection`` return the given fake (or raise the given exception) and
    record its arguments."""
    calls: list[dict[str, Any]] = []

    def install(result: FakeSocket | BaseException) -> list[dict[str, Any]]:
        def create_connection(url: str, **kwargs: Any) -> FakeSocket:
            calls.append({"url": url, **kwargs})
            if isinstance(result, BaseException):
                raise result
            return result

        monkeypatch.setattr(websocket, "create_connection", create_connection)
        return calls

    return install


def started(*args: Any, **kwargs: Any) -> tuple[WebSocketTransport, queue.SimpleQueue[TransportEvent]]:
    """A transport started on a fresh event queue (the socket is whatever ``connect`` set up)."""
    t = WebSocketTransport(*args, **kwargs)
    events: queue.SimpleQueue[TransportEvent] = queue.SimpleQueue()
    t.start(events, lambda: None)
    return t, events


def collect(
    events: queue.SimpleQueue[TransportEvent], until: type = TransportClosed, timeout: float = 5
) -> list[TransportEvent]:
    out: list[TransportEvent] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            ev = events.get(timeout=0.05)
        except queue.Empty:
            continue
        out.append(ev)
        if isinstance(ev, until):
            return out
    raise AssertionError(f"no {until!r} event; got {out}")


def kinds(events: list[TransportEvent]) -> list[type]:
    """The type of each event, in order."""
    return [type(e) for e in events]


def reader_threads_after_close(timeout: float = 3.0) -> list[threading.Thread]:
    """The transport threads still running ``timeout`` seconds after close() (which returns at once)."""
    return sdk_threads_after_close(timeout)


def test_frames_in_order_v3_batches_and_bytes(connect: Any) -> None:
    hello = InitialConnection(ident(1), conn_id(1), "tok")
    applied = SubscribeApplied(1, 1, QueryRows(()))
    batch = encode_server_frame([hello, applied], PROTOCOL_V3)
    big = [SubscribeApplied(i, i, QueryRows(())) for i in range(2, 200)]
    gzipped = encode_server_frame(big, PROTOCOL_V3, Compression.GZIP)
    assert gzipped[0] == 2  # really compressed
    ws = FakeSocket(
        [(OP.OPCODE_BINARY, batch), (OP.OPCODE_BINARY, gzipped), (OP.OPCODE_CLOSE, b"\x03\xe8bye")]
    )
    calls = connect(ws)
    t = WebSocketTransport(URL, "secret-token")
    events: queue.SimpleQueue[TransportEvent] = queue.SimpleQueue()
    wakes: list[int] = []
    t.start(events, lambda: wakes.append(1))
    got = collect(events)
    assert kinds(got) == [TransportOpened, *[TransportMessage] * (2 + len(big)), TransportClosed]
    assert got[0] == TransportOpened(PROTOCOL_V3) and t.protocol == PROTOCOL_V3
    assert [e.message for e in got[1:-1] if isinstance(e, TransportMessage)] == [hello, applied, *big]
    assert got[-1] == TransportClosed(1000, "bye")
    assert len(wakes) == len(got)  # the game thread is woken for every event
    # the bytes of a frame are counted once, however many messages it holds
    assert sum(e.nbytes for e in got if isinstance(e, TransportMessage)) == len(batch) + len(gzipped)
    (call,) = calls
    assert call["url"] == URL
    assert call["header"] == ["Authorization: Bearer secret-token"]
    assert call["subprotocols"] == [PROTOCOL_V3, PROTOCOL_V2, "v1.bsatn.spacetimedb"]  # (v1: 1.x servers)
    t.close()
    assert reader_threads_after_close() == []


def test_send_uses_the_negotiated_protocol(connect: Any) -> None:
    ws = FakeSocket(["quiet"] * 3, PROTOCOL_V2)
    connect(ws)
    t, events = started(URL, None)
    assert collect(events, TransportOpened)[0] == TransportOpened(PROTOCOL_V2)
    msg = CallReducer(7, 0, "set_name", b"\x01\x00\x00\x00a")
    n = t.send([msg, msg])
    assert len(ws.sent) == 2 and n == sum(map(len, ws.sent))  # v2: one message per frame
    assert decode_client_frame(ws.sent[0], PROTOCOL_V2) == [msg]
    t.close()
    with pytest.raises(ConnectionError):
        t.send([msg])
    assert reader_threads_after_close() == []


def test_pings_are_answered_and_text_frames_reported(connect: Any) -> None:
    hello = encode_server_frame(InitialConnection(ident(1), conn_id(1), "t"), PROTOCOL_V3)
    ws = FakeSocket(
        [
            (OP.OPCODE_PING, b"are you there"),
            (OP.OPCODE_TEXT, b"{}"),
            (OP.OPCODE_BINARY, hello),
            (OP.OPCODE_CLOSE, b""),
        ]
    )
    connect(ws)
    t, events = started(URL, None)
    got = collect(events)
    assert ws.pongs == [b"are you there"]  # once: the transport does not answer it a second time
    assert kinds(got) == [TransportOpened, TransportError, TransportMessage, TransportClosed]
    assert isinstance(got[1], TransportError) and isinstance(got[1].error, DecodeError)
    assert got[-1] == TransportClosed(None, "")
    t.close()


def test_a_silent_peer_is_pinged_then_declared_dead(connect: Any) -> None:
    ws = FakeSocket([])  # never says anything again
    connect(ws)
    t = WebSocketTransport(URL, None, ping_interval=0.05, ping_timeout=0.1)
    events: queue.SimpleQueue[TransportEvent] = queue.SimpleQueue()
    t0 = time.monotonic()
    t.start(events, lambda: None)
    got = collect(events, timeout=3)
    elapsed = time.monotonic() - t0
    assert kinds(got) == [TransportOpened, TransportClosed]
    assert isinstance(got[-1], TransportClosed) and "ping timeout" in got[-1].reason
    assert ws.pings >= 1
    assert 0.15 <= elapsed < 2
    t.close()
    assert reader_threads_after_close() == []


def test_an_undecodable_frame_closes_the_connection(connect: Any) -> None:
    ws = FakeSocket([(OP.OPCODE_BINARY, b"\x00\xff\xff"), "quiet"])
    connect(ws)
    t, events = started(URL, None)
    got = collect(events)
    assert kinds(got) == [TransportOpened, TransportError, TransportClosed]
    assert got[-1] == TransportClosed(1011, "undecodable frame")
    assert ws.closed is not None and ws.closed[0] == 1011
    t.close()


def test_a_lost_connection_is_an_error_then_a_close(connect: Any) -> None:
    ws = FakeSocket([websocket.WebSocketConnectionClosedException("Connection to remote host was lost.")])
    connect(ws)
    t, events = started(URL, None)
    got = collect(events)
    assert kinds(got) == [TransportOpened, TransportError, TransportClosed]
    assert isinstance(got[-1], TransportClosed) and "lost" in got[-1].reason
    t.close()


def test_a_refused_connection(connect: Any) -> None:
    connect(ConnectionRefusedError(111, "Connection refused"))
    t, events = started(URL, None)
    got = collect(events)
    assert kinds(got) == [TransportError, TransportClosed]
    assert isinstance(got[0], TransportError) and isinstance(got[1], TransportClosed)
    failure = got[0].error
    assert isinstance(failure, ConnectionFailed) and not failure.permanent
    assert isinstance(failure.__cause__, ConnectionRefusedError)
    assert (
        str(failure)
        == "cannot connect to 127.0.0.1:1: connection refused (is the server running, on this port?)"
    )
    assert (got[1].code, got[1].reason) == (None, str(failure))
    t.close()
    assert reader_threads_after_close() == []


def test_an_unknown_database_is_a_permanent_failure_without_the_raw_handshake_text(connect: Any) -> None:
    headers = {"content-type": "text/plain; charset=utf-8", "server": "Python/3.11 aiohttp/3.14.5"}
    body = b"database 'db' not found"
    exc = websocket.WebSocketBadStatusException(
        f"Handshake status 404 Not Found -+-+- {headers} -+-+- {body.decode()}",
        404,
        "Not Found",
        headers,
        body,
    )
    connect(exc)
    t, events = started(URL, None)
    got = collect(events)
    assert kinds(got) == [TransportError, TransportClosed]
    assert isinstance(got[0], TransportError) and isinstance(got[1], TransportClosed)
    failure = got[0].error
    assert isinstance(failure, ConnectionFailed) and failure.permanent and failure.status == 404
    assert str(failure) == "database 'db' not found at 127.0.0.1:1"
    assert (got[1].code, got[1].reason) == (None, "database 'db' not found at 127.0.0.1:1")
    assert failure.__cause__ is exc
    t.close()
    assert reader_threads_after_close() == []


def test_close_stops_the_reader_without_a_close_event(connect: Any) -> None:
    ws = FakeSocket([])
    connect(ws)
    t, events = started(URL, None, ping_interval=0.05, ping_timeout=60)
    collect(events, TransportOpened)
    t.close()
    assert reader_threads_after_close() == []
    assert not ws.connected
    time.sleep(0.1)
    assert events.empty()  # a close the client asked for is not reported as a disconnect


@pytest.mark.parametrize(
    ("host", "ssl", "db", "url"),
    [
        (
            "localhost:3000",
            False,
            "quickstart-chat",
            "ws://localhost:3000/v1/database/quickstart-chat/subscribe",
        ),
        ("http://localhost:3000", False, "chat", "ws://localhost:3000/v1/database/chat/subscribe"),
        ("https://example.com/base/", False, "a b", "wss://example.com/base/v1/database/a%20b/subscribe"),
        ("maincloud.spacetimedb.com", True, "x", "wss://maincloud.spacetimedb.com/v1/database/x/subscribe"),
        ("ws://h:1", True, "x", "wss://h:1/v1/database/x/subscribe"),
    ],
)
def test_build_url(host: str, ssl: bool, db: str, url: str) -> None:
    assert build_url(host, db, ssl, Compression.GZIP, {}) == url + "?compression=Gzip"


def test_build_url_refuses_other_schemes() -> None:
    with pytest.raises(ValueError, match="scheme"):
        build_url("ftp://example.com", "db", False, Compression.NONE, {})
    with pytest.raises(ValueError, match="no host"):
        build_url("ws://", "db", False, Compression.NONE, {})
