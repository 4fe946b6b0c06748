"""Stopping the server is prompt even while HTTP requests keep arriving, and leaves no connection open."""

from __future__ import annotations

import socket
import threading
import time

from .conftest import ServerThread

REQUEST = b"GET /v1/ping HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"


def _hammer(port: int, stop: threading.Event, slowest: list[float]) -> None:
    """Send ping requests one after another until the server is gone, noting the slowest answer."""
    while not stop.is_set():
        t0 = time.monotonic()
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
                s.sendall(REQUEST)
                while s.recv(4096):
                    pass
        except OSError:
            return  # refused or reset: the server has stopped listening
        slowest.append(time.monotonic() - t0)


def test_stop_is_prompt_while_requests_arrive() -> None:
    # aiohttp's graceful shutdown can miss a connection accepted just before it stops listening: the
    # connection's handler then waits for a request that it will never read, and the shutdown waits for
    # the handler (a minute by default), so `serve` hung on exit. Several rounds: the race is narrow.
    for _ in range(6):
        server = ServerThread()
        stop = threading.Event()
        slowest: list[float] = []
        threads = [
            threading.Thread(target=_hammer, args=(server.port, stop, slowest), daemon=True) for _ in range(6)
        ]
        for t in threads:
            t.start()
        time.sleep(0.3)
        t0 = time.monotonic()
        server.stop()
        took = time.monotonic() - t0
        stop.set()
        for t in threads:
            t.join(max(0.1, t0 + 10 - time.monotonic()))
        assert took < 8, f"stopping the server took {took:.1f} s"
        # and no connection is left open and unanswered after the stop
        assert not any(t.is_alive() for t in threads), "a client still waits for an answer"
