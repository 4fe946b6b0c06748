"""The WebSocket transport (websocket-client): one reader thread per connection that decompresses and
decodes frames in arrival order and hands events to the game thread through a queue. The reader never
touches the cache.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import websocket

from .protocol import (
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
        """Close the connection and stop the reader thread."""


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
    pings when the line is quiet, and reports a dead peer (no bytes for ``ping_interval + ping_timeout``)."""

    def __init__(
        self,
        url: str,
        token: str | None,
        *,
        protocols: tuple[str, ...] = SUPPORTED_PROTOCOLS,
        ping_interval: float = 15.0,
        ping_timeout: float = 15.0,
        connect_timeout: float = 10.0,
    ) -> None:
        self.url = url
        self.token = token
        self.protocols = protocols
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.connect_timeout = connect_timeout
        self.protocol: str = PROTOCOL_V2
        self._ws: websocket.WebSocket | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()

    def start(self, events: queue.SimpleQueue[Event], wake: Callable[[], None]) -> None:
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._run, args=(events, wake), name="spacetime-game-reader", daemon=True
        )
        self._thread.start()

    def _run(self, events: queue.SimpleQueue[Event], wake: Callable[[], None]) -> None:
        def put(ev: Event) -> None:
            events.put(ev)
            wake()

        headers = [f"Authorization: Bearer {self.token}"] if self.token else []
        sslopt = {"cert_reqs": ssl.CERT_REQUIRED} if self.url.startswith("wss:") else None
        try:
            ws = websocket.create_connection(
                self.url,
                timeout=self.connect_timeout,
                subprotocols=list(self.protocols),
                header=headers,
                sslopt=sslopt,
                skip_utf8_validation=True,
                enable_multithread=True,
            )
        except Exception as exc:  # refused, 401, DNS...: report and end
            put(Event("error", exc))
            put(Event("close", (None, f"cannot connect: {exc}")))
            return
        with self._lock:
            self._ws = ws
        if self._stop.is_set():
            ws.close()
            return
        proto = ws.getsubprotocol()
        self.protocol = proto if proto in (PROTOCOL_V2, PROTOCOL_V3) else PROTOCOL_V2
        put(Event("open", self.protocol))
        ws.settimeout(min(1.0, self.ping_interval))
        last_rx = time.monotonic()
        last_ping = 0.0
        code: int | None = None
        reason = ""
        try:
            while not self._stop.is_set():
                try:
                    opcode, frame = ws.recv_data_frame(True)
                except websocket.WebSocketTimeoutException:
                    now = time.monotonic()
                    if now - last_rx > self.ping_interval + self.ping_timeout:
                        reason = "no answer from the server (ping timeout)"
                        break
                    if now - last_rx > self.ping_interval and now - last_ping > self.ping_interval:
                        ws.ping()
                        last_ping = now
                    continue
                last_rx = time.monotonic()
                if opcode == websocket.ABNF.OPCODE_BINARY or (
                    opcode == websocket.ABNF.OPCODE_CONT and frame.opcode == websocket.ABNF.OPCODE_BINARY
                ):
                    data = frame.data
                    try:
                        nbytes = len(data)
                        for msg in decode_server_frame(data, self.protocol):
                            put(Event("message", msg, nbytes))
                            nbytes = 0  # a v3 frame's bytes count once, with its first message
                    except (DecodeError, SpacetimeError) as exc:
                        put(Event("error", exc))
                        code, reason = 1011, "undecodable frame"
                        ws.close(status=1011, reason=b"undecodable frame")
                        break
                elif opcode == websocket.ABNF.OPCODE_TEXT:
                    put(Event("error", DecodeError("frame", 0, "the server sent a text frame")))
                elif opcode == websocket.ABNF.OPCODE_PING:
                    ws.pong(frame.data)
                elif opcode == websocket.ABNF.OPCODE_CLOSE:
                    data = frame.data or b""
                    code = int.from_bytes(data[:2], "big") if len(data) >= 2 else None
                    reason = data[2:].decode(errors="replace")
                    with contextlib.suppress(Exception):
                        ws.close()
                    break
        except (websocket.WebSocketException, OSError) as exc:
            if not self._stop.is_set():
                put(Event("error", exc))
                reason = str(exc)
        finally:
            with contextlib.suppress(Exception):
                ws.shutdown()  # type: ignore[no-untyped-call]
        if not self._stop.is_set():
            put(Event("close", (code, reason)))

    def send(self, messages: list[ClientMessage]) -> int:
        ws = self._ws
        if ws is None or not ws.connected:
            raise ConnectionError("not connected")
        if self.protocol == PROTOCOL_V3:
            frames = [encode_client_frame(messages, PROTOCOL_V3)]
        else:
            frames = [encode_client_frame(m, PROTOCOL_V2) for m in messages]
        for f in frames:
            ws.send_binary(f)
        return sum(map(len, frames))

    def close(self) -> None:
        self._stop.set()
        with self._lock:
            ws = self._ws
        if ws is not None:
            with contextlib.suppress(Exception):
                ws.close(timeout=1)
            with contextlib.suppress(Exception):
                ws.shutdown()  # type: ignore[no-untyped-call]
        t = self._thread
        if t is not None and t is not threading.current_thread():
            t.join(5)
