"""Decompression is bounded (issue #9, defect 15): a small gzip or brotli frame that inflates toward 2 GiB
is refused after at most ``max_message_size`` bytes of output, with memory to match, and a legitimate
message up to the limit still decodes. The bombs are built incrementally: no test holds their inflated
data."""

from __future__ import annotations

import functools
import json
import subprocess
import sys
import time
import tracemalloc
import zlib
from pathlib import Path

import brotli
import pytest

from spacetime_game.sdk.protocol import (
    DEFAULT_MAX_MESSAGE_SIZE,
    PROTOCOL_V2,
    PROTOCOL_V3,
    BsatnRowList,
    QueryRows,
    SingleTableRows,
    SubscribeApplied,
    decode_server_frame,
    decompress,
    encode_server_frame,
)
from spacetime_game.sdk.sats import DecodeError

ROOT = Path(__file__).resolve().parents[2]
MIB = 1 << 20
BOMB_SIZE = 2 << 30  # what the bombs inflate to: 2 GiB of zeros


@functools.cache
def gzip_bomb(size: int = BOMB_SIZE) -> bytes:
    """A valid gzip stream of ``size`` zero bytes (about 1 KB per MiB): one raw deflate block of 1 MiB of
    zeros, ended by a full flush so that it stands alone, repeated; then the end block and the trailer."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = c.compress(bytes(MIB)) + c.flush(zlib.Z_FULL_FLUSH)
    end = zlib.compressobj(9, zlib.DEFLATED, -15).flush()
    crc, zeros = 0, bytes(MIB)
    for _ in range(size // MIB):
        crc = zlib.crc32(zeros, crc)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
    trailer = crc.to_bytes(4, "little") + (size & 0xFFFFFFFF).to_bytes(4, "little")
    return header + block * (size // MIB) + end + trailer


@functools.cache
def brotli_bomb(size: int = BOMB_SIZE) -> bytes:
    """A brotli stream of ``size`` zero bytes (about 400 KB for 2 GiB), compressed 4 MiB at a time."""
    c = brotli.Compressor(quality=1)
    zeros = bytes(4 * MIB)
    parts = [c.process(zeros) for _ in range(size // len(zeros))]
    parts.append(c.finish())
    return b"".join(parts)


def bomb(tag: int) -> bytes:
    return bytes([tag]) + (gzip_bomb() if tag == 2 else brotli_bomb())


def test_the_small_bombs_really_inflate() -> None:
    """The helpers build what they say (checked on a small size, streaming, holding 1 MiB at a time)."""
    for tag, stream in ((2, gzip_bomb(64 * MIB)), (1, brotli_bomb(64 * MIB))):
        assert len(stream) < 64 * MIB // 100
        total = 0
        if tag == 2:
            d = zlib.decompressobj(31)
            buf = stream
            while buf:
                total += len(d.decompress(buf, MIB))
                buf = d.unconsumed_tail
            assert d.eof
        else:
            b = brotli.Decompressor()
            total += len(b.process(stream, output_buffer_limit=MIB))
            while not b.is_finished():
                out = b.process(b"", output_buffer_limit=MIB)
                assert out, "the stream stops short"
                total += len(out)
        assert total == 64 * MIB


def test_the_default_limit_is_the_servers_frame_limit_times_four() -> None:
    assert DEFAULT_MAX_MESSAGE_SIZE == 4 * 32 * MIB


@pytest.mark.parametrize("tag", [2, 1], ids=["gzip", "brotli"])
def test_a_bomb_is_refused_early_with_a_clear_error(tag: int) -> None:
    frame = bomb(tag)
    assert len(frame) < 3 * MIB  # a small frame ...
    limit = 4 * MIB
    tracemalloc.start()
    try:
        t0 = time.perf_counter()
        with pytest.raises(DecodeError) as info:
            decompress(frame, max_message_size=limit)
        elapsed = time.perf_counter() - t0
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    exc = info.value
    assert exc.offset == 1 and exc.path in ("frame(gzip)", "frame(brotli)")
    assert f"more than {limit} bytes" in exc.reason and "max_message_size" in exc.reason
    assert peak < 3 * limit, f"refusing a bomb took {peak} bytes (limit {limit})"
    assert elapsed < 5, f"refusing a bomb took {elapsed:.1f} s"
    # the same through decode_server_frame, on both protocols
    for protocol in (PROTOCOL_V2, PROTOCOL_V3):
        with pytest.raises(DecodeError, match="max_message_size"):
            decode_server_frame(frame, protocol, max_message_size=limit)


_CHILD = """
import json, resource, sys, time
sys.path.insert(0, sys.argv[1])
from tests.protocol.test_decompression_limit import bomb
from spacetime_game.sdk.protocol import decompress
from spacetime_game.sdk.sats import DecodeError
frame = bomb(int(sys.argv[2]))
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
try:
    decompress(frame)
    error = None
except DecodeError as exc:
    error = str(exc)
elapsed = time.perf_counter() - t0
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"error": error, "grew_kib": after - before, "seconds": elapsed}))
"""


@pytest.mark.parametrize("tag", [2, 1], ids=["gzip", "brotli"])
def test_a_2_gib_bomb_costs_at_most_the_default_limit(tag: int) -> None:
    """With the default limit, in a fresh interpreter so that its peak memory is its own."""
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(ROOT), str(tag)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    result = json.loads(out.stdout)
    assert result["error"] is not None, "a 2 GiB bomb was inflated"
    assert f"more than {DEFAULT_MAX_MESSAGE_SIZE} bytes" in result["error"]
    grew = result["grew_kib"] * 1024
    assert grew < DEFAULT_MAX_MESSAGE_SIZE + 256 * MIB, f"peak memory grew by {grew / MIB:.0f} MiB"
    assert result["seconds"] < 20


def _big_message(payload_size: int) -> tuple[SubscribeApplied, bytes]:
    """A SubscribeApplied whose v2 encoding is exactly ``payload_size`` bytes (fixed-size rows)."""
    overhead = len(encode_server_frame(_applied(b""))) - 1
    rows = bytes(range(256)) * ((payload_size - overhead) // 256 + 1)
    msg = _applied(rows[: payload_size - overhead])
    payload = encode_server_frame(msg)[1:]
    assert len(payload) == payload_size
    return msg, payload


def _applied(rows: bytes) -> SubscribeApplied:
    return SubscribeApplied(1, 1, QueryRows((SingleTableRows("t", BsatnRowList(1, None, rows)),)))


@pytest.mark.parametrize("tag", [0, 2, 1], ids=["none", "gzip", "brotli"])
def test_a_message_up_to_the_limit_decodes(tag: int) -> None:
    size = 3 * MIB + 17
    msg, payload = _big_message(size)
    if tag == 2:
        c = zlib.compressobj(1, zlib.DEFLATED, 31)
        body = c.compress(payload) + c.flush()
    elif tag == 1:
        body = brotli.compress(payload, quality=1)
    else:
        body = payload
    frame = bytes([tag]) + body
    assert decompress(frame, max_message_size=size) == payload
    assert decode_server_frame(frame, PROTOCOL_V2, max_message_size=size) == [msg]
    assert decode_server_frame(frame, PROTOCOL_V3, max_message_size=size) == [msg]
    with pytest.raises(DecodeError, match=f"more than {size - 1} bytes"):
        decompress(frame, max_message_size=size - 1)
    assert decode_server_frame(frame) == [msg]  # well under the default


def test_the_limit_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_message_size"):
        decompress(b"\x00abc", max_message_size=0)


def test_the_error_names_the_keyword_to_raise_it() -> None:
    frame = b"\x00" + bytes(100)
    with pytest.raises(DecodeError) as info:
        decompress(frame, max_message_size=10)
    assert "max_message_size" in str(info.value) and "10 bytes" in str(info.value)
    assert json.dumps(str(info.value))  # a plain, printable message


@pytest.mark.parametrize("tag", [2, 1], ids=["gzip", "brotli"])
def test_a_kept_error_does_not_keep_the_inflated_bytes(tag: int) -> None:
    """Applications keep errors (``on_error=errors.append``): the error of a bomb must not hold on to the
    output decoded so far through its traceback (found by the hostile-server suite: 128 MiB per bomb)."""
    frame = bomb(tag)
    limit = 16 * MIB
    kept: list[DecodeError] = []
    tracemalloc.start()
    try:
        for _ in range(3):
            try:
                decompress(frame, max_message_size=limit)
            except DecodeError as exc:
                kept.append(exc)
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(kept) == 3
    assert held < limit // 4, f"three kept errors hold {held / MIB:.1f} MiB"
