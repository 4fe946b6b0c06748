"""A fault-injecting TCP proxy on loopback, for tests: clients connect to the proxy, the proxy connects
each of them to the real server, and the test decides, per connection, what the network does.

Faults (each on one live connection, found with :meth:`FaultProxy.connections`):

- ``set_delay(cid, latency, jitter)``: every chunk is held ``latency`` plus a random ``0..jitter``
  seconds before it is forwarded; order is kept (a chunk never overtakes the one before it).
- ``drop(cid, seconds)``: nothing is forwarded either way for ``seconds`` (the proxy stops reading
  both sockets, so the senders' buffers fill up as in a network partition; no byte is lost). Then the
  connection carries on, or - ``then="cut"`` / ``then="reset"`` - ends as a partition that lasted too
  long would. ``resume(cid)`` ends a drop early.
- ``cut(cid)``: both sides are closed cleanly (FIN), with no WebSocket close frame.
- ``reset(cid)``: both sides are reset (RST: ``SO_LINGER`` 0, then close).

``heal()`` takes every delay and drop away. ``refuse_new`` makes the proxy close new connections at
once. Connections arrive on named listeners (``add_listener``), so a test can give each client its own
port and know whose connection is whose.

The proxy runs an asyncio loop in its own thread; every control method is thread-safe and returns once
the loop has done it. ``stop()`` (or leaving the ``with`` block) closes every socket, ends every task and
joins the thread: nothing keeps running.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

T = TypeVar("T")

__all__ = ["ConnInfo", "FaultProxy"]

_CHUNK = 65536


@dataclass(frozen=True)
class ConnInfo:
    """A snapshot of one proxied connection."""

    id: int
    listener: str
    client_port: int  # the client's own (ephemeral) port, as the proxy sees it
    opened_at: float  # time.monotonic()
    bytes_up: int  # client -> server
    bytes_down: int  # server -> client
    latency: float
    jitter: float
    dropped: bool


class _Conn:
    """One client connection and its upstream, with two pumps (one per direction)."""

    def __init__(self, cid: int, listener: str, client: Any, rng: random.Random) -> None:
        self.id = cid
        self.listener = listener
        self.client_reader, self.client_writer = client
        peer = self.client_writer.get_extra_info("peername")
        self.client_port = int(peer[1]) if peer else 0
        self.server_reader: asyncio.StreamReader | None = None
        self.server_writer: asyncio.StreamWriter | None = None
        self.opened_at = time.monotonic()
        self.bytes = {"up": 0, "down": 0}
        self.latency = 0.0
        self.jitter = 0.0
        self.flowing = asyncio.Event()
        self.flowing.set()
        self.rng = rng
        self.tasks: list[asyncio.Task[None]] = []
        self.drop_task: asyncio.Task[None] | None = None
        self.closed = False

    def info(self) -> ConnInfo:
        return ConnInfo(
            self.id,
            self.listener,
            self.client_port,
            self.opened_at,
            self.bytes["up"],
            self.bytes["down"],
            self.latency,
            self.jitter,
            not self.flowing.is_set(),
        )

    def writers(self) -> list[asyncio.StreamWriter]:
        return [w for w in (self.client_writer, self.server_writer) if w is not None]


class FaultProxy:
    """A TCP proxy from ``127.0.0.1:<listener port>`` to ``upstream`` (``(host, port)``)."""

    def __init__(self, upstream: tuple[str, int], *, seed: int = 0) -> None:
        self.upstream = upstream
        self.refuse_new = False
        self._rng = random.Random(seed)
        self._ids = itertools.count(1)
        self._conns: dict[int, _Conn] = {}
        self._listeners: dict[str, asyncio.Server] = {}
        self._ports: dict[str, int] = {}
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="fault-proxy", daemon=True)
        self._started = False
        #: Every connection ever accepted (how many), per listener.
        self.accepted: dict[str, int] = {}

    # ----- life cycle ------------------------------------------------------------------------------
    def start(self) -> FaultProxy:
        self._thread.start()
        self._started = True
        return self

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()

    def stop(self) -> None:
        """Close every listener and connection, end every task, stop the loop and join its thread."""
        if not self._started:
            self._loop.close()
            return
        if self._thread.is_alive():
            with contextlib.suppress(Exception):
                self._call(self._shutdown(), timeout=10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        if not self._thread.is_alive():
            self._loop.close()
        self._started = False

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def _shutdown(self) -> None:
        for server in self._listeners.values():
            server.close()
        for conn in list(self._conns.values()):
            self._close(conn, "abort")
        tasks = [t for c in self._conns.values() for t in c.tasks] + [
            t for t in asyncio.all_tasks() if t is not asyncio.current_task()
        ]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for server in self._listeners.values():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 2)
        self._listeners.clear()
        self._conns.clear()

    def _call(self, coro: Coroutine[Any, Any, T], timeout: float = 10.0) -> T:
        if not self._thread.is_alive():
            coro.close()
            raise RuntimeError("the proxy is not running (call start() first)")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def _do(self, fn: Callable[[], T]) -> T:
        async def run() -> T:
            return fn()

        return self._call(run())

    # ----- listeners ------------------------------------------------------------------------------------
    def add_listener(self, name: str = "default") -> int:
        """Listen on a new loopback port for connections tagged ``name``; returns the port."""

        async def listen() -> int:
            if name in self._listeners:
                raise ValueError(f"a listener {name!r} exists already")
            server = await asyncio.start_server(
                lambda r, w: self._accept(name, r, w), "127.0.0.1", 0, reuse_address=True
            )
            self._listeners[name] = server
            port = int(server.sockets[0].getsockname()[1])
            self._ports[name] = port
            return port

        return self._call(listen())

    def port(self, name: str = "default") -> int:
        return self._ports[name]

    async def _accept(self, name: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted[name] = self.accepted.get(name, 0) + 1
        conn = _Conn(next(self._ids), name, (reader, writer), random.Random(self._rng.random()))
        if self.refuse_new:
            self._close(conn, "reset")
            return
        try:
            sr, sw = await asyncio.wait_for(asyncio.open_connection(*self.upstream), 5)
        except (OSError, TimeoutError):
            self._close(conn, "reset")  # the server is down: the client sees its attempt fail
            return
        if self.refuse_new:
            sw.transport.abort()
            self._close(conn, "reset")
            return
        conn.server_reader, conn.server_writer = sr, sw
        self._conns[conn.id] = conn
        for direction, src, dst in (("up", reader, sw), ("down", sr, writer)):
            q: deque[tuple[float, bytes | None]] = deque()
            ready = asyncio.Event()
            conn.tasks.append(asyncio.create_task(self._read(conn, direction, src, q, ready)))
            conn.tasks.append(asyncio.create_task(self._write(conn, dst, q, ready)))

    async def _read(
        self,
        conn: _Conn,
        direction: str,
        src: asyncio.StreamReader,
        q: deque[tuple[float, bytes | None]],
        ready: asyncio.Event,
    ) -> None:
        last_due = 0.0
        with contextlib.suppress(asyncio.CancelledError):
            while True:
                await conn.flowing.wait()
                try:
                    data = await src.read(_CHUNK)
                except (ConnectionError, OSError):
                    data = b""
                await conn.flowing.wait()  # read during a drop: hold it until the drop ends
                now = time.monotonic()
                delay = conn.latency + (conn.rng.random() * conn.jitter if conn.jitter else 0.0)
                last_due = max(now + delay, last_due)
                conn.bytes[direction] += len(data)
                q.append((last_due, data or None))
                ready.set()
                if not data:
                    return

    async def _write(
        self,
        conn: _Conn,
        dst: asyncio.StreamWriter,
        q: deque[tuple[float, bytes | None]],
        ready: asyncio.Event,
    ) -> None:
        with contextlib.suppress(asyncio.CancelledError):
            while True:
                while not q:
                    ready.clear()
                    await ready.wait()
                due, data = q[0]
                wait = due - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                await conn.flowing.wait()
                q.popleft()
                if data is None:  # the source ended: end the whole connection (both ways)
                    self._close(conn, "cut")
                    return
                try:
                    dst.write(data)
                    await dst.drain()
                except (ConnectionError, OSError, RuntimeError):
                    self._close(conn, "abort")
                    return

    def _close(self, conn: _Conn, how: Literal["cut", "reset", "abort"]) -> None:
        """End ``conn``: ``cut`` = FIN both ways (after what is buffered), ``reset`` = RST both ways,
        ``abort`` = drop the sockets at once."""
        if conn.closed:
            return
        conn.closed = True
        self._conns.pop(conn.id, None)
        for w in conn.writers():
            if how == "reset":
                sock = w.get_extra_info("socket")
                if sock is not None:
                    with contextlib.suppress(OSError):
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                w.transport.abort()
            elif how == "abort":
                w.transport.abort()
            else:
                with contextlib.suppress(Exception):
                    if w.can_write_eof():
                        w.write_eof()
                w.close()
        if conn.drop_task is not None:
            conn.drop_task.cancel()
        me = asyncio.current_task()
        for t in conn.tasks:
            if t is not me:
                t.cancel()

    # ----- inspection -----------------------------------------------------------------------------------
    def connections(self, listener: str | None = None) -> list[ConnInfo]:
        """The live connections (optionally only those of one listener), oldest first."""
        return self._do(
            lambda: [c.info() for c in self._conns.values() if listener is None or c.listener == listener]
        )

    # ----- faults -----------------------------------------------------------------------------------------
    def set_delay(self, cid: int, latency: float, jitter: float = 0.0) -> bool:
        """Hold each chunk of connection ``cid`` for ``latency + uniform(0, jitter)`` seconds (order kept).
        False if the connection is gone."""
        if latency < 0 or jitter < 0:
            raise ValueError("latency and jitter must be >= 0")

        def do() -> bool:
            c = self._conns.get(cid)
            if c is None:
                return False
            c.latency, c.jitter = latency, jitter
            return True

        return self._do(do)

    def drop(self, cid: int, seconds: float, then: Literal["resume", "cut", "reset"] = "resume") -> bool:
        """Forward nothing on ``cid`` for ``seconds``, then resume (or cut, or reset). False if gone."""

        def do() -> bool:
            c = self._conns.get(cid)
            if c is None:
                return False
            c.flowing.clear()
            if c.drop_task is not None:
                c.drop_task.cancel()
            c.drop_task = asyncio.get_running_loop().create_task(self._end_drop(c, seconds, then))
            return True

        return self._do(do)

    async def _end_drop(self, c: _Conn, seconds: float, then: str) -> None:
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(seconds)
            c.drop_task = None
            if then == "resume":
                c.flowing.set()
            else:
                self._close(c, "cut" if then == "cut" else "reset")

    def resume(self, cid: int) -> bool:
        """End a drop on ``cid`` now. False if the connection is gone."""

        def do() -> bool:
            c = self._conns.get(cid)
            if c is None:
                return False
            if c.drop_task is not None:
                c.drop_task.cancel()
                c.drop_task = None
            c.flowing.set()
            return True

        return self._do(do)

    def cut(self, cid: int) -> bool:
        """Close both sides of ``cid`` cleanly (FIN). False if the connection is gone."""
        return self._end(cid, "cut")

    def reset(self, cid: int) -> bool:
        """Reset both sides of ``cid`` (RST). False if the connection is gone."""
        return self._end(cid, "reset")

    def _end(self, cid: int, how: Literal["cut", "reset"]) -> bool:
        def do() -> bool:
            c = self._conns.get(cid)
            if c is None:
                return False
            self._close(c, how)
            return True

        return self._do(do)

    def reset_all(self) -> int:
        """Reset every live connection; returns how many."""

        def do() -> int:
            conns = list(self._conns.values())
            for c in conns:
                self._close(c, "reset")
            return len(conns)

        return self._do(do)

    def heal(self) -> None:
        """No more delays or drops on any live connection (new ones start clean anyway)."""

        def do() -> None:
            for c in self._conns.values():
                c.latency = c.jitter = 0.0
                if c.drop_task is not None:
                    c.drop_task.cancel()
                    c.drop_task = None
                c.flowing.set()

        self._do(do)
