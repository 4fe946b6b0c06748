"""The WebSocket transport (websocket-client): one reader thread per connection that decompresses and
decodes frames in arrival order and hands events to the game thread through a queue. The reader never
touches the cache.

Closing never blocks the caller (the game thread): :meth:`WebSocketTransport.close` returns at once and a
short-lived closer thread does the close handshake (at most ``close_timeout`` seconds), then shuts the
socket down, which also ends a connection attempt stuck in a handshake the server never answers.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import socket
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import websocket

from .protocol import (
    DEFAULT_MAX_MESSAGE_SIZE,
    PROTOCOL_V2,
    PROTOCOL_V3,
    SUPPORTED_PROTOCOLS,
    ClientMessage,
    Compression,
    decode_server_frame,
    encode_client_frame,
)
from .sats import DecodeError, SpacetimeError

__all__ = ["Event", "EventKind", "Transport", "WebSocketTransport", "build_url"]

log = logging.getLogger("spacetime_game.sdk.transport")


#: What an :class:`Event` reports.
EventKind = Literal["open", "message", "close", "error"]


@dataclass(frozen=True, slots=True)
class Event:
    """Something that happened on the connection, in order: ``kind`` is ``open`` (data: the protocol),
    ``message`` (a ServerMessage), ``close`` (data: (code, reason)) or ``error`` (data: the exception)."""

    kind: EventKind
    data: Any
    nbytes: int = 0


class Transport(Protocol):
    """What the client needs from a transport (tests use an in-memory one)."""

    def start(self, events: queue.SimpleQueue[Event], wake: Callable[[], None]) -> None:
        """Connect in the background and report :class:`Event` s to ``events`` (calling ``wake`` after each)."""

    def send(self, messages: list[ClientMessage]) -> int:
        """Send messages (one frame on v3); returns the bytes sent."""

    def close(self) -> None:
        """Close the connection and stop the reader thread, without blocking: once it returns no more
        events are reported; the thread ends in the background."""


def build_url(
    host: str, database: str, ssl_enabled: bool, compression: Compression, extra: dict[str, str]
) -> str:
    """``host`` may be ``localhost:3000``, ``http(s)://...`` or ``ws(s)://...``; the database path is
    appended to any path already there."""
    h = host.strip()
    if "://" not in h:
        h = ("wss://" if ssl_enabled else "ws://") + h
    parts = urllib.parse.urlsplit(h)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme.lower(), parts.scheme.lower())
    if ssl_enabled:
        scheme = "wss"
    if scheme not in ("ws", "wss"):
        raise ValueError(f"unsupported URL scheme {parts.scheme!r} in host {host!r}")
    if not parts.netloc:
        raise ValueError(f"no host in {host!r}")
    base = parts.path.rstrip("/")
    path = f"{base}/v1/database/{urllib.parse.quote(database, safe='')}/subscribe"
    query = {"compression": compression.query_value, **extra}
    return urllib.parse.urlunsplit((scheme, parts.netloc, path, urllib.parse.urlencode(query), ""))


class WebSocketTransport:
    """The real transport: websocket-client with our own reader thread. It answers pings, sends its own
    pings when the line is quiet, and reports a dead peer (no bytes for ``ping_interval + ping_timeout``).

    ``max_message_size`` bounds each server message after decompression (see
    :func:`~spacetime_game.sdk.protocol.decompress`); a larger one is reported as an ``error`` event
    (a :class:`DecodeError` naming the limit) and closes the connection with 1011. ``close_timeout`` is
    how long a close handshake may take (in the background) before the socket is shut down anyway.
    """

    def __init__(
        self,
        url: str,
        token: str | None,
        *,
        protocols: tuple[str, ...] = SUPPORTED_PROTOCOLS,
        ping_interval: float = 15.0,
        ping_timeout: float = 15.0,
        connect_timeout: float = 10.0,
        close_timeout: float = 1.0,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
    ) -> None:
        if max_message_size < 1:
            raise ValueError(f"max_message_size must be a positive number of bytes, got {max_message_size}")
        self.url = url
        self.token = token
        self.protocols = protocols
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.connect_timeout = connect_timeout
        self.close_timeout = close_timeout
        self.max_message_size = max_message_size
        self.protocol: str = PROTOCOL_V2
        # the socket from the moment it starts connecting (so that close() can cut a stuck handshake)
        self._ws: websocket.WebSocket | None = None
        self._thread: threading.Thread | None = None
        self._closer: threading.Thread | None = None
        self._stop = threading.Event()
        self._close_deadline = float("inf")
        self._lock = threading.Lock()

    def start(self, events: queue.SimpleQueue[Event], wake: Callable[[], None]) -> None:
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._run, args=(events, wake), name="spacetime-game-reader", daemon=True
        )
        self._thread.start()

    def _run(self, events: queue.SimpleQueue[Event], wake: Callable[[], None]) -> None:
        def put(ev: Event) -> None:
            with self._lock:  # close() takes the same lock: after it returns, nothing more is queued
                if self._stop.is_set():
                    return
                events.put(ev)
            wake()

        headers = [f"Authorization: Bearer {self.token}"] if self.token else []
        sslopt = {"cert_reqs": ssl.CERT_REQUIRED} if self.url.startswith("wss:") else None
        try:
            ws = websocket.create_connection(
                self.url,
                timeout=self.connect_timeout,
                class_=self._socket_class(),
                subprotocols=list(self.protocols),
                header=headers,
                sslopt=sslopt,
                skip_utf8_validation=True,
                enable_multithread=True,
            )
        except Exception as exc:  # refused, 401, DNS, closed while connecting...: report and end
            put(Event("error", exc))
            put(Event("close", (None, f"cannot connect: {exc}")))
            return
        with self._lock:
            self._ws = ws
            stopping = self._stop.is_set()
        if stopping:  # close() came while connecting
            with contextlib.suppress(Exception):
                ws.send_close()
            with contextlib.suppress(Exception):
                ws.shutdown()  # type: ignore[no-untyped-call]
            return
        proto = ws.getsubprotocol()
        self.protocol = proto if proto in (PROTOCOL_V2, PROTOCOL_V3) else PROTOCOL_V2
        put(Event("open", self.protocol))
        ws.settimeout(min(1.0, self.ping_interval))
        last_rx = time.monotonic()
        last_ping = 0.0
        code: int | None = None
        reason = ""
        goodbye: tuple[int, bytes] | None = None  # a close handshake this thread starts itself
        try:
            while True:
                try:
                    opcode, frame = ws.recv_data_frame(True)
                except websocket.WebSocketTimeoutException:
                    now = time.monotonic()
                    if self._stop.is_set():
                        if now > self._close_deadline:
                            break  # the server never answered our close frame
                        continue
                    if now - last_rx > self.ping_interval + self.ping_timeout:
                        reason = "no answer from the server (ping timeout)"
                        break
                    if now - last_rx > self.ping_interval and now - last_ping > self.ping_interval:
                        ws.ping()
                        last_ping = now
                    continue
                last_rx = time.monotonic()
                if opcode == websocket.ABNF.OPCODE_CLOSE:  # (websocket-client has answered it)
                    data = frame.data or b""
                    code = int.from_bytes(data[:2], "big") if len(data) >= 2 else None
                    reason = data[2:].decode(errors="replace")
                    with contextlib.suppress(Exception):
                        ws.close()
                    break
                if self._stop.is_set():
                    continue  # closing: read on only for the server's close frame
                if opcode == websocket.ABNF.OPCODE_BINARY or (
                    opcode == websocket.ABNF.OPCODE_CONT and frame.opcode == websocket.ABNF.OPCODE_BINARY
                ):
                    data = frame.data
                    try:
                        nbytes = len(data)
                        for msg in decode_server_frame(data, self.protocol, self.max_message_size):
                            put(Event("message", msg, nbytes))
                            nbytes = 0  # a v3 frame's bytes count once, with its first message
                    except (DecodeError, SpacetimeError) as exc:
                        put(Event("error", exc))
                        code, reason = 1011, "undecodable frame"
                        goodbye = (1011, b"undecodable frame")
                        break
                elif opcode == websocket.ABNF.OPCODE_TEXT:
                    put(Event("error", DecodeError("frame", 0, "the server sent a text frame")))
                elif opcode == websocket.ABNF.OPCODE_PING:
                    ws.pong(frame.data)
        except (websocket.WebSocketException, OSError) as exc:
            if not self._stop.is_set():
                put(Event("error", exc))
                reason = str(exc)
        finally:
            # the client reconnects while this thread says goodbye (at most close_timeout seconds)
            put(Event("close", (code, reason)))
            if goodbye is not None:
                with contextlib.suppress(Exception):
                    ws.close(status=goodbye[0], reason=goodbye[1], timeout=self.close_timeout)
            with contextlib.suppress(Exception):
                ws.shutdown()  # type: ignore[no-untyped-call]

    def _socket_class(self) -> type[websocket.WebSocket]:
        """websocket-client's socket, made known to :meth:`close` before it connects (so that a close can
        cut a handshake the server never answers), and sending at most one close frame."""
        transport = self

        class _Socket(websocket.WebSocket):
            _close_sent = False

            def connect(self, url: str, **options: Any) -> None:
                with transport._lock:
                    transport._ws = self
                    stopping = transport._stop.is_set()
                if stopping:
                    raise ConnectionAbortedError("the connection was closed while connecting")
                super().connect(url, **options)  # type: ignore[no-untyped-call]

            def send_close(self, status: int = websocket.STATUS_NORMAL, reason: str | bytes = b"") -> None:
                with transport._lock:
                    if self._close_sent:
                        return
                    self._close_sent = True
                super().send_close(status, reason)

        return _Socket

    def send(self, messages: list[ClientMessage]) -> int:
        ws = self._ws
        if ws is None or not ws.connected or self._stop.is_set():
            raise ConnectionError("not connected")
        if self.protocol == PROTOCOL_V3:
            frames = [encode_client_frame(messages, PROTOCOL_V3)]
        else:
            frames = [encode_client_frame(m, PROTOCOL_V2) for m in messages]
        try:
            for f in frames:
                ws.send_binary(f)
        except websocket.WebSocketException as exc:
            # a send that timed out may have cut a frame in half: the stream is lost; cut the socket so
            # that the reader reports the lost connection (and the client reconnects)
            _shut(ws)
            raise ConnectionError(f"send failed: {exc}") from exc
        return sum(map(len, frames))

    def close(self) -> None:
        """Stop, without blocking: after this returns no more events are reported. A closer thread sends
        the close frame, gives the server ``close_timeout`` seconds to answer, then shuts the socket down
        (also while connecting), and the reader thread ends."""
        with self._lock:
            if self._stop.is_set():
                return
            self._close_deadline = time.monotonic() + self.close_timeout
            self._stop.set()
        reader = self._thread
        if reader is None or not reader.is_alive():
            return
        self._closer = threading.Thread(
            target=self._close_in_background, args=(reader,), name="spacetime-game-closer", daemon=True
        )
        self._closer.start()

    def _close_in_background(self, reader: threading.Thread) -> None:
        with self._lock:
            ws = self._ws
        if ws is not None and ws.connected:
            # the close handshake: the reader reads the server's close frame and ends
            with contextlib.suppress(Exception):
                ws.send_close()
            reader.join(max(0.0, self._close_deadline - time.monotonic()))
        # then cut the socket until the reader is gone (while connecting, the socket exists only once the
        # TCP (and TLS) connection is up; a handshake the server never answers ends here)
        give_up = time.monotonic() + self.connect_timeout + self.close_timeout
        while reader.is_alive():
            with self._lock:
                ws = self._ws
            if ws is not None:
                _shut(ws)
            reader.join(0.05)
            if time.monotonic() > give_up:
                log.warning("the reader thread did not stop within %.0f s", self.connect_timeout)
                break

    def join(self, timeout: float | None = None) -> bool:
        """Wait until the threads of this transport have ended (after :meth:`close`); True if they have."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for t in (self._closer, self._thread):
            if t is not None and t is not threading.current_thread():
                t.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
                if t.is_alive():
                    return False
        return True


def _shut(ws: Any) -> None:
    """Shut the socket under ``ws`` down (both ways), which wakes a thread blocked reading it; the
    reader closes it."""
    sock = getattr(ws, "sock", None)
    if isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
