"""Protocol-core benchmark: row decoding and reducer-call encoding, each against a floor measured in
the same run.

    python -m benchmarks.bench_protocol            # full size (100,000 rows)
    python -m benchmarks.bench_protocol --quick    # smaller, for a smoke run

Targets (issue #2): fixed-width rows >= 1,000,000 rows/s and >= 60% of the floor; variable-width rows
>= 300,000 rows/s; a CallReducer with 3 primitive arguments encoded in <= 5 microseconds.
Exit code 1 if a target is missed (``--no-check`` to only print).
"""

from __future__ import annotations

import argparse
import gc
import os
import struct
import sys
import time
from collections.abc import Callable
from functools import partial
from operator import itemgetter
from typing import Any

from spacetime_game.sdk import Identity
from spacetime_game.sdk.protocol import (
    BsatnRowList,
    CallReducer,
    QueryRows,
    SingleTableRows,
    SubscribeApplied,
    decode_server_frame,
    encode_client_message,
    encode_server_frame,
)
from spacetime_game.sdk.sats import AlgebraicType, PrimitiveType, ProductBinding, compile_codec

P = PrimitiveType


class Circle(tuple):  # type: ignore[type-arg]
    """A row class shaped like a generated one: a tuple subclass with one property per column."""

    __slots__ = ()
    id = property(itemgetter(0))
    x = property(itemgetter(1))
    y = property(itemgetter(2))
    mass = property(itemgetter(3))
    owner = property(itemgetter(4))


class Item(tuple):  # type: ignore[type-arg]
    """The variable-width row."""

    __slots__ = ()
    id = property(itemgetter(0))
    name = property(itemgetter(1))
    tags = property(itemgetter(2))
    pos = property(itemgetter(3))


def _binding(cls: type) -> ProductBinding:
    return ProductBinding(partial(tuple.__new__, cls), lambda v: v, cls)


FIXED = AlgebraicType.product(
    id=P("U32"), x=P("F32"), y=P("F32"), mass=P("U32"), owner=AlgebraicType.special("identity")
)
VARIABLE = AlgebraicType.product(
    id=P("U64"),
    name=P("String"),
    tags=AlgebraicType.array(P("String")),
    pos=AlgebraicType.option(AlgebraicType.product(x=P("F32"), y=P("F32"))),
)


def best_of(fn: Callable[[], Any], repeat: int) -> float:
    """The best wall time of ``repeat`` runs (GC paused during each run)."""
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        gc.disable()
        try:
            t0 = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - t0)
        finally:
            gc.enable()
    return best


def per_call(fn: Callable[[], Any], calls: int, repeat: int) -> float:
    """Seconds per call of ``fn``, best of ``repeat`` loops of ``calls`` calls."""

    def loop() -> None:
        for _ in range(calls):
            fn()

    return best_of(loop, repeat) / calls


def bench_fixed(n: int, repeat: int) -> dict[str, float]:
    codec = compile_codec(FIXED, bindings={FIXED: _binding(Circle)}, name="circle")
    rnd = os.urandom
    rows = [
        codec.encode(Circle((i, i * 0.5, -i * 0.25, 10 + i % 100, Identity.from_le_bytes(rnd(32)))))
        for i in range(n)
    ]
    frame = encode_server_frame(
        SubscribeApplied(1, 1, QueryRows((SingleTableRows("circle", BsatnRowList.from_rows(rows)),)))
    )
    (msg,) = decode_server_frame(frame)
    row_list = msg.rows.tables[0].rows
    assert row_list.row_size == 16 + 32
    data = row_list.rows_data

    decoded = codec.decode_rows(data, row_list.row_size)
    assert decoded[7] == codec.decode(rows[7]) and decoded[7].owner == Identity.from_le_bytes(rows[7][16:])

    st = struct.Struct("<IffI32s")
    new_row = partial(tuple.__new__, Circle)
    new_id = partial(bytes.__new__, Identity)

    def floor_per_row() -> list[Circle]:
        return [new_row((a, b, c, d, new_id(e))) for a, b, c, d, e in st.iter_unpack(data)]

    def floor_columnar() -> list[Circle]:
        a, b, c, d, e = zip(*st.iter_unpack(data), strict=True)
        return list(map(new_row, zip(a, b, c, d, map(new_id, e), strict=True)))

    assert floor_per_row() == decoded == floor_columnar()
    t_ours = best_of(lambda: codec.decode_rows(data, row_list.row_size), repeat)
    t_msg = best_of(
        lambda: codec.decode_rows(decode_server_frame(frame)[0].rows.tables[0].rows.rows_data, 48), repeat
    )  # type: ignore[union-attr]
    t_floor1 = best_of(floor_per_row, repeat)
    t_floor2 = best_of(floor_columnar, repeat)
    floor = min(t_floor1, t_floor2)
    return {
        "rows/s": n / t_ours,
        "rows/s incl. frame decode": n / t_msg,
        "floor per-row comprehension rows/s": n / t_floor1,
        "floor columnar rows/s": n / t_floor2,
        "ratio to the faster floor": floor / t_ours,
    }


def bench_variable(n: int, repeat: int) -> dict[str, float]:
    codec = compile_codec(VARIABLE, bindings={VARIABLE: _binding(Item)}, name="item")
    values = [
        Item((i, f"item-{i}", [f"t{j}" for j in range(i % 4)], {"x": 1.5, "y": -2.0} if i % 3 else None))
        for i in range(n)
    ]
    rows = [codec.encode(v) for v in values]
    row_list = BsatnRowList.from_rows(rows)
    assert row_list.row_offsets is not None
    data = row_list.rows_data
    assert codec.decode_rows(data, None, row_list.row_offsets) == values

    u64_u32 = struct.Struct("<QI").unpack_from
    u32 = struct.Struct("<I").unpack_from
    ff = struct.Struct("<ff").unpack_from
    new_item = partial(tuple.__new__, Item)

    def floor_hand_written() -> list[Item]:
        out = []
        off = 0
        end = len(data)
        while off < end:
            i, ln = u64_u32(data, off)
            off += 12
            name = data[off : off + ln].decode()
            off += ln
            (cnt,) = u32(data, off)
            off += 4
            tags = []
            for _ in range(cnt):
                (ln,) = u32(data, off)
                off += 4
                tags.append(data[off : off + ln].decode())
                off += ln
            if data[off] == 0:
                x, y = ff(data, off + 1)
                pos: Any = {"x": x, "y": y}
                off += 9
            else:
                pos = None
                off += 1
            out.append(new_item((i, name, tags, pos)))
        return out

    assert floor_hand_written() == values
    t_ours = best_of(lambda: codec.decode_rows(data, None, row_list.row_offsets), repeat)
    t_floor = best_of(floor_hand_written, repeat)
    return {
        "rows/s": n / t_ours,
        "floor hand-written unchecked loop rows/s": n / t_floor,
        "ratio to the floor": t_floor / t_ours,
    }


def bench_call_reducer(calls: int, repeat: int) -> dict[str, float]:
    args_type = AlgebraicType.product(entity_id=P("U32"), x=P("F32"), y=P("F32"))
    args_codec = compile_codec(args_type, name="update_player_input")
    pack_args = struct.Struct("<Iff").pack
    head = struct.Struct("<BIBI").pack
    u32 = struct.Struct("<I").pack
    name = b"update_player_input"
    counter = iter(range(1 << 31))

    def ours() -> bytes:
        args = args_codec.encode({"entity_id": 7, "x": 0.5, "y": -0.25})
        return encode_client_message(CallReducer(next(counter), 0, "update_player_input", args))

    def floor() -> bytes:
        args = pack_args(7, 0.5, -0.25)
        return b"".join((head(3, next(counter), 0, len(name)), name, u32(len(args)), args))

    a, b = ours(), floor()
    assert a[5:] == b[5:], (a.hex(), b.hex())
    t_ours = per_call(ours, calls, repeat)
    t_floor = per_call(floor, calls, repeat)
    return {"us per call": t_ours * 1e6, "floor hand-packed us per call": t_floor * 1e6}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="10,000 rows and fewer repeats")
    parser.add_argument("--no-check", action="store_true", help="print only; do not fail on missed targets")
    args = parser.parse_args(argv)
    n = 10_000 if args.quick else 100_000
    repeat = 3 if args.quick else 7
    results = {
        f"fixed-width rows ({n:,}, {{id:u32, x:f32, y:f32, mass:u32, owner:Identity}})": bench_fixed(
            n, repeat
        ),
        f"variable-width rows ({n:,}, {{id:u64, name:string, tags:array<string>, pos:option<{{x,y}}>}})": bench_variable(
            n, repeat
        ),
        "CallReducer encode (3 primitive args, incl. args BSATN)": bench_call_reducer(
            20_000 if args.quick else 100_000, repeat
        ),
    }
    for title, figures in results.items():
        print(title)
        for key, value in figures.items():
            print(f"    {key:<42} {value:>14,.3f}")
    fixed = next(iter(results.values()))
    variable = list(results.values())[1]
    call = list(results.values())[2]
    checks = [
        ("fixed-width >= 1,000,000 rows/s", fixed["rows/s"] >= 1_000_000),
        ("fixed-width >= 60% of the floor", fixed["ratio to the faster floor"] >= 0.6),
        ("variable-width >= 300,000 rows/s", variable["rows/s"] >= 300_000),
        ("CallReducer encode <= 5 us", call["us per call"] <= 5.0),
    ]
    print("targets")
    for label, ok in checks:
        print(f"    {'PASS' if ok else 'MISS'}  {label}")
    if args.no_check:
        return 0
    return 0 if all(ok for _, ok in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
