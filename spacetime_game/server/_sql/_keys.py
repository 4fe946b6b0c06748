"""Row and value keys: hashable stand-ins for decoded values (arrays, sums, options), so that rows can
be put in sets and dicts by value."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any, Final

from ...sdk.sats import (
    AlgebraicType,
    ArrayType,
    PrimitiveType,
    ProductType,
    RefType,
    Some,
    SumType,
    SumValue,
    Typespace,
)
from ...sdk.schema import TableDef
from ._common import _Key

_SUM_MARK: Final = object()


_SOME_MARK: Final = object()


_REPR_MARK: Final = object()


def _freeze(v: Any) -> Hashable:
    """A hashable stand-in for a value that holds lists or dicts (arrays, unbound products)."""
    if isinstance(v, tuple | list):
        return tuple(_freeze(x) for x in v)
    if isinstance(v, dict):
        return tuple((k, _freeze(x)) for k, x in v.items())
    if isinstance(v, SumValue):
        return (_SUM_MARK, v.tag, _freeze(v.value))
    if isinstance(v, Some):
        return (_SOME_MARK, _freeze(v.value))
    try:
        hash(v)
    except TypeError:
        return (_REPR_MARK, type(v).__name__, repr(v))
    return v  # type: ignore[no-any-return]


def _same(v: Any) -> Hashable:
    return v  # type: ignore[no-any-return]


def _hashable(ty: AlgebraicType, ts: Typespace, seen: frozenset[int] = frozenset()) -> bool:
    """Whether decoded values of ``ty`` are always hashable as they are."""
    if isinstance(ty, RefType):
        if ty.index in seen or not 0 <= ty.index < len(ts):
            return False
        return _hashable(ts[ty.index], ts, seen | {ty.index})
    if isinstance(ty, PrimitiveType):
        return True
    if isinstance(ty, ArrayType):
        return ty.is_bytes
    if isinstance(ty, ProductType):
        return ty.special_kind is not None
    if isinstance(ty, SumType):
        if ty.special_kind == "schedule_at":
            return True
        return all(_hashable(v.type, ts, seen) for v in ty.variants)
    return False


def _row_key(table: TableDef, ts: Typespace) -> _Key:
    return _same if all(_hashable(c.type, ts) for c in table.columns) else _freeze


def _value_key(ty: AlgebraicType, ts: Typespace) -> _Key:
    return _same if _hashable(ty, ts) else _freeze


def _is_unique(table: TableDef, col: int) -> bool:
    return any(c.col_id == col for c in table.unique_columns)
