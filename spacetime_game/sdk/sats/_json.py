"""SATS-JSON (docs/protocol.md section 4.2): the typed output form, the untyped form of HTTP ``/sql`` rows,
and the lenient input forms accepted for HTTP reducer arguments.

Python values follow the same conventions as the BSATN codecs (bindings, ``dict``/``tuple`` products,
:class:`SumValue` sums, ``None`` options, special classes).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ._bsatn import Binding, _default_product, _default_split
from ._errors import EncodeError
from ._types import UNIT, AlgebraicType, ArrayType, PrimitiveType, ProductType, RefType, SumType, Typespace
from ._values import ProductBinding, Some, SumBinding, SumValue, get_special

__all__ = ["from_json", "to_json", "to_untyped_json"]

_INT_RANGES: dict[str, tuple[int, int]] = {}
for _bits in (8, 16, 32, 64, 128, 256):
    _INT_RANGES[f"U{_bits}"] = (0, (1 << _bits) - 1)
    _INT_RANGES[f"I{_bits}"] = (-(1 << (_bits - 1)), (1 << (_bits - 1)) - 1)

_SPECIAL_INNER = {
    "identity": ("__identity__", 32),
    "connection_id": ("__connection_id__", 16),
    "uuid": ("__uuid__", 16),
    "timestamp": ("__timestamp_micros_since_unix_epoch__", 0),
    "time_duration": ("__time_duration_micros__", 0),
}


class _Ctx:
    def __init__(self, typespace: Typespace | None, bindings: Mapping[Any, Binding] | None) -> None:
        self.ts = typespace or Typespace.EMPTY
        self.bindings = bindings or {}

    def resolve(self, ty: AlgebraicType) -> tuple[AlgebraicType, Binding | None]:
        binding: Binding | None = None
        while isinstance(ty, RefType):
            if binding is None:
                binding = self.bindings.get(ty.index)
            ty = self.ts.resolve(RefType(ty.index)) if not 0 <= ty.index < len(self.ts) else self.ts[ty.index]
        if binding is None:
            binding = self.bindings.get(ty)
        return ty, binding

    def is_bytes(self, ty: ArrayType) -> bool:
        """``Array<U8>``, also through a Ref (as the BSATN codecs see it)."""
        return self.resolve(ty.elem)[0] == PrimitiveType("U8")

    def product(self, ty: ProductType, binding: Binding | None) -> ProductBinding:
        return binding if isinstance(binding, ProductBinding) else _default_product(ty.names)

    def split(self, binding: Binding | None, value: Any, path: str) -> tuple[int, Any]:
        split = binding.split if isinstance(binding, SumBinding) else _default_split
        try:
            return split(value)
        except (TypeError, ValueError, AttributeError, KeyError) as exc:
            raise EncodeError(path, str(exc)) from None


def _check_int(value: Any, name: str, path: str) -> int:
    if isinstance(value, str):
        text = value.strip()
        try:
            neg = text.startswith("-")
            body = text[1:] if neg else text
            parsed = int(body, 16) if body.lower().startswith("0x") else int(body, 10)
            value = -parsed if neg else parsed
        except ValueError:
            raise EncodeError(path, f"expected an integer for {name}, got {value!r}") from None
    elif isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise EncodeError(path, f"expected an integer for {name}, got {type(value).__name__} {value!r}")
    lo, hi = _INT_RANGES[name]
    if not lo <= value <= hi:
        raise EncodeError(path, f"{value} is out of range for {name}")
    return value


def _u256_str(value: int) -> str:
    return f"-0x{-value:x}" if value < 0 else f"0x{value:x}"


# --------------------------------------------------------------------------------------------------
# typed output
# --------------------------------------------------------------------------------------------------
def to_json(
    value: Any,
    ty: AlgebraicType,
    typespace: Typespace | None = None,
    bindings: Mapping[Any, Binding] | None = None,
    *,
    untyped: bool = False,
) -> Any:
    """The typed SATS-JSON of ``value`` (named products as objects, sums as ``{"Variant": payload}``).

    With ``untyped=True`` this is the untyped form instead: products as arrays, sums as ``[tag, payload]``.
    """
    return _out(_Ctx(typespace, bindings), value, ty, "value", untyped)


def to_untyped_json(
    value: Any,
    ty: AlgebraicType,
    typespace: Typespace | None = None,
    bindings: Mapping[Any, Binding] | None = None,
) -> Any:
    """The untyped SATS-JSON of ``value``, as in HTTP ``/sql`` rows."""
    return _out(_Ctx(typespace, bindings), value, ty, "value", True)


def _out(ctx: _Ctx, value: Any, ty: AlgebraicType, path: str, untyped: bool) -> Any:
    ty, binding = ctx.resolve(ty)
    if isinstance(ty, PrimitiveType):
        name = ty.name
        if name == "Bool":
            if not isinstance(value, bool):
                raise EncodeError(path, f"expected bool, got {type(value).__name__}")
            return value
        if name == "String":
            if not isinstance(value, str):
                raise EncodeError(path, f"expected str, got {type(value).__name__}")
            return value
        if name in ("F32", "F64"):
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise EncodeError(path, f"expected float, got {type(value).__name__}")
            return float(value)
        v = _check_int(value, name, path) if not isinstance(value, int) or isinstance(value, bool) else value
        _check_int(v, name, path)
        return _u256_str(v) if name in ("U256", "I256") else v
    if isinstance(ty, ArrayType):
        if ctx.is_bytes(ty):
            if not isinstance(value, bytes | bytearray | memoryview):
                raise EncodeError(path, f"expected bytes, got {type(value).__name__}")
            return bytes(value).hex()
        if isinstance(value, str | bytes) or not isinstance(value, list | tuple):
            raise EncodeError(path, f"expected a list, got {type(value).__name__}")
        return [_out(ctx, x, ty.elem, f"{path}[{i}]", untyped) for i, x in enumerate(value)]
    if isinstance(ty, ProductType):
        kind = ty.special_kind
        if kind is not None:
            return _special_out(kind, value, path, untyped)
        pb = ctx.product(ty, binding)
        try:
            fields = pb.fields(value)
        except (TypeError, KeyError, AttributeError, IndexError) as exc:
            raise EncodeError(path, f"not a value of this product: {exc!r}") from None
        if len(fields) != len(ty.elements):
            raise EncodeError(path, f"expected {len(ty.elements)} fields, got {len(fields)}")
        items = [
            _out(ctx, f, e.type, f"{path}.{e.name or i}", untyped)
            for i, (f, e) in enumerate(zip(fields, ty.elements, strict=True))
        ]
        if untyped or not all(ty.names) or not ty.elements:
            return items
        return {str(e.name): v for e, v in zip(ty.elements, items, strict=True)}
    if isinstance(ty, SumType):
        kind = ty.special_kind
        if kind == "option":
            inner_ty, _ = ctx.resolve(ty.variants[0].type)
            nested = isinstance(inner_ty, SumType) and inner_ty.special_kind == "option"
            if value is None:
                return [1, []] if untyped else {"none": []}
            inner = value
            if nested:
                if not isinstance(value, Some):
                    raise EncodeError(path, f"expected Some(...) or None, got {type(value).__name__}")
                inner = value.value
            payload = _out(ctx, inner, ty.variants[0].type, path + "::some", untyped)
            return [0, payload] if untyped else {"some": payload}
        if kind == "schedule_at":
            try:
                tag, payload = get_special("schedule_at").to_wire(value)
            except (TypeError, ValueError, AttributeError) as exc:
                raise EncodeError(path, str(exc)) from None
        else:
            tag, payload = ctx.split(binding, value, path)
        if not isinstance(tag, int) or not 0 <= tag < len(ty.variants):
            raise EncodeError(path, f"unknown variant tag {tag!r}")
        variant = ty.variants[tag]
        out = (
            []
            if variant.type == UNIT
            else _out(ctx, payload, variant.type, f"{path}::{variant.name}", untyped)
        )
        if untyped:
            return [tag, out]
        return {variant.name if variant.name is not None else str(tag): out}
    raise TypeError(f"not an AlgebraicType: {ty!r}")  # pragma: no cover


def _special_out(kind: str, value: Any, path: str, untyped: bool) -> Any:
    field_name, size = _SPECIAL_INNER[kind]
    try:
        wire = get_special(kind).to_wire(value)
    except (TypeError, ValueError, AttributeError) as exc:
        raise EncodeError(path, str(exc)) from None
    inner: Any
    if size:
        number = int.from_bytes(wire, "little")
        inner = _u256_str(number) if size == 32 else number
    else:
        inner = wire
    return [inner] if untyped else {field_name: inner}


# --------------------------------------------------------------------------------------------------
# lenient input
# --------------------------------------------------------------------------------------------------
def from_json(
    obj: Any,
    ty: AlgebraicType,
    typespace: Typespace | None = None,
    bindings: Mapping[Any, Binding] | None = None,
) -> Any:
    """Read a SATS-JSON value of type ``ty``, in any of the accepted input forms.

    Products: an array or an object. Sums: ``{"Name": v}``, ``{"<tag>": v}`` or ``[tag, v]``.
    Options: also ``null`` for none. Bytes: a hex string or an array of numbers. Big integers: numbers
    or ``"0x..."`` strings. Errors are :class:`EncodeError` naming the path.
    """
    return _in(_Ctx(typespace, bindings), obj, ty, "value")


def _in(ctx: _Ctx, obj: Any, ty: AlgebraicType, path: str) -> Any:
    ty, binding = ctx.resolve(ty)
    if isinstance(ty, PrimitiveType):
        name = ty.name
        if name == "Bool":
            if not isinstance(obj, bool):
                raise EncodeError(path, f"expected true or false, got {obj!r}")
            return obj
        if name == "String":
            if not isinstance(obj, str):
                raise EncodeError(path, f"expected a string, got {obj!r}")
            return obj
        if name in ("F32", "F64"):
            if isinstance(obj, str) and obj in ("NaN", "Infinity", "-Infinity"):
                return {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}[obj]
            if not isinstance(obj, int | float) or isinstance(obj, bool):
                raise EncodeError(path, f"expected a number, got {obj!r}")
            return float(obj)
        return _check_int(obj, name, path)
    if isinstance(ty, ArrayType):
        if ctx.is_bytes(ty):
            if isinstance(obj, str):
                text = obj[2:] if obj.lower().startswith("0x") else obj
                try:
                    return bytes.fromhex(text)
                except ValueError:
                    raise EncodeError(path, f"expected a hex string, got {obj!r}") from None
            if isinstance(obj, list):
                try:
                    return bytes(obj)
                except (TypeError, ValueError):
                    raise EncodeError(path, "expected an array of numbers 0..255") from None
            raise EncodeError(path, f"expected a hex string or an array of bytes, got {obj!r}")
        if not isinstance(obj, list):
            raise EncodeError(path, f"expected an array, got {obj!r}")
        return [_in(ctx, x, ty.elem, f"{path}[{i}]") for i, x in enumerate(obj)]
    if isinstance(ty, ProductType):
        kind = ty.special_kind
        if kind is not None:
            return _special_in(kind, obj, path)
        n = len(ty.elements)
        if isinstance(obj, Mapping):
            missing = [e.name for e in ty.elements if e.name not in obj]
            if missing:
                raise EncodeError(path, f"missing field(s) {missing}")
            extra = set(obj) - {e.name for e in ty.elements}
            if extra:
                raise EncodeError(path, f"unknown field(s) {sorted(extra)}")
            raw = [obj[e.name] for e in ty.elements]
        elif isinstance(obj, list):
            if len(obj) != n:
                raise EncodeError(path, f"expected {n} elements, got {len(obj)}")
            raw = obj
        elif obj is None and n == 0:
            raw = []
        else:
            raise EncodeError(path, f"expected an object or an array, got {obj!r}")
        values = tuple(
            _in(ctx, x, e.type, f"{path}.{e.name or i}")
            for i, (x, e) in enumerate(zip(raw, ty.elements, strict=True))
        )
        return ctx.product(ty, binding).make(values)
    if isinstance(ty, SumType):
        kind = ty.special_kind
        if kind == "option" and obj is None:
            return None
        tag, payload = _sum_in(ty, obj, path)
        variant = ty.variants[tag]
        value = (
            ()
            if variant.type == UNIT and payload in ([], None, {})
            else _in(ctx, payload, variant.type, f"{path}::{variant.name}")
        )
        if kind == "option":
            if tag == 1:
                return None
            inner_ty, _ = ctx.resolve(ty.variants[0].type)
            nested = isinstance(inner_ty, SumType) and inner_ty.special_kind == "option"
            return Some(value) if nested else value
        if kind == "schedule_at":
            return get_special("schedule_at").from_wire((tag, value))
        if isinstance(binding, SumBinding):
            return binding.make(tag, value)
        return SumValue(tag, value, variant.name)
    raise TypeError(f"not an AlgebraicType: {ty!r}")  # pragma: no cover


def _sum_in(ty: SumType, obj: Any, path: str) -> tuple[int, Any]:
    names = [v.name for v in ty.variants]
    if isinstance(obj, Mapping) and len(obj) == 1:
        ((key, payload),) = obj.items()
        if key in names:
            return names.index(key), payload
        if isinstance(key, str) and key.isdigit() and int(key) < len(names):
            return int(key), payload
        raise EncodeError(path, f"unknown variant {key!r}; expected one of {names}")
    if isinstance(obj, list) and len(obj) == 2 and isinstance(obj[0], int) and not isinstance(obj[0], bool):
        if 0 <= obj[0] < len(names):
            return obj[0], obj[1]
        raise EncodeError(path, f"unknown variant tag {obj[0]}")
    if isinstance(obj, str) and obj in names:  # a unit variant given by name alone
        tag = names.index(obj)
        if ty.variants[tag].type == UNIT:
            return tag, []
    raise EncodeError(path, f'expected {{"<variant>": payload}} or [tag, payload], got {obj!r}')


def _special_in(kind: str, obj: Any, path: str) -> Any:
    field_name, size = _SPECIAL_INNER[kind]
    inner = obj
    if isinstance(obj, Mapping):
        if set(obj) != {field_name}:
            raise EncodeError(path, f'expected {{"{field_name}": ...}}, got {obj!r}')
        inner = obj[field_name]
    elif isinstance(obj, list) and len(obj) == 1:
        inner = obj[0]
    binding = get_special(kind)
    if size:
        if isinstance(inner, str) and not inner.lower().startswith(("0x", "-")) and len(inner) == 2 * size:
            inner = "0x" + inner  # a bare big-endian hex string, as the identity routes print it
        number = _check_int(inner, "U256" if size == 32 else "U128", path)
        return binding.from_wire(number.to_bytes(size, "little"))
    return binding.from_wire(_check_int(inner, "I64", path))
