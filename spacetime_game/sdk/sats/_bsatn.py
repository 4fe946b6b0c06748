"""BSATN codecs, compiled once per type into straight-line Python (docs/protocol.md section 4.1).

``compile_codec`` turns an :class:`AlgebraicType` into a :class:`Codec`. The compiler writes the source of
one decode and one encode function for the type, with every non-recursive ``Ref`` inlined, runs of
fixed-width fields fused into one precomputed :class:`struct.Struct`, and arrays of fixed-width primitives
read in one ``unpack_from``. Fixed-width products also get a columnar bulk decoder over
``Struct.iter_unpack`` for row lists.

Every failure is a :class:`DecodeError` (or :class:`EncodeError`) naming the type path and the byte
offset; length prefixes are checked against the bytes that remain before anything is allocated.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from operator import itemgetter
from typing import Any, Final, TypeAlias

from ._errors import DecodeError, EncodeError
from ._types import (
    UNIT,
    AlgebraicType,
    ArrayType,
    PrimitiveType,
    ProductType,
    RefType,
    SumType,
    Typespace,
)
from ._values import ProductBinding, SharedValues, Some, SumBinding, SumValue, get_special

__all__ = ["Binding", "Codec", "compile_codec"]

Binding: TypeAlias = ProductBinding | SumBinding
BindingKey: TypeAlias = Any

#: struct codes of the primitives that struct handles natively (Bool is read as B and checked).
_CODES: Final[dict[str, str]] = {
    "Bool": "B",
    "I8": "b",
    "U8": "B",
    "I16": "h",
    "U16": "H",
    "I32": "i",
    "U32": "I",
    "I64": "q",
    "U64": "Q",
    "F32": "f",
    "F64": "d",
}
_BIG: Final[dict[str, tuple[int, bool]]] = {
    "I128": (16, True),
    "U128": (16, False),
    "I256": (32, True),
    "U256": (32, False),
}
_SPECIAL_WIRE: Final[dict[str, tuple[str, int]]] = {
    "identity": ("32s", 32),
    "connection_id": ("16s", 16),
    "uuid": ("16s", 16),
    "timestamp": ("q", 8),
    "time_duration": ("q", 8),
}
#: Arrays whose elements take no bytes (``Array<()>``) cannot be bounded by the data; cap them.
MAX_ZERO_SIZE_ELEMENTS: Final = 1 << 16

_U32 = struct.Struct("<I")


# --------------------------------------------------------------------------------------------------
# failure helpers called from generated code (only on the error path)
# --------------------------------------------------------------------------------------------------
def _short(path: str, off: int, need: int, n: int) -> None:
    raise DecodeError(path, off, f"truncated: needs {need} bytes, {max(n - off, 0)} remain")


def _short_run(prefix: str, run: tuple[tuple[str, int], ...], off: int, n: int) -> None:
    pos = off
    for suffix, size in run:
        if pos + size > n:
            raise DecodeError(
                prefix + suffix, pos, f"truncated: needs {size} bytes, {max(n - pos, 0)} remain"
            )
        pos += size
    raise DecodeError(prefix, off, "truncated")  # pragma: no cover - the run did not fit as a whole


def _lie(path: str, off: int, count: int, remain: int, what: str) -> None:
    raise DecodeError(path, off, f"length prefix {count} ({what}) exceeds the {remain} bytes that remain")


def _bad_bool(path: str, off: int, value: int) -> None:
    raise DecodeError(path, off, f"invalid bool byte 0x{value:02x} (must be 0 or 1)")


def _bad_tag(path: str, off: int, tag: int, count: int) -> None:
    raise DecodeError(path, off, f"unknown sum tag {tag} (the type has {count} variants)")


def _bad_utf8(path: str, off: int, exc: UnicodeDecodeError) -> None:
    raise DecodeError(path, off + exc.start, f"invalid UTF-8 in string: {exc.reason}")


def _too_deep(path: str, off: int) -> DecodeError:
    return DecodeError(path, off, "value nested too deeply to decode (Python recursion limit)")


def _enc_fail(path: str, reason: str) -> None:
    raise EncodeError(path, reason)


def _enc_type(path: str, expected: str, value: Any) -> None:
    raise EncodeError(path, f"expected {expected}, got {type(value).__name__} {_short_repr(value)}")


def _short_repr(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _diag_pack(prefix: str, leaves: tuple[tuple[str, str], ...], values: tuple[Any, ...]) -> None:
    """Find which leaf of a fused struct run refused its value."""
    for (suffix, code), value in zip(leaves, values, strict=True):
        try:
            struct.pack("<" + code, value)
        except (struct.error, OverflowError, TypeError) as exc:
            raise EncodeError(
                prefix + suffix, f"{exc} (got {type(value).__name__} {_short_repr(value)})"
            ) from None
    raise EncodeError(prefix, "value does not fit")  # pragma: no cover


def _diag_array(path: str, code: str, values: Sequence[Any]) -> None:
    """Find which element of an array of fixed-width primitives refused its value."""
    for i, value in enumerate(values):
        try:
            struct.pack("<" + code, value)
        except (struct.error, OverflowError, TypeError) as exc:
            raise EncodeError(
                f"{path}[{i}]", f"{exc} (got {type(value).__name__} {_short_repr(value)})"
            ) from None
    raise EncodeError(path, "value does not fit")  # pragma: no cover


def _check_bool(path: str, value: Any) -> int:
    if value is True:
        return 1
    if value is False:
        return 0
    raise EncodeError(path, f"expected bool, got {type(value).__name__} {_short_repr(value)}")


def _to_special(binding_to_wire: Callable[[Any], Any], path: str, value: Any) -> Any:
    try:
        return binding_to_wire(value)
    except (TypeError, ValueError, AttributeError) as exc:
        raise EncodeError(path, str(exc)) from None


def _big_to_bytes(path: str, value: Any, size: int, signed: bool) -> bytes:
    if not isinstance(value, int) or isinstance(value, bool):
        raise EncodeError(path, f"expected int, got {type(value).__name__} {_short_repr(value)}")
    try:
        return value.to_bytes(size, "little", signed=signed)
    except OverflowError:
        kind = ("i" if signed else "u") + str(size * 8)
        raise EncodeError(path, f"{value} is out of range for {kind}") from None


def _seq_fields(path: str, fields: Callable[[Any], Sequence[Any]], value: Any, count: int) -> Sequence[Any]:
    try:
        got = fields(value)
    except (TypeError, KeyError, AttributeError, IndexError) as exc:
        raise EncodeError(
            path, f"not a value of this product: {exc!r} (got {type(value).__name__})"
        ) from None
    if len(got) != count:
        raise EncodeError(path, f"expected {count} fields, got {len(got)}")
    return got


def _check_seq(path: str, value: Any) -> None:
    if isinstance(value, str | bytes | bytearray) or not isinstance(value, Sequence):
        raise EncodeError(path, f"expected a list, got {type(value).__name__} {_short_repr(value)}")


def _utf8(path: str, value: Any) -> bytes:
    if not isinstance(value, str):
        raise EncodeError(path, f"expected str, got {type(value).__name__} {_short_repr(value)}")
    try:
        return value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise EncodeError(path, f"string is not valid UTF-8: {exc.reason}") from None


def _as_bytes(path: str, value: Any) -> bytes:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    raise EncodeError(path, f"expected bytes, got {type(value).__name__} {_short_repr(value)}")


def _split_sum(path: str, split: Callable[[Any], tuple[int, Any]], value: Any) -> tuple[int, Any]:
    try:
        return split(value)
    except (TypeError, ValueError, AttributeError, KeyError) as exc:
        raise EncodeError(path, f"not a value of this sum: {exc} (got {type(value).__name__})") from None


def _default_split(value: Any) -> tuple[int, Any]:
    if not isinstance(value, SumValue):
        raise TypeError(f"expected SumValue, got {type(value).__name__} {_short_repr(value)}")
    return value.tag, value.value


def _default_product(names: tuple[str | None, ...]) -> ProductBinding:
    if names and all(names):
        keys = tuple(str(n) for n in names)

        def make(t: tuple[Any, ...]) -> dict[str, Any]:
            return dict(zip(keys, t, strict=True))

        make.dict_keys = keys  # type: ignore[attr-defined]

        def fields(v: Any) -> Sequence[Any]:
            if not isinstance(v, Mapping):
                raise TypeError(f"expected a dict with keys {list(keys)}")
            return [v[k] for k in keys]

        if len(keys) > 1:
            getter = itemgetter(*keys)

            def fields_fast(v: Any) -> Sequence[Any]:
                return getter(v) if v.__class__ is dict else fields(v)

            return ProductBinding(make, fields_fast, dict)
        return ProductBinding(make, fields, dict)

    def fields_t(v: Any) -> Sequence[Any]:
        if not isinstance(v, tuple | list):
            raise TypeError("expected a tuple")
        return v

    return ProductBinding(tuple, fields_t, tuple)


def _fstr(template: str) -> str:
    """A Python f-string literal for a path template (``{i3}`` placeholders stay live)."""
    return "f" + repr(template)


def _lit(name: str | None, index: int) -> str:
    """A path component for a field or variant name, safe inside an f-string template."""
    text = name if name is not None else str(index)
    return text.replace("{", "{{").replace("}", "}}")


# --------------------------------------------------------------------------------------------------
# flat (fixed-width, struct-packable) plans
# --------------------------------------------------------------------------------------------------
@dataclass
class _Leaf:
    code: str  # struct code, e.g. "I", "32s"
    size: int
    suffix: str  # path suffix relative to the run root, e.g. ".owner"
    kind: str  # "prim", "bool", "big", "special"
    conv: Callable[[Any], Any] | None = None  # wire -> value (special)
    to_wire: Callable[[Any], Any] | None = None
    big: tuple[int, bool] | None = None


@dataclass
class _FlatProduct:
    children: list[_Leaf | _FlatProduct]
    binding: ProductBinding
    suffix: str
    names: tuple[str | None, ...] = ()


_FlatNode: TypeAlias = "_Leaf | _FlatProduct"


def _leaves(node: _FlatNode) -> Iterator[_Leaf]:
    if isinstance(node, _Leaf):
        yield node
    else:
        for c in node.children:
            yield from _leaves(c)


# --------------------------------------------------------------------------------------------------
# the compiler
# --------------------------------------------------------------------------------------------------
#: Arrays of fixed-width primitives shorter than this decode with a prepared ``struct.Struct``.
_SHORT_ARRAY: Final = 32


@functools.cache
def _short_unpackers(code: str) -> tuple[Callable[[bytes, int], tuple[Any, ...]], ...]:
    """``unpack_from`` of ``<{i}{code}`` for every length ``i`` below ``_SHORT_ARRAY``."""
    return tuple(struct.Struct(f"<{i}{code}").unpack_from for i in range(_SHORT_ARRAY))


class _Compiler:
    def __init__(
        self, typespace: Typespace, bindings: Mapping[BindingKey, Binding], tuples: bool = False
    ) -> None:
        self.tuples = tuples
        self.ts = typespace
        self.bindings = bindings
        self.shared: list[SharedValues] = []  # the SharedValues the decoders use
        self.ns: dict[str, Any] = {
            "DecodeError": DecodeError,
            "EncodeError": EncodeError,
            "_short": _short,
            "_short_run": _short_run,
            "_lie": _lie,
            "_bad_bool": _bad_bool,
            "_bad_tag": _bad_tag,
            "_bad_utf8": _bad_utf8,
            "_enc_fail": _enc_fail,
            "_enc_type": _enc_type,
            "_diag_pack": _diag_pack,
            "_diag_array": _diag_array,
            "_check_bool": _check_bool,
            "_to_special": _to_special,
            "_big_to_bytes": _big_to_bytes,
            "_seq_fields": _seq_fields,
            "_check_seq": _check_seq,
            "_utf8": _utf8,
            "_as_bytes": _as_bytes,
            "_split_sum": _split_sum,
            "_U32": _U32.unpack_from,
            "_U32P": _U32.pack,
            "_unpack_from": struct.unpack_from,
            "_pack": struct.pack,
            "_struct_error": struct.error,
            "_Some": Some,
            "_SumValue": SumValue,
            "_BOOL": (False, True),
            "_from_bytes": int.from_bytes,
            "_tuple_new": tuple.__new__,
            "_bytes_new": bytes.__new__,
        }
        self.counter = 0
        self.consts: dict[int, str] = {}
        self.functions: list[str] = []
        self.dec_refs: dict[int, str] = {}
        self.enc_refs: dict[int, str] = {}
        self.active: set[int] = set()  # Ref indexes being inlined (for recursion)
        self._flat_cache: dict[int, bool] = {}

    # ----- helpers ---------------------------------------------------------------------------
    def var(self, prefix: str = "v") -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    def shared_guard(self) -> list[str]:
        """Lines that start each entry decoder: a full SharedValues memory is emptied, so that the values
        of the calls to come can be shared (a call stops remembering new values once it is full)."""
        return [
            f"    if {self.const(sv.cache.__len__, 'shlen')}() >= {sv.limit}: {self.const(sv.cache.clear, 'shclr')}()"
            for sv in self.shared
        ]

    def const(self, obj: Any, prefix: str = "c") -> str:
        key = id(obj)
        if key in self.consts:
            return self.consts[key]
        name = self.var("_" + prefix)
        self.ns[name] = obj
        self.consts[key] = name
        return name

    def resolve(
        self, ty: AlgebraicType, binding: Binding | None = None
    ) -> tuple[AlgebraicType, Binding | None]:
        """Follow Refs, picking up the binding attached to the Ref or to the type itself."""
        seen: set[int] = set()
        while isinstance(ty, RefType):
            if binding is None:
                binding = self.bindings.get(ty.index)
            if ty.index in seen or not 0 <= ty.index < len(self.ts):
                self.ts.resolve(ty)  # raises SchemaError with the reason
            seen.add(ty.index)
            ty = self.ts[ty.index]
        if binding is None:
            try:
                binding = self.bindings.get(ty)
            except TypeError:  # pragma: no cover - unhashable key
                binding = None
        return ty, binding

    def product_binding(self, ty: ProductType, binding: Binding | None) -> ProductBinding:
        if isinstance(binding, ProductBinding):
            return binding
        return _default_product(ty.names)

    # ----- sizes -----------------------------------------------------------------------------
    def min_size(self, ty: AlgebraicType, seen: frozenset[int] = frozenset()) -> int:
        if isinstance(ty, RefType):
            if ty.index in seen:
                return 0
            return self.min_size(self.ts[ty.index], seen | {ty.index})
        if isinstance(ty, PrimitiveType):
            if ty.name == "String":
                return 4
            return struct.calcsize("<" + _CODES[ty.name]) if ty.name in _CODES else _BIG[ty.name][0]
        if isinstance(ty, ArrayType):
            return 4
        if isinstance(ty, ProductType):
            return sum(self.min_size(e.type, seen) for e in ty.elements)
        if isinstance(ty, SumType):
            return 1 + min((self.min_size(v.type, seen) for v in ty.variants), default=0)
        raise TypeError(f"not an AlgebraicType: {ty!r}")  # pragma: no cover

    def fixed_size(self, ty: AlgebraicType, seen: frozenset[int] = frozenset()) -> int | None:
        if isinstance(ty, RefType):
            if ty.index in seen:
                return None
            return self.fixed_size(self.ts[ty.index], seen | {ty.index})
        if isinstance(ty, PrimitiveType):
            return None if ty.name == "String" else self.min_size(ty)
        if isinstance(ty, ArrayType):
            return None
        if isinstance(ty, ProductType):
            total = 0
            for e in ty.elements:
                s = self.fixed_size(e.type, seen)
                if s is None:
                    return None
                total += s
            return total
        if isinstance(ty, SumType):
            sizes = {self.fixed_size(v.type, seen) for v in ty.variants}
            if len(sizes) == 1 and None not in sizes:
                (s,) = sizes
                return None if s is None else 1 + s
            return None
        return None  # pragma: no cover

    # ----- flat plans ------------------------------------------------------------------------
    def flat(
        self,
        ty: AlgebraicType,
        suffix: str,
        binding: Binding | None = None,
        seen: frozenset[int] = frozenset(),
    ) -> _FlatNode | None:
        """A struct plan for a fixed-width type made of primitives, specials and products, or None."""
        if isinstance(ty, RefType):
            if ty.index in seen:
                return None
            seen = seen | {ty.index}
        rty, binding = self.resolve(ty, binding)
        if isinstance(rty, PrimitiveType):
            if rty.name in _CODES:
                return _Leaf(
                    _CODES[rty.name],
                    struct.calcsize("<" + _CODES[rty.name]),
                    suffix,
                    "bool" if rty.name == "Bool" else "prim",
                )
            if rty.name in _BIG:
                size, signed = _BIG[rty.name]
                return _Leaf(f"{size}s", size, suffix, "big", big=(size, signed))
            return None
        if isinstance(rty, ProductType):
            kind = rty.special_kind
            if kind is not None:
                code, size = _SPECIAL_WIRE[kind]
                sb = get_special(kind)
                return _Leaf(code, size, suffix, "special", conv=sb.from_wire, to_wire=sb.to_wire)
            children: list[_FlatNode] = []
            for i, e in enumerate(rty.elements):
                child = self.flat(e.type, f"{suffix}.{_lit(e.name, i)}", None, seen)
                if child is None:
                    return None
                children.append(child)
            return _FlatProduct(children, self.product_binding(rty, binding), suffix, rty.names)
        return None

    # ----- decode emission -----------------------------------------------------------------------
    def emit_flat_decode(self, node: _FlatNode, tgt: str, ind: str, path: str, L: list[str]) -> None:
        self.emit_flat_run([(node, tgt)], ind, path, L)

    def emit_flat_run(self, items: list[tuple[_FlatNode, str]], ind: str, path: str, L: list[str]) -> None:
        """Decode consecutive fixed-width values with one struct; ``path`` + each leaf suffix names it."""
        leaves = [lf for node, _ in items for lf in _leaves(node)]
        if not leaves:  # only empty products
            for node, tgt in items:
                L.append(f"{ind}{tgt} = {self._flat_expr(node, {})}")
            return
        size = sum(lf.size for lf in leaves)
        fmt = struct.Struct("<" + "".join(lf.code for lf in leaves))
        run = tuple((lf.suffix, lf.size) for lf in leaves)
        names = [self.var("a") for _ in leaves]
        unpack = self.const(fmt.unpack_from, "S")
        L.append(f"{ind}try:")
        L.append(f"{ind}    {', '.join(names)}{',' if len(names) == 1 else ''} = {unpack}(buf, off)")
        L.append(f"{ind}except _struct_error:")
        L.append(f"{ind}    _short_run({_fstr(path)}, {self.const(run, 'run')}, off, n)")
        pos = 0
        by_leaf: dict[int, str] = {}
        for lf, nm in zip(leaves, names, strict=True):
            if lf.kind == "bool":
                L.append(f"{ind}if {nm} > 1: _bad_bool({_fstr(path + lf.suffix)}, off + {pos}, {nm})")
                L.append(f"{ind}{nm} = _BOOL[{nm}]")
            elif lf.kind == "big":
                assert lf.big is not None
                L.append(f"{ind}{nm} = _from_bytes({nm}, 'little', signed={lf.big[1]})")
            elif lf.kind == "special":
                assert lf.conv is not None
                L.append(f"{ind}{nm} = {self.call_expr(lf.conv, 'sp', nm)}")
            by_leaf[id(lf)] = nm
            pos += lf.size
        L.append(f"{ind}off += {size}")
        for node, tgt in items:
            L.append(f"{ind}{tgt} = {self._flat_expr(node, by_leaf)}")

    def _flat_expr(self, node: _FlatNode, by_leaf: dict[int, str]) -> str:
        if isinstance(node, _Leaf):
            return by_leaf[id(node)]
        return self.make_expr(node.binding, [self._flat_expr(c, by_leaf) for c in node.children])

    def make_expr(self, binding: ProductBinding, parts: list[str]) -> str:
        """The expression that builds a product value from the field expressions ``parts``."""
        keys = getattr(binding.make, "dict_keys", None)
        if keys is not None:  # the default dict binding: a dict display is much faster than a call
            return "{" + ", ".join(f"{k!r}: {p}" for k, p in zip(keys, parts, strict=True)) + "}"
        tup = "(" + "".join(p + ", " for p in parts) + ")"
        return self.call_expr(binding.make, "mk", tup)

    def call_expr(self, fn: Callable[..., Any], prefix: str, args: str) -> str:
        """The expression that calls ``fn`` on ``args``. A ``partial(tuple.__new__, cls)`` (or
        ``bytes.__new__``) becomes a direct ``tuple.__new__(cls, ...)``: one C call instead of two. A
        :class:`SharedValues` is looked up inline (its ``cache.get``) and called only for new values."""
        if isinstance(fn, SharedValues) and args.isidentifier():
            # the shared object if there is one, else a new one, remembered while there is room (all C
            # calls); the entry functions empty a full memory (see shared_guard)
            if all(sv is not fn for sv in self.shared):
                self.shared.append(fn)
            new = self.call_expr(fn.make, prefix, args)
            get, keep = (
                self.const(fn.cache.get, prefix + "get"),
                self.const(fn.cache.setdefault, prefix + "keep"),
            )
            size = self.const(fn.cache.__len__, "shlen")
            return f"({get}({args}) or ({keep}({args}, {new}) if {size}() < {fn.limit} else {new}))"
        if (
            isinstance(fn, partial)
            and fn.func in (tuple.__new__, bytes.__new__)
            and len(fn.args) == 1
            and not fn.keywords
        ):
            ctor = "_tuple_new" if fn.func is tuple.__new__ else "_bytes_new"
            return f"{ctor}({self.const(fn.args[0], 'cls')}, {args})"
        return f"{self.const(fn, prefix)}({args})"

    def emit_decode(
        self, ty: AlgebraicType, tgt: str, ind: str, path: str, L: list[str], binding: Binding | None = None
    ) -> None:
        if isinstance(ty, RefType) and ty.index in self.active:
            fn = self.dec_ref_function(ty.index)
            L.append(f"{ind}try:")
            L.append(f"{ind}    {tgt}, off = {fn}(buf, off, n)")
            L.append(f"{ind}except DecodeError as x:")
            L.append(f"{ind}    raise x.within({_fstr(path)}) from None")
            return
        if isinstance(ty, RefType):
            self.active.add(ty.index)
            try:
                self.emit_decode(
                    self.ts[self._checked_ref(ty)], tgt, ind, path, L, binding or self.bindings.get(ty.index)
                )
            finally:
                self.active.discard(ty.index)
            return
        node = self.flat(ty, "", binding)
        if node is not None:
            self.emit_flat_decode(node, tgt, ind, path, L)
            return
        rty, binding = self.resolve(ty, binding)
        if isinstance(rty, PrimitiveType):  # String (all others are flat)
            self.emit_len(ind, path, L)
            e = self.var("e")
            L.append(f"{ind}{e} = off + ln")
            L.append(f"{ind}if {e} > n: _lie({_fstr(path)}, off - 4, ln, n - off, 'string bytes')")
            L.append(f"{ind}try:")
            L.append(f"{ind}    {tgt} = buf[off:{e}].decode()")
            L.append(f"{ind}except UnicodeDecodeError as x:")
            L.append(f"{ind}    _bad_utf8({_fstr(path)}, off, x)")
            L.append(f"{ind}off = {e}")
        elif isinstance(rty, ArrayType):
            self.emit_array_decode(rty, tgt, ind, path, L)
        elif isinstance(rty, ProductType):
            pb = self.product_binding(rty, binding)
            names = [self.var("f") for _ in rty.elements]
            run: list[tuple[_FlatNode, str]] = []
            for i, el in enumerate(rty.elements):
                sub = f".{_lit(el.name, i)}"
                fnode = self.flat(el.type, sub)
                if fnode is not None:
                    run.append((fnode, names[i]))
                    continue
                if run:
                    self.emit_flat_run(run, ind, path, L)
                    run = []
                self.emit_decode(el.type, names[i], ind, path + sub, L)
            if run:
                self.emit_flat_run(run, ind, path, L)
            L.append(f"{ind}{tgt} = {self.make_expr(pb, names)}")
        elif isinstance(rty, SumType):
            self.emit_sum_decode(rty, binding, tgt, ind, path, L)
        else:  # pragma: no cover
            raise TypeError(f"not an AlgebraicType: {rty!r}")

    def _checked_ref(self, ty: RefType) -> int:
        if not 0 <= ty.index < len(self.ts):
            self.ts.resolve(ty)  # raises SchemaError
        return ty.index

    def emit_len(self, ind: str, path: str, L: list[str]) -> None:
        L.append(f"{ind}try:")
        L.append(f"{ind}    ln, = _U32(buf, off)")
        L.append(f"{ind}except _struct_error:")
        L.append(f"{ind}    _short({_fstr(path)}, off, 4, n)")
        L.append(f"{ind}off += 4")

    def emit_array_decode(self, ty: ArrayType, tgt: str, ind: str, path: str, L: list[str]) -> None:
        elem, _ = self.resolve(ty.elem)
        self.emit_len(ind, path, L)
        if isinstance(elem, PrimitiveType) and elem.name == "U8":
            e = self.var("e")
            L.append(f"{ind}{e} = off + ln")
            L.append(f"{ind}if {e} > n: _lie({_fstr(path)}, off - 4, ln, n - off, 'bytes')")
            L.append(f"{ind}{tgt} = buf[off:{e}]")
            L.append(f"{ind}off = {e}")
            return
        if isinstance(elem, PrimitiveType) and elem.name in _CODES and elem.name != "Bool":
            code = _CODES[elem.name]
            size = struct.calcsize("<" + code)
            e = self.var("e")
            L.append(f"{ind}{e} = off + ln * {size}")
            L.append(
                f"{ind}if {e} > n: _lie({_fstr(path)}, off - 4, ln, n - off, 'elements of {size} bytes')"
            )
            conv = "" if self.tuples else "list"
            # short arrays (the usual case) unpack with a struct made once per length and code, instead of
            # formatting its format string and looking up struct's cache for each value
            short = self.const(_short_unpackers(code), f"arr{code}")
            L.append(
                f"{ind}{tgt} = {conv}({short}[ln](buf, off) if ln < {_SHORT_ARRAY} else"
                f" _unpack_from('<%d{code}' % ln, buf, off))"
            )
            L.append(f"{ind}off = {e}")
            return
        mn = self.min_size(ty.elem)
        if mn > 0:
            L.append(
                f"{ind}if ln * {mn} > n - off: _lie({_fstr(path)}, off - 4, ln, n - off, "
                f"'elements of at least {mn} bytes')"
            )
        else:
            L.append(
                f"{ind}if ln > {MAX_ZERO_SIZE_ELEMENTS}: _lie({_fstr(path)}, off - 4, ln, n - off, "
                f"'elements that may take no bytes; at most {MAX_ZERO_SIZE_ELEMENTS} allowed')"
            )
        lst, i, v = self.var("l"), self.var("i"), self.var("v")
        L.append(f"{ind}{lst} = []")
        L.append(f"{ind}for {i} in range(ln):")
        self.emit_decode(ty.elem, v, ind + "    ", f"{path}[{{{i}}}]", L)
        L.append(f"{ind}    {lst}.append({v})")
        L.append(f"{ind}{tgt} = tuple({lst})" if self.tuples else f"{ind}{tgt} = {lst}")

    def emit_sum_decode(
        self, ty: SumType, binding: Binding | None, tgt: str, ind: str, path: str, L: list[str]
    ) -> None:
        kind = ty.special_kind
        t = self.var("t")
        L.append(f"{ind}if off >= n: _short({_fstr(path)}, off, 1, n)")
        L.append(f"{ind}{t} = buf[off]")
        L.append(f"{ind}off += 1")
        if kind == "option":
            inner_t, _ = self.resolve(ty.variants[0].type)
            nested = isinstance(inner_t, SumType) and inner_t.special_kind == "option"
            L.append(f"{ind}if {t} == 0:")
            v = self.var("v")
            self.emit_decode(ty.variants[0].type, v, ind + "    ", f"{path}::some", L)
            L.append(f"{ind}    {tgt} = _Some({v})" if nested else f"{ind}    {tgt} = {v}")
            L.append(f"{ind}elif {t} == 1:")
            L.append(f"{ind}    {tgt} = None")
            L.append(f"{ind}else:")
            L.append(f"{ind}    _bad_tag({_fstr(path)}, off - 1, {t}, 2)")
            return
        if kind == "schedule_at":
            make_expr = f"{self.const(get_special('schedule_at').from_wire, 'sp')}(({t}, {{p}}))"
        elif isinstance(binding, SumBinding):
            make_expr = f"{self.const(binding.make, 'mk')}({t}, {{p}})"
        else:
            names = self.const(tuple(v.name for v in ty.variants), "vn")
            make_expr = f"_SumValue({t}, {{p}}, {names}[{t}])"
        for idx, variant in enumerate(ty.variants):
            L.append(f"{ind}{'if' if idx == 0 else 'elif'} {t} == {idx}:")
            if variant.type == UNIT:
                L.append(f"{ind}    {tgt} = " + make_expr.format(p="()"))
            else:
                p = self.var("p")
                self.emit_decode(variant.type, p, ind + "    ", f"{path}::{_lit(variant.name, idx)}", L)
                L.append(f"{ind}    {tgt} = " + make_expr.format(p=p))
        L.append(f"{ind}{'else' if ty.variants else 'if True'}:")
        L.append(f"{ind}    _bad_tag({_fstr(path)}, off - 1, {t}, {len(ty.variants)})")

    def dec_ref_function(self, index: int) -> str:
        if index in self.dec_refs:
            return self.dec_refs[index]
        name = f"_dref{index}"
        self.dec_refs[index] = name
        L = [f"def {name}(buf, off, n):"]
        saved = self.active
        self.active = {index}
        try:
            self.emit_decode(self.ts[index], "r", "    ", "", L, self.bindings.get(index))
        finally:
            self.active = saved
        L.append("    return r, off")
        self.functions.append("\n".join(L))
        return name

    # ----- encode emission -------------------------------------------------------------------------
    def emit_flat_encode(self, node: _FlatNode, src: str, ind: str, path: str, L: list[str]) -> None:
        self.emit_flat_encode_run([(node, src)], ind, path, L)

    def emit_flat_encode_run(
        self, items: list[tuple[_FlatNode, str]], ind: str, path: str, L: list[str]
    ) -> None:
        """Encode consecutive fixed-width values with one struct pack."""
        leaves: list[tuple[_Leaf, str]] = []
        for node, src in items:
            self._flat_split(node, src, ind, path, L, leaves)
        if not leaves:
            return
        fmt = struct.Struct("<" + "".join(lf.code for lf, _ in leaves))
        args = []
        for lf, expr in leaves:
            p = path + lf.suffix
            if lf.kind == "bool":
                args.append(f"_check_bool({_fstr(p)}, {expr})")
            elif lf.kind == "big":
                assert lf.big is not None
                args.append(f"_big_to_bytes({_fstr(p)}, {expr}, {lf.big[0]}, {lf.big[1]})")
            elif lf.kind == "special":
                args.append(f"_to_special({self.const(lf.to_wire, 'tw')}, {_fstr(p)}, {expr})")
            else:
                args.append(expr)
        vals = self.var("w")
        L.append(f"{ind}{vals} = ({''.join(a + ', ' for a in args)})")
        L.append(f"{ind}try:")
        L.append(f"{ind}    out({self.const(fmt.pack, 'P')}(*{vals}))")
        L.append(f"{ind}except (_struct_error, OverflowError, TypeError):")
        info = self.const(tuple((lf.suffix, lf.code) for lf, _ in leaves), "lv")
        L.append(f"{ind}    _diag_pack({_fstr(path)}, {info}, {vals})")

    def _flat_split(
        self, node: _FlatNode, src: str, ind: str, path: str, L: list[str], acc: list[tuple[_Leaf, str]]
    ) -> None:
        if isinstance(node, _Leaf):
            acc.append((node, src))
            return
        fs = self.emit_fields(node.binding.fields, src, len(node.children), ind, path + node.suffix, L)
        for i, child in enumerate(node.children):
            self._flat_split(child, f"{fs}[{i}]", ind, path, L, acc)

    def emit_fields(
        self, fields: Callable[[Any], Sequence[Any]], src: str, count: int, ind: str, path: str, L: list[str]
    ) -> str:
        """Inline ``fs = fields(src)``; the checked helper runs only when that fails or has the wrong length."""
        fs = self.var("fs")
        fl = self.const(fields, "fl")
        L.append(f"{ind}try:")
        L.append(f"{ind}    {fs} = {fl}({src})")
        L.append(f"{ind}    if len({fs}) != {count}: raise IndexError")
        L.append(f"{ind}except (TypeError, KeyError, AttributeError, IndexError):")
        L.append(f"{ind}    {fs} = _seq_fields({_fstr(path)}, {fl}, {src}, {count})")
        return fs

    def emit_encode(
        self, ty: AlgebraicType, src: str, ind: str, path: str, L: list[str], binding: Binding | None = None
    ) -> None:
        if isinstance(ty, RefType) and ty.index in self.active:
            fn = self.enc_ref_function(ty.index)
            L.append(f"{ind}try:")
            L.append(f"{ind}    {fn}({src}, out)")
            L.append(f"{ind}except EncodeError as x:")
            L.append(f"{ind}    raise x.within({_fstr(path)}) from None")
            return
        if isinstance(ty, RefType):
            self.active.add(ty.index)
            try:
                self.emit_encode(
                    self.ts[self._checked_ref(ty)], src, ind, path, L, binding or self.bindings.get(ty.index)
                )
            finally:
                self.active.discard(ty.index)
            return
        node = self.flat(ty, "", binding)
        if node is not None:
            self.emit_flat_encode(node, src, ind, path, L)
            return
        rty, binding = self.resolve(ty, binding)
        if isinstance(rty, PrimitiveType):  # String
            b = self.var("b")
            L.append(f"{ind}try:")
            L.append(f"{ind}    {b} = {src}.encode()")
            L.append(f"{ind}    if {src}.__class__ is not str: raise TypeError")
            L.append(f"{ind}except (AttributeError, TypeError, UnicodeEncodeError):")
            L.append(f"{ind}    {b} = _utf8({_fstr(path)}, {src})")
            L.append(f"{ind}out(_U32P(len({b})))")
            L.append(f"{ind}out({b})")
        elif isinstance(rty, ArrayType):
            self.emit_array_encode(rty, src, ind, path, L)
        elif isinstance(rty, ProductType):
            pb = self.product_binding(rty, binding)
            fs = self.emit_fields(pb.fields, src, len(rty.elements), ind, path, L)
            run: list[tuple[_FlatNode, str]] = []
            for i, el in enumerate(rty.elements):
                sub = f".{_lit(el.name, i)}"
                fnode = self.flat(el.type, sub)
                if fnode is not None:
                    run.append((fnode, f"{fs}[{i}]"))
                    continue
                if run:
                    self.emit_flat_encode_run(run, ind, path, L)
                    run = []
                self.emit_encode(el.type, f"{fs}[{i}]", ind, path + sub, L)
            if run:
                self.emit_flat_encode_run(run, ind, path, L)
        elif isinstance(rty, SumType):
            self.emit_sum_encode(rty, binding, src, ind, path, L)
        else:  # pragma: no cover
            raise TypeError(f"not an AlgebraicType: {rty!r}")

    def emit_array_encode(self, ty: ArrayType, src: str, ind: str, path: str, L: list[str]) -> None:
        elem, _ = self.resolve(ty.elem)
        if isinstance(elem, PrimitiveType) and elem.name == "U8":
            b = self.var("b")
            L.append(f"{ind}{b} = {src}")
            L.append(f"{ind}if {b}.__class__ is not bytes: {b} = _as_bytes({_fstr(path)}, {b})")
            L.append(f"{ind}out(_U32P(len({b})))")
            L.append(f"{ind}out({b})")
            return
        s = self.var("s")
        L.append(f"{ind}{s} = {src}")
        L.append(
            f"{ind}if {s}.__class__ is not list and {s}.__class__ is not tuple: _check_seq({_fstr(path)}, {s})"
        )
        L.append(f"{ind}out(_U32P(len({s})))")
        if isinstance(elem, PrimitiveType) and elem.name in _CODES and elem.name != "Bool":
            code = _CODES[elem.name]
            L.append(f"{ind}try:")
            L.append(f"{ind}    out(_pack('<%d{code}' % len({s}), *{s}))")
            L.append(f"{ind}except (_struct_error, OverflowError, TypeError):")
            L.append(f"{ind}    _diag_array({_fstr(path)}, {code!r}, {s})")
            return
        i, x = self.var("i"), self.var("x")
        L.append(f"{ind}for {i}, {x} in enumerate({s}):")
        self.emit_encode(ty.elem, x, ind + "    ", f"{path}[{{{i}}}]", L)

    def emit_sum_encode(
        self, ty: SumType, binding: Binding | None, src: str, ind: str, path: str, L: list[str]
    ) -> None:
        kind = ty.special_kind
        if kind == "option":
            inner_t, _ = self.resolve(ty.variants[0].type)
            nested = isinstance(inner_t, SumType) and inner_t.special_kind == "option"
            L.append(f"{ind}if {src} is None:")
            L.append(f"{ind}    out(b'\\x01')")
            L.append(f"{ind}else:")
            L.append(f"{ind}    out(b'\\x00')")
            inner = src
            if nested:
                L.append(
                    f"{ind}    if {src}.__class__ is not _Some: _enc_type({_fstr(path)}, 'Some(...) or None', {src})"
                )
                inner = f"{src}.value"
            self.emit_encode(ty.variants[0].type, inner, ind + "    ", f"{path}::some", L)
            return
        if kind == "schedule_at":
            split: Callable[[Any], tuple[int, Any]] = get_special("schedule_at").to_wire
        elif isinstance(binding, SumBinding):
            split = binding.split
        else:
            split = _default_split
        t, p = self.var("t"), self.var("p")
        sl = self.const(split, "sl")
        L.append(f"{ind}try:")
        L.append(f"{ind}    {t}, {p} = {sl}({src})")
        L.append(f"{ind}except (TypeError, ValueError, AttributeError, KeyError):")
        L.append(f"{ind}    {t}, {p} = _split_sum({_fstr(path)}, {sl}, {src})")
        for idx, variant in enumerate(ty.variants):
            L.append(f"{ind}{'if' if idx == 0 else 'elif'} {t} == {idx}:")
            L.append(f"{ind}    out({bytes([idx])!r})")
            if variant.type != UNIT:
                self.emit_encode(variant.type, p, ind + "    ", f"{path}::{_lit(variant.name, idx)}", L)
        L.append(f"{ind}{'else' if ty.variants else 'if True'}:")
        L.append(f"{ind}    _enc_fail({_fstr(path)}, f'unknown variant tag {{{t}!r}}')")

    def enc_ref_function(self, index: int) -> str:
        if index in self.enc_refs:
            return self.enc_refs[index]
        name = f"_eref{index}"
        self.enc_refs[index] = name
        L = [f"def {name}(v, out):"]
        saved = self.active
        self.active = {index}
        try:
            self.emit_encode(self.ts[index], "v", "    ", "", L, self.bindings.get(index))
        finally:
            self.active = saved
        self.functions.append("\n".join(L))
        return name

    # ----- bulk fixed rows -------------------------------------------------------------------
    def emit_bulk(self, node: _FlatNode, fmt: struct.Struct) -> str:
        """Source of ``_bulk(data)``: one list comprehension over ``iter_unpack`` that converts each
        raw tuple in place (bools through ``_BOOL[...]``, which raises IndexError on a bad byte)."""
        leaves = list(_leaves(node))
        names = [self.var("a") for _ in leaves]
        by_leaf: dict[int, str] = {}
        for lf, nm in zip(leaves, names, strict=True):
            if lf.kind == "bool":
                by_leaf[id(lf)] = f"_BOOL[{nm}]"
            elif lf.kind == "big":
                assert lf.big is not None
                by_leaf[id(lf)] = f"_from_bytes({nm}, 'little', signed={lf.big[1]})"
            elif lf.kind == "special":
                assert lf.conv is not None
                by_leaf[id(lf)] = self.call_expr(lf.conv, "sp", nm)
            else:
                by_leaf[id(lf)] = nm
        target = ", ".join(names) + ("," if len(names) == 1 else "")
        it = self.const(fmt.iter_unpack, "it")
        shared = [lf.conv for lf in leaves if lf.kind == "special" and isinstance(lf.conv, SharedValues)]
        if not shared:
            body = f"    return [{self._flat_expr(node, by_leaf)} for {target} in {it}(data)]"
            return "\n".join(["def _bulk(data):", *self.shared_guard(), body])
        # Sharing pays when values repeat (16 owners over 100,000 rows); when nearly every value is new
        # (an identity per row) the lookups cost a quarter of the decode for nothing. So a call whose
        # values were mostly new makes the next SHARE_PAUSE calls of fewer than SHARE_PAUSE_ROWS rows (the
        # messages of an update stream, where speed counts) decode without them, then it tries again; a
        # bigger load (where sharing saves the most memory) always shares.
        plain = dict(by_leaf)
        for lf, nm in zip(leaves, names, strict=True):
            if lf.kind == "special" and isinstance(lf.conv, SharedValues):
                plain[id(lf)] = self.call_expr(lf.conv.make, "sp", nm)
        pause = self.const([0], "shpause")
        sizes = " + ".join(f"{self.const(sv.cache.__len__, 'shlen')}()" for sv in shared)
        return "\n".join(
            [
                "def _bulk(data):",
                *self.shared_guard(),
                f"    if {pause}[0] and len(data) < {SHARE_PAUSE_ROWS * fmt.size}:",
                f"        {pause}[0] -= 1",
                f"        return [{self._flat_expr(node, plain)} for {target} in {it}(data)]",
                f"    held = {sizes}",
                f"    out = [{self._flat_expr(node, by_leaf)} for {target} in {it}(data)]",
                f"    if len(out) >= 32 and ({sizes} - held) * 4 >= len(out) * {len(shared)} * 3:",
                f"        {pause}[0] = {SHARE_PAUSE}",
                "    return out",
            ]
        )

    def emit_decode_all(self, ty: AlgebraicType, root: str) -> str:
        """Source of ``_decode_all(buf, n)``: the value decoder inlined in a loop over concatenated values."""
        L = [
            "def _decode_all(buf, n):",
            "    off = 0",
            "    out = []",
            "    app = out.append",
            "    while off < n:",
        ]
        self.emit_decode(ty, "r", "        ", root, L)
        L.append("        app(r)")
        L.append("    return out")
        L[1:1] = self.shared_guard()
        return "\n".join(L)

    def emit_decode_each(self, ty: AlgebraicType, root: str) -> str:
        """Source of ``_decode_each(values)``: the value decoder inlined in a loop over a list of encoded
        values (rows split by their offsets); None as soon as one has bytes left over."""
        L = [
            "def _decode_each(values):",
            "    out = []",
            "    app = out.append",
            "    for buf in values:",
            "        off = 0",
            "        n = len(buf)",
        ]
        self.emit_decode(ty, "r", "        ", root, L)
        L.append("        if off != n: return None")
        L.append("        app(r)")
        L.append("    return out")
        L[1:1] = self.shared_guard()
        return "\n".join(L)


#: How many calls of a fixed-width bulk decoder skip the shared-value lookups after a call whose values were
#: mostly new (see _Compiler.emit_bulk).
SHARE_PAUSE: Final = 64
#: ... and only calls of fewer rows than this: a big load always shares.
SHARE_PAUSE_ROWS: Final = 1024


@dataclass(eq=False)
class Codec:
    """A compiled BSATN codec for one type (and the typespace its Refs point into).

    Build one with :func:`compile_codec`; it is immutable and thread-safe.
    """

    type: AlgebraicType
    typespace: Typespace
    name: str
    fixed_size: int | None
    _decode_from: Callable[[bytes, int, int], tuple[Any, int]] = field(repr=False)
    _encode_into: Callable[[Any, Callable[[bytes], None]], None] = field(repr=False)
    _fixed_struct: struct.Struct | None = field(default=None, repr=False)
    _bulk: Callable[[bytes], list[Any]] | None = field(default=None, repr=False)
    _decode_all: Callable[[bytes, int], list[Any]] | None = field(default=None, repr=False)
    source: str = field(default="", repr=False)
    _decode_each: Callable[[list[Any]], list[Any] | None] | None = field(default=None, repr=False)

    def decode(self, data: bytes | bytearray | memoryview) -> Any:
        """Decode one value that must take exactly all of ``data``."""
        buf = data if type(data) is bytes else bytes(data)
        try:
            value, off = self._decode_from(buf, 0, len(buf))
        except RecursionError:
            raise _too_deep(self.name, 0) from None
        if off != len(buf):
            raise DecodeError(self.name, off, f"{len(buf) - off} trailing bytes after the value")
        return value

    def decode_many(self, values: Sequence[bytes | bytearray | memoryview]) -> list[Any]:
        """Decode each of ``values`` (each must take exactly all of its bytes): ``[decode(v) for v in
        values]``, in one generated loop where the type is not fixed-width (the rows of a variable-width
        row list). Raises what :meth:`decode` raises for the first value that does not decode."""
        each = self._decode_each
        if each is not None:
            if set(map(type, values)) - {bytes}:  # (the generated code reads bytes objects only)
                values = [v if type(v) is bytes else bytes(v) for v in values]
            try:
                out = each(values if type(values) is list else list(values))
            except (DecodeError, RecursionError):
                out = None  # (the one-by-one decode below names the error)
            if out is not None:
                return out
        return [self.decode(v) for v in values]

    def decode_prefix(self, data: bytes | bytearray | memoryview) -> tuple[Any, int]:
        """Decode one value from the start of ``data``; returns it and how many bytes it took (the
        rest is left alone: a row of a newer schema with columns appended at the end, say)."""
        return self.decode_from(data if type(data) is bytes else bytes(data), 0)

    def decode_from(self, data: bytes, offset: int = 0) -> tuple[Any, int]:
        """Decode one value starting at ``offset``; returns the value and the offset after it."""
        buf = data if type(data) is bytes else bytes(data)
        if offset < 0 or offset > len(buf):
            raise DecodeError(self.name, offset, f"offset outside the {len(buf)}-byte buffer")
        try:
            return self._decode_from(buf, offset, len(buf))
        except RecursionError:
            raise _too_deep(self.name, offset) from None

    def encode(self, value: Any) -> bytes:
        """The BSATN bytes of ``value``; :class:`EncodeError` names the field that does not fit."""
        parts: list[bytes] = []
        self._encode_into(value, parts.append)
        return b"".join(parts)

    def encode_into(self, value: Any, out: Callable[[bytes], None]) -> None:
        """Append the BSATN of ``value`` piece by piece through ``out`` (e.g. ``list.append``)."""
        self._encode_into(value, out)

    @property
    def bulk(self) -> bool:
        """True when :meth:`decode_fixed` decodes many values in one ``struct`` pass (a fixed-width
        type whose fields all map to ``struct`` codes)."""
        return self._bulk is not None

    def decode_concatenated(self, data: bytes) -> list[Any]:
        """Decode values laid end to end until ``data`` runs out (a row list without its hint)."""
        if self._bulk is not None:
            return self.decode_fixed(data)
        buf = data if type(data) is bytes else bytes(data)
        if self.fixed_size == 0:  # values take no bytes: the loop below would never advance
            if buf:
                raise DecodeError(self.name, 0, f"{len(buf)} bytes, but values of this type take no bytes")
            return []
        assert self._decode_all is not None
        try:
            return self._decode_all(buf, len(buf))
        except DecodeError as exc:
            raise self._in_row(exc, self._row_at(buf, exc.offset)) from None
        except RecursionError:
            raise _too_deep(self.name, 0) from None

    def _in_row(self, exc: DecodeError, row: int) -> DecodeError:
        """``exc``, raised while decoding one value, as an error in value ``row`` of a list."""
        if exc.path.startswith(self.name):
            return DecodeError(f"{self.name}[{row}]{exc.path[len(self.name) :]}", exc.offset, exc.reason)
        return exc.within(f"{self.name}[{row}]")  # pragma: no cover - paths start with the name

    def _row_at(self, buf: bytes, offset: int) -> int:
        """The index of the value that contains byte ``offset`` (for error messages)."""
        off = row = 0
        try:
            while off < len(buf):
                _, nxt = self._decode_from(buf, off, len(buf))
                if nxt > offset:
                    return row
                off = nxt
                row += 1
        except (DecodeError, RecursionError):
            pass
        return row

    def decode_fixed(self, data: bytes) -> list[Any]:
        """Decode rows of this fixed-width type laid end to end, with one ``iter_unpack``."""
        st = self._fixed_struct
        if st is None or self._bulk is None:
            raise TypeError(f"{self.name} is not a fixed-width type")
        if len(data) % st.size:
            raise DecodeError(
                self.name,
                len(data) - len(data) % st.size,
                f"{len(data)} bytes is not a whole number of {st.size}-byte rows",
            )
        try:
            return self._bulk(data)
        except (IndexError, TypeError, ValueError):
            pass
        # a bad value somewhere (e.g. a bool byte of 2): find it with the checked decoder
        buf = data if type(data) is bytes else bytes(data)
        for row, off in enumerate(range(0, len(buf), st.size)):
            try:
                self._decode_from(buf, off, len(buf))
            except DecodeError as exc:
                raise self._in_row(exc, row) from None
        raise DecodeError(self.name, 0, "a value could not be converted")  # pragma: no cover

    def decode_rows(
        self, data: bytes, row_size: int | None = None, offsets: Sequence[int] | None = None
    ) -> list[Any]:
        """Decode a BSATN row list: rows of ``row_size`` bytes each, rows starting at ``offsets``,
        or (with neither) rows decoded one after another."""
        if row_size is not None:
            if row_size == self.fixed_size and self._fixed_struct is not None:
                return self.decode_fixed(data)
            if row_size <= 0:
                raise DecodeError(self.name, 0, f"invalid row size hint {row_size}")
            if len(data) % row_size:
                raise DecodeError(
                    self.name, 0, f"{len(data)} bytes is not a whole number of {row_size}-byte rows"
                )
            try:
                return [self.decode(data[i : i + row_size]) for i in range(0, len(data), row_size)]
            except DecodeError:
                pass
            for row, start in enumerate(range(0, len(data), row_size)):  # name the row and its offset
                try:
                    self.decode(data[start : start + row_size])
                except DecodeError as exc:
                    err = self._in_row(exc, row)
                    raise DecodeError(err.path, start + exc.offset, exc.reason) from None
            raise DecodeError(self.name, 0, "a row could not be decoded")  # pragma: no cover
        values = self.decode_concatenated(data)
        if offsets is not None and len(offsets) != len(values):
            if self.fixed_size == 0 and not any(offsets):  # rows that take no bytes: only offsets count them
                return [self.decode(b"") for _ in offsets]
            raise DecodeError(
                self.name, 0, f"row offsets list {len(offsets)} rows but the data holds {len(values)}"
            )
        return values


def compile_codec(
    ty: AlgebraicType,
    typespace: Typespace | None = None,
    bindings: Mapping[BindingKey, Binding] | None = None,
    name: str | None = None,
    *,
    tuples: bool = False,
) -> Codec:
    """Compile a BSATN codec for ``ty``.

    ``bindings`` maps Ref indexes (or type objects) to :class:`ProductBinding` / :class:`SumBinding`
    so that decoded values are instances of your classes. Unbound products decode to ``dict`` (named)
    or ``tuple``; unbound sums to :class:`SumValue`; options to the value or None; special types to
    the classes registered with :func:`register_special`. Arrays decode to lists, or to tuples with
    ``tuples=True``; ``Array<U8>`` is always ``bytes``.
    """
    ts = typespace if typespace is not None else Typespace.EMPTY
    comp = _Compiler(ts, bindings or {}, tuples)
    label = name or repr(ty)
    if isinstance(ty, RefType):
        comp._checked_ref(ty)
    root = _lit(label, 0)
    dec = ["def _decode(buf, off, n):"]
    comp.emit_decode(ty, "r", "    ", root, dec)
    dec.append("    return r, off")
    enc = ["def _encode(v, out):"]
    comp.emit_encode(ty, "v", "    ", root, enc)
    enc.append("    return None")
    fixed = comp.fixed_size(ty)
    node = comp.flat(ty, "")
    fixed_struct = None
    extra = []
    if node is not None and fixed:
        fixed_struct = struct.Struct("<" + "".join(lf.code for lf in _leaves(node)))
        extra.append(comp.emit_bulk(node, fixed_struct))
    else:
        extra.append(comp.emit_decode_all(ty, root))
        extra.append(comp.emit_decode_each(ty, root))
    dec[1:1] = comp.shared_guard()
    source = "\n\n".join([*comp.functions, "\n".join(dec), "\n".join(enc), *extra]) + "\n"
    code = compile(source, f"<bsatn codec {label[:60]}>", "exec")
    exec(code, comp.ns)
    return Codec(
        ty,
        ts,
        label,
        fixed,
        comp.ns["_decode"],
        comp.ns["_encode"],
        fixed_struct,
        comp.ns.get("_bulk"),
        comp.ns.get("_decode_all"),
        source,
        comp.ns.get("_decode_each"),
    )
