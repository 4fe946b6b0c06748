"""The client against a hostile or broken server on loopback (issue #9, defects 13, 14 and 15): a raw
socket server that completes (or never answers) the WebSocket handshake and then misbehaves. The game
thread must never block: ``update()`` stays within a small bound, ``close()`` returns at once, and no
thread is left behind."""

from __future__ import annotations

import base64
import hashlib
import queue
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import pytest
import websocket

from spacetime_game.sdk import DbConnection
from spacetime_game.sdk._transport import WebSocketTransport
from spacetime_game.sdk.protocol import (
    PROTOCOL_V2,
    BsatnRowList,
    InitialConnection,
    PersistentTableRows,
    QueryRows,
    QuerySetUpdate,
    SingleTableRows,
    Subscribe,
    SubscribeApplied,
    TableUpdate,
    TransactionUpdate,
    decode_client_frame,
    encode_server_frame,
)
from spacetime_game.sdk.sats import DecodeError

from ..protocol.test_decompression_limit import gzip_bomb
from ._support import conn_id, ident, sdk_threads_after_close

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455


def wait_threads_gone(timeout: float = 5.0) -> None:
    left = sdk_threads_after_close(timeout)
    assert not left, f"threads still running {timeout} s after close: {left}"


class Peer:
    """One accepted connection, seen from the server side."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""
        self.request = b""

    def read_request(self) -> bytes:
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("the client went away during the handshake")
            self.buf += chunk
        self.request, self.buf = self.buf.split(b"\r\n\r\n", 1)
        return self.request

    def accept_websocket(self, protocol: str = PROTOCOL_V2) -> None:
        self.read_request()
        key = next(
            line.split(b":", 1)[1].strip()
            for line in self.request.split(b"\r\n")
            if line.lower().startswith(b"sec-websocket-key:")
        )
        accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
        self.sock.sendall(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + accept + b"\r\n"
            b"Sec-WebSocket-Protocol: " + protocol.encode() + b"\r\n\r\n"
        )

    def send_frame(self, payload: bytes, opcode: int = 2) -> None:
        n = len(payload)
        if n < 126:
            header = struct.pack("!BB", 0x80 | opcode, n)
        elif n < 1 << 16:
            header = struct.pack("!BBH", 0x80 | opcode, 126, n)
        else:
            header = struct.pack("!BBQ", 0x80 | opcode, 127, n)
        self.sock.sendall(header + payload)

    def _exactly(self, n: int) -> bytes:
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("the client closed the connection")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def recv_frame(self) -> tuple[int, bytes]:
        b0, b1 = self._exactly(2)
        n = b1 & 0x7F
        if n == 126:
            (n,) = struct.unpack("!H", self._exactly(2))
        elif n == 127:
            (n,) = struct.unpack("!Q", self._exactly(8))
        mask = self._exactly(4) if b1 & 0x80 else b"\0\0\0\0"
        data = bytes(c ^ mask[i % 4] for i, c in enumerate(self._exactly(n)))
        return b0 & 0x0F, data

    def recv_message(self, cls: type) -> Any:
        """Read client frames until a message of type ``cls`` arrives."""
        while True:
            opcode, data = self.recv_frame()
            if opcode == 2:
                for m in decode_client_frame(data, PROTOCOL_V2):
                    if isinstance(m, cls):
                        return m

    def ignore_everything(self, stop: threading.Event) -> None:
        """Read and drop whatever comes (the close frame too) and never close: a server that ignores
        the close handshake."""
        self.sock.settimeout(0.05)
        while not stop.is_set():
            try:
                if not self.sock.recv(65536):
                    return
            except TimeoutError:
                continue
            except OSError:
                return


class HostileServer:
    """A TCP listener on loopback; each accepted connection runs ``script(peer, stop)`` in a thread."""

    def __init__(self, script: Callable[[Peer, threading.Event], None]) -> None:
        self.script = script
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.05)
        self.port = self.listener.getsockname()[1]
        self.stop = threading.Event()
        self.peers: list[Peer] = []
        self.threads: list[threading.Thread] = []
        self.errors: list[BaseException] = []
        self.acceptor = threading.Thread(target=self._accept, name="hostile-server", daemon=True)
        self.acceptor.start()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                sock, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            peer = Peer(sock)
            self.peers.append(peer)
            t = threading.Thread(target=self._serve, args=(peer,), name="hostile-peer", daemon=True)
            self.threads.append(t)
            t.start()

    def _serve(self, peer: Peer) -> None:
        try:
            self.script(peer, self.stop)
        except (ConnectionError, OSError):
            pass  # the client went away
        except BaseException as exc:  # a bug in the script: fail the test
            self.errors.append(exc)

    def close(self) -> None:
        self.stop.set()
        self.listener.close()
        self.acceptor.join(5)
        for p in self.peers:
            p.sock.close()
        for t in self.threads:
            t.join(5)
        assert not self.errors, self.errors


@pytest.fixture
def serve() -> Iterator[Callable[[Callable[[Peer, threading.Event], None]], HostileServer]]:
    servers: list[HostileServer] = []

    def start(script: Callable[[Peer, threading.Event], None]) -> HostileServer:
        servers.append(HostileServer(script))
        return servers[-1]

    yield start
    for s in servers:
        s.close()


def bad_rows_then_deaf(game: ModuleType) -> Callable[[Peer, threading.Event], None]:
    """Greets, waits for the Subscribe, answers it with rows that cannot be decoded, then ignores
    everything, the close frame included, and never closes."""

    def script(peer: Peer, stop: threading.Event) -> None:
        peer.accept_websocket()
        peer.send_frame(encode_server_frame(InitialConnection(ident(1), conn_id(1), "tok")))
        sub = peer.recv_message(Subscribe)
        rows = BsatnRowList(None, (0, 400), b"\x01\x00\x00\x00")  # offsets outside the rows' bytes
        applied = SubscribeApplied(
            sub.request_id, sub.query_set_id, QueryRows((SingleTableRows("player", rows),))
        )
        peer.send_frame(encode_server_frame(applied))
        peer.ignore_everything(stop)

    return script


def timed_updates(conn: DbConnection, until: Callable[[], bool], timeout: float = 10.0) -> list[float]:
    """Call ``update(0.004)`` like a game loop until ``until()`` holds; the duration of every call."""
    times: list[float] = []
    deadline = time.monotonic() + timeout
    while not until():
        assert time.monotonic() < deadline, "timed out"
        t0 = time.perf_counter()
        conn.update(0.004)
        times.append(time.perf_counter() - t0)
        time.sleep(0.002)
    return times


def test_update_never_blocks_on_a_server_that_ignores_the_close_handshake(
    game: ModuleType, serve: Any
) -> None:
    """Defect 13: undecodable rows make the client drop the connection; the server then ignores the
    close frame. update() used to block about 1 s in the close handshake (its budget was 4 ms)."""
    server = serve(bad_rows_then_deaf(game))
    errors: list[BaseException] = []
    conn = DbConnection(game.MODULE, server.host, "db", on_error=errors.append, reconnect_min_delay=60)
    conn.subscribe_multi(["SELECT * FROM player"])
    conn.connect()
    try:
        times = timed_updates(conn, lambda: bool(errors) and conn.state == "reconnecting")
        assert any(isinstance(e, DecodeError) for e in errors), errors
        # a few more frames while the close handshake times out in the background
        end = time.monotonic() + 1.5
        while time.monotonic() < end:
            t0 = time.perf_counter()
            conn.update(0.004)
            times.append(time.perf_counter() - t0)
            time.sleep(0.01)
        assert max(times) < 0.1, f"an update() took {max(times) * 1000:.0f} ms"
        assert conn.count_rows("player") == 0
    finally:
        t0 = time.perf_counter()
        conn.close()
        closed_in = time.perf_counter() - t0
    assert closed_in < 0.5, f"close() took {closed_in:.2f} s"
    wait_threads_gone()


def test_close_never_blocks_on_a_server_that_ignores_the_close_handshake(
    game: ModuleType, serve: Any
) -> None:
    """The same deaf server, but the game closes while connected: close() returns at once, and the
    background handshake gives up after close_timeout."""

    def script(peer: Peer, stop: threading.Event) -> None:
        peer.accept_websocket()
        peer.send_frame(encode_server_frame(InitialConnection(ident(1), conn_id(1), "tok")))
        peer.ignore_everything(stop)

    server = serve(script)
    conn = DbConnection(game.MODULE, server.host, "db")
    conn.connect()
    timed_updates(conn, lambda: conn.is_connected)
    t0 = time.perf_counter()
    conn.close()
    assert time.perf_counter() - t0 < 0.5
    wait_threads_gone()


def silent_after_tcp(requests: list[bytes]) -> Callable[[Peer, threading.Event], None]:
    """Accepts TCP, reads the HTTP upgrade request, and never answers."""

    def script(peer: Peer, stop: threading.Event) -> None:
        requests.append(peer.read_request())
        stop.wait()

    return script


def wait_for(cond: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def test_close_during_an_unanswered_handshake_returns_and_leaves_no_thread(serve: Any) -> None:
    """Defect 14: the server accepts TCP but never answers the WebSocket handshake. close() used to
    block 5 s and leave the reader thread running (up to the 10 s connect timeout)."""
    requests: list[bytes] = []
    server = serve(silent_after_tcp(requests))
    t = WebSocketTransport(f"ws://{server.host}/v1/database/db/subscribe", None)
    events: queue.SimpleQueue[Any] = queue.SimpleQueue()
    t.start(events, lambda: None)
    wait_for(lambda: bool(requests))  # the client is in the handshake now
    t0 = time.perf_counter()
    t.close()
    assert time.perf_counter() - t0 < 0.5
    assert t.join(3), "the reader thread is still running"
    wait_threads_gone()
    assert events.empty()  # a close the client asked for is not reported


def test_db_connection_close_during_an_unanswered_handshake(game: ModuleType, serve: Any) -> None:
    requests: list[bytes] = []
    server = serve(silent_after_tcp(requests))
    conn = DbConnection(game.MODULE, server.host, "db")
    conn.connect()
    wait_for(lambda: bool(requests))
    t0 = time.perf_counter()
    conn.close()
    assert time.perf_counter() - t0 < 0.5
    assert conn.state == "closed"
    wait_threads_gone(3)


def test_close_right_after_connect_leaves_no_thread(game: ModuleType, serve: Any) -> None:
    """Closing at any moment of the connection attempt (here: before the handshake even started)."""
    requests: list[bytes] = []
    server = serve(silent_after_tcp(requests))
    for _ in range(5):
        conn = DbConnection(game.MODULE, server.host, "db")
        conn.connect()
        conn.close()
    wait_threads_gone(3)


def test_a_decompression_bomb_is_refused_and_the_connection_rebuilt(game: ModuleType, serve: Any) -> None:
    """Defect 15 end to end: a gzip frame that inflates to 2 GiB is refused after max_message_size bytes,
    reported to on_error as a DecodeError naming the limit, and the client reconnects."""
    bomb = b"\x02" + gzip_bomb()
    attempts: list[int] = []

    def script(peer: Peer, stop: threading.Event) -> None:
        attempts.append(1)
        peer.accept_websocket()
        peer.send_frame(encode_server_frame(InitialConnection(ident(1), conn_id(1), "tok")))
        if len(attempts) == 1:
            peer.send_frame(bomb)
        peer.ignore_everything(stop)

    server = serve(script)
    errors: list[BaseException] = []
    limit = 8 << 20
    conn = DbConnection(
        game.MODULE,
        server.host,
        "db",
        on_error=errors.append,
        max_message_size=limit,
        reconnect_min_delay=0.01,
        reconnect_max_delay=0.02,
    )
    conn.connect()
    try:
        timed_updates(conn, lambda: bool(errors))
        (exc,) = errors
        assert isinstance(exc, DecodeError) and f"more than {limit} bytes" in str(exc)
        assert "max_message_size" in str(exc)
        # the connection is rebuilt
        timed_updates(conn, lambda: len(attempts) >= 2 and conn.is_connected)
        assert conn.stats.reconnects == 1
    finally:
        conn.close()
    wait_threads_gone()


def test_the_limit_reaches_the_transport(game: ModuleType) -> None:
    conn = DbConnection(game.MODULE, "127.0.0.1:1", "db", max_message_size=12345)
    t = conn._transport_factory(conn.url, None)
    assert isinstance(t, WebSocketTransport) and t.max_message_size == 12345
    with pytest.raises(ValueError, match="max_message_size"):
        DbConnection(game.MODULE, "127.0.0.1:1", "db", max_message_size=0)


def test_rows_are_decoded_as_usual_from_this_server(game: ModuleType, serve: Any) -> None:
    """The fake server speaks the protocol well enough: good rows arrive (a check on the harness)."""
    P = game.Player

    def script(peer: Peer, stop: threading.Event) -> None:
        peer.accept_websocket()
        peer.send_frame(encode_server_frame(InitialConnection(ident(1), conn_id(1), "tok")))
        sub = peer.recv_message(Subscribe)
        codec = game.MODULE.table("player").codec
        rows = BsatnRowList.from_rows([bytes(codec.encode(P(1, "a", 1)))])
        peer.send_frame(
            encode_server_frame(
                SubscribeApplied(
                    sub.request_id, sub.query_set_id, QueryRows((SingleTableRows("player", rows),))
                )
            )
        )
        more = BsatnRowList.from_rows([bytes(codec.encode(P(2, "b", 2)))])
        tu = TableUpdate("player", (PersistentTableRows(more, BsatnRowList.from_rows([])),))
        peer.send_frame(encode_server_frame(TransactionUpdate((QuerySetUpdate(sub.query_set_id, (tu,)),))))
        peer.ignore_everything(stop)

    server = serve(script)
    conn = DbConnection(game.MODULE, server.host, "db")
    conn.subscribe_multi(["SELECT * FROM player"])
    conn.connect()
    try:
        timed_updates(conn, lambda: conn.count_rows("player") == 2)
    finally:
        conn.close()
    wait_threads_gone()


def test_a_send_that_times_out_is_a_lost_connection(serve: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A websocket error while sending (sends no longer wait, but websocket-client may still raise while
    framing): the transport reports ConnectionError (the client keeps the message for the next
    connection) and cuts the socket, so that the reader reports the connection as lost instead of the
    stream going on corrupted. (A failed write: test_send_never_blocks.)"""

    def script(peer: Peer, stop: threading.Event) -> None:
        peer.accept_websocket()
        peer.ignore_everything(stop)

    server = serve(script)
    t = WebSocketTransport(f"ws://{server.host}/v1/database/db/subscribe", None)
    events: queue.SimpleQueue[Any] = queue.SimpleQueue()
    t.start(events, lambda: None)
    assert events.get(timeout=5).kind == "open"
    ws = t._ws
    assert ws is not None

    def stuck(data: bytes) -> None:
        raise websocket.WebSocketTimeoutException("timed out")

    monkeypatch.setattr(ws, "send_binary", stuck)
    with pytest.raises(ConnectionError, match="send failed"):
        t.send([Subscribe(1, 1, ("SELECT * FROM player",))])
    kinds = [events.get(timeout=5).kind for _ in range(2)]
    assert kinds == ["error", "close"]
    t.close()
    assert t.join(3)
