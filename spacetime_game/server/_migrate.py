"""Schema migrations of a stored database: what a new version of a module may change, and how the
stored rows follow.

The rules are SpacetimeDB's automatic migrations (docs/dev.md): a new version may add tables, add or
drop indexes, add or drop ``auto_inc``, drop unique constraints and primary keys, change who may read a
table, change reducers in any way, and add columns **at the end** of a table when each has a default
(``score: int = 0``); existing rows get the default. It may not drop a table, drop, rename, reorder or
retype a column, add a column without a default, or change whether a table is scheduled or an event
table. Adding a unique constraint or a primary key is allowed only while the table is empty (the
stored rows could break it).

A column appended at the end changes a row's BSATN by appending the column's bytes, so stored rows
migrate without being decoded: each row's bytes get the defaults' bytes appended.

The commit log describes itself: a **layout record** (:func:`encode_layout_record`) holds the layout of
every table that the records after it are written in, and the bytes appended to each table's rows when
the log moved to it. Replay applies those appends, so records written under any earlier layout replay
into the newest one.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from ..sdk.sats import AlgebraicType, SpacetimeError, Typespace, compile_codec
from ._module import ModuleDef, TableSpec

__all__ = [
    "LAYOUT_MAGIC",
    "IncompatibleSchema",
    "Migration",
    "ModuleUpdate",
    "decode_layout_record",
    "encode_layout_record",
    "is_layout_record",
    "module_layout",
    "plan_migration",
]

#: The first bytes of a layout record. A transaction record starts with its count of tables (u32), which
#: is never 0xFFFFFFFF, so the two kinds cannot be mistaken for each other.
LAYOUT_MAGIC = b"\xff\xff\xff\xffLAYOUT"

Layout = dict[str, dict[str, Any]]


class IncompatibleSchema(SpacetimeError):
    """The new module cannot take over the stored data; ``problems`` says why, one line each."""

    def __init__(self, problems: list[str], advice: str = "") -> None:
        self.problems = problems
        #: What to do about it (how to start over), when the caller knows.
        self.advice = advice
        super().__init__("; ".join(problems) + (f". {advice}" if advice else ""))


@dataclass
class Migration:
    """How stored data moves from one layout to another (see :func:`plan_migration`)."""

    #: The bytes appended to every stored row of a table (the encoded defaults of its new columns).
    append: dict[str, bytes] = field(default_factory=dict)
    #: What changed, one short line each, for the log (``table score added``, ...).
    changes: list[str] = field(default_factory=list)
    #: True when anything about the tables changed (clients' subscriptions and caches must be renewed).
    tables_changed: bool = False
    #: Columns that became ``auto_inc``: their sequence must start past the stored values.
    new_sequences: dict[str, list[int]] = field(default_factory=dict)


@dataclass(frozen=True)
class ModuleUpdate:
    """What a module update changed (:meth:`DevServer.reload`)."""

    #: One short line per change to the tables (``table `score` added``, ...); empty when only
    #: reducers changed.
    changes: tuple[str, ...]
    #: True when clients were closed (1012) to reconnect to the new tables.
    tables_changed: bool


def _inline(ty: Any, space: list[Any], seen: tuple[int, ...] = ()) -> Any:
    """A type's JSON with every Ref replaced by what it refers to (recursion marked, not unrolled)."""
    if isinstance(ty, dict):
        if set(ty) == {"Ref"} and isinstance(ty["Ref"], int):
            ref = ty["Ref"]
            if ref in seen:
                return {"Recursive": len(seen) - seen.index(ref)}
            return _inline(space[ref], space, (*seen, ref))
        return {k: _inline(v, space, seen) for k, v in ty.items()}
    if isinstance(ty, list):
        return [_inline(v, space, seen) for v in ty]
    return ty


def _column_json(t: AlgebraicType, space: list[Any]) -> Any:
    return _inline(t.to_json(), space)


def module_layout(module: ModuleDef) -> Layout:
    """The stored shape of every table of ``module`` (columns with their types written out, keys,
    indexes, sequences, access), as JSON-ready data."""
    module.finalize()
    space = [t.to_json() for t in module.typespace]
    out: Layout = {}
    for spec in module.tables:
        out[spec.name] = {
            "columns": [[n, _column_json(t, space)] for n, t in spec.columns],
            "primary_key": spec.primary_key,
            "unique": sorted(spec.unique),
            "indexed": sorted(spec.indexed),
            "auto_inc": sorted(spec.auto_inc),
            "scheduled": spec.scheduled is not None,
            "event": spec.event,
            "public": spec.public,
        }
    return out


def encode_layout_record(layout: Layout, append: dict[str, bytes]) -> bytes:
    """The commit-log record saying that the records after it are in ``layout``, and that stored rows
    of each table in ``append`` got those bytes appended at this point."""
    body = {"layout": layout, "append": {t: b.hex() for t, b in sorted(append.items())}}
    return LAYOUT_MAGIC + json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def is_layout_record(record: bytes) -> bool:
    """True for a record written by :func:`encode_layout_record`."""
    return record.startswith(LAYOUT_MAGIC)


def decode_layout_record(record: bytes) -> tuple[Layout, dict[str, bytes]]:
    """The layout and the appended bytes of a layout record."""
    body = json.loads(record[len(LAYOUT_MAGIC) :])
    return body["layout"], {t: bytes.fromhex(h) for t, h in body["append"].items()}


def _type_name(t: Any) -> str:
    """A short readable form of a written-out type (``U32``, ``String``, ``Option<F32>``...)."""
    if isinstance(t, dict) and len(t) == 1:
        ((k, v),) = t.items()
        if k == "Array":
            return f"Array<{_type_name(v)}>"
        if k == "Sum" and isinstance(v, dict):
            names = [x.get("name", {}).get("some") for x in v.get("variants", [])]
            if names == ["some", "none"]:
                return f"Option<{_type_name(v['variants'][0]['algebraic_type'])}>"
            return "enum(" + ", ".join(str(n) for n in names) + ")"
        if k == "Product" and isinstance(v, dict):
            names = [x.get("name", {}).get("some") for x in v.get("elements", [])]
            if names in (["__identity__"], ["__connection_id__"], ["__timestamp_micros_since_unix_epoch__"]):
                return {"__identity__": "Identity", "__connection_id__": "ConnectionId"}.get(
                    str(names[0]), "Timestamp"
                )
            return "(" + ", ".join(str(n) for n in names) + ")"
        return str(k)
    return json.dumps(t)


def _default_bytes(module: ModuleDef, spec: TableSpec, index: int) -> bytes | None:
    """The encoded default of column ``index`` of ``spec`` (a dataclass field default), or None."""
    f = dataclasses.fields(spec.cls)[index]
    if f.default is not dataclasses.MISSING:
        value = f.default
    elif f.default_factory is not dataclasses.MISSING:
        value = f.default_factory()
    else:
        return None
    codec = compile_codec(
        spec.columns[index][1], Typespace(tuple(module.typespace)), dict(module.bindings), name=f.name
    )
    return codec.encode(value)


def plan_migration(old: Layout, new: ModuleDef, rows: dict[str, int]) -> Migration:
    """How data stored in layout ``old`` (``rows``: the stored row count of each table) moves to the
    tables of ``new``; raises :class:`IncompatibleSchema` listing every change that cannot be made."""
    layout = module_layout(new)
    plan = Migration()
    problems: list[str] = []
    for name in sorted(old.keys() - layout.keys()):
        n = rows.get(name, 0)
        problems.append(
            f"table `{name}` was removed (it holds {n} row{'s' if n != 1 else ''}); keep it, or start over"
            " with an empty database"
        )
    for name in sorted(layout.keys() - old.keys()):
        plan.changes.append(f"table `{name}` added")
        plan.tables_changed = True
    for name in sorted(old.keys() & layout.keys()):
        was, now = old[name], layout[name]
        if was == now:
            continue
        plan.tables_changed = True
        spec = new.table_spec(name)
        column_problems = _column_problems(name, was["columns"], now["columns"])
        problems.extend(column_problems)
        if len(now["columns"]) > len(was["columns"]) and not column_problems:
            tail, missing = b"", False
            for i in range(len(was["columns"]), len(now["columns"])):
                col = now["columns"][i][0]
                encoded = _default_bytes(new, spec, i)
                if encoded is None:
                    missing = True
                    problems.append(
                        f"`{name}.{col}` was added without a default: the stored rows need a value for it"
                        f" (give it one in the class, e.g. `{col}: int = 0`)"
                    )
                else:
                    tail += encoded
            if not missing:
                added = [c[0] for c in now["columns"][len(was["columns"]) :]]
                plan.append[name] = tail
                plan.changes.append(
                    f"`{name}` gained column{'s' if len(added) > 1 else ''} {', '.join(added)}"
                )
        stored = rows.get(name, 0)
        for key in ("scheduled", "event"):
            if was[key] != now[key]:
                kind = "a scheduled table" if key == "scheduled" else "an event table"
                problems.append(
                    f"`{name}` {'is no longer' if was[key] else 'became'} {kind}; that cannot change on"
                    " stored data"
                )
        cols = [c[0] for c in now["columns"]]
        new_unique = (
            {*now["unique"]} | ({now["primary_key"]} if now["primary_key"] is not None else set())
        ) - ({*was["unique"]} | ({was["primary_key"]} if was["primary_key"] is not None else set()))
        for c in sorted(new_unique):
            if c < len(cols) and stored:
                what = "the primary key" if c == now["primary_key"] else "unique"
                problems.append(
                    f"`{name}.{cols[c]}` became {what} while the table holds {stored} row"
                    f"{'s' if stored != 1 else ''} (they might repeat a value): add the constraint to a new"
                    " table, or start over with an empty database"
                )
        if was["primary_key"] != now["primary_key"] and now["primary_key"] is None:
            plan.changes.append(f"`{name}` has no primary key any more")
        for c in sorted({*now["indexed"]} - {*was["indexed"]}):
            plan.changes.append(f"index on `{name}.{cols[c]}` added")
        for c in sorted({*was["indexed"]} - {*now["indexed"]}):
            if c < len(cols):
                plan.changes.append(f"index on `{name}.{cols[c]}` dropped")
        seqs = sorted({*now["auto_inc"]} - {*was["auto_inc"]})
        if seqs:
            plan.new_sequences[name] = seqs
            plan.changes.append(f"`{name}`: auto_inc on {', '.join(cols[c] for c in seqs)}")
        if was["public"] != now["public"]:
            plan.changes.append(f"`{name}` is now {'public' if now['public'] else 'private'}")
    if problems:
        raise IncompatibleSchema(problems)
    return plan


def _column_problems(table: str, was: list[list[Any]], now: list[list[Any]]) -> list[str]:
    """What is wrong with the columns that were there before (the new ones may only follow them)."""
    out = []
    new_names = [c[0] for c in now]
    for i, (col, ty) in enumerate(was):
        if i < len(now) and now[i][0] == col:
            if now[i][1] != ty:
                out.append(
                    f"`{table}.{col}` changed type from {_type_name(ty)} to {_type_name(now[i][1])}; add a new"
                    " column (with a default) instead"
                )
        elif col in new_names:
            out.append(
                f"`{table}.{col}` moved from position {i + 1} to {new_names.index(col) + 1}; columns keep"
                " their order (new ones go at the end)"
            )
        elif i < len(now) and now[i][0] not in [c[0] for c in was]:
            out.append(
                f"`{table}.{col}` was renamed to `{now[i][0]}` or removed; columns cannot be renamed or removed"
            )
        else:
            out.append(f"`{table}.{col}` was removed; columns cannot be removed")
    return out
