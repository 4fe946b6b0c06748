"""The fault proxy itself, against a small echo server: it forwards, delays (in order), drops and resumes,
cuts (FIN), resets (RST), lists and targets connections, and leaves nothing running when stopped."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from .proxy import FaultProxy

pytestmark = pytest.mark.timeout(60)


class EchoServer:
    """A threaded TCP echo server on loopback; ``peer_events`` records how each connection ended."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.05)  # so that close() is noticed soon
        self.port = int(self.sock.getsockname()[1])
        self.ended: list[str] = []  # "eof" or "reset", per connection
        self.threads: list[threading.Thread] = []
        self._stop = False
        self.acceptor = threading.Thread(target=self._accept, daemon=True)
        self.acceptor.start()

    def _accept(self) -> None:
        while not self._stop:
            try:
                c, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            t = threading.Thread(target=self._serve, args=(c,), daemon=True)
            self.threads.append(t)
            t.start()

    def _serve(self, c: socket.socket) -> None:
        with c:
            c.settimeout(None)
            try:
                while True:
                    data = c.recv(65536)
                    if not data:
                        self.ended.append("eof")
                        return
                    c.sendall(data)
            except ConnectionResetError:
                self.ended.append("reset")
            except OSError:
                self.ended.append("error")

    def close(self) -> None:
        self._stop = True
        self.acceptor.join(5)
        self.sock.close()
        for t in self.threads:
            t.join(5)


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    server = EchoServer()
    yield server
    server.close()


@pytest.fixture
def proxy(echo: EchoServer) -> Iterator[FaultProxy]:
    with FaultProxy(("127.0.0.1", echo.port), seed=1) as p:
        yield p


def connect(port: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    return s


def wait_for(cond: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {cond}"
        time.sleep(0.01)


def recv_exactly(s: socket.socket, n: int) -> bytes:
    out = b""
    while len(out) < n:
        chunk = s.recv(n - len(out))
        assert chunk, f"EOF after {len(out)} of {n} bytes"
        out += chunk
    return out


@contextlib.contextmanager
def echoed(proxy: FaultProxy) -> Iterator[tuple[socket.socket, Any]]:
    """A client socket through ``proxy`` that has carried one byte there and back, and its connection."""
    with connect(proxy.add_listener()) as s:
        s.sendall(b"a")
        recv_exactly(s, 1)
        (c,) = proxy.connections()
        yield s, c


def test_forwards_and_lists_connections_per_listener(proxy: FaultProxy) -> None:
    pa, pb = proxy.add_listener("a"), proxy.add_listener("b")
    assert pa != pb
    with connect(pa) as a, connect(pb) as b:
        payload = bytes(range(256)) * 1000  # bigger than one chunk
        a.sendall(payload)
        assert recv_exactly(a, len(payload)) == payload
        b.sendall(b"hello")
        assert recv_exactly(b, 5) == b"hello"
        conns = proxy.connections()
        assert sorted(c.listener for c in conns) == ["a", "b"]
        (ca,) = proxy.connections("a")
        assert ca.client_port == a.getsockname()[1]
        assert ca.bytes_up == ca.bytes_down == len(payload)
    wait_for(lambda: proxy.connections() == [])
    assert proxy.accepted == {"a": 1, "b": 1}


def test_delay_holds_each_chunk_and_keeps_order(proxy: FaultProxy) -> None:
    port = proxy.add_listener()
    with connect(port) as s:
        s.sendall(b"x")
        recv_exactly(s, 1)
        (c,) = proxy.connections()
        assert proxy.set_delay(c.id, 0.15, jitter=0.1)
        t0 = time.monotonic()
        s.sendall(b"ping")
        assert recv_exactly(s, 4) == b"ping"
        assert time.monotonic() - t0 >= 0.3  # held going up and again coming down
        # many small chunks with jitter still arrive in order
        for i in range(50):
            s.sendall(b"%03d" % i)
        assert recv_exactly(s, 150) == b"".join(b"%03d" % i for i in range(50))
        assert proxy.set_delay(c.id, 0.0)
        t0 = time.monotonic()
        s.sendall(b"pong")
        assert recv_exactly(s, 4) == b"pong"


def test_drop_holds_everything_then_resumes_without_loss(proxy: FaultProxy) -> None:
    with echoed(proxy) as (s, c):
        assert proxy.drop(c.id, 30)
        assert proxy.connections()[0].dropped
        s.sendall(b"during the drop")
        s.settimeout(0.5)
        with pytest.raises(TimeoutError):
            s.recv(100)
        assert proxy.resume(c.id)
        s.settimeout(5)
        assert recv_exactly(s, 15) == b"during the drop"


def test_drop_ends_by_itself_or_with_a_reset(proxy: FaultProxy, echo: EchoServer) -> None:
    with echoed(proxy) as (s, c):
        proxy.drop(c.id, 0.3)
        s.sendall(b"later")
        assert recv_exactly(s, 5) == b"later"  # after the drop, by itself
        proxy.drop(c.id, 0.2, then="reset")
        with pytest.raises(ConnectionResetError):
            while s.recv(100):
                pass
    wait_for(lambda: echo.ended == ["reset"])


def test_cut_closes_both_sides_cleanly(proxy: FaultProxy, echo: EchoServer) -> None:
    with echoed(proxy) as (s, c):
        assert proxy.cut(c.id)
        assert s.recv(100) == b""  # EOF, not an error
        assert not proxy.cut(c.id)  # gone
    wait_for(lambda: echo.ended == ["eof"])


def test_reset_resets_both_sides(proxy: FaultProxy, echo: EchoServer) -> None:
    with echoed(proxy) as (s, c):
        assert proxy.reset(c.id)
        with pytest.raises(ConnectionResetError):
            s.recv(100)
    wait_for(lambda: echo.ended == ["reset"])
    assert proxy.connections() == []


def test_a_connection_to_a_dead_server_fails_at_once(echo: EchoServer) -> None:
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        dead = free.getsockname()[1]
    with FaultProxy(("127.0.0.1", dead)) as p:
        port = p.add_listener()
        # the reset may even beat connect() itself; either way the attempt fails at once
        with contextlib.suppress(ConnectionResetError), connect(port) as s:
            assert s.recv(100) == b""
        assert p.connections() == []


def test_stop_leaves_nothing_running(echo: EchoServer) -> None:
    p = FaultProxy(("127.0.0.1", echo.port)).start()
    port = p.add_listener()
    s = connect(port)
    s.sendall(b"a")
    recv_exactly(s, 1)
    (c,) = p.connections()
    p.drop(c.id, 60)  # a pending drop timer too
    p.stop()
    assert [t for t in threading.enumerate() if t.name == "fault-proxy"] == []
    with pytest.raises(OSError):
        connect(port).close()
    with contextlib.suppress(OSError):
        assert s.recv(100) == b""
    s.close()
    with pytest.raises(RuntimeError, match="not running"):
        p.connections()


def test_refuse_new_turns_new_connections_away(proxy: FaultProxy) -> None:
    port = proxy.add_listener()
    with connect(port) as old:
        old.sendall(b"a")
        recv_exactly(old, 1)
        proxy.refuse_new = True
        # the reset may even beat connect() itself; either way the attempt fails at once
        with contextlib.suppress(ConnectionResetError), connect(port) as s:
            assert s.recv(100) == b""
        old.sendall(b"b")  # the live connection carries on
        assert recv_exactly(old, 1) == b"b"
        proxy.refuse_new = False
        with connect(port) as s:
            s.sendall(b"c")
            assert recv_exactly(s, 1) == b"c"
