"""WebSocket frames: the server-to-client compression envelope and v3 batching (protocol.md 3.1, 3.6).

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
    "MAX_DECOMPRESSED_SIZE",
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
#: A compressed frame that inflates past this many bytes is refused (a decompression bomb).
MAX_DECOMPRESSED_SIZE: Final = 1 << 30


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


def decompress(frame: bytes | bytearray | memoryview, max_size: int = MAX_DECOMPRESSED_SIZE) -> bytes:
    """The payload of a server-to-client frame, after its compression tag byte."""
    data = bytes(frame)
    if not data:
        raise DecodeError("frame", 0, "empty frame: no compression tag byte")
    tag = data[0]
    if tag == 0:
        return data[1:]
    if tag == 2:
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            out = inflater.decompress(data[1:], max_size)
        except zlib.error as exc:
            raise DecodeError("frame(gzip)", 1, f"corrupt gzip stream: {exc}") from None
        if inflater.unconsumed_tail:
            raise DecodeError("frame(gzip)", 1, f"inflates to more than {max_size} bytes")
        if not inflater.eof:
            raise DecodeError("frame(gzip)", 1, "corrupt gzip stream: truncated")
        return out
    if tag == 1:
        brotli = _brotli()
        dec = brotli.Decompressor()
        try:
            out = dec.process(data[1:], output_buffer_limit=max_size)
        except brotli.error as exc:
            raise DecodeError("frame(brotli)", 1, f"corrupt brotli stream: {exc}") from None
        if not dec.is_finished():
            if len(out) >= max_size:
                raise DecodeError("frame(brotli)", 1, f"inflates to more than {max_size} bytes")
            raise DecodeError("frame(brotli)", 1, "corrupt brotli stream: truncated")
        return bytes(out)
    raise DecodeError("frame", 0, f"unknown compression tag {tag} (expected 0 none, 1 brotli or 2 gzip)")


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
    frame: bytes | bytearray | memoryview, protocol: str = PROTOCOL_V2
) -> list[ServerMessage]:
    """The messages of one server-to-client frame: one on v2, one or more on v3."""
    _check_protocol(protocol)
    payload = decompress(frame)
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
