"""The network surface of the dev server (aiohttp): the WebSocket protocol and the HTTP API."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import struct
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, assert_never, cast

from aiohttp import WebSocketError, WSCloseCode, WSMsgType, web
from aiohttp import __version__ as aiohttp_version
from aiohttp.http_exceptions import HttpProcessingError

from ..sdk import ConnectionId, DecodeError, EncodeError, Identity
from ..sdk.protocol import (
    PROTOCOL_V2,
    PROTOCOL_V3,
    SUPPORTED_PROTOCOLS,
    ClientMessage,
    Compression,
    ServerMessage,
    Subscribe,
    client_message_codec,
    compress,
    encode_client_message,
    encode_server_message,
    v1,
)
from ..sdk.sats import ProductElement, ProductType, Typespace, from_json, to_untyped_json
from ._auth import AuthError, Claims, TokenAuthority, identity_from_claims
from ._console import ConsoleHub
from ._files import ensure_private_dir, write_atomic
from ._logsafe import server_logger
from ._migrate import ModuleUpdate
from ._module import ModuleDef, load_module
from ._runtime import (
    MAX_QUERIES_PER_CONNECTION,
    MAX_QUERY_SETS_PER_CONNECTION,
    Connection,
    DatabaseRuntime,
    ProtocolViolation,
    RuntimeLimits,
    ServerFailed,
)
from ._sql import DEFAULT_SQL_LIMITS, SqlError, SqlLimits, execute_sql
from ._v1 import LEGACY_QUERY_ID, OversizedV1Subscribe, V1Link, v1_frame_items

__all__ = ["ServerApp"]

log = server_logger("spacetime_game.server")

MAX_MESSAGE_SIZE = 32 * 1024 * 1024
#: The subprotocols served, in the server's order of preference (as a 2.x server: v3, v2, then v1).
SERVED_PROTOCOLS: Final = (*SUPPORTED_PROTOCOLS, v1.PROTOCOL_V1)
_SHORT: Final = {"v1": v1.PROTOCOL_V1, "v2": PROTOCOL_V2, "v3": PROTOCOL_V3}


def served_protocols(names: Sequence[str] | None) -> tuple[str, ...]:
    """The subprotocols to serve, in the server's order: every one (None), or those named (``v1``, ``v2``,
    ``v3`` or their full names). ValueError names an unknown one."""
    if names is None:
        return SERVED_PROTOCOLS
    if isinstance(names, str):
        names = [names]
    wanted = set()
    for name in names:
        full = _SHORT.get(name, name)
        if full not in SERVED_PROTOCOLS:
            raise ValueError(f"unknown protocol {name!r}; expected v1, v2 or v3")
        wanted.add(full)
    if not wanted:
        raise ValueError("serve at least one protocol (v1, v2 or v3)")
    return tuple(p for p in SERVED_PROTOCOLS if p in wanted)


PING_INTERVAL = 15.0
IDLE_TIMEOUT = 30.0
#: Seconds a stop waits for HTTP requests in flight before it cancels them (a committed call whose answer
#: is cancelled is still flushed to disk by the stop).
SHUTDOWN_GRACE = 2.0
#: Default for ``ServerApp(max_queued_bytes=...)``: the encoded messages waiting to be sent to one
#: client; a client whose queue would grow past it is closed (1008, "too slow"). As large as the
#: largest frame the server accepts, so that a client that keeps up can get any reply it can read.
MAX_QUEUED_BYTES = MAX_MESSAGE_SIZE
#: Default ceiling for ``ServerApp(pause_reading_bytes=...)`` (the default is this or a quarter of
#: max_queued_bytes, whichever is smaller).
PAUSE_READING_BYTES = 1024 * 1024
V3_FRAME_LIMIT = 256 * 1024
#: The longest stretch of one client's requests handled before the event loop serves the others.
SLICE_SECONDS: Final = 0.002
#: How long that client then waits. A real pause, not just a turn of the loop: the commit log's
#: writer thread needs the GIL to make the other clients' transactions durable, and a thread that
#: only yields to the loop would keep it (their round trips went from a few ms to about a second).
SLICE_PAUSE_SECONDS: Final = 0.0005
#: A gap between two frames of one client longer than this means its handler waited for input.
_IDLE_GAP_SECONDS: Final = 0.0002
#: How many query strings of a refused Subscribe are skipped between two checks of the slice time.
_SKIP_STEP: Final = 16384


_ID_IN_USE = "connection_id {} is in use by a live connection; leave it out to get a new one"


class WsTransport:
    """Sends server messages on one WebSocket through a queue bounded in bytes; a client that falls
    too far behind is disconnected instead of buffered forever.

    ``queued_bytes`` counts the encoded messages not yet handed to the socket (including the frame
    being written). The request loop pauses a client while it is above ``pause_bytes`` (so a client
    that only floods requests is slowed down, not closed). A message that would take it past
    ``max_queued_bytes`` while the client already has more than ``pause_bytes`` unsent closes the
    connection (1008): a client that keeps its queue short still gets a reply of any size."""

    def __init__(
        self,
        ws: web.WebSocketResponse,
        protocol: str,
        compression: Compression,
        max_queued_bytes: int = MAX_QUEUED_BYTES,
        pause_bytes: int = PAUSE_READING_BYTES,
    ) -> None:
        self.ws = ws
        self.tcp: asyncio.Transport | None = None
        #: The task that closes the socket once :meth:`close` was called (None before).
        self.closer: asyncio.Task[None] | None = None
        self.max_queued_bytes = max_queued_bytes
        self.pause_bytes = pause_bytes
        self.protocol = protocol
        self.compression = compression
        self.queue: deque[bytes] = deque()
        self.queued_bytes = 0
        self.wakeup = asyncio.Event()
        self.progress = asyncio.Event()  # set whenever queued_bytes went down (or the transport closes)
        self.closing: tuple[int, str] | None = None
        self.loop = asyncio.get_running_loop()
        self.last_sent = self.loop.time()  # when a frame was last taken by the socket
        #: The v1 translation of this client (None on v2 and v3).
        self.link: V1Link | None = None
        self.messages_out = 0  # messages handed to the socket (for the dev console)
        self.bytes_out = 0  # their bytes, as sent (compressed)
        self.task = self.loop.create_task(self._writer())

    def send(self, message: ServerMessage | bytes) -> None:
        """Queue a message, or the BSATN of one already encoded (shared by every client it goes to)."""
        if self.closing is not None:
            return
        if self.link is not None and not isinstance(message, bytes):  # v1: (bytes are v1 already)
            translated = self.link.outgoing(message)
            if translated is None:
                return
            payload = v1.server_message_codec.encode(translated)
        else:
            payload = _payload(message)
        if self.queued_bytes > self.pause_bytes and self.queued_bytes + len(payload) > self.max_queued_bytes:
            log.warning(
                "closing a client that does not read fast enough: %d bytes unsent, limit %d",
                self.queued_bytes,
                self.max_queued_bytes,
            )
            self.close(
                WSCloseCode.POLICY_VIOLATION,
                f"too slow: more than {self.max_queued_bytes:,} bytes of messages unread (max_queued_bytes)",
            )
            return
        self.queue.append(payload)
        self.queued_bytes += len(payload)
        self.wakeup.set()

    async def wait_below(self, level: int) -> None:
        """Wait until at most ``level`` bytes are queued, or the transport is closing."""
        while self.queued_bytes > level and self.closing is None:
            self.progress.clear()
            await self.progress.wait()

    def close(self, code: int, reason: str) -> None:
        if self.closing is None:
            self.closing = (code, reason[:120])
            # what was not sent yet never will be: let it go now
            self.queued_bytes -= sum(len(p) for p in self.queue)
            self.queue.clear()
            self.wakeup.set()
            self.progress.set()
            self.closer = asyncio.get_running_loop().create_task(self._close_soon())

    async def _close_soon(self) -> None:
        """Close with the code even if the writer is stuck on a client that does not read: after a
        grace period the TCP connection is aborted."""
        await asyncio.sleep(0)
        with contextlib.suppress(TimeoutError, asyncio.CancelledError, Exception):
            await asyncio.wait_for(asyncio.shield(self.task), 1.0)
        if not self.ws.closed:
            code, reason = self.closing or (WSCloseCode.GOING_AWAY, "")
            try:
                await asyncio.wait_for(self.ws.close(code=code, message=reason.encode()), 1.0)
            except (TimeoutError, Exception):
                transport = self.tcp
                if transport is not None:
                    transport.abort()

    async def _writer(self) -> None:
        try:
            while True:
                await self.wakeup.wait()
                self.wakeup.clear()
                while self.queue and self.closing is None:
                    payload = self.queue.popleft()
                    size = len(payload)
                    if self.protocol == PROTOCOL_V3:  # several messages back to back, up to 256 KiB
                        parts = [payload]
                        while self.queue and size < V3_FRAME_LIMIT:
                            nxt = self.queue.popleft()
                            parts.append(nxt)
                            size += len(nxt)
                        payload = b"".join(parts)
                    try:
                        frame = compress(payload, self.compression)
                        await self.ws.send_bytes(frame)
                        self.last_sent = self.loop.time()
                        self.messages_out += 1
                        self.bytes_out += len(frame)
                    finally:
                        self.queued_bytes = max(self.queued_bytes - size, 0)
                        self.progress.set()
                if self.closing is not None:
                    code, reason = self.closing
                    await self.ws.close(code=code, message=reason.encode())
                    return
        except (ConnectionError, RuntimeError, asyncio.CancelledError):
            return


async def _body_text(request: web.Request) -> str:
    """The request body as text; HTTP 400 if it is not UTF-8."""
    try:
        body = await request.read()
    except web.RequestPayloadError as exc:  # e.g. a Content-Encoding that does not decode
        cause = exc.__cause__
        detail = cause.message if isinstance(cause, HttpProcessingError) else "bad transfer encoding"
        raise web.HTTPBadRequest(text=f"the request body cannot be read: {detail}") from None
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise web.HTTPBadRequest(
            text=f"the request body is not valid UTF-8 (byte {exc.start}: {exc.reason})"
        ) from None


class _HttpLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    """The logger of aiohttp's request handler: a malformed HTTP request is the client's mistake and is
    logged in one line without a traceback; every other error keeps its traceback."""

    def exception(self, msg: object, *args: object, exc_info: Any = True, **kwargs: Any) -> None:
        if isinstance(exc_info, HttpProcessingError | web.RequestPayloadError):
            cause = exc_info if isinstance(exc_info, HttpProcessingError) else exc_info.__cause__
            detail = cause.message if isinstance(cause, HttpProcessingError) else str(exc_info)
            self.logger.info("refused a malformed HTTP request (%s: %.200s)", type(exc_info).__name__, detail)
        elif isinstance(exc_info, ConnectionError):
            self.logger.debug("a client went away during its request (%s)", exc_info)
        else:
            super().exception(msg, *args, exc_info=exc_info, **kwargs)


# ----- RFC 6455 §5.1: a server MUST close the connection upon receiving an unmasked frame -----------------
# aiohttp's frame reader (C and Python) accepts unmasked client frames. _StrictWebSocketResponse puts a small
# frame-header tracker in front of the reader it creates, on its own connection only, with no global change
# to aiohttp; the first unmasked frame ends the connection with 1002 (protocol error).

_UNMASKED = "unmasked client frame (RFC 6455 section 5.1)"


class _FrameMaskCheck:
    """Follows the frame boundaries of a client's byte stream, reading only the headers, and finds the
    first frame whose mask bit is clear."""

    def __init__(self) -> None:
        self._head = bytearray()  # the header of the frame being read, so far
        self._want = 2  # header bytes needed: 2, then 4 or 10 with an extended length
        self._skip = 0  # bytes of the current frame (mask key and payload) still to pass over

    def find_unmasked(self, data: bytes) -> int | None:
        """Feed the next bytes of the stream; the offset in ``data`` where the first unmasked frame starts
        (0 if it started in an earlier chunk), or None if every frame so far is masked."""
        pos, end = 0, len(data)
        while pos < end:
            if self._skip:
                step = min(self._skip, end - pos)
                self._skip -= step
                pos += step
                continue
            if not self._head and end - pos >= 2:  # the common case: a whole short header at hand
                second = data[pos + 1]
                if not second & 0x80:
                    return pos
                length = second & 0x7F
                if length < 126:
                    self._skip = 4 + length
                    pos += 2
                    continue
            take = min(self._want - len(self._head), end - pos)
            self._head += data[pos : pos + take]
            pos += take
            if len(self._head) < self._want:
                return None
            if self._want == 2:
                if not self._head[1] & 0x80:
                    return max(pos - 2, 0)
                length = self._head[1] & 0x7F
                if length >= 126:  # a 16- or 64-bit length follows
                    self._want = 4 if length == 126 else 10
                    continue
            else:
                length = int.from_bytes(self._head[2:], "big")
            self._skip = 4 + length  # the mask key, then the payload
            self._head.clear()
            self._want = 2
        return None


class _MaskedFramesOnly:
    """Stands in front of aiohttp's frame reader: passes the bytes on while every frame is masked; at the
    first unmasked one it passes only the bytes before it and fails the connection with 1002."""

    def __init__(self, reader: Any, queue: Any) -> None:
        self._reader = reader
        self._queue = queue
        self._check = _FrameMaskCheck()
        self._failed = False

    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        if self._failed:
            return True, b""
        bad = self._check.find_unmasked(bytes(data))
        if bad is None:
            result: tuple[bool, bytes] = self._reader.feed_data(data)
            return result
        self._failed = True
        if bad:
            self._reader.feed_data(data[:bad])
        self._queue.set_exception(WebSocketError(WSCloseCode.PROTOCOL_ERROR, _UNMASKED))
        return True, b""  # like the reader's own protocol errors: the handler closes with the code

    def feed_eof(self) -> None:
        self._reader.feed_eof()


class _ParserWrapping:
    """aiohttp's request handler, seen through ``request.protocol`` while a WebSocket is set up: the frame
    reader handed to ``set_parser`` is wrapped first."""

    def __init__(self, handler: Any, wrap: Callable[[Any], Any]) -> None:
        self._handler = handler
        self._wrap = wrap
        self.installed = False

    def set_parser(self, parser: Any, *args: Any, **kwargs: Any) -> None:
        self._handler.set_parser(self._wrap(parser), *args, **kwargs)
        self.installed = True

    def __getattr__(self, name: str) -> Any:
        return getattr(self._handler, name)


class _RequestView:
    """A request whose ``protocol`` is replaced; everything else is the request's own."""

    def __init__(self, request: web.BaseRequest, protocol: _ParserWrapping) -> None:
        self._request = request
        self.protocol = protocol

    def __getattr__(self, name: str) -> Any:
        return getattr(self._request, name)


class _StrictWebSocketResponse(web.WebSocketResponse):
    """A WebSocket that closes with 1002 on the first unmasked client frame."""

    def _post_start(self, request: web.BaseRequest, protocol: str | None, writer: Any) -> None:
        view = _ParserWrapping(request.protocol, lambda reader: _MaskedFramesOnly(reader, self._reader))
        super()._post_start(cast(web.BaseRequest, _RequestView(request, view)), protocol, writer)
        if not view.installed:  # a future aiohttp that installs its reader differently
            log.error("cannot check that client frames are masked with aiohttp %s", aiohttp_version)


def _payload(item: ServerMessage | bytes) -> bytes:
    return item if isinstance(item, bytes) else encode_server_message(item)


#: The subject of the owner's token: the owner's identity is ``identity_from_claims(issuer, OWNER_SUBJECT)``.
OWNER_SUBJECT = "owner"
#: The file in the data folder that holds the owner's token.
OWNER_TOKEN_FILE = "owner.token"


class _Pacer:
    """Lets one client's requests run for at most :data:`SLICE_SECONDS` in a row before it pauses
    for :data:`SLICE_PAUSE_SECONDS`, so that the event loop (and the commit log's thread) serve
    everyone else. Only busy stretches count: a frame that did not arrive right after the previous
    one was handled (the handler waited for it) starts a new stretch, so ordinary clients never
    pause."""

    def __init__(self) -> None:
        self.start = self.end = time.perf_counter()

    def frame_start(self) -> None:
        now = time.perf_counter()
        if now - self.end > _IDLE_GAP_SECONDS:
            self.start = now

    def frame_end(self) -> None:
        self.end = time.perf_counter()

    def reset(self) -> None:
        self.start = time.perf_counter()

    async def tick(self) -> None:
        if time.perf_counter() - self.start >= SLICE_SECONDS:
            await asyncio.sleep(SLICE_PAUSE_SECONDS)
            self.start = time.perf_counter()


# ----- reading client frames a message at a time -------------------------------------------------------
@dataclass(frozen=True)
class _OversizedSubscribe:
    """A Subscribe with more query strings than one connection may hold, left undecoded."""

    request_id: int
    query_set_id: int
    queries: int


def _subscribe_layout() -> tuple[int, struct.Struct]:
    """The tag of Subscribe and the layout of its head (request_id, query_set_id, number of query
    strings), checked against the encoder so that a change of the message is noticed here."""
    data = encode_client_message(Subscribe(7, 9, ("ab",)))
    head = struct.Struct("<III")
    if data[1:] != head.pack(7, 9, 1) + struct.pack("<I", 2) + b"ab":
        raise RuntimeError("the layout of Subscribe changed: update _subscribe_layout")
    return data[0], head


_SUBSCRIBE_TAG, _SUBSCRIBE_HEAD = _subscribe_layout()


def _frame_items(
    data: bytes, protocol: str, max_queries: int
) -> Iterator[ClientMessage | _OversizedSubscribe | None]:
    """The messages of one client frame, decoded one at a time (a v3 frame may hold millions).

    A Subscribe with more than ``max_queries`` query strings is not decoded (that alone could take
    seconds) but reported as :class:`_OversizedSubscribe`; while its strings are skipped, ``None`` is
    yielded now and then so that the caller can let other work run. Raises DecodeError."""
    if protocol == PROTOCOL_V3 and not data:
        raise DecodeError("ClientMessage", 0, "empty frame: a v3 frame holds at least one message")
    off = 0
    index = 0
    while off < len(data) or (index == 0 and protocol == PROTOCOL_V2):
        where = "ClientMessage" if protocol == PROTOCOL_V2 else f"v3 frame message #{index}"
        if data[off : off + 1] == bytes((_SUBSCRIBE_TAG,)) and len(data) >= off + 1 + _SUBSCRIBE_HEAD.size:
            request_id, query_set_id, count = _SUBSCRIBE_HEAD.unpack_from(data, off + 1)
            if count > max_queries:
                yield _OversizedSubscribe(request_id, query_set_id, count)
                off = off + 1 + _SUBSCRIBE_HEAD.size
                for done in range(count):
                    if off + 4 > len(data):
                        raise DecodeError(f"{where}: Subscribe.query_strings[{done}]", off, "truncated")
                    off += 4 + int.from_bytes(data[off : off + 4], "little")
                    if done % _SKIP_STEP == _SKIP_STEP - 1:
                        yield None
                if off > len(data):
                    raise DecodeError(f"{where}: Subscribe.query_strings", len(data), "truncated")
                index += 1
                if protocol == PROTOCOL_V2 and off != len(data):
                    raise DecodeError(where, off, f"{len(data) - off} bytes after the message")
                continue
        try:
            if protocol == PROTOCOL_V2:
                msg = client_message_codec.decode(data)
                off = len(data)
            else:
                msg, off = client_message_codec.decode_from(data, off)
        except DecodeError as exc:
            raise (exc if protocol == PROTOCOL_V2 else exc.within(where)) from None
        index += 1
        yield msg


def _v1_items(
    link: V1Link, data: bytes, max_queries: int
) -> Iterator[ClientMessage | _OversizedSubscribe | None]:
    """:func:`_frame_items` for a v1 frame: its message, carried out as the runtime's messages (``_v1``)."""
    for item in v1_frame_items(data, max_queries, _SKIP_STEP):
        if item is None:
            yield None
            continue
        if isinstance(item, OversizedV1Subscribe):
            qid = LEGACY_QUERY_ID if item.query_id is None else item.query_id
            yield _OversizedSubscribe(item.request_id, qid, item.queries)
            continue
        try:
            messages = link.incoming(item)
        except ValueError as exc:
            raise ProtocolViolation(str(exc)) from None
        yield from messages


class ServerApp:
    """Serves one module as one database over HTTP and WebSocket, in the running event loop (the
    public entry is :class:`~spacetime_game.server.DevServer`, which also runs it on a thread).

    The database has an **owner** (see ``docs/owner.md``): the fixed identity :attr:`owner_identity`
    of this server's issuer (the same after a restart with the same ``data_dir``, whose signing key it
    depends on). :attr:`owner_token` is a token for it, minted when the server is created; with a
    ``data_dir`` it is also written to ``<data_dir>/owner.token`` (mode 0600). Only a request with the
    owner's token reads private tables over ``POST /v1/database/<db>/sql``; everyone else gets the same
    refusal as a subscription, ``table `<name>` is private`` (HTTP 400).

    Limits (keywords; each protects the other clients from the cost of one):

    * ``max_queued_bytes``: encoded messages waiting to be sent to one client (default 32 MiB, the
      largest frame the server accepts). A client that has a backlog (more than
      ``pause_reading_bytes`` unsent) and whose unsent messages would pass it is closed with 1008
      "too slow"; a client with a short queue still gets a single larger message.
    * ``pause_reading_bytes``: while a client has more than this unsent, the server handles no more
      of its requests (and so stops reading its socket: TCP backpressure) until half of it is sent
      (default: 1 MiB or a quarter of ``max_queued_bytes``, whichever is smaller). A client that
      floods requests faster than it reads the answers is slowed down, not closed.
    * ``max_query_bytes`` (4096), ``max_query_terms`` (256), ``max_query_depth`` (64): the size of
      one SQL text, the conditions in one WHERE clause and how deeply they nest; a query over a limit
      gets an error naming it (``SubscriptionError``, ``OneOffQueryResult`` ``Err``, HTTP 400).
    * ``max_query_sets_per_connection`` (256), ``max_queries_per_connection`` (1024): a Subscribe
      over either gets a ``SubscriptionError`` naming the limit; the connection stays open.
    """

    #: The owner of the database: the identity of this server's issuer with the subject ``owner``.
    owner_identity: Identity
    #: A token (no expiry) for :attr:`owner_identity`; a credential, so keep it out of logs.
    owner_token: str

    def __init__(
        self,
        module: ModuleDef | str | Path,
        database: str = "quickstart-chat",
        host: str = "127.0.0.1",
        port: int = 3000,
        data_dir: str | Path | None = None,
        *,
        ping_interval: float = PING_INTERVAL,
        idle_timeout: float = IDLE_TIMEOUT,
        max_queued_bytes: int = MAX_QUEUED_BYTES,
        pause_reading_bytes: int | None = None,
        max_query_bytes: int = DEFAULT_SQL_LIMITS.max_bytes,
        max_query_terms: int = DEFAULT_SQL_LIMITS.max_terms,
        max_query_depth: int = DEFAULT_SQL_LIMITS.max_depth,
        max_query_sets_per_connection: int = MAX_QUERY_SETS_PER_CONNECTION,
        max_queries_per_connection: int = MAX_QUERIES_PER_CONNECTION,
        protocols: Sequence[str] | None = None,
    ) -> None:
        #: The subprotocols served, in the server's order of preference.
        self.protocols = served_protocols(protocols)
        self.ping_interval = ping_interval
        self.idle_timeout = idle_timeout
        if max_queued_bytes < 1:
            raise ValueError(f"max_queued_bytes must be positive, got {max_queued_bytes!r}")
        self.max_queued_bytes = max_queued_bytes
        if pause_reading_bytes is None:
            pause_reading_bytes = min(PAUSE_READING_BYTES, max_queued_bytes // 4)
        if not 0 <= pause_reading_bytes < max_queued_bytes:
            raise ValueError(
                f"pause_reading_bytes must be at least 0 and below max_queued_bytes ({max_queued_bytes}), "
                f"got {pause_reading_bytes!r}"
            )
        self.pause_reading_bytes = pause_reading_bytes
        self.limits = RuntimeLimits(
            max_query_sets=max_query_sets_per_connection,
            max_queries=max_queries_per_connection,
            sql=SqlLimits(max_query_bytes, max_query_terms, max_query_depth),
        )
        self.module = module if isinstance(module, ModuleDef) else load_module(module)
        self.database = database
        self.host = host
        self.port = port
        self.data_dir = Path(data_dir) if data_dir is not None else None
        if self.data_dir is not None:
            ensure_private_dir(self.data_dir)
        self.auth = TokenAuthority(self.data_dir)
        owner = self.auth.issue(OWNER_SUBJECT)
        self.owner_identity = owner.identity
        self.owner_token = owner.token
        if self.data_dir is not None:
            write_atomic(self.data_dir / OWNER_TOKEN_FILE, (owner.token + "\n").encode("ascii"), 0o600)
        self.runtime: DatabaseRuntime | None = None
        self._runner: web.AppRunner | None = None
        self._sockets: set[web.WebSocketResponse] = set()
        self._conns: set[Connection] = set()
        #: The dev console (docs/console.md): its routes, its login link and its live pushes.
        self.console = ConsoleHub(self)

    # ----- lifecycle ---------------------------------------------------------------------------------
    @property
    def failed(self) -> str | None:
        """Why the database stopped for good (its commit log failed), as one line; None while it works.

        In that state every HTTP request (``/v1/ping`` too) and every new WebSocket client gets 503 with
        this reason; the process should stop (:meth:`wait_failed`) and be restarted."""
        return self.runtime.failed if self.runtime is not None else None

    async def wait_failed(self) -> str:
        """Wait until the database fails (see :attr:`failed`); returns the reason."""
        while self.runtime is None:  # pragma: no cover - only before start()
            await asyncio.sleep(0.1)
        await self.runtime.failed_event.wait()
        assert self.runtime.failed is not None
        return self.runtime.failed

    @web.middleware
    async def _refuse_when_failed(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        """503 with the reason for every request once the database has failed."""
        failed = self.failed
        if failed is not None:
            return web.Response(status=503, text=failed)
        try:
            return await handler(request)
        except ServerFailed as exc:  # it failed while this request waited
            return web.Response(status=503, text=str(exc))

    async def start(self) -> int:
        """Open the database and start listening; returns the bound port."""
        loop = asyncio.get_running_loop()
        db_dir = None
        if self.data_dir is not None:
            await loop.run_in_executor(None, ensure_private_dir, self.data_dir / "databases")
            db_dir = self.data_dir / "databases" / self.database
        identity = identity_from_claims(self.auth.issuer, f"database:{self.database}")
        self.runtime = await loop.run_in_executor(
            None, lambda: DatabaseRuntime(self.database, self.module, identity, db_dir, loop)
        )
        self.runtime.limits = self.limits
        app = web.Application(client_max_size=MAX_MESSAGE_SIZE, middlewares=[self._refuse_when_failed])
        app.add_routes(
            [
                web.get("/v1/ping", self.ping),
                web.get("/v1/health", self.health),
                web.post("/v1/identity", self.new_identity),
                web.post("/v1/identity/websocket-token", self.websocket_token),
                web.get("/v1/identity/public-key", self.public_key),
                web.get("/v1/database/{name}", self.database_info),
                web.get("/v1/database/{name}/schema", self.schema),
                web.get("/v1/database/{name}/subscribe", self.subscribe),
                web.post("/v1/database/{name}/call/{reducer}", self.call),
                web.post("/v1/database/{name}/sql", self.sql),
                *self.console.routes(),
            ]
        )
        self._runner = web.AppRunner(
            app,
            handle_signals=False,
            access_log=None,
            logger=_HttpLog(server_logger(f"{log.name}.http")),
            # how long a stop waits for HTTP requests in flight. Short: aiohttp can miss a connection
            # accepted just before it stops listening, and then waits this long for a request that it
            # will never read (its default, a minute, made `serve` hang on exit)
            shutdown_timeout=SHUTDOWN_GRACE,
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        addresses = self._runner.addresses
        if addresses:
            self.port = int(addresses[0][1])
        log.info("serving database %r on http://%s:%d", self.database, self.host, self.port)
        return self.port

    async def stop(self) -> None:
        """Disconnect every client (running client_disconnected), flush the data, stop listening."""
        await self.console.close_all()
        transports: list[WsTransport] = []
        for conn in list(self._conns):
            if self.runtime is not None:
                self.runtime.disconnect(conn)
            if isinstance(conn.transport, WsTransport):
                transports.append(conn.transport)
        # all at once, and a client that does not read is aborted after a grace period, so that it
        # cannot hold up the stop (aiohttp would wait a minute for its handler)
        for transport in transports:
            transport.close(WSCloseCode.GOING_AWAY, "server shutting down")
        closers = [t.closer for t in transports if t.closer is not None]
        if closers:
            await asyncio.wait(closers, timeout=5)
        for ws in list(self._sockets):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(
                    ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutting down"), 2
                )
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
            # a connection that asyncio accepted just as the listening socket closed gets a transport that
            # fails to attach to the closed server (Python 3.11): nobody closes it, and its socket, with
            # the client's request unread, stays open until the collector finds the orphaned transport
            await asyncio.sleep(0)
            gc.collect()
        if self.runtime is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.runtime.close)

    def reload(self, module: ModuleDef) -> ModuleUpdate:
        """Serve ``module`` from now on, keeping the data (:meth:`DatabaseRuntime.reload`); on the loop."""
        if self.runtime is None:
            raise RuntimeError("the server is not started")
        plan = self.runtime.reload(module)
        self.module = module
        return ModuleUpdate(tuple(plan.changes), plan.tables_changed)

    def _db(self, request: web.Request) -> DatabaseRuntime:
        name = request.match_info["name"]
        if self.runtime is None or name not in (self.database, str(self.runtime.host.identity)):
            raise web.HTTPNotFound(text=f"database {name!r} not found")
        return self.runtime

    def _claims(
        self, request: web.Request, *, allow_query: bool = False, mint: bool = False
    ) -> Claims | None:
        header = request.headers.get("Authorization", "")
        token: str | None = None
        if header:
            scheme, _, value = header.partition(" ")
            if scheme.lower() != "bearer" or not value.strip():
                raise web.HTTPUnauthorized(text="Authorization must be 'Bearer <token>'")
            token = value.strip()
        elif allow_query:
            token = request.query.get("token") or None
        if token is None:
            return self.auth.mint() if mint else None
        try:
            return self.auth.verify(token)
        except AuthError as exc:
            if exc.status == 400:
                raise web.HTTPBadRequest(text=str(exc)) from None
            raise web.HTTPUnauthorized(text=str(exc)) from None

    # ----- HTTP -------------------------------------------------------------------------------------
    async def ping(self, request: web.Request) -> web.Response:
        return web.Response()

    async def health(self, request: web.Request) -> web.Response:
        from .. import __version__

        return web.json_response(
            {"package_name": "spacetime-game", "version": __version__, "nodes": [], "schedulable": True}
        )

    async def new_identity(self, request: web.Request) -> web.Response:
        claims = self.auth.mint()
        return web.json_response({"identity": str(claims.identity), "token": claims.token})

    async def websocket_token(self, request: web.Request) -> web.Response:
        claims = self._claims(request)
        if claims is None:
            raise web.HTTPUnauthorized(text="this route needs Authorization: Bearer <token>")
        return web.json_response({"token": self.auth.websocket_token(claims.token)})

    async def public_key(self, request: web.Request) -> web.Response:
        return web.Response(text=self.auth.public_key_pem(), content_type="text/plain")

    async def database_info(self, request: web.Request) -> web.Response:
        db = self._db(request)
        return web.json_response({"database_identity": str(db.host.identity), "names": [db.name]})

    async def schema(self, request: web.Request) -> web.Response:
        db = self._db(request)
        version = request.query.get("version")
        if version is None:
            raise web.HTTPBadRequest(text="the 'version' query parameter is required (9)")
        if version != "9":
            raise web.HTTPBadRequest(
                text=f"unsupported schema version {version!r}; this server offers version=9"
            )
        return web.json_response(db.module.schema_json())

    async def call(self, request: web.Request) -> web.Response:
        db = self._db(request)
        claims = self._claims(request, mint=True)
        assert claims is not None
        name = request.match_info["reducer"]
        rd = db.module.reducer_def(name)
        if rd is None or not db.host.is_callable(name):
            if rd is not None and rd.lifecycle is not None:
                raise web.HTTPBadRequest(text=f"lifecycle reducer {name!r} cannot be called")
            raise web.HTTPNotFound(text=f"no such reducer: {name!r}")
        body = await _body_text(request)
        try:
            raw = json.loads(body) if body.strip() else []
        except RecursionError:
            raise web.HTTPBadRequest(text="arguments are not valid JSON: nested too deeply") from None
        except ValueError as exc:  # JSONDecodeError, or an integer beyond int's string limit
            reason = str(exc).split(";")[0]
            raise web.HTTPBadRequest(text=f"arguments are not valid JSON: {reason}") from None
        params = ProductType(tuple(ProductElement(n, t) for n, t in rd.params))
        ts = Typespace(tuple(db.module.typespace))
        try:
            values = from_json(raw, params, ts, db.module.bindings)
            args = tuple(values.values()) if isinstance(values, dict) else tuple(values)
            # what the WebSocket path gets for free: every value fits its BSATN type (no lone surrogate
            # in a string, no F32 overflow), so the reducer never meets a value it cannot store
            db.host.args_codec(name).encode(args)
        except RecursionError:
            raise web.HTTPBadRequest(text=f"invalid arguments for {name}: nested too deeply") from None
        except EncodeError as exc:
            raise web.HTTPBadRequest(text=f"invalid arguments for {name}: {exc}") from None
        result = await db.call_http(name, args, claims.identity)
        status = result.status
        match status:
            case "ok":
                return web.Response()
            case "err":
                return web.Response(status=530, text=result.message)
            case "internal":
                return web.Response(status=500, text=result.message)
            case _:
                assert_never(status)

    async def sql(self, request: web.Request) -> web.Response:
        db = self._db(request)
        claims = self._claims(request, mint=True)
        assert claims is not None
        text = await _body_text(request)
        t0 = time.perf_counter()
        gate = db.appended  # a confirmed read: answered once what it may show is durable
        try:
            owner = claims.identity == self.owner_identity
            results = execute_sql(
                text, db.schema, db.view, claims.identity, owner=owner, limits=db.limits.sql
            )
        except SqlError as exc:
            raise web.HTTPBadRequest(text=str(exc)) from None
        micros = int((time.perf_counter() - t0) * 1e6)
        ts = Typespace(tuple(db.module.typespace))
        out = []
        for res in results:
            types = [e.type for e in res.schema.elements]
            rows = [
                [to_untyped_json(v, t, ts, db.module.bindings) for v, t in zip(row, types, strict=True)]
                for row in res.rows
            ]
            out.append(
                {
                    "schema": res.schema.to_json()["Product"],
                    "rows": rows,
                    "total_duration_micros": micros,
                    "stats": {"rows_inserted": 0, "rows_deleted": 0, "rows_updated": 0},
                }
            )
        await db.durable(gate)
        return web.json_response(out)

    # ----- WebSocket ------------------------------------------------------------------------------------
    async def subscribe(self, request: web.Request) -> web.StreamResponse:
        db = self._db(request)
        offered = [
            p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()
        ]
        protocol = next((p for p in self.protocols if p in offered), None)
        if protocol is None:
            raise web.HTTPBadRequest(text="no valid protocol selected")
        try:
            compression = Compression.from_query(request.query.get("compression", "Brotli"))
        except ValueError as exc:
            raise web.HTTPBadRequest(text=str(exc)) from None
        if compression == Compression.BROTLI:
            try:
                import brotli  # noqa: F401
            except ImportError:
                compression = Compression.GZIP
        confirmed = request.query.get("confirmed", "true").lower() != "false"
        conn_id: ConnectionId
        if "connection_id" in request.query:
            try:
                conn_id = ConnectionId.from_string(request.query["connection_id"])
            except ValueError as exc:
                raise web.HTTPBadRequest(text=f"invalid connection_id: {exc}") from None
            if conn_id.is_zero():
                raise web.HTTPBadRequest(text="connection_id must not be zero")
        else:
            conn_id = ConnectionId.random()
        if conn_id in db.connections:  # it would take over the live one's slot and updates
            raise web.HTTPConflict(text=_ID_IN_USE.format(conn_id))
        claims = self._claims(request, allow_query=True, mint=True)
        assert claims is not None
        ws = _StrictWebSocketResponse(
            protocols=(protocol,),
            max_msg_size=MAX_MESSAGE_SIZE,
            autoping=False,
            heartbeat=None,
            compress=False,
        )
        ws.headers["spacetime-identity"] = str(claims.identity)
        ws.headers["spacetime-identity-token"] = claims.token
        await ws.prepare(request)
        transport = WsTransport(ws, protocol, compression, self.max_queued_bytes, self.pause_reading_bytes)
        transport.tcp = request.transport
        conn = Connection(claims.identity, conn_id, claims.token, transport, confirmed)
        if protocol == v1.PROTOCOL_V1:
            light = request.query.get("light", "false").lower() == "true"
            conn.v1 = transport.link = V1Link(claims.identity, conn_id, light, db.reducer_id, db.table_id)
        if conn_id in db.connections:  # taken while this one was upgrading
            await ws.close(code=WSCloseCode.POLICY_VIOLATION, message=_ID_IN_USE.format(conn_id).encode())
            return ws
        if not db.connect(conn):
            await ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"connection refused by the module")
            return ws
        self._sockets.add(ws)
        self._conns.add(conn)
        loop = asyncio.get_running_loop()
        last_seen = [loop.time()]
        pacer = _Pacer()
        keepalive = loop.create_task(self._keepalive(ws, transport, last_seen))
        try:
            async for msg in ws:
                last_seen[0] = loop.time()
                kind = msg.type
                match kind:  # open match: a third-party enum whose aliases mypy counts as members
                    case WSMsgType.BINARY:
                        conn.messages_in += 1
                        conn.bytes_in += len(msg.data)
                        pacer.frame_start()
                        try:
                            await self._handle_frame(db, conn, transport, msg.data, protocol, pacer)
                        except (DecodeError, ProtocolViolation) as exc:
                            log.info("closing %s: %s", conn.identity, exc)
                            transport.close(WSCloseCode.INTERNAL_ERROR, str(exc))
                            break
                        pacer.frame_end()
                    case WSMsgType.TEXT:
                        transport.close(WSCloseCode.INTERNAL_ERROR, "text frames are not supported on v2/v3")
                        break
                    case WSMsgType.PING:
                        await ws.pong(msg.data)
                    case WSMsgType.CLOSE | WSMsgType.CLOSING | WSMsgType.CLOSED | WSMsgType.ERROR:
                        break
                    case WSMsgType.PONG | WSMsgType.CONTINUATION:
                        pass  # a reply to our keepalive ping (a sign of life); fragments arrive joined
                    # every member is listed; no assert_never here: mypy takes aiohttp's lowercase
                    # aliases (WSMsgType.binary, ...) for members of their own
                if transport.closing is not None:
                    break
        finally:
            keepalive.cancel()
            db.disconnect(conn)
            self._conns.discard(conn)
            self._sockets.discard(ws)
            if transport.closing is not None:
                with contextlib.suppress(asyncio.TimeoutError, Exception):
                    await asyncio.wait_for(transport.task, 5)
            else:
                transport.task.cancel()
            if not ws.closed:
                await ws.close()
        return ws

    async def _handle_frame(
        self,
        db: DatabaseRuntime,
        conn: Connection,
        transport: WsTransport,
        data: bytes,
        protocol: str,
        pacer: _Pacer,
    ) -> None:
        """Answer the messages of one frame in order, a slice at a time: after each slice of
        :data:`SLICE_SECONDS` the other clients are served, and while this client has more than
        ``pause_reading_bytes`` of answers unsent, none of its requests are handled (so it cannot
        make its own queue overflow by sending faster than it reads)."""
        if conn.v1 is None:
            items = _frame_items(data, protocol, db.limits.max_queries)
        else:
            items = _v1_items(conn.v1, data, db.limits.max_queries)
        for item in items:
            if item is None:
                await pacer.tick()
                continue
            if transport.queued_bytes > transport.pause_bytes:
                await transport.wait_below(transport.pause_bytes // 2)
                pacer.reset()
            if transport.closing is not None:
                return
            if isinstance(item, _OversizedSubscribe):
                db.refuse_subscribe(conn, item.request_id, item.query_set_id, item.queries)
            else:
                for _ in db.steps(conn, item):
                    await pacer.tick()
            await pacer.tick()

    async def _keepalive(
        self, ws: web.WebSocketResponse, transport: WsTransport, last_seen: list[float]
    ) -> None:
        loop = asyncio.get_running_loop()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError, RuntimeError):
            while not ws.closed:
                await asyncio.sleep(self.ping_interval)
                # a client that reads what it is sent is alive, even while its requests (and so
                # its pongs) wait behind its answers
                if loop.time() - max(last_seen[0], transport.last_sent) > self.idle_timeout:
                    log.info(
                        "closing a client that sent nothing and took nothing for %.1f s (idle_timeout)",
                        loop.time() - max(last_seen[0], transport.last_sent),
                    )
                    transport.close(
                        WSCloseCode.GOING_AWAY, f"idle: nothing received for {self.idle_timeout:g} s"
                    )
                    await asyncio.sleep(1)
                    await ws.close(code=WSCloseCode.GOING_AWAY, message=b"idle")
                    return
                await ws.ping()
