"""WebSocket frames: the server-to-client compression envelope and v3 batching (docs/protocol.md sections
3.1 and 3.6).

Server to client, every binary frame is one tag byte (0 none, 1 brotli, 2 gzip) and then the payload:
one v2 message, or on v3 one or more messages back to back. Client to server there is no tag byte;
a v2 frame holds one message, a v3 frame one or more.
"""

from __future__ import annotations

import enum
import gzip
import zlib
from collections.abc import Sequence
from typing import Any, Final

from ..sats import DecodeError, SpacetimeError
from ._messages import (
    ClientMessage,
    ServerMessage,
    client_message_codec,
    server_message_codec,
)

__all__ = [
    "COMPRESSION_THRESHOLD",
    "DEFAULT_MAX_MESSAGE_SIZE",
    "PROTOCOL_V2",
    "PROTOCOL_V3",
    "SUPPORTED_PROTOCOLS",
    "Compression",
    "CompressionUnavailable",
    "compress",
    "decode_client_frame",
    "decode_server_frame",
    "decompress",
    "encode_client_frame",
    "encode_server_frame",
]

PROTOCOL_V2: Final = "v2.bsatn.spacetimedb"
PROTOCOL_V3: Final = "v3.bsatn.spacetimedb"
#: In the server's order of preference.
SUPPORTED_PROTOCOLS: Final = (PROTOCOL_V3, PROTOCOL_V2)
#: The real server compresses only bodies larger than this many bytes.
COMPRESSION_THRESHOLD: Final = 1024
#: The largest server message (after decompression) a client accepts unless told otherwise: the server's
#: 32 MiB frame limit times four. A frame that inflates past it (a decompression bomb) is refused after
#: at most this many bytes of output. Applications change it with ``max_message_size``.
DEFAULT_MAX_MESSAGE_SIZE: Final = 128 << 20
#: Compressed input is fed to the decompressor this many bytes at a time ...
_IN_STEP: Final = 1 << 16
#: ... and each step may produce at most this many bytes, so that a refusal never holds much more than
#: the limit (one big step would be joined from blocks, briefly doubling its size).
_OUT_STEP: Final = 1 << 22


class Compression(enum.IntEnum):
    """The compression tag byte; the names are those of the ``compression`` query parameter."""

    NONE = 0
    BROTLI = 1
    GZIP = 2

    @property
    def query_value(self) -> str:
        """``None``, ``Brotli`` or ``Gzip``, as in the URL."""
        return {0: "None", 1: "Brotli", 2: "Gzip"}[self.value]

    @classmethod
    def from_query(cls, value: str) -> Compression:
        """Parse the ``compression`` query parameter (case-sensitive, like the server)."""
        for c in cls:
            if c.query_value == value:
                return c
        raise ValueError(f"unknown compression {value!r}; expected None, Brotli or Gzip")


class CompressionUnavailable(SpacetimeError):
    """Brotli was needed but the ``brotli`` package is not installed."""


def _brotli() -> Any:
    try:
        import brotli
    except ImportError:
        raise CompressionUnavailable(
            "this frame is brotli-compressed, but the 'brotli' package is not installed: "
            "pip install brotli (or connect with compression=Gzip)"
        ) from None
    return brotli


def decompress(
    frame: bytes | bytearray | memoryview, max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
) -> bytes:
    """The payload of a server-to-client frame, after its compression tag byte.

    ``max_message_size`` bounds the payload in bytes: a larger one raises :class:`DecodeError` (naming
    the limit) as soon as the output passes it, so a decompression bomb costs at most about that much
    memory. Decompression is incremental (gzip through ``zlib.decompressobj`` with ``max_length``,
    brotli with ``output_buffer_limit``).
    """
    if max_message_size < 1:
        raise ValueError(f"max_message_size must be a positive number of bytes, got {max_message_size}")
    data = bytes(frame)  # no copy when it is bytes already
    if not data:
        raise DecodeError("frame", 0, "empty frame: no compression tag byte")
    tag = data[0]
    if tag == 0:
        if len(data) - 1 > max_message_size:
            raise _too_big("frame", max_message_size, "is")
        return data[1:]
    if tag == 2:
        return _gunzip(memoryview(data)[1:], max_message_size)
    if tag == 1:
        return _unbrotli(memoryview(data)[1:], max_message_size)
    raise DecodeError("frame", 0, f"unknown compression tag {tag} (expected 0 none, 1 brotli or 2 gzip)")


def _too_big(path: str, limit: int, verb: str = "inflates to") -> DecodeError:
    return DecodeError(
        path,
        1,
        f"the message {verb} more than {limit} bytes, the client's max_message_size "
        "(a larger limit can be set with max_message_size=... on the connection)",
    )


def _joined(parts: list[bytes]) -> bytes:
    return parts[0] if len(parts) == 1 else b"".join(parts)


def _gunzip(data: memoryview, limit: int) -> bytes:
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    parts: list[bytes] = []
    total = 0
    pos, n = 0, len(data)
    pending: bytes | memoryview = b""
    try:
        while True:
            if not pending and pos < n:
                pending = data[pos : pos + _IN_STEP]
                pos += _IN_STEP
            out = inflater.decompress(pending, min(limit - total + 1, _OUT_STEP))
            total += len(out)
            if total > limit:
                parts.clear()  # an error kept by the application must not keep the output alive
                raise _too_big("frame(gzip)", limit)
            if out:
                parts.append(out)
            if inflater.eof:
                break
            pending = inflater.unconsumed_tail
            if not out and not pending and pos >= n:
                break  # no input left and nothing more comes out: the stream stops short
    except zlib.error as exc:
        raise DecodeError("frame(gzip)", 1, f"corrupt gzip stream: {exc}") from None
    if not inflater.eof:
        raise DecodeError("frame(gzip)", 1, "corrupt gzip stream: truncated")
    return _joined(parts) if parts else b""


def _unbrotli(data: memoryview, limit: int) -> bytes:
    brotli = _brotli()
    dec = brotli.Decompressor()
    parts: list[bytes] = []
    total = 0
    pos, n = 0, len(data)
    try:
        while True:
            if pos < n and dec.can_accept_more_data():
                chunk: bytes | memoryview = data[pos : pos + _IN_STEP]
                pos += _IN_STEP
            else:
                chunk = b""
            out = dec.process(chunk, output_buffer_limit=min(limit - total + 1, _OUT_STEP))
            total += len(out)
            if total > limit:
                parts.clear()  # an error kept by the application must not keep the output alive
                raise _too_big("frame(brotli)", limit)
            if out:
                parts.append(out)
            if dec.is_finished():
                if pos < n:
                    raise DecodeError("frame(brotli)", 1, "corrupt brotli stream: data after its end")
                break
            if not out and not chunk and pos >= n:
                break  # no input left and nothing more comes out: the stream stops short
    except brotli.error as exc:
        raise DecodeError("frame(brotli)", 1, f"corrupt brotli stream: {exc}") from None
    if not dec.is_finished():
        raise DecodeError("frame(brotli)", 1, "corrupt brotli stream: truncated")
    return _joined(parts) if parts else b""


def compress(
    payload: bytes, compression: Compression = Compression.NONE, threshold: int = COMPRESSION_THRESHOLD
) -> bytes:
    """A server-to-client frame: the tag byte and the payload, compressed only above ``threshold``
    bytes (as the real server does)."""
    if compression == Compression.NONE or len(payload) <= threshold:
        return b"\x00" + payload
    if compression == Compression.GZIP:
        return b"\x02" + gzip.compress(payload, compresslevel=1, mtime=0)
    brotli = _brotli()
    return b"\x01" + bytes(brotli.compress(payload, quality=1))


def _check_protocol(protocol: str) -> None:
    if protocol not in SUPPORTED_PROTOCOLS:
        raise ValueError(f"unsupported protocol {protocol!r}; expected one of {SUPPORTED_PROTOCOLS}")


def decode_server_frame(
    frame: bytes | bytearray | memoryview,
    protocol: str = PROTOCOL_V2,
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
) -> list[ServerMessage]:
    """The messages of one server-to-client frame: one on v2, one or more on v3. A frame whose payload
    is (or inflates to) more than ``max_message_size`` bytes raises :class:`DecodeError`."""
    _check_protocol(protocol)
    payload = decompress(frame, max_message_size)
    if protocol == PROTOCOL_V2:
        return [server_message_codec.decode(payload)]
    return _decode_many(server_message_codec.decode_from, payload, "ServerMessage")


def decode_client_frame(
    frame: bytes | bytearray | memoryview, protocol: str = PROTOCOL_V2
) -> list[ClientMessage]:
    """The messages of one client-to-server frame: one on v2, one or more on v3."""
    _check_protocol(protocol)
    data = bytes(frame)
    if protocol == PROTOCOL_V2:
        return [client_message_codec.decode(data)]
    return _decode_many(client_message_codec.decode_from, data, "ClientMessage")


def _decode_many(decode_from: Any, payload: bytes, what: str) -> list[Any]:
    if not payload:
        raise DecodeError(what, 0, "empty frame: a v3 frame holds at least one message")
    out: list[Any] = []
    off = 0
    while off < len(payload):
        try:
            msg, off = decode_from(payload, off)
        except DecodeError as exc:
            raise exc.within(f"v3 frame message #{len(out)}") from None
        out.append(msg)
    return out


def encode_server_frame(
    messages: ServerMessage | Sequence[ServerMessage],
    protocol: str = PROTOCOL_V2,
    compression: Compression = Compression.NONE,
    threshold: int = COMPRESSION_THRESHOLD,
) -> bytes:
    """One server-to-client frame. On v2 exactly one message; on v3 any number (at least one)."""
    _check_protocol(protocol)
    msgs = _as_list(messages, protocol)
    parts: list[bytes] = []
    for m in msgs:
        server_message_codec.encode_into(m, parts.append)
    return compress(b"".join(parts), compression, threshold)


def encode_client_frame(
    messages: ClientMessage | Sequence[ClientMessage], protocol: str = PROTOCOL_V2
) -> bytes:
    """One client-to-server frame. On v2 exactly one message; on v3 any number (at least one)."""
    _check_protocol(protocol)
    msgs = _as_list(messages, protocol)
    parts: list[bytes] = []
    for m in msgs:
        client_message_codec.encode_into(m, parts.append)
    return b"".join(parts)


def _as_list(messages: Any, protocol: str) -> list[Any]:
    msgs: list[Any] = list(messages) if isinstance(messages, list | tuple) else [messages]
    if not msgs:
        raise ValueError("a frame holds at least one message")
    if protocol == PROTOCOL_V2 and len(msgs) != 1:
        raise ValueError(f"a v2 frame holds exactly one message, got {len(msgs)}")
    return msgs
