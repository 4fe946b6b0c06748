"""The WebSocket transport (websocket-client): one reader thread per connection that decompresses and
decodes frames in arrival order and hands events to the game thread through a queue. The reader never
touches the cache.

Closing never blocks the caller (the game thread): :meth:`WebSocketTransport.close` returns at once and a
short-lived closer thread does the close handshake (at most ``close_timeout`` seconds), then shuts the
socket down, which also ends a connection attempt stuck in a handshake the server never answers.

Sending never blocks either: every outgoing frame goes through :class:`_Wire`, which writes it at once
when the socket has room and queues the rest for a writer thread (bounded by ``max_send_buffer``).
"""

from __future__ import annotations

import contextlib
import logging
import queue
import select
import socket
import ssl
import threading
import time
import urllib.parse
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import websocket

from ._failures import describe_failure
from ._v1 import V1Adapter
from .protocol import (
    DEFAULT_MAX_MESSAGE_SIZE,
    PROTOCOL_V2,
    PROTOCOL_V3,
    SUPPORTED_PROTOCOLS,
    ClientMessage,
    Compression,
    ServerMessage,
    decode_server_frame,
    encode_client_frame,
    v1,
)
from .sats import DecodeError, SpacetimeError

__all__ = [
    "DEFAULT_MAX_SEND_BUFFER",
    "OFFERED_PROTOCOLS",
    "Transport",
    "TransportClosed",
    "TransportError",
    "TransportEvent",
    "TransportMessage",
    "TransportOpened",
    "WebSocketTransport",
    "build_url",
]

log = logging.getLogger("spacetime_game.sdk.transport")

#: The subprotocols a client offers, in its order of preference (the server picks by its own): v3 and v2
#: for 2.x servers, v1 for 1.x servers.
OFFERED_PROTOCOLS: tuple[str, ...] = (*SUPPORTED_PROTOCOLS, v1.PROTOCOL_V1)
#: How many bytes of outgoing frames may wait for a server that does not read them (16 MiB); one more
#: frame is then a lost connection. Applications change it with ``max_send_buffer``.
DEFAULT_MAX_SEND_BUFFER = 16 * 1024 * 1024

_MSG_DONTWAIT: int = getattr(socket, "MSG_DONTWAIT", 0)  # 0: not on this platform (Windows)


@dataclass(frozen=True, slots=True)
class TransportOpened:
    """The WebSocket handshake is done; ``protocol`` is the subprotocol the server chose (v3, v2 or v1). The
    session starts with the server's first message (InitialConnection), not with this event."""

    protocol: str


@dataclass(frozen=True, slots=True)
class TransportMessage:
    """One decoded server message, in arrival order. ``nbytes`` is the size of the frame that carried it
    (counted once, with the first message of a v3 frame; 0 for the others)."""

    message: ServerMessage
    nbytes: int = 0
    #: On v1, for another client's transaction: the server's full message (who called which reducer with
    #: what arguments), which v2 no longer sends.
    call: v1.TransactionUpdate | None = None


@dataclass(frozen=True, slots=True)
class TransportError:
    """Something went wrong: a failed connection attempt, an undecodable frame, a lost connection. A
    :class:`TransportClosed` follows when the connection is over. A failed connection attempt is a
    :class:`~spacetime_game.sdk.ConnectionFailed` (one readable reason, and whether it is permanent), and
    the close that follows carries its reason."""

    error: BaseException


@dataclass(frozen=True, slots=True)
class TransportClosed:
    """The connection is over (the last event of a transport): ``code`` is the WebSocket close code
    (None when there was none, e.g. a refused connection) and ``reason`` says why ("" when the server
    gave no reason)."""

    code: int | None
    reason: str


#: What a transport reports, in order: :class:`TransportOpened`, then :class:`TransportMessage` s (and
#: :class:`TransportError` s), then one :class:`TransportClosed`. A failed attempt reports an error and
#: the close without opening.
TransportEvent = TransportOpened | TransportMessage | TransportError | TransportClosed


class Transport(Protocol):
    """What :class:`~spacetime_game.sdk.DbConnection` needs from a transport: pass a factory
    ``(url, token) -> Transport`` as ``transport_factory`` to replace the WebSocket (tests use
    :class:`spacetime_game.sdk.testing.ScriptedTransport`, which needs no network).

    ``start`` is called once; the transport reports :data:`TransportEvent` s to the queue from any
    thread, in order, and calls ``wake`` after each. ``send`` and ``close`` are called on the game thread
    and must never block it."""

    def start(self, events: queue.SimpleQueue[TransportEvent], wake: Callable[[], None]) -> None:
        """Connect in the background and report events to ``events`` (calling ``wake`` after each)."""

    def send(self, messages: list[ClientMessage]) -> int:
        """Send messages (one frame on v3) without blocking; returns the bytes sent or queued. Raises
        ConnectionError when not connected (or when the connection is found lost)."""

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


class _Wire:
    """The write side of one connection. Every frame goes through :meth:`write`: the client's messages
    from the game thread, and websocket-client's pings, pongs and close frames from the reader and
    closer threads. Frames reach the socket whole and in the order they were written, and
    :meth:`write` never waits for the network.

    - One thread at a time writes to the socket: the one that set ``_busy`` under ``_lock``. That lock
      is never held during I/O (only to look at the queue), so taking it is no wait worth counting.
    - On an idle connection (no write under way, nothing queued) a frame is written at once by the
      caller, without blocking: ``poll`` with a zero timeout, then ``send(MSG_DONTWAIT)`` (a ``send``
      with flags alone would still wait up to the socket timeout, which the reader thread has set;
      the socket's blocking mode is never changed, since the reader uses it at the same time). What
      the socket does not take is queued.
    - While anything is queued, later frames queue behind it, and a writer thread (started on first
      need, ending with the connection) writes the queue with blocking writes, bounded by the socket
      timeout and woken by a shutdown.
    - TLS (wss): ``SSLSocket.send`` takes no flags and a TLS record cannot be written half without
      blocking or retrying the same buffer, so every frame goes to the writer thread (one thread hop,
      a few microseconds, against a network round trip). The same without ``MSG_DONTWAIT`` or
      ``poll`` (Windows).
    - The queue holds at most ``limit`` bytes of data frames (a single frame of any size is accepted
      when nothing else waits): a data frame beyond that means the server has stopped reading, and the
      connection is treated as lost (``on_lost``, then :class:`ConnectionError` to the caller).
      Control frames (pong, close) are tiny and never refused.
    """

    def __init__(self, limit: int, on_lost: Callable[[BaseException], None]) -> None:
        self.limit = limit
        self._on_lost = on_lost
        self._lock = threading.Lock()  # guards the fields below; never held during I/O
        self._cond = threading.Condition(self._lock)  # the writer thread waits on it
        self._sock: socket.socket | _SerialTLS | None = None
        self._poll: Any = None  # select.poll (not on every platform), only for plain sockets
        # frames (or what is left of the first one) still to write, and whether each is a control frame
        self._queue: deque[tuple[memoryview, bool]] = deque()
        self._head_started = False  # part of the first queued frame is on the wire already
        self._head_busy = False  # the writer thread is writing the first queued frame now
        self._busy = False
        self._closed: str | None = None  # why nothing more is written
        self._thread: threading.Thread | None = None
        #: Bytes waiting in the queue.
        self.pending_bytes = 0
        #: Frames written whole by the thread that sent them, and frames that (partly) waited.
        self.direct_frames = 0
        self.queued_frames = 0

    def attach(self, sock: socket.socket | _SerialTLS) -> None:
        """Use ``sock`` (connected, handshake done) from now on."""
        fast = isinstance(sock, socket.socket) and not isinstance(sock, ssl.SSLSocket)
        fast = fast and _MSG_DONTWAIT != 0 and hasattr(select, "poll")
        with self._lock:
            self._sock = sock
            if fast:
                self._poll = select.poll()
                self._poll.register(sock, select.POLLOUT)

    def write(self, data: bytes, control: bool = False) -> None:
        """Write one whole frame, or queue it; never blocks. Raises ConnectionError when the connection
        is closed or found lost (the frame is then not sent)."""
        with self._lock:
            if self._closed is not None:
                raise ConnectionError(self._closed)
            sock, poll = self._sock, self._poll
            if sock is None:
                raise ConnectionError("not connected")
            if self._busy or self._queue or poll is None:
                lost = self._enqueue(data, control)
                if lost is None:
                    return
            else:
                lost = None
                self._busy = True
        if lost is not None:
            self._on_lost(lost)
            raise lost
        n = 0
        try:
            if poll.poll(0):  # room in the socket's buffer: the send below does not wait
                n = sock.send(data, _MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            n = 0
        except OSError as exc:
            with self._lock:
                self._busy = False
            self._lose(exc)
            raise ConnectionError(f"send failed: {exc}") from exc
        with self._lock:
            self._busy = False
            if self._closed is not None:
                pass  # lost meanwhile: whatever is left is dropped with the connection
            elif n < len(data):  # the rest goes first: frames queued meanwhile came after this one
                self._queue.appendleft((memoryview(data)[n:], control))
                self._head_started = n > 0
                self.pending_bytes += len(data) - n
                self.queued_frames += 1
            else:
                self.direct_frames += 1
            if self._queue:
                self._wake_writer()

    def _enqueue(self, data: bytes, control: bool) -> ConnectionError | None:
        """(Under ``_lock``.) Queue a frame behind the others, or close the wire when the server has
        not read ``limit`` bytes; returns that error."""
        if not control and self.pending_bytes and self.pending_bytes + len(data) > self.limit:
            exc = ConnectionError(
                f"the server has not read the {self.pending_bytes} bytes of messages waiting to be sent, "
                f"and one more message would exceed max_send_buffer ({self.limit} bytes): the connection "
                "is treated as lost and rebuilt (a larger limit can be set with max_send_buffer=... on "
                "the connection)"
            )
            self._close_locked(str(exc))
            return exc
        self._queue.append((memoryview(data), control))
        self.pending_bytes += len(data)
        self.queued_frames += 1
        self._wake_writer()
        return None

    def _wake_writer(self) -> None:
        """(Under ``_lock``.) Start the writer thread, or wake it."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._write_queue, name="spacetime-game-writer", daemon=True
            )
            self._thread.start()
        else:
            self._cond.notify_all()

    def _write_queue(self) -> None:
        """The writer thread: writes the queue, in order, until the connection ends."""
        while True:
            with self._lock:
                while self._closed is None and (self._busy or not self._queue):
                    self._cond.wait()
                if self._closed is not None:
                    return
                chunk = self._queue[0][0]
                sock = self._sock
                self._busy = self._head_busy = True
            assert sock is not None
            try:
                n = sock.send(chunk)  # waits at most the socket timeout; a shutdown ends it at once
            except (TimeoutError, BlockingIOError, InterruptedError, ssl.SSLWantWriteError):
                n = 0  # the same bytes again (TLS requires it)
            except OSError as exc:
                with self._lock:
                    self._busy = self._head_busy = False
                self._lose(exc)
                return
            with self._lock:
                self._busy = self._head_busy = False
                if self._closed is not None:
                    return
                if n:
                    self.pending_bytes -= n
                    if n == len(chunk):
                        self._queue.popleft()
                        self._head_started = False
                    else:
                        self._queue[0] = (chunk[n:], self._queue[0][1])
                        self._head_started = True
                self._cond.notify_all()

    def discard_data(self) -> None:
        """Drop the data frames not yet started (the connection ends: they must never reach the server
        after it is reported lost); a frame half written (or being written) is finished, so that control
        frames (the close frame) stay readable."""
        with self._lock:
            keep = deque(
                item
                for i, item in enumerate(self._queue)
                if item[1] or (i == 0 and (self._head_started or self._head_busy))
            )
            self._queue = keep
            self.pending_bytes = sum(len(m) for m, _ in keep)

    def _lose(self, exc: BaseException) -> None:
        """A write failed: the connection is lost (unless it was closed already)."""
        with self._lock:
            if self._closed is not None:
                return
            self._close_locked(f"send failed: {exc}")
        self._on_lost(exc)

    def _close_locked(self, why: str) -> None:
        self._closed = why
        self._queue.clear()
        self.pending_bytes = 0
        self._cond.notify_all()

    def close(self, why: str = "the connection is closed") -> None:
        """Write nothing more; the writer thread ends (a write under way ends with the socket)."""
        with self._lock:
            if self._closed is None:
                self._close_locked(why)

    def join(self, timeout: float | None) -> bool:
        """Wait for the writer thread to end; True if it has (or never started)."""
        with self._lock:
            t = self._thread
        if t is None or t is threading.current_thread():
            return True
        t.join(timeout)
        return not t.is_alive()


class WebSocketTransport:
    """The real transport: websocket-client with our own reader thread. It answers pings, sends its own
    pings when the line is quiet, and reports a dead peer (no bytes for ``ping_interval + ping_timeout``).

    ``max_message_size`` bounds each server message after decompression (see
    :func:`~spacetime_game.sdk.protocol.decompress`); a larger one is reported as a :class:`TransportError`
    (a :class:`DecodeError` naming the limit) and closes the connection with 1011. ``close_timeout`` is
    how long a close handshake may take (in the background) before the socket is shut down anyway.

    :meth:`send` never blocks: a frame the socket cannot take at once waits in a queue that a writer
    thread writes. ``max_send_buffer`` bounds that queue in bytes: when a message would go beyond it
    (the server has stopped reading), the connection is treated as lost (a :class:`TransportError`
    with a ConnectionError naming the limit, then :class:`TransportClosed`) and :meth:`send` raises ConnectionError.
    """

    def __init__(
        self,
        url: str,
        token: str | None,
        *,
        protocols: tuple[str, ...] = OFFERED_PROTOCOLS,
        ping_interval: float = 15.0,
        ping_timeout: float = 15.0,
        connect_timeout: float = 10.0,
        close_timeout: float = 1.0,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        max_send_buffer: int = DEFAULT_MAX_SEND_BUFFER,
    ) -> None:
        if max_message_size < 1:
            raise ValueError(f"max_message_size must be a positive number of bytes, got {max_message_size}")
        if max_send_buffer < 1:
            raise ValueError(f"max_send_buffer must be a positive number of bytes, got {max_send_buffer}")
        self.url = url
        self.token = token
        self.protocols = protocols
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.connect_timeout = connect_timeout
        self.close_timeout = close_timeout
        self.max_message_size = max_message_size
        self.max_send_buffer = max_send_buffer
        self.protocol: str = PROTOCOL_V2
        self._v1: V1Adapter | None = None  # the translation, when the server chose v1
        # the socket from the moment it starts connecting (so that close() can cut a stuck handshake)
        self._ws: websocket.WebSocket | None = None
        self._thread: threading.Thread | None = None
        self._closer: threading.Thread | None = None
        self._stop = threading.Event()
        self._close_deadline = float("inf")
        self._lock = threading.Lock()
        # every outgoing frame goes through the wire; a send that finds the connection lost stores why
        self._wire = _Wire(max_send_buffer, self._wire_lost)
        self._send_error: BaseException | None = None

    def start(self, events: queue.SimpleQueue[TransportEvent], wake: Callable[[], None]) -> None:
        """Connect on a reader thread, which reports every event to ``events`` in order (calling
        ``wake`` after each)."""
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._run, args=(events, wake), name="spacetime-game-reader", daemon=True
        )
        self._thread.start()

    def _run(self, events: queue.SimpleQueue[TransportEvent], wake: Callable[[], None]) -> None:
        def put(ev: TransportEvent) -> None:
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
        except Exception as exc:  # refused, 404, 401, DNS, closed while connecting...: report and end
            # one readable reason, and whether to retry (never websocket-client's text with headers)
            failure = describe_failure(exc, self.url, self.connect_timeout)
            self._wire.close()
            put(TransportError(failure))
            put(TransportClosed(None, failure.reason))
            return
        sock: Any = getattr(ws, "sock", None)
        if isinstance(sock, ssl.SSLSocket):  # from now on read and written by two threads, one at a time
            sock = ws.sock = _SerialTLS(sock)  # type: ignore[assignment]
        if isinstance(sock, (socket.socket, _SerialTLS)):
            self._wire.attach(sock)
        with self._lock:
            self._ws = ws
            stopping = self._stop.is_set()
        if stopping:  # close() came while connecting
            with contextlib.suppress(Exception):
                ws.send_close()
            self._wire.close()
            with contextlib.suppress(Exception):
                ws.shutdown()  # type: ignore[no-untyped-call]
            return
        proto = ws.getsubprotocol()
        self.protocol = proto if proto in (PROTOCOL_V2, PROTOCOL_V3, v1.PROTOCOL_V1) else PROTOCOL_V2
        if self.protocol == v1.PROTOCOL_V1:
            self._v1 = V1Adapter(self.max_message_size)
        put(TransportOpened(self.protocol))
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
                    self._wire.discard_data()  # the server has closed: only our close frame goes out
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
                        if self._v1 is not None:
                            got, call = self._v1.incoming(v1.decode_server_frame(data, self.max_message_size))
                            if got is not None:
                                put(TransportMessage(got, nbytes, call))
                            continue
                        for msg in decode_server_frame(data, self.protocol, self.max_message_size):
                            put(TransportMessage(msg, nbytes))
                            nbytes = 0  # a v3 frame's bytes count once, with its first message
                    except (DecodeError, SpacetimeError) as exc:
                        # without its traceback: the frames it holds would keep the frame's bytes (up to
                        # max_message_size) alive for as long as the application keeps the error
                        put(TransportError(exc.with_traceback(None)))
                        code, reason = 1011, "undecodable frame"
                        goodbye = (1011, b"undecodable frame")
                        break
                elif opcode == websocket.ABNF.OPCODE_TEXT:
                    put(TransportError(DecodeError("frame", 0, "the server sent a text frame")))
                # (websocket-client has answered a ping already: one pong per ping)
        except (websocket.WebSocketException, OSError) as exc:
            if not self._stop.is_set():
                with self._lock:
                    lost = self._send_error or exc  # a send that found the connection lost says why
                put(TransportError(lost))
                reason = str(lost)
        finally:
            # messages not yet written never reach the server once the connection is reported lost (the
            # client reports their calls as disconnected)
            self._wire.discard_data()
            # the client reconnects while this thread says goodbye (at most close_timeout seconds)
            put(TransportClosed(code, reason))
            if goodbye is not None:
                with contextlib.suppress(Exception):
                    ws.close(status=goodbye[0], reason=goodbye[1], timeout=self.close_timeout)
            self._wire.close()
            _shut(ws)  # (wakes the writer thread, if it waits on a full socket)
            with contextlib.suppress(Exception):
                ws.shutdown()  # type: ignore[no-untyped-call]

    def _wire_lost(self, exc: BaseException) -> None:
        """A send found the connection lost (the server stopped reading, or a write failed): the reader
        reports ``exc`` and the close, once the socket is shut down here."""
        with self._lock:
            if self._send_error is None:
                self._send_error = exc
            ws = self._ws
        if ws is not None:
            _shut(ws)

    def _socket_class(self) -> type[websocket.WebSocket]:
        """websocket-client's socket, made known to :meth:`close` before it connects (so that a close can
        cut a handshake the server never answers), sending at most one close frame, and writing every
        frame (pings, pongs and close frames too) through the transport's :class:`_Wire`."""
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

            def send_frame(self, frame: websocket.ABNF) -> int:
                # websocket-client's framing (masked, as a client must), our non-blocking ordered write
                if self.get_mask_key:
                    frame.get_mask_key = self.get_mask_key
                data = frame.format()
                transport._wire.write(data, control=frame.opcode >= websocket.ABNF.OPCODE_CLOSE)
                return len(data)

        return _Socket

    def send(self, messages: list[ClientMessage]) -> int:
        """Encode ``messages`` (one frame on v3, one frame each on v2) and send or queue them without
        blocking; returns the bytes handed over. Raises ConnectionError when not connected, or when the
        send buffer is full (the connection is then reported lost)."""
        ws = self._ws
        if ws is None or not ws.connected or self._stop.is_set():
            raise ConnectionError("not connected")
        if self._v1 is not None:
            frames = self._v1.encode(messages)
        elif self.protocol == PROTOCOL_V3:
            frames = [encode_client_frame(messages, PROTOCOL_V3)]
        else:
            frames = [encode_client_frame(m, PROTOCOL_V2) for m in messages]
        # each frame is written at once or queued (see _Wire), never waited for; a lost connection
        # (a failed write, or a server that has not read max_send_buffer bytes) raises ConnectionError
        # here, and the reader reports it
        try:
            for f in frames:
                ws.send_binary(f)
        except websocket.WebSocketException as exc:
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
        return self._wire.join(None if deadline is None else max(0.0, deadline - time.monotonic()))


def _shut(ws: Any) -> None:
    """Shut the socket under ``ws`` down (both ways), which wakes a thread blocked reading it; the
    reader closes it."""
    sock = getattr(ws, "sock", None)
    if isinstance(sock, (socket.socket, _SerialTLS)):
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


class _SerialTLS:
    """A TLS socket shared by the reader thread and the writer thread, one call at a time.

    OpenSSL forbids using one connection from two threads at once, and a read and a write that overlap
    on one ``ssl.SSLSocket`` can break the connection (seen under load as a spurious end of stream or a
    bad file descriptor). Here the socket is non-blocking and every TLS call runs under one lock, which is
    never held while waiting: a call that needs the network waits (``select``) outside the lock, then tries
    again, until the timeout set with :meth:`settimeout` (a :class:`TimeoutError`, as a blocking socket's
    would be). A write that had to wait is tried again with the same bytes, as TLS requires. Everything
    else (``fileno``, ``setsockopt``, ...) goes to the socket itself.
    """

    def __init__(self, sock: ssl.SSLSocket) -> None:
        self._sock = sock
        self._timeout: float | None = sock.gettimeout()
        self._lock = threading.Lock()
        sock.setblocking(False)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)

    def gettimeout(self) -> float | None:
        return self._timeout

    def settimeout(self, timeout: float | None) -> None:
        self._timeout = timeout

    def _call(self, op: Callable[[], Any]) -> Any:
        deadline = None if self._timeout is None else time.monotonic() + self._timeout
        while True:
            with self._lock:
                try:
                    return op()
                except ssl.SSLWantReadError:
                    writable = False
                except ssl.SSLWantWriteError:
                    writable = True
            wait = None if deadline is None else deadline - time.monotonic()
            if wait is not None and wait <= 0:
                raise TimeoutError("timed out")
            _wait(self._sock, bool(writable), wait)

    def recv(self, size: int) -> bytes:
        data: bytes = self._call(lambda: self._sock.recv(size))
        return data

    def send(self, data: Any, flags: int = 0) -> int:
        n: int = self._call(lambda: self._sock.send(data, flags))
        return n

    def sendall(self, data: Any) -> None:
        view = memoryview(data)
        while view:
            view = view[self.send(view) :]

    def pending(self) -> int:
        with self._lock:
            return self._sock.pending()

    def shutdown(self, how: int) -> None:
        self._sock.shutdown(how)  # (not a TLS call: it wakes a thread waiting in select)

    def close(self) -> None:
        self._sock.close()


def _wait(sock: socket.socket, write: bool, timeout: float | None) -> None:
    """Wait until ``sock`` can be read (or written), at most ``timeout`` seconds (``poll``: no limit on
    descriptor numbers; ``select`` where there is no ``poll``)."""
    if sock.fileno() < 0:
        raise OSError("the socket is closed")
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(sock, select.POLLOUT if write else select.POLLIN)
        poller.poll(None if timeout is None else max(0, int(timeout * 1000) + 1))
    else:
        select.select([] if write else [sock], [sock] if write else [], [], timeout)
