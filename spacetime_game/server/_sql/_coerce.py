"""Literal coercion: which column types SQL can compare, and the comparison key a literal takes when
compared with a column (ranges of integers, F32 rounding, hex identities, RFC 3339 timestamps)."""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Final, Literal, assert_never

from ...sdk import Identity, Timestamp
from ...sdk.sats import (
    AlgebraicType,
    ArrayType,
    PrimitiveType,
    ProductType,
    SumType,
    Typespace,
)
from ._common import SqlError

#: The kinds of literal operand.
_LitKind = Literal["number", "string", "bool", "hex", "sender"]


@dataclass(frozen=True)
class _Lit:
    """A literal operand: its kind, its value and how the query wrote it."""

    kind: _LitKind
    value: Any
    text: str

    def describe(self) -> str:
        kind = self.kind
        match kind:
            case "string":
                return f"the string {self.text}"
            case "number":
                return f"the number {self.text}"
            case "hex":
                return f"the hex literal {self.text}"
            case "sender":
                return ":sender (an Identity)"
            case "bool":
                return self.text
            case _:
                assert_never(kind)


def _decimal(text: str) -> Decimal | None:
    try:
        d = Decimal(text)
    except (InvalidOperation, ValueError, ArithmeticError):
        return None
    return d if d.is_finite() else None


def _integral(d: Decimal) -> bool:
    return d == d.to_integral_value()


_INT_RANGES: Final[dict[str, tuple[int, int]]] = {
    name: ((-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if name[0] == "I" else (0, (1 << bits) - 1))
    for name, bits in (
        ("I8", 8),
        ("U8", 8),
        ("I16", 16),
        ("U16", 16),
        ("I32", 32),
        ("U32", 32),
        ("I64", 64),
        ("U64", 64),
        ("I128", 128),
        ("U128", 128),
        ("I256", 256),
        ("U256", 256),
    )
}


_ID_DIGITS: Final = {"identity": 64, "connection_id": 32}


_ID_NAMES: Final = {"identity": "Identity", "connection_id": "ConnectionId"}


@dataclass(frozen=True)
class _Scalar:
    """A column type that SQL can compare: ``kind`` is a primitive name (``I32``, ``F32``, ``String``,
    ``Bool``) or ``bytes``, ``identity``, ``connection_id``, ``timestamp``; ``key`` maps a stored value
    to the value compared (None: the value itself)."""

    kind: str
    optional: bool
    display: str
    key: Callable[[Any], Any] | None


def _le_int(v: Any) -> int:
    return int.from_bytes(v, "little")


def _micros(v: Any) -> Any:
    return v.micros_since_epoch if isinstance(v, Timestamp) else v


def _resolve(ty: AlgebraicType, ts: Typespace) -> AlgebraicType:
    try:
        return ts.resolve(ty)
    except Exception:
        return ty


def _type_name(ty: AlgebraicType, ts: Typespace) -> str:
    return repr(_resolve(ty, ts))


def _scalar(ty: AlgebraicType, ts: Typespace, name: str) -> _Scalar:
    full = _resolve(ty, ts)
    inner = full
    optional = False
    if isinstance(full, SumType) and full.special_kind == "option":
        inner = _resolve(full.variants[0].type, ts)
        optional = True
    display = repr(full)
    kind: str | None = None
    key: Callable[[Any], Any] | None = None
    if isinstance(inner, PrimitiveType):
        kind = inner.name
    elif isinstance(inner, ArrayType) and inner.is_bytes:
        kind = "bytes"
    elif isinstance(inner, ProductType) and inner.special_kind in ("identity", "connection_id"):
        kind, key = inner.special_kind, _le_int
    elif isinstance(inner, ProductType) and inner.special_kind == "timestamp":
        kind, key = "timestamp", _micros
    if kind is None:
        raise SqlError(f"column `{name}` has type {display}, which SQL cannot compare")
    return _Scalar(kind, optional, display, key)


def _coerce(lit: _Lit, sc: _Scalar, col: str, sender: Identity) -> Any:
    """The comparison key of a literal compared with a column of type ``sc``."""
    kind = sc.kind
    mismatch = SqlError(f"type mismatch: cannot compare `{col}` ({sc.display}) with {lit.describe()}")
    if lit.kind == "sender":
        if kind != "identity":
            raise mismatch
        return _le_int(bytes(sender))
    if kind == "Bool":
        if lit.kind != "bool":
            raise mismatch
        return lit.value
    if kind == "String":
        if lit.kind != "string":
            raise mismatch
        return lit.value
    if kind in _INT_RANGES:
        if lit.kind != "number":
            raise mismatch
        d: Decimal = lit.value
        if not _integral(d):
            raise SqlError(f"{lit.text} is not an integer, but `{col}` has type {sc.display}")
        lo, hi = _INT_RANGES[kind]
        if d.adjusted() > 80 or not lo <= int(d) <= hi:
            raise SqlError(f"{lit.text} is out of range for `{col}` ({sc.display})")
        return int(d)
    if kind in ("F32", "F64"):
        if lit.kind != "number":
            raise mismatch
        try:
            f = float(lit.value)
            if f in (float("inf"), float("-inf")):
                raise OverflowError
            if kind == "F32":
                f = struct.unpack("<f", struct.pack("<f", f))[0]
        except (OverflowError, struct.error):
            raise SqlError(f"{lit.text} is out of range for `{col}` ({sc.display})") from None
        return f
    if kind in ("bytes", "identity", "connection_id"):
        if lit.kind not in ("hex", "string"):
            raise mismatch
        digits = str(lit.value)
        if lit.kind == "string" and digits[:2].lower() == "0x":
            digits = digits[2:]
        if not digits or any(ch not in "0123456789abcdefABCDEF" for ch in digits):
            raise SqlError(
                f"{lit.text} is not a hex value, so it cannot be compared with `{col}` ({sc.display})"
            )
        if kind == "bytes":
            if len(digits) % 2:
                raise SqlError(f"{lit.text} has an odd number of hex digits")
            return bytes.fromhex(digits)
        want = _ID_DIGITS[kind]
        if len(digits) != want:
            raise SqlError(
                f"an {_ID_NAMES[kind]} literal needs {want} hex digits, got {len(digits)} ({lit.text})"
            )
        return int(digits, 16)
    if kind == "timestamp":
        if lit.kind != "string":
            raise mismatch
        try:
            dt = datetime.fromisoformat(str(lit.value))
        except ValueError:
            raise SqlError(
                f"{lit.text} is not a timestamp; write one in RFC 3339, e.g. '2024-01-01T00:00:00Z'"
            ) from None
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        return Timestamp.from_datetime(dt).micros_since_epoch
    raise mismatch  # pragma: no cover - _scalar only returns the kinds above
