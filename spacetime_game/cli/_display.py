"""What the command line shows people: SATS values as they read them (identities in hex, timestamps in
ISO 8601, options as the value or NULL), aligned tables, type names, and a module's description."""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Callable, Sequence
from typing import Any

from ..sdk.sats import AlgebraicType, ArrayType, PrimitiveType, ProductType, RefType, SumType
from ..sdk.schema import ModuleSchema

#: Resolves a ``Ref`` type to the type it names (None when unknown).
Resolver = Callable[[int], AlgebraicType | None]

_LIFECYCLE_LABELS = {
    "init": "when the module is first published",
    "client_connected": "when a client connects",
    "client_disconnected": "when a client disconnects",
}


def type_label(ty: AlgebraicType, names: Callable[[int], str | None] = lambda ref: None) -> str:
    """A type as a person reads it: ``String``, ``Option<I32>``, ``Array<DbVector2>``, ``Identity``."""
    if isinstance(ty, RefType):
        return names(ty.index) or f"Ref({ty.index})"
    if isinstance(ty, ArrayType):
        return "Bytes" if ty.is_bytes else f"Array<{type_label(ty.elem, names)}>"
    if isinstance(ty, SumType) and ty.special_kind == "option":
        return f"Option<{type_label(ty.variants[0].type, names)}>"
    return repr(ty)


def timestamp_text(micros: int) -> str:
    """Microseconds since the Unix epoch as ISO 8601 in UTC (``2026-12-02T15:31:46.123456Z``)."""
    moment = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
    moment += datetime.timedelta(microseconds=micros)
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def value_text(value: Any, ty: AlgebraicType, resolve: Resolver) -> str:
    """A SATS-JSON value (as the server's ``/sql`` returns it) of type ``ty``, as a person reads it."""
    if isinstance(ty, RefType):
        target = resolve(ty.index)
        return _json(value) if target is None else value_text(value, target, resolve)
    if isinstance(ty, PrimitiveType):
        if ty.name == "String" and isinstance(value, str):
            return value
        return _json(value)
    kind = ty.special_kind
    if kind in ("identity", "connection_id", "uuid"):
        inner = _single(value)
        return inner if isinstance(inner, str) else f"0x{int(inner):0{64 if kind == 'identity' else 32}x}"
    if kind == "timestamp":
        return timestamp_text(int(_single(value)))
    if kind == "time_duration":
        return f"{int(_single(value)) / 1e6:g} s"
    if isinstance(ty, ArrayType):
        if ty.is_bytes and isinstance(value, str):
            return value if value.startswith("0x") else "0x" + value
        return "[" + ", ".join(value_text(v, ty.elem, resolve) for v in value) + "]"
    if isinstance(ty, ProductType):
        items = value.items() if isinstance(value, dict) else zip(ty.names, value, strict=False)
        types = {e.name: e.type for e in ty.elements}
        parts = []
        for i, (name, v) in enumerate(items):
            t = types.get(name) if name is not None else ty.elements[i].type
            text = _json(v) if t is None else value_text(v, t, resolve)
            parts.append(f"{name}={text}" if name else text)
        return "(" + ", ".join(parts) + ")"
    if isinstance(ty, SumType):
        tag, payload = _variant(value, ty)
        if tag is None:
            return _json(value)
        variant = ty.variants[tag]
        if kind == "option":
            return "NULL" if tag == 1 else value_text(payload, variant.type, resolve)
        if kind == "schedule_at":
            inner = value_text(payload, variant.type, resolve)
            return f"every {inner}" if tag == 0 else f"at {inner}"
        name = variant.name or str(tag)
        unit = isinstance(variant.type, ProductType) and not variant.type.elements
        return name if unit else f"{name}({value_text(payload, variant.type, resolve)})"
    return _json(value)


def _single(value: Any) -> Any:
    """The one field of a special product, given as ``[v]``, ``{"__name__": v}`` or ``v``."""
    if isinstance(value, list) and len(value) == 1:
        return value[0]
    if isinstance(value, dict) and len(value) == 1:
        return next(iter(value.values()))
    return value


def _variant(value: Any, ty: SumType) -> tuple[int | None, Any]:
    """A sum value's tag and payload, from ``[tag, v]`` or ``{"name": v}``."""
    if isinstance(value, list) and len(value) == 2 and isinstance(value[0], int):
        return (value[0], value[1]) if 0 <= value[0] < len(ty.variants) else (None, None)
    if isinstance(value, dict) and len(value) == 1:
        key, payload = next(iter(value.items()))
        for i, v in enumerate(ty.variants):
            if v.name == key or str(i) == key:
                return i, payload
    return None, None


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def aligned(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Rows under a header, each column as wide as its widest cell, with a rule under the header."""
    widths = [len(h) for h in header]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    lines = [" | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip()]
    lines.append("-+-".join("-" * w for w in widths))
    lines += [" | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    return "\n".join(lines)


def params_text(params: ProductType, schema: ModuleSchema) -> str:
    """A reducer's parameters: ``name: String, amount: U32``."""
    return ", ".join(f"{e.name}: {type_label(e.type, schema.type_name)}" for e in params.elements)


def reducer_list(schema: ModuleSchema) -> str:
    """The reducers a client may call, as ``name(params)``, comma-separated."""
    return ", ".join(
        f"{r.name}({params_text(r.params, schema)})" for r in schema.reducers if r.lifecycle is None
    )


def describe(schema: ModuleSchema, database: str) -> str:
    """The module's tables (columns, types, keys, indexes, public or private, scheduled, event) and its
    reducers with their parameters, as a person reads them."""
    out = [f"database {database}", "", "tables"]
    for table in schema.tables:
        if table.is_system:
            continue
        notes = ["public" if table.is_public else "private: the owner only"]
        if table.is_event:
            notes.append("event table")
        if table.schedule is not None:
            notes.append(f"schedules {table.schedule.reducer_name}")
        out.append(f"  {table.name}  ({'; '.join(notes)})")
        pk = set(table.primary_key)
        unique = {c for cols in table.unique_constraints if len(cols) == 1 for c in cols}
        indexed = {c for ix in table.indexes for c in ix.columns}
        auto = {s.column for s in table.sequences}
        rows = []
        for col in table.columns:
            marks = []
            if col.col_id in pk:
                marks.append("primary key")
            elif col.col_id in unique:
                marks.append("unique")
            elif col.col_id in indexed:
                marks.append("indexed")
            if col.col_id in auto:
                marks.append("auto_inc")
            rows.append([col.name, type_label(col.type, schema.type_name), ", ".join(marks)])
        out += ["    " + line for line in aligned(["column", "type", "key"], rows).splitlines()]
        out.append("")
    out.append("reducers")
    for r in schema.reducers:
        when = f"  ({_LIFECYCLE_LABELS.get(r.lifecycle, r.lifecycle)})" if r.lifecycle else ""
        out.append(f"  {r.name}({params_text(r.params, schema)}){when}")
    return "\n".join(out)


def reason_without_value(reason: str) -> str:
    """An encoding error's reason without its ``, got <python value>`` tail (the CLI shows the value as
    JSON itself)."""
    return re.sub(r",? got .*$", "", reason, flags=re.DOTALL)
