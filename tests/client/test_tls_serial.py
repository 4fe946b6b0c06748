"""The TLS socket shared by the transport's reader and writer threads (``_SerialTLS``): OpenSSL forbids
two threads in one connection at once, so every TLS call runs under one lock and waits for the network
outside it. Checked on a real TLS connection: both directions at full speed at the same time arrive
intact and in order, a read with nothing to read ends at the timeout as a blocking socket's would, and a
shutdown wakes a thread waiting to read."""

from __future__ import annotations

import hashlib
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from spacetime_game.sdk._transport import _SerialTLS

from .test_send_never_blocks import _self_signed

SIZE = 4 << 20  # bytes each way


@pytest.fixture
def tls_pair(tmp_path: Path) -> Iterator[tuple[_SerialTLS, ssl.SSLSocket]]:
    """A client TLS socket wrapped in ``_SerialTLS``, and the server's end (a plain blocking SSLSocket)."""
    cert, key = _self_signed(tmp_path)
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert, key)
    client_ctx = ssl.create_default_context(cafile=str(cert))
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[ssl.SSLSocket] = []

    def accept() -> None:
        raw, _ = listener.accept()
        accepted.append(server_ctx.wrap_socket(raw, server_side=True))

    t = threading.Thread(target=accept)
    t.start()
    raw = socket.create_connection(listener.getsockname(), timeout=5)
    client = client_ctx.wrap_socket(raw, server_hostname="127.0.0.1")
    t.join(5)
    server = accepted[0]
    wrapped = _SerialTLS(client)
    try:
        yield wrapped, server
    finally:
        wrapped.close()
        server.close()
        listener.close()


def _pattern(seed: int) -> bytes:
    out = bytearray()
    block = seed.to_bytes(8, "big")
    while len(out) < SIZE:
        block = hashlib.sha256(block).digest()
        out += block
    return bytes(out[:SIZE])


def _read(sock: socket.socket | _SerialTLS, n: int) -> bytes:
    got = bytearray()
    while len(got) < n:
        try:
            chunk = sock.recv(min(65536, n - len(got)))
        except TimeoutError:
            continue
        if not chunk:
            break
        got += chunk
    return bytes(got)


def test_a_reader_and_a_writer_at_once_both_arrive_intact(tls_pair: tuple[_SerialTLS, ssl.SSLSocket]) -> None:
    client, server = tls_pair
    client.settimeout(0.2)
    up, down = _pattern(1), _pattern(2)
    got: dict[str, bytes] = {}
    errors: list[BaseException] = []

    def run(name: str, fn: object) -> threading.Thread:
        def body() -> None:
            try:
                fn()  # type: ignore[operator]
            except BaseException as exc:
                errors.append(exc)

        t = threading.Thread(target=body, name=name)
        t.start()
        return t

    threads = [
        run("server-reads", lambda: got.__setitem__("up", _read(server, SIZE))),
        run("server-writes", lambda: server.sendall(down)),
        run("client-writes", lambda: _send_in_pieces(client, up)),
        run("client-reads", lambda: got.__setitem__("down", _read(client, SIZE))),
    ]
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert got["up"] == up, "the client's bytes arrived changed or out of order"
    assert got["down"] == down, "the server's bytes arrived changed or out of order"


def _send_in_pieces(sock: _SerialTLS, data: bytes) -> None:
    view = memoryview(data)
    while view:  # pieces of varying size, each retried whole after a timeout (as the writer thread does)
        piece = view[: 1000 + len(view) % 30000]
        try:
            view = view[sock.send(piece) :]
        except TimeoutError:
            continue


def test_a_read_with_nothing_to_read_times_out_as_a_blocking_socket_does(
    tls_pair: tuple[_SerialTLS, ssl.SSLSocket],
) -> None:
    client, _ = tls_pair
    client.settimeout(0.3)
    assert client.gettimeout() == 0.3
    t0 = time.monotonic()
    with pytest.raises(TimeoutError):
        client.recv(100)
    assert 0.25 <= time.monotonic() - t0 < 2.0


def test_a_shutdown_wakes_a_thread_waiting_to_read(tls_pair: tuple[_SerialTLS, ssl.SSLSocket]) -> None:
    client, _ = tls_pair
    client.settimeout(None)
    result: list[object] = []

    def reader() -> None:
        try:
            result.append(client.recv(100))
        except OSError as exc:
            result.append(exc)

    t = threading.Thread(target=reader)
    t.start()
    time.sleep(0.2)
    assert t.is_alive() and not result
    client.shutdown(socket.SHUT_RDWR)
    t.join(5)
    assert not t.is_alive(), "the reader still waits after the shutdown"
    assert result in ([b""],) or isinstance(result[0], OSError)
