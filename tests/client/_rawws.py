"""A raw-socket fake WebSocket server on loopback for the client tests (issue #9): it completes (or never
answers) the WebSocket handshake and then runs a script per connection, so that a test can make the
server misbehave in ways a real server never would. Used by test_hostile_server and
test_send_never_blocks."""

from __future__ import annotations

import base64
import hashlib
import socket
import struct
import threading
import time
from collections.abc import Callable
from typing import Any

from spacetime_game.sdk import DbConnection
from spacetime_game.sdk.protocol import (
    PROTOCOL_V2,
    InitialConnection,
    decode_client_frame,
    encode_server_frame,
)

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

    def greet(self) -> None:
        """Complete the handshake and send the InitialConnection message, as a server does."""
        self.accept_websocket()
        self.send_frame(encode_server_frame(InitialConnection(ident(1), conn_id(1), "tok")))

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
        self._fill(n)
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _fill(self, n: int) -> None:
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("the client closed the connection")
            self.buf += chunk

    def recv_frame(self) -> tuple[int, bytes]:
        """The next frame's opcode and (unmasked) payload. Nothing is consumed until the whole frame has
        arrived, so a socket timeout (a script polling with one) leaves the next call where this began."""
        self._fill(2)
        b1 = self.buf[1]
        n, head = b1 & 0x7F, 2
        if n == 126:
            self._fill(4)
            (n,) = struct.unpack("!H", self.buf[2:4])
            head = 4
        elif n == 127:
            self._fill(10)
            (n,) = struct.unpack("!Q", self.buf[2:10])
            head = 10
        mask = b"\0\0\0\0"
        if b1 & 0x80:
            self._fill(head + 4)
            mask = self.buf[head : head + 4]
            head += 4
        self._fill(head + n)
        opcode = self.buf[0] & 0x0F
        data = bytes(c ^ mask[i % 4] for i, c in enumerate(self.buf[head : head + n]))
        self.buf = self.buf[head + n :]
        return opcode, data

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
        #: Why each connection the server closed ended (the client going, or a socket error).
        self.ended: list[BaseException] = []
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
        except (ConnectionError, OSError) as exc:
            self.ended.append(exc)  # the client went away, or a socket error (a timeout) ended it
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
