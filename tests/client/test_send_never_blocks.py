"""Sending never blocks the game thread (issue #9, the last blocking path of the client): a server that
stops reading fills the socket's buffers; a reducer call then used to block up to the socket timeout
(1 s) inside websocket-client's ``send_binary``. Now a frame that does not fit is queued (bounded by
``max_send_buffer``) and a writer thread finishes it; a server that reads nothing for that long is a lost
connection. Frames written at once and frames written from the queue reach the server in order and
intact, pongs and close frames included."""

from __future__ import annotations

import datetime
import ipaddress
import queue
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from spacetime_game.sdk import (
    DbConnection,
    TransportClosed,
    TransportError,
    TransportMessage,
    TransportOpened,
)
from spacetime_game.sdk._transport import DEFAULT_MAX_SEND_BUFFER, WebSocketTransport, _Wire
from spacetime_game.sdk.protocol import (
    PROTOCOL_V2,
    CallReducer,
    decode_client_frame,
)

from ._rawws import HostileServer, Peer, timed_updates, wait_threads_gone

SLOW = 0.1  # the longest any update() or reducer call may take (one blocked about 1 s before the fix)
HANDLE = "x" * 4000  # a rename() frame of about 4 KB fills the buffers quickly


def small_buffers(server: HostileServer) -> HostileServer:
    """Small receive buffers on the server side (accepted sockets inherit the listener's)."""
    server.listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    return server


def shrink_client_buffer(conn: DbConnection, server: HostileServer | None = None) -> None:
    """A small send buffer on the client's socket, so that a deaf server fills it after a few KB."""
    t = conn._transport
    assert isinstance(t, WebSocketTransport), t
    if t._ws is None or t._ws.sock is None:
        timed_updates(conn, lambda: conn.disconnect_reason is not None)  # (the news of why)
        ended = server.ended if server is not None else "?"
        raise AssertionError(f"the connection dropped: {conn.disconnect_reason}; the server's side: {ended}")
    t._ws.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8192)


@pytest.fixture
def serve() -> Iterator[Callable[[Callable[[Peer, threading.Event], None]], HostileServer]]:
    servers: list[HostileServer] = []

    def start(script: Callable[[Peer, threading.Event], None]) -> HostileServer:
        servers.append(small_buffers(HostileServer(script)))
        return servers[-1]

    yield start
    for s in servers:
        s.close()


def test_reducer_calls_never_block_on_a_server_that_stops_reading(game: ModuleType, serve: Any) -> None:
    """The server greets and then never reads. Reducer calls from the game thread go on at full speed:
    none (and no update()) takes more than SLOW; what does not fit waits in a bounded buffer; once more
    than max_send_buffer bytes wait, on_error gets a clear ConnectionError and the connection is
    rebuilt; a call whose frame never left is reported ``disconnected`` and is not sent on the next
    connection; close() leaves nothing running."""
    connections: list[int] = []
    second: list[CallReducer] = []

    def script(peer: Peer, stop: threading.Event) -> None:
        connections.append(1)
        peer.greet()
        if len(connections) == 1:
            stop.wait()  # deaf: never reads
            return
        peer.sock.settimeout(0.05)
        while not stop.is_set():  # the next connection reads everything
            try:
                opcode, data = peer.recv_frame()
            except TimeoutError:
                continue
            if opcode == 2:
                second.extend(m for m in decode_client_frame(data, PROTOCOL_V2) if isinstance(m, CallReducer))

    server = serve(script)
    errors: list[BaseException] = []
    limit = 1 << 20
    conn = DbConnection(
        game.MODULE,
        server.host,
        "db",
        on_error=errors.append,
        max_send_buffer=limit,
        reconnect_min_delay=0.05,
        reconnect_max_delay=0.1,
    )
    conn.connect()
    try:
        timed_updates(conn, lambda: conn.is_connected)
        shrink_client_buffer(conn)
        wire = conn._transport._wire  # type: ignore[union-attr]
        calls = []
        times: list[float] = []
        most_waiting = 0
        deadline = time.monotonic() + 20
        while not errors:
            assert time.monotonic() < deadline, "the connection was never reported lost"
            t0 = time.perf_counter()
            calls.append(game.rename(len(calls), HANDLE, client=conn))
            conn.update(0.004)
            times.append(time.perf_counter() - t0)
            most_waiting = max(most_waiting, wire.pending_bytes)
        worst = max(times)
        assert worst < SLOW, f"a reducer call or update() took {worst * 1000:.0f} ms"
        assert len(calls) > limit // len(HANDLE), "the buffer was never used"
        assert most_waiting <= limit
        (exc,) = errors
        assert isinstance(exc, ConnectionError), exc
        assert "max_send_buffer" in str(exc) and "has not read" in str(exc), str(exc)
        assert not wire.pending_bytes, "what waited is dropped with the connection"
        times = timed_updates(conn, lambda: conn.is_connected)  # rebuilt, on the second connection
        assert max(times) < SLOW
        assert {c.status for c in calls} == {"disconnected"}
        after = game.rename(12345, "after", client=conn)
        timed_updates(conn, lambda: bool(second))
        time.sleep(0.2)  # anything else would have arrived by now
        conn.update(0.004)
        assert [m.request_id for m in second] == [after.request_id], "a disconnected call was sent later"
    finally:
        t0 = time.perf_counter()
        conn.close()
        assert time.perf_counter() - t0 < SLOW
    wait_threads_gone()


def test_the_default_limit(game: ModuleType) -> None:
    conn = DbConnection(game.MODULE, "127.0.0.1:1", "db")
    t = conn._transport_factory(conn.url, None)
    assert isinstance(t, WebSocketTransport) and t.max_send_buffer == DEFAULT_MAX_SEND_BUFFER == 16 << 20
    conn = DbConnection(game.MODULE, "127.0.0.1:1", "db", max_send_buffer=4096)
    t = conn._transport_factory(conn.url, None)
    assert isinstance(t, WebSocketTransport) and t.max_send_buffer == 4096
    with pytest.raises(ValueError, match="max_send_buffer"):
        DbConnection(game.MODULE, "127.0.0.1:1", "db", max_send_buffer=0)


class ReadingLater:
    """A server that greets, sends pings but reads nothing until ``go`` is set, then reads every frame:
    the data frames' messages and the pongs, in arrival order."""

    def __init__(self) -> None:
        self.go = threading.Event()
        self.received: list[Any] = []  # CallReducer messages and ("pong", payload)
        self.pings: list[bytes] = []

    def __call__(self, peer: Peer, stop: threading.Event) -> None:
        peer.greet()
        n = 0
        while not self.go.is_set() and not stop.is_set():
            n += 1
            self.pings.append(b"ping %d" % n)
            peer.send_frame(self.pings[-1], opcode=9)
            self.go.wait(0.01)
        peer.sock.settimeout(0.05)
        while not stop.is_set():
            try:
                opcode, data = peer.recv_frame()
            except TimeoutError:
                continue
            if opcode == 2:
                self.received.extend(decode_client_frame(data, PROTOCOL_V2))
            elif opcode == 10:
                self.received.append(("pong", data))
            elif opcode == 8:
                self.received.append(("close", data))
                return
            else:
                raise AssertionError(f"unexpected opcode {opcode}")


def check_order(server: ReadingLater, calls: list[Any]) -> None:
    got = [m for m in server.received if isinstance(m, CallReducer)]
    assert [(m.request_id, m.reducer, m.args) for m in got] == [
        (c.request_id, c.reducer, c.args) for c in calls
    ], "frames arrived out of order or changed"
    pongs = [m[1] for m in server.received if isinstance(m, tuple) and m[0] == "pong"]
    assert pongs == server.pings[: len(pongs)], "one pong per ping, in order"
    first_call = next(i for i, m in enumerate(server.received) if isinstance(m, CallReducer))
    late = [m for m in server.received[first_call:] if isinstance(m, tuple) and m[0] == "pong"]
    assert len(late) >= 5, "no pong waited behind the queued frames"


def call_through_both_paths(game: ModuleType, conn: DbConnection, server: ReadingLater) -> list[Any]:
    """Calls while the server reads nothing (the later ones wait in the buffer), then while it reads."""
    wire = conn._transport._wire  # type: ignore[union-attr]
    calls: list[Any] = []
    for i in range(4):  # on an idle connection, written at once
        calls.append(game.attack(i, i * 7, client=conn))
        conn.update(0.004)
    assert wire.direct_frames >= 4 or conn._transport.protocol != PROTOCOL_V2  # type: ignore[union-attr]
    deadline = time.monotonic() + 10
    while wire.pending_bytes < 64 * 1024:  # the server does not read: they pile up
        assert time.monotonic() < deadline, "the buffer never filled"
        calls.append(game.rename(len(calls), HANDLE + str(len(calls)), client=conn))
        calls.append(game.attack(len(calls), 1, client=conn))
        conn.update(0.004)
    pings = len(server.pings)
    while len(server.pings) < pings + 5:  # pings arrive: their pongs queue behind the frames waiting
        calls.append(game.attack(len(calls), 2, client=conn))
        conn.update(0.004)
        time.sleep(0.005)
    server.go.set()
    for i in range(300):  # while the queue drains: some queued, later ones written at once again
        calls.append(game.attack(1000 + i, i, client=conn))
        conn.update(0.004)
        time.sleep(0.001)
    timed_updates(conn, lambda: len([m for m in server.received if isinstance(m, CallReducer)]) >= len(calls))
    assert wire.queued_frames > 0
    return calls


def test_frames_arrive_in_order_through_both_paths(game: ModuleType, serve: Any) -> None:
    """Frames written at once by the game thread and frames finished by the writer thread (pongs from
    the reader thread among them) reach the server in order and intact; the close frame comes last."""
    server = ReadingLater()
    listener = serve(server)
    conn = DbConnection(game.MODULE, listener.host, "db")
    conn.connect()
    try:
        timed_updates(conn, lambda: conn.is_connected)
        shrink_client_buffer(conn)
        calls = call_through_both_paths(game, conn, server)
        check_order(server, calls)
        assert {c.status for c in calls} == {"pending"}  # (this server never answers)
    finally:
        conn.close()
    wait_threads_gone()
    assert server.received[-1][0] == "close", "the close frame came last"


# ----- the wire alone, on a socket pair: the rules that keep frames whole and in order ---------------------


def _pair() -> tuple[socket.socket, socket.socket]:
    a, b = socket.socketpair()
    a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    b.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    a.settimeout(1.0)  # like the reader thread's socket: a plain send would wait up to 1 s
    b.settimeout(2.0)
    return a, b


def _read_exactly(sock: socket.socket, n: int) -> bytes:
    out = bytearray()
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        assert chunk, "closed early"
        out += chunk
    return bytes(out)


def test_a_frame_waits_behind_what_is_queued_even_when_the_socket_has_room(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A frame that only partly fits is queued; the socket then drains (room again), but the writer has
    not run yet: a later frame must queue behind the rest of the first, not be written before it."""
    a, b = _pair()
    lost: list[BaseException] = []
    wire = _Wire(1 << 20, lost.append)
    wakes: list[int] = []
    monkeypatch.setattr(wire, "_wake_writer", lambda: wakes.append(1))  # the writer does not run yet
    wire.attach(a)
    first = bytes(range(256)) * 4096  # 1 MiB: does not fit
    second = b"second frame"
    try:
        t0 = time.perf_counter()
        wire.write(first)
        assert 0 < wire.pending_bytes < len(first) and wakes
        head = _read_exactly(b, len(first) - wire.pending_bytes)  # the socket is empty again
        wire.write(second)
        assert time.perf_counter() - t0 < 0.5
        assert wire.pending_bytes == len(first) - len(head) + len(second), "the later frame jumped the queue"
        monkeypatch.undo()
        with wire._lock:
            wire._wake_writer()  # now the writer thread writes the queue, in order
        rest = _read_exactly(b, len(first) + len(second) - len(head))
        assert head + rest == first + second
        assert wire.direct_frames == 0 and wire.queued_frames == 2 and not lost
    finally:
        wire.close()
        assert wire.join(3)
        a.close()
        b.close()


def test_the_limit_counts_waiting_bytes_and_one_large_frame_always_fits() -> None:
    a, b = _pair()
    lost: list[BaseException] = []
    wire = _Wire(64 * 1024, lost.append)
    wire.attach(a)
    try:
        wire.write(b"\1" * 200_000)  # larger than the limit, but nothing else waits: accepted
        assert wire.pending_bytes > 64 * 1024 and not lost
        wire.write(b"\2\0", control=True)  # a control frame is never refused
        with pytest.raises(ConnectionError, match=r"max_send_buffer \(65536 bytes\)"):
            wire.write(b"\3" * 10)
        assert len(lost) == 1 and "has not read" in str(lost[0])
        assert wire.pending_bytes == 0  # dropped with the connection
        with pytest.raises(ConnectionError):
            wire.write(b"\4", control=True)  # and nothing more is written
    finally:
        wire.close()
        assert wire.join(3)
        a.close()
        b.close()


def test_discarded_frames_are_never_written_but_a_started_one_is_finished() -> None:
    """When the connection ends, the data frames not yet started are dropped (their calls are reported
    disconnected); a frame already partly written is finished and a control frame still goes out."""
    a, b = _pair()
    wire = _Wire(1 << 20, lambda exc: None)
    wire.attach(a)
    first = b"\1" * 300_000
    try:
        with wire._lock:
            wire._busy = True  # hold the writer back while the frames queue
        wire.write(b"\2" * 1000)
        wire.write(b"\3\3", control=True)
        wire.discard_data()  # (the writer, held back, has not started the data frame)
        assert wire.pending_bytes == 2  # the data frame went, the control frame stays
        with wire._lock:
            wire._busy = False  # (the writer is not woken: it sleeps until the next write)
        wire.write(first)  # behind the control frame
        assert _read_exactly(b, 2) == b"\3\3"
        got = _read_exactly(b, 100)  # the writer has started on `first`
        wire.discard_data()
        rest = _read_exactly(b, len(first) - 100)
        assert got + rest == first
        b.settimeout(0.2)
        with pytest.raises(TimeoutError):
            b.recv(1)  # nothing else
    finally:
        wire.close()
        assert wire.join(3)
        a.close()
        b.close()


# ----- wss: every frame goes through the writer thread ---------------------------------------------------


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    x509 = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


def test_wss_frames_arrive_in_order_and_calls_never_block(
    game: ModuleType, serve: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same over TLS, where the game thread only queues (a TLS write cannot be made non-blocking
    without changing the socket the reader uses): no call blocks, and every frame arrives in order."""
    cert, key = _self_signed(tmp_path)
    monkeypatch.setenv("WEBSOCKET_CLIENT_CA_BUNDLE", str(cert))  # websocket-client trusts our certificate
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    inner = ReadingLater()

    def script(peer: Peer, stop: threading.Event) -> None:
        peer.sock.settimeout(5)
        peer.sock = ctx.wrap_socket(peer.sock, server_side=True)
        inner(peer, stop)

    listener = serve(script)
    conn = DbConnection(game.MODULE, f"wss://{listener.host}", "db")
    conn.connect()
    try:
        timed_updates(conn, lambda: conn.is_connected)
        transport = conn._transport
        # (two clean-clone runs saw this connection dropped under load; the reason is named if it recurs)
        assert conn.is_connected, f"the connection dropped: {conn.disconnect_reason}"
        shrink_client_buffer(conn, listener)
        wire = conn._transport._wire  # type: ignore[union-attr]
        times = []
        calls: list[Any] = []
        for i in range(200):
            t0 = time.perf_counter()
            calls.append(game.rename(i, HANDLE + str(i), client=conn))
            conn.update(0.004)
            times.append(time.perf_counter() - t0)
        assert max(times) < SLOW, f"a reducer call or update() took {max(times) * 1000:.0f} ms"
        assert conn._transport is transport, (
            f"the connection dropped: {conn.disconnect_reason}, {listener.ended}"
        )
        assert wire.direct_frames == 0 and wire.queued_frames >= 200
        inner.go.set()
        try:
            timed_updates(
                conn, lambda: len([m for m in inner.received if isinstance(m, CallReducer)]) >= len(calls)
            )
        except AssertionError as exc:
            raise AssertionError(
                f"{exc}: {conn.disconnect_reason}; the server's side: {listener.ended}"
            ) from exc
        got = [m for m in inner.received if isinstance(m, CallReducer)]
        assert [(m.request_id, m.args) for m in got] == [(c.request_id, c.args) for c in calls]
        pongs = [m[1] for m in inner.received if isinstance(m, tuple) and m[0] == "pong"]
        assert pongs == inner.pings[: len(pongs)]
    finally:
        conn.close()
    wait_threads_gone()
    assert inner.received[-1][0] == "close"


def _open_transport(serve: Any) -> tuple[WebSocketTransport, queue.SimpleQueue[Any]]:
    """A transport connected to a peer that greets it and then waits; its ``open`` event taken."""

    def script(peer: Peer, stop: threading.Event) -> None:
        peer.greet()
        stop.wait()

    listener = serve(script)
    t = WebSocketTransport(f"ws://{listener.host}/v1/database/db/subscribe", None)
    events: queue.SimpleQueue[Any] = queue.SimpleQueue()
    t.start(events, lambda: None)
    assert isinstance(events.get(timeout=5), TransportOpened)
    return t, events


def test_send_on_a_closed_transport_raises_at_once(serve: Any) -> None:
    t, _ = _open_transport(serve)
    t.close()
    with pytest.raises(ConnectionError, match="not connected"):
        t.send([CallReducer(1, 0, "attack", b"\0" * 8)])
    assert t.join(3)


def test_a_failed_write_is_reported_as_the_reason_the_connection_was_lost(serve: Any) -> None:
    """A write that fails (here: the peer reset) raises ConnectionError to the caller, cuts the socket,
    and the reader reports that error, then the close."""

    t, events = _open_transport(serve)
    assert isinstance(events.get(timeout=5), TransportMessage)  # InitialConnection

    class Reset:
        def send(self, data: bytes, flags: int = 0) -> int:
            raise ConnectionResetError(104, "Connection reset by peer")

    t._wire._sock = Reset()  # type: ignore[assignment]
    with pytest.raises(ConnectionError, match=r"send failed: .*reset by peer"):
        t.send([CallReducer(1, 0, "attack", b"\0" * 8)])
    err, close = events.get(timeout=5), events.get(timeout=5)
    assert isinstance(err, TransportError) and isinstance(err.error, ConnectionResetError)
    assert isinstance(close, TransportClosed) and "reset by peer" in close.reason
    with pytest.raises(ConnectionError):
        t.send([CallReducer(2, 0, "attack", b"\0" * 8)])
    t.close()
    assert t.join(3)
