"""A row list's rows and cache keys (docs/protocol.md section 6.2), sans-I/O.

A cached row's key is its BSATN bytes, or in a table with a primary key the primary key's value. A delete
names its row by that key; for fixed-width layouts the key is cut straight from the row bytes, without
decoding the row (:func:`key_cutter`).
"""

from __future__ import annotations

import struct
import sys
from collections.abc import Callable
from itertools import repeat
from operator import itemgetter, sub
from typing import Any

from .bindings import TableBinding
from .protocol import BsatnRowList
from .sats import Codec, PrimitiveType, ProductType, compile_codec

__all__ = ["as_rows", "key_cutter", "rows_of"]

_first = itemgetter(0)


def rows_of(rl: BsatnRowList) -> list[bytes]:
    """The rows of ``rl``, each as its BSATN bytes (a :class:`DecodeError` if they are malformed)."""
    return rl.rows() if len(rl) else []


def as_rows(rows: list[bytes] | BsatnRowList) -> list[bytes]:
    """``rows`` as a list of row bytes (a row list is split up, a list is returned as it is)."""
    return rows_of(rows) if isinstance(rows, BsatnRowList) else rows


#: struct formats of the primitive types whose unpacked value is the decoded value
_RAW_FORMATS = {"U8": "B", "I8": "b", "U16": "H", "I16": "h", "U32": "I", "I32": "i", "U64": "Q", "I64": "q"}


def key_cutter(binding: TableBinding) -> Callable[[BsatnRowList], list[Any]]:
    """A function giving the primary-key values of a row list's rows without decoding the rows: when
    every column before the key has a fixed width, the key is cut from each row at its offset (for
    ``FixedSize`` rows with one strided view or one ``iter_unpack``); otherwise each row is decoded."""
    module = binding.module
    row_codec = binding.codec
    pk_index = binding.column_index(binding.primary_key or "")
    row_type = module.typespace.resolve(module.typespace[binding.ref])
    assert isinstance(row_type, ProductType)

    def column_codec(i: int) -> Codec:
        return compile_codec(
            row_type.elements[i].type,
            module.typespace,
            dict(module.type_bindings),
            name=f"{binding.name}.{binding.column_names[i]}",
        )

    def decode_all(rl: BsatnRowList) -> list[Any]:
        return [row_codec.decode(r)[pk_index] for r in rl.rows()]

    offset = 0
    for i in range(pk_index):
        size = column_codec(i).fixed_size
        if size is None:
            return decode_all
        offset += size
    key_codec = column_codec(pk_index)
    key_size = key_codec.fixed_size
    if key_size is None:
        return decode_all
    end = offset + key_size
    pk_type = module.typespace.resolve(row_type.elements[pk_index].type)
    raw = _RAW_FORMATS.get(pk_type.name) if isinstance(pk_type, PrimitiveType) else None
    fixed = row_codec.fixed_size
    cut = None
    if fixed is not None:
        piece = raw if raw is not None else f"{key_size}s"
        cut = struct.Struct(f"<{offset}x{piece}{fixed - end}x").iter_unpack
    # variable-width rows with an integer key at a fixed offset: the key read at each row's offset
    at = struct.Struct(f"<{offset}x{raw}").unpack_from if raw is not None else None

    def keys(rl: BsatnRowList) -> list[Any]:
        if cut is not None and fixed and rl.row_size == fixed and len(rl.rows_data) % fixed == 0:
            cuts = cut(rl.rows_data)
            if raw is not None:
                return list(map(_first, cuts))
            pieces = list(map(_first, cuts))
        else:
            offs = rl.row_offsets
            if at is not None and offs and offs[0] == 0:
                data = rl.rows_data
                # every row at least as long as the key's end (so the offsets also rise and stay inside)
                if min(map(sub, [*offs[1:], len(data)], offs)) >= end:
                    return list(map(_first, map(at, repeat(data), offs)))
            pieces = [r[offset:end] for r in rl.rows()]
            if set(map(len, pieces)) != {key_size}:
                return decode_all(rl) if pieces else []  # a row too short: the row codec names the error
        if key_codec.fixed_size and key_codec.bulk and len(pieces) > 1:
            return key_codec.decode_fixed(b"".join(pieces))
        return list(map(key_codec.decode, pieces))

    if (
        fixed is None
        or raw is None
        or sys.byteorder != "little"
        or struct.calcsize(raw) != key_size
        or offset % key_size
        or fixed % key_size
    ):
        return keys
    # the keys are every n-th item of the rows' bytes seen as an array of the key's integer type
    start, step = offset // key_size, fixed // key_size
    typecode: Any = raw  # one of the integer formats memoryview.cast takes

    def strided(rl: BsatnRowList) -> list[Any]:
        data = rl.rows_data
        if rl.row_size != fixed or len(data) % fixed:
            return keys(rl)
        return memoryview(data).cast(typecode)[start::step].tolist()

    return strided
