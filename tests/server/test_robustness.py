"""Keepalive, idle connections and clients that cannot keep up."""

from __future__ import annotations

import struct
import time

import websocket

from spacetime_game.sdk.protocol import (
    InitialConnection,
    ReducerOk,
    ReducerResult,
    Subscribe,
    SubscribeApplied,
)

from .conftest import Client, ServerThread


def _close_code(c: Client, timeout: float = 30) -> int:
    """The code of the server's close frame, read from the raw socket so that nothing is answered
    (no pong, no close reply); -1 if the stream ends without one."""
    sock = c.ws.sock
    sock.settimeout(timeout)
    buf = b""
    while True:
        # parse whole frames at the front of the buffer (server frames are never masked)
        while len(buf) >= 2:
            opcode, n = buf[0] & 0x0F, buf[1] & 0x7F
            head = 2
            if n == 126:
                if len(buf) < 4:
                    break
                n, head = struct.unpack("!H", buf[2:4])[0], 4
            elif n == 127:
                if len(buf) < 10:
                    break
                n, head = struct.unpack("!Q", buf[2:10])[0], 10
            if len(buf) < head + n:
                break
            payload, buf = buf[head : head + n], buf[head + n :]
            if opcode == 0x8:
                return int(struct.unpack("!H", payload[:2])[0])
        try:
            chunk = sock.recv(1 << 20)
        except OSError:
            return -1
        if not chunk:
            return -1
        buf += chunk


def test_pings_keep_a_quiet_client_and_idle_ones_are_closed() -> None:
    server = ServerThread(ping_interval=0.2, idle_timeout=0.6)
    try:
        alive = Client(server.ws_url)
        alive.recv_type(InitialConnection)
        silent = Client(server.ws_url)
        silent.recv_type(InitialConnection)
        # `alive` reads (websocket-client answers each ping with a pong); `silent` reads nothing at all
        alive.ws.settimeout(0.1)
        t_end = time.time() + 1.5
        pings = 0
        while time.time() < t_end:
            try:
                opcode, _ = alive.ws.recv_data(control_frame=True)
                pings += opcode == websocket.ABNF.OPCODE_PING
            except websocket.WebSocketTimeoutException:
                pass
        assert pings >= 3  # the server pings every ping_interval
        assert _close_code(silent) == 1001  # going away: idle
        alive.ws.settimeout(10)
        alive.call("set_name", "still alive")
        assert isinstance(alive.recv_type(ReducerResult).result, ReducerOk)
        alive.close()
    finally:
        server.stop()


def test_a_client_that_cannot_keep_up_is_disconnected_not_buffered() -> None:
    server = ServerThread(max_queued_bytes=1 << 20)
    try:
        slow = Client(server.ws_url, query="compression=None")
        slow.recv_type(InitialConnection)
        slow.send(Subscribe(1, 1, ("SELECT * FROM message",)))
        slow.recv_type(SubscribeApplied)
        fast = Client(server.ws_url)
        fast.recv_type(InitialConnection)
        big = "x" * 60_000
        for _ in range(400):  # ~24 MB for `slow`, which reads nothing: its socket buffer fills up
            fast.call("send_message", big)
            assert isinstance(fast.recv_type(ReducerResult).result, ReducerOk)
            if any(c.transport.closing for c in server.server._conns):  # type: ignore[attr-defined]
                break
        deadline = time.time() + 10
        while len(server.server._conns) > 1 and time.time() < deadline:
            time.sleep(0.05)
        assert len(server.server._conns) == 1  # the slow client was dropped
        assert _close_code(slow) in (1008, -1)  # policy violation: too slow (or the socket is gone)
        fast.call("send_message", "served")
        assert isinstance(fast.recv_type(ReducerResult).result, ReducerOk)
        fast.close()
    finally:
        server.stop()
