"""The client against a hostile or broken server on loopback (issue #9, defects 13, 14 and 15): a raw
socket server that completes (or never answers) the WebSocket handshake and then misbehaves. The game
thread must never block: ``update()`` stays within a small bound, ``close()`` returns at once, and no
thread is left behind."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import pytest
import websocket

from spacetime_game.sdk import DbConnection, TransportClosed, TransportError, TransportOpened
from spacetime_game.sdk._transport import WebSocketTransport
from spacetime_game.sdk.protocol import (
    BsatnRowList,
    PersistentTableRows,
    QueryRows,
    QuerySetUpdate,
    SingleTableRows,
    Subscribe,
    SubscribeApplied,
    TableUpdate,
    TransactionUpdate,
    encode_server_frame,
)
from spacetime_game.sdk.sats import DecodeError

from ..protocol.test_decompression_limit import gzip_bomb
from ._rawws import HostileServer, Peer, timed_updates, wait_threads_gone


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
        peer.greet()
        sub = peer.recv_message(Subscribe)
        rows = BsatnRowList(None, (0, 400), b"\x01\x00\x00\x00")  # offsets outside the rows' bytes
        applied = SubscribeApplied(
            sub.request_id, sub.query_set_id, QueryRows((SingleTableRows("player", rows),))
        )
        peer.send_frame(encode_server_frame(applied))
        peer.ignore_everything(stop)

    return script


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
        peer.greet()
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
        peer.greet()
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
        peer.greet()
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
    assert isinstance(events.get(timeout=5), TransportOpened)
    ws = t._ws
    assert ws is not None

    def stuck(data: bytes) -> None:
        raise websocket.WebSocketTimeoutException("timed out")

    monkeypatch.setattr(ws, "send_binary", stuck)
    with pytest.raises(ConnectionError, match="send failed"):
        t.send([Subscribe(1, 1, ("SELECT * FROM player",))])
    kinds = [type(events.get(timeout=5)) for _ in range(2)]
    assert kinds == [TransportError, TransportClosed]
    t.close()
    assert t.join(3)
