"""``ModuleSchema``: one normalised view of a module, whatever raw schema form it came from."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ValidationError

from ..sats import AlgebraicType, ProductType, RefType, SchemaError, Typespace
from ._raw import (
    RawExplicitNames,
    RawLifeCycleReducerDefV10,
    RawModuleDefV9,
    RawModuleDefV10,
    RawReducerDefV10,
    RawScheduleDefV10,
    RawTableDefV10,
    RawTypeDefV10,
    RawTypespace,
)

__all__ = [
    "ColumnDef",
    "IndexDef",
    "Lifecycle",
    "ModuleSchema",
    "ReducerDef",
    "ScheduleDef",
    "SequenceDef",
    "TableDef",
    "TypeDef",
    "load_schema",
]

Lifecycle = Literal["init", "client_connected", "client_disconnected"]
_LIFECYCLE: dict[str, Lifecycle] = {
    "Init": "init",
    "OnConnect": "client_connected",
    "OnDisconnect": "client_disconnected",
}

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class ColumnDef:
    """A column: its id (position), name and type."""

    col_id: int
    name: str
    type: AlgebraicType


@dataclass(frozen=True, slots=True)
class IndexDef:
    """An index over one or more columns."""

    name: str | None
    accessor_name: str | None
    algorithm: Literal["btree", "hash", "direct"]
    columns: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class SequenceDef:
    """An auto_inc sequence: fills the column when a row is inserted with 0 there."""

    name: str | None
    column: int
    start: int | None = None
    min_value: int | None = None
    max_value: int | None = None
    increment: int = 1


@dataclass(frozen=True, slots=True)
class ScheduleDef:
    """A scheduled table: each row runs ``reducer_name`` at the time in column ``column``."""

    name: str | None
    reducer_name: str
    column: int


@dataclass(frozen=True, slots=True)
class TableDef:
    """A table. ``name`` is the canonical name used on the wire and in SQL; ``accessor_name`` is the
    name the module's code uses (equal to ``name`` on V9)."""

    name: str
    accessor_name: str
    product_type_ref: int
    row_type: ProductType
    columns: tuple[ColumnDef, ...]
    primary_key: tuple[int, ...]
    unique_constraints: tuple[tuple[int, ...], ...]
    indexes: tuple[IndexDef, ...]
    sequences: tuple[SequenceDef, ...]
    is_public: bool
    is_event: bool
    is_system: bool
    schedule: ScheduleDef | None

    @property
    def primary_key_column(self) -> ColumnDef | None:
        """The primary-key column, when the key is a single column."""
        return self.columns[self.primary_key[0]] if len(self.primary_key) == 1 else None

    @property
    def unique_columns(self) -> tuple[ColumnDef, ...]:
        """Columns that are unique on their own (single-column unique constraints or the primary key)."""
        ids = {c[0] for c in self.unique_constraints if len(c) == 1}
        if len(self.primary_key) == 1:
            ids.add(self.primary_key[0])
        return tuple(c for c in self.columns if c.col_id in ids)

    @property
    def indexed_columns(self) -> tuple[ColumnDef, ...]:
        """Columns that lead some index or are unique on their own."""
        ids = {i.columns[0] for i in self.indexes if i.columns} | {c.col_id for c in self.unique_columns}
        return tuple(c for c in self.columns if c.col_id in ids)

    def column(self, name: str) -> ColumnDef:
        """The column called ``name`` (KeyError if none)."""
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"table {self.name!r} has no column {name!r}")


@dataclass(frozen=True, slots=True)
class ReducerDef:
    """A reducer. Lifecycle reducers (and V10 private ones) are not callable by clients."""

    name: str
    accessor_name: str
    params: ProductType
    lifecycle: Lifecycle | None
    callable: bool


@dataclass(frozen=True, slots=True)
class TypeDef:
    """A named user type: its (scoped) name and its typespace entry."""

    name: str
    scope: tuple[str, ...]
    ref: int
    custom_ordering: bool


@dataclass(frozen=True)
class ModuleSchema:
    """A module's tables, reducers and named types, normalised from RawModuleDefV9 or V10.

    Build it with :meth:`from_json` (bare V9, bare V10, or wrapped ``{"V9": ...}``/``{"V10": ...}``)
    or :func:`load_schema`. Any problem raises one :class:`SchemaError` that says where.
    """

    typespace: Typespace
    tables: tuple[TableDef, ...]
    reducers: tuple[ReducerDef, ...]
    types: tuple[TypeDef, ...]
    version: int
    _tables_by_name: dict[str, TableDef] = field(default_factory=dict, repr=False, compare=False)
    _reducers_by_name: dict[str, ReducerDef] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._tables_by_name.update({t.name: t for t in self.tables})
        self._reducers_by_name.update({r.name: r for r in self.reducers})

    # ----- lookups ------------------------------------------------------------------------------
    def table(self, name: str) -> TableDef:
        """The table with this canonical name (:class:`KeyError` naming the known ones if none)."""
        try:
            return self._tables_by_name[name]
        except KeyError:
            raise KeyError(f"unknown table {name!r}; the module has {sorted(self._tables_by_name)}") from None

    def reducer(self, name: str) -> ReducerDef:
        """The reducer with this canonical name."""
        try:
            return self._reducers_by_name[name]
        except KeyError:
            raise KeyError(
                f"unknown reducer {name!r}; the module has {sorted(self._reducers_by_name)}"
            ) from None

    def type_name(self, ref: int) -> str | None:
        """The user-visible name of typespace entry ``ref``, if it has one."""
        for t in self.types:
            if t.ref == ref:
                return t.name
        return None

    # ----- parsing -------------------------------------------------------------------------------
    @staticmethod
    def from_json(obj: Any) -> ModuleSchema:
        """Normalise a schema from its JSON value (already parsed)."""
        if not isinstance(obj, Mapping):
            raise SchemaError("schema", f"expected a JSON object, got {type(obj).__name__}")
        if set(obj) == {"V9"}:
            return _from_v9(obj["V9"])
        if set(obj) == {"V10"}:
            return _from_v10(obj["V10"])
        if set(obj) == {"V8BackCompat"}:
            raise SchemaError("schema", "V8 schemas are not supported; ask the server for version=9")
        if "sections" in obj:
            return _from_v10(obj)
        if "typespace" in obj:
            return _from_v9(obj)
        raise SchemaError(
            "schema",
            'not a module schema: expected RawModuleDefV9 ({"typespace", "tables", ...}), '
            'RawModuleDefV10 ({"sections": [...]}) or {"V9": ...} / {"V10": ...}',
        )

    @staticmethod
    def from_text(text: str | bytes, source: str = "schema") -> ModuleSchema:
        """Parse JSON text, then :meth:`from_json`. Bad JSON gives a :class:`SchemaError` with line and column."""
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SchemaError(f"{source}:{exc.lineno}:{exc.colno}", f"invalid JSON: {exc.msg}") from None
        except UnicodeDecodeError as exc:
            raise SchemaError(
                source, f"invalid JSON: not {exc.encoding} text (byte offset {exc.start}: {exc.reason})"
            ) from None
        return ModuleSchema.from_json(obj)


def load_schema(path: str | Path) -> ModuleSchema:
    """Read and normalise a schema file."""
    p = Path(path)
    try:
        text = p.read_bytes()
    except OSError as exc:
        raise SchemaError(str(p), f"cannot read the file: {exc.strerror or exc}") from None
    return ModuleSchema.from_text(text, str(p))


# --------------------------------------------------------------------------------------------------
def _validate(model: type[M], obj: Any, where: str) -> M:
    try:
        return model.model_validate(obj)
    except ValidationError as exc:
        err = exc.errors()[0]
        path = where + "".join(f"[{x}]" if isinstance(x, int) else f".{x}" for x in err["loc"])
        cause = err.get("ctx", {}).get("error")
        if isinstance(cause, SchemaError):  # raised by a type parser: its path is inside the value
            inner = cause.path.removeprefix("type")
            raise SchemaError(path + inner, cause.reason) from None
        if isinstance(cause, ValueError):
            raise SchemaError(path, str(cause)) from None
        raise SchemaError(path, err["msg"]) from None
    except SchemaError as exc:
        raise SchemaError(f"{where}.{exc.path}", exc.reason) from None


def _check_ref(ts: Typespace, ref: int, where: str) -> ProductType:
    if not 0 <= ref < len(ts):
        raise SchemaError(where, f"dangling type reference {ref}: the typespace has {len(ts)} entries")
    try:
        ty = ts.resolve(RefType(ref))
    except SchemaError as exc:
        raise SchemaError(where, exc.reason) from None
    if not isinstance(ty, ProductType):
        raise SchemaError(where, f"typespace entry {ref} is not a product type")
    return ty


def _check_cols(cols: Sequence[int], n: int, where: str) -> tuple[int, ...]:
    for c in cols:
        if not 0 <= c < n:
            raise SchemaError(where, f"column id {c} is out of range (the row has {n} columns)")
    return tuple(cols)


def _columns(row: ProductType, where: str) -> tuple[ColumnDef, ...]:
    cols = []
    for i, e in enumerate(row.elements):
        if not e.name:
            raise SchemaError(f"{where}.columns[{i}]", "a table column has no name")
        cols.append(ColumnDef(i, e.name, e.type))
    return tuple(cols)


def _typespace(raw: RawTypespace, where: str) -> Typespace:
    ts = Typespace(tuple(raw.types))
    try:
        ts.check_refs()
    except SchemaError as exc:
        raise SchemaError(f"{where}.{exc.path}", exc.reason) from None
    return ts


def _table_def(
    where: str,
    ts: Typespace,
    ref: int,
    *,
    name: str,
    accessor: str,
    primary_key: Sequence[int],
    unique: Sequence[Sequence[int]],
    indexes: Sequence[tuple[str | None, str | None, str, Sequence[int]]],
    sequences: Sequence[tuple[str | None, int, int | None, int | None, int | None, int]],
    public: bool,
    event: bool,
    system: bool,
    schedule: tuple[str | None, str, int] | None,
) -> TableDef:
    """A checked TableDef (every column id in range), from either schema version's fields."""
    row = _check_ref(ts, ref, f"{where}.product_type_ref")
    n = len(row.elements)
    return TableDef(
        name=name,
        accessor_name=accessor,
        product_type_ref=ref,
        row_type=row,
        columns=_columns(row, where),
        primary_key=_check_cols(primary_key, n, f"{where}.primary_key"),
        unique_constraints=tuple(
            _check_cols(c, n, f"{where}.constraints[{j}]") for j, c in enumerate(unique)
        ),
        indexes=tuple(
            IndexDef(ix_name, acc, _algo(kind), _check_cols(cols, n, f"{where}.indexes[{j}]"))
            for j, (ix_name, acc, kind, cols) in enumerate(indexes)
        ),
        sequences=tuple(
            SequenceDef(seq_name, _check_cols([col], n, f"{where}.sequences[{j}]")[0], start, lo, hi, inc)
            for j, (seq_name, col, start, lo, hi, inc) in enumerate(sequences)
        ),
        is_public=public,
        is_event=event,
        is_system=system,
        schedule=(
            ScheduleDef(schedule[0], schedule[1], _check_cols([schedule[2]], n, f"{where}.schedule")[0])
            if schedule
            else None
        ),
    )


def _from_v9(obj: Any) -> ModuleSchema:
    raw = _validate(RawModuleDefV9, obj, "V9")
    ts = _typespace(raw.typespace, "V9")
    tables = []
    for i, t in enumerate(raw.tables):
        where = f"V9.tables[{i}]({t.name})"
        tables.append(
            _table_def(
                where,
                ts,
                t.product_type_ref,
                name=t.name,
                accessor=t.name,
                primary_key=t.primary_key,
                unique=[c.data for c in t.constraints],
                indexes=[
                    (ix.name, ix.accessor_name, ix.algorithm.kind, ix.algorithm.columns) for ix in t.indexes
                ],
                sequences=[
                    (q.name, q.column, q.start, q.min_value, q.max_value, q.increment) for q in t.sequences
                ],
                public=t.table_access == "Public",
                event=False,
                system=t.table_type == "System",
                schedule=(
                    (t.schedule.name, t.schedule.reducer_name, t.schedule.scheduled_at_column)
                    if t.schedule
                    else None
                ),
            )
        )
    reducers = tuple(
        ReducerDef(
            name=r.name,
            accessor_name=r.name,
            params=_check_params(ts, r.params, f"V9.reducers[{i}]({r.name}).params"),
            lifecycle=_LIFECYCLE[r.lifecycle] if r.lifecycle else None,
            callable=r.lifecycle is None,
        )
        for i, r in enumerate(raw.reducers)
    )
    types = []
    for i, td in enumerate(raw.types):
        if not 0 <= td.ty < len(ts):
            raise SchemaError(f"V9.types[{i}].ty", f"dangling type reference {td.ty}")
        types.append(TypeDef(td.name.name, tuple(td.name.scope), td.ty, td.custom_ordering))
    _check_scheduled_reducers(tables, reducers, "V9.tables")
    return ModuleSchema(ts, tuple(tables), reducers, tuple(types), 9)


def _check_params(ts: Typespace, params: ProductType, where: str) -> ProductType:
    """Reducer parameters live outside the typespace: their Refs must still point into it."""
    ts.check_refs([(where, params)])
    return params


def _algo(kind: str) -> Literal["btree", "hash", "direct"]:
    return {"BTree": "btree", "Hash": "hash", "Direct": "direct"}[kind]  # type: ignore[return-value]


def _check_scheduled_reducers(tables: Sequence[TableDef], reducers: Sequence[ReducerDef], where: str) -> None:
    names = {r.name for r in reducers}
    for i, t in enumerate(tables):
        if t.schedule and t.schedule.reducer_name not in names:
            raise SchemaError(
                f"{where}[{i}]({t.accessor_name}).schedule",
                f"scheduled reducer {t.schedule.reducer_name!r} does not exist",
            )


def _list_section(raw: RawModuleDefV10, name: str) -> list[Any]:
    """The payload of a section that holds a list (empty when the section is absent)."""
    payload = raw.section(name)
    if payload is None:
        return []
    if not isinstance(payload, list):
        raise SchemaError(f"V10.{name}", f"expected a list, got {type(payload).__name__}")
    return payload


def _from_v10(obj: Any) -> ModuleSchema:
    raw = _validate(RawModuleDefV10, obj, "V10")
    ts_raw = raw.section("Typespace")
    if ts_raw is None:
        raise SchemaError("V10.sections", "no Typespace section")
    ts = _typespace(_validate(RawTypespace, ts_raw, "V10.Typespace"), "V10.Typespace")

    explicit = _validate(
        RawExplicitNames, raw.section("ExplicitNames") or {"entries": []}, "V10.ExplicitNames"
    )
    canon: dict[tuple[str, str], str] = {
        (e.kind, e.mapping.source_name): e.mapping.canonical_name for e in explicit.entries
    }

    def wire(kind: str, source: str) -> str:
        return canon.get((kind, source), source)

    schedules = [
        _validate(RawScheduleDefV10, s, f"V10.Schedules[{i}]")
        for i, s in enumerate(_list_section(raw, "Schedules"))
    ]
    lifecycles = {
        lc.function_name: _LIFECYCLE[lc.lifecycle_spec]
        for lc in (
            _validate(RawLifeCycleReducerDefV10, x, f"V10.LifeCycleReducers[{i}]")
            for i, x in enumerate(_list_section(raw, "LifeCycleReducers"))
        )
    }
    tables = []
    for i, x in enumerate(_list_section(raw, "Tables")):
        t = _validate(RawTableDefV10, x, f"V10.Tables[{i}]")
        where = f"V10.Tables[{i}]({t.source_name})"
        sched = next(
            (s for s in schedules if s.table_name in (t.source_name, wire("Table", t.source_name))), None
        )
        tables.append(
            _table_def(
                where,
                ts,
                t.product_type_ref,
                name=wire("Table", t.source_name),
                accessor=t.source_name,
                primary_key=t.primary_key,
                unique=[c.data for c in t.constraints],
                indexes=[
                    (
                        wire("Index", ix.source_name) if ix.source_name else None,
                        ix.accessor_name,
                        ix.algorithm.kind,
                        ix.algorithm.columns,
                    )
                    for ix in t.indexes
                ],
                sequences=[
                    (q.source_name, q.column, q.start, q.min_value, q.max_value, q.increment)
                    for q in t.sequences
                ],
                public=t.table_access == "Public",
                event=t.is_event,
                system=t.table_type == "System",
                schedule=(
                    (sched.source_name, wire("Function", sched.function_name), sched.schedule_at_col)
                    if sched
                    else None
                ),
            )
        )
    reducers = []
    for i, x in enumerate(_list_section(raw, "Reducers")):
        r = _validate(RawReducerDefV10, x, f"V10.Reducers[{i}]")
        lifecycle = lifecycles.get(r.source_name)
        reducers.append(
            ReducerDef(
                name=wire("Function", r.source_name),
                accessor_name=r.source_name,
                params=_check_params(ts, r.params, f"V10.Reducers[{i}]({r.source_name}).params"),
                lifecycle=lifecycle,
                callable=lifecycle is None and r.visibility == "ClientCallable",
            )
        )
    types = []
    for i, x in enumerate(_list_section(raw, "Types")):
        td = _validate(RawTypeDefV10, x, f"V10.Types[{i}]")
        if not 0 <= td.ty < len(ts):
            raise SchemaError(f"V10.Types[{i}].ty", f"dangling type reference {td.ty}")
        types.append(
            TypeDef(td.source_name.source_name, tuple(td.source_name.scope), td.ty, td.custom_ordering)
        )
    _check_scheduled_reducers(tables, reducers, "V10.Tables")
    return ModuleSchema(ts, tuple(tables), tuple(reducers), tuple(types), 10)
