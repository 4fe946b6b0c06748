"""The module authoring API: ``@table``, ``@product_type``, ``@reducer`` and the lifecycle decorators,
collected into a :class:`ModuleDef` that exports its schema as RawModuleDefV9.

A module is a Python file::

    from spacetime_game.server import ReducerContext, ReducerError, table, reducer, client_connected, Identity

    @table(public=True)
    class Message:
        sender: Identity
        text: str

    @reducer
    def send_message(ctx: ReducerContext, text: str) -> None:
        if not text:
            raise ReducerError("Messages must not be empty")
        ctx.db.message.insert(Message(ctx.sender, text))
"""

from __future__ import annotations

import dataclasses
import enum
import importlib.util
import inspect
import re
import sys
import threading
import traceback
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

from ..sdk.sats import (
    AlgebraicType,
    ProductBinding,
    ProductElement,
    ProductType,
    RefType,
    SchemaError,
    SumBinding,
    SumType,
    SumVariant,
    Typespace,
)
from ..sdk.schema import ModuleSchema
from ._types import column_markers, to_algebraic

__all__ = [
    "Lifecycle",
    "ModuleDef",
    "ReducerDef",
    "TableSpec",
    "client_connected",
    "client_disconnected",
    "current_module",
    "init",
    "load_module",
    "product_type",
    "reducer",
    "table",
]

C = TypeVar("C", bound=type)
F = TypeVar("F", bound=Callable[..., Any])
Lifecycle = Literal["init", "client_connected", "client_disconnected"]
_V9_LIFECYCLE = {"init": "Init", "client_connected": "OnConnect", "client_disconnected": "OnDisconnect"}


@dataclass
class TableSpec:
    """A table as declared: its class and options; the rest is filled in by :meth:`ModuleDef.finalize`."""

    cls: type
    name: str
    public: bool
    scheduled: str | None
    scheduled_at: str | None
    event: bool
    columns: list[tuple[str, AlgebraicType]] = field(default_factory=list)
    primary_key: int | None = None
    unique: list[int] = field(default_factory=list)
    indexed: list[int] = field(default_factory=list)
    auto_inc: list[int] = field(default_factory=list)
    ref: int = -1

    def to_row(self, obj: Any) -> tuple[Any, ...]:
        """The tuple of column values of a row object."""
        if type(obj) is not self.cls:
            raise TypeError(f"table {self.name!r} expects a {self.cls.__name__}, got {type(obj).__name__}")
        return tuple(getattr(obj, n) for n, _ in self.columns)

    def from_row(self, row: tuple[Any, ...]) -> Any:
        """A row object from its tuple of column values."""
        return self.cls(*row)


@dataclass
class ReducerDef:
    """A reducer: its function, name, parameters and lifecycle."""

    func: Callable[..., Any]
    name: str
    lifecycle: Lifecycle | None
    params: list[tuple[str, AlgebraicType]] = field(default_factory=list)


class ModuleDef:
    """The tables, types and reducers of one module."""

    def __init__(self) -> None:
        self.tables: list[TableSpec] = []
        self.reducers: list[ReducerDef] = []
        self.types: list[type] = []  # product/enum classes used as named types
        self.typespace: list[AlgebraicType] = []
        self.type_names: dict[int, str] = {}
        self.bindings: dict[int, ProductBinding | SumBinding] = {}
        self._refs: dict[type, int] = {}
        self._finalized = False
        self._schema_json: dict[str, Any] | None = None
        #: The file it was loaded from (by :func:`load_module`), and the name it declares for its
        #: database (a module-level ``DATABASE = "name"``), if any.
        self.path: Path | None = None
        self.declared_database: str | None = None
        #: The name the file was imported under (its ``__name__``, so the name of its
        #: ``logging.getLogger(__name__)``), if it was loaded from a file.
        self.import_name: str | None = None

    @property
    def database_name(self) -> str:
        """The name the module is served under when none is given: its declared ``DATABASE``, else its
        file's name (the folder's, for a file named ``module.py``), as a database name (lower case,
        ``-`` for anything but letters and digits)."""
        if self.declared_database:
            return self.declared_database
        if self.path is None:
            return "module"
        stem = (
            self.path.parent.name if self.path.stem == "module" and self.path.parent.name else self.path.stem
        )
        return re.sub(r"[^a-z0-9]+", "-", stem.lower()).strip("-") or "module"

    # ----- registration -------------------------------------------------------------------------
    def add_table(self, spec: TableSpec) -> None:
        """Add a table (what ``@table`` does); a second table of the same name is a SchemaError."""
        if any(t.name == spec.name for t in self.tables):
            raise SchemaError(f"table {spec.name}", "a table with this name already exists")
        self.tables.append(spec)

    def add_reducer(self, rd: ReducerDef) -> None:
        """Add a reducer (what ``@reducer`` and the lifecycle decorators do); a second reducer of the
        same name, or a second one for the same lifecycle event, is a SchemaError."""
        if any(r.name == rd.name for r in self.reducers):
            raise SchemaError(f"reducer {rd.name}", "a reducer with this name already exists")
        if rd.lifecycle and any(r.lifecycle == rd.lifecycle for r in self.reducers):
            raise SchemaError(f"reducer {rd.name}", f"there is already a {rd.lifecycle} reducer")
        self.reducers.append(rd)

    # ----- typespace -----------------------------------------------------------------------------
    def ref_for(self, cls: type) -> AlgebraicType:
        """The Ref of a product or enum class, registering it (depth-first) on first use."""
        if cls in self._refs:
            return RefType(self._refs[cls])
        index = len(self.typespace)
        self._refs[cls] = index
        self.typespace.append(AlgebraicType.product())  # placeholder, for recursion
        self.type_names[index] = cls.__name__
        if isinstance(cls, type) and issubclass(cls, enum.Enum):
            members = list(cls)
            self.typespace[index] = SumType(tuple(SumVariant(m.name, ProductType(())) for m in members))
            self.bindings[index] = SumBinding(_enum_make(tuple(members)), _enum_split(cls, members), cls)
        else:
            names = [f.name for f in dataclasses.fields(typing.cast(Any, cls))]
            hints = typing.get_type_hints(cls, include_extras=True)
            elements = tuple(
                ProductElement(n, to_algebraic(hints[n], f"{cls.__name__}.{n}", self)) for n in names
            )
            self.typespace[index] = ProductType(elements)
            self.bindings[index] = ProductBinding(_make_instance(cls), _checked_fields(cls, names), cls)
        return RefType(index)

    def finalize(self) -> None:
        """Resolve every annotation, number the typespace and check the declarations."""
        if self._finalized:
            return
        for spec in self.tables:
            spec.ref = typing.cast(RefType, self.ref_for(spec.cls)).index
            row = self.typespace[spec.ref]
            assert isinstance(row, ProductType)
            spec.columns = [(str(e.name), e.type) for e in row.elements]
            hints = typing.get_type_hints(spec.cls, include_extras=True)
            for i, (name, _) in enumerate(spec.columns):
                marks = column_markers(hints[name])
                if "primary_key" in marks:
                    if spec.primary_key is not None:
                        raise SchemaError(f"table {spec.name}", "only one column can be the primary key")
                    spec.primary_key = i
                if "unique" in marks:
                    spec.unique.append(i)
                if "index" in marks:
                    spec.indexed.append(i)
                if "auto_inc" in marks:
                    spec.auto_inc.append(i)
            if spec.scheduled:
                col = spec.scheduled_at or "scheduled_at"
                if col not in [n for n, _ in spec.columns]:
                    raise SchemaError(
                        f"table {spec.name}", f"a scheduled table needs a ScheduleAt column {col!r}"
                    )
        for rd in self.reducers:
            sig = inspect.signature(rd.func)
            hints = typing.get_type_hints(rd.func, include_extras=True)
            params = list(sig.parameters.values())
            if not params:
                raise SchemaError(f"reducer {rd.name}", "the first parameter must be the ReducerContext")
            for p in params[1:]:
                if p.name not in hints:
                    raise SchemaError(f"reducer {rd.name}", f"parameter {p.name!r} needs a type annotation")
                rd.params.append((p.name, to_algebraic(hints[p.name], f"{rd.name}({p.name})", self)))
            if rd.lifecycle and rd.params:
                raise SchemaError(f"reducer {rd.name}", "lifecycle reducers take only the context")
        for spec in self.tables:
            if spec.scheduled and not any(r.name == spec.scheduled for r in self.reducers):
                raise SchemaError(
                    f"table {spec.name}", f"scheduled reducer {spec.scheduled!r} is not defined"
                )
        self._finalized = True

    # ----- export -------------------------------------------------------------------------------
    def schema_json(self) -> dict[str, Any]:
        """RawModuleDefV9 as ``GET /v1/database/<name>/schema?version=9`` returns it."""
        self.finalize()
        if self._schema_json is not None:
            return self._schema_json
        none: dict[str, Any] = {"none": []}
        tables = []
        for spec in sorted(self.tables, key=lambda s: s.name):
            cols = [n for n, _ in spec.columns]
            uniq = sorted({*spec.unique, *([spec.primary_key] if spec.primary_key is not None else [])})
            idx_cols = sorted({*uniq, *spec.indexed})
            indexes = sorted(
                (
                    {
                        "name": {"some": f"{spec.name}_{cols[c]}_idx_btree"},
                        "accessor_name": {"some": cols[c]},
                        "algorithm": {"BTree": {"columns": [c]}},
                    }
                    for c in idx_cols
                ),
                key=_by_name,
            )
            constraints = sorted(
                (
                    {"name": {"some": f"{spec.name}_{cols[c]}_key"}, "data": {"Unique": {"columns": [c]}}}
                    for c in uniq
                ),
                key=_by_name,
            )
            sequences = sorted(
                (
                    {
                        "name": {"some": f"{spec.name}_{cols[c]}_seq"},
                        "column": c,
                        "start": none,
                        "min_value": none,
                        "max_value": none,
                        "increment": 1,
                    }
                    for c in spec.auto_inc
                ),
                key=_by_name,
            )
            schedule: dict[str, Any] = none
            if spec.scheduled:
                schedule = {
                    "some": {
                        "name": {"some": f"{spec.name}_sched"},
                        "reducer_name": spec.scheduled,
                        "scheduled_at_column": cols.index(spec.scheduled_at or "scheduled_at"),
                    }
                }
            tables.append(
                {
                    "name": spec.name,
                    "product_type_ref": spec.ref,
                    "primary_key": [spec.primary_key] if spec.primary_key is not None else [],
                    "indexes": indexes,
                    "constraints": constraints,
                    "sequences": sequences,
                    "schedule": schedule,
                    "table_type": {"User": []},
                    "table_access": {"Public": []} if spec.public else {"Private": []},
                }
            )
        reducers = [
            {
                "name": rd.name,
                "params": ProductType(tuple(ProductElement(n, t) for n, t in rd.params)).to_json()["Product"],
                "lifecycle": {"some": {_V9_LIFECYCLE[rd.lifecycle]: []}} if rd.lifecycle else none,
            }
            for rd in sorted(self.reducers, key=lambda r: r.name)
        ]
        types = sorted(
            (
                {"name": {"scope": [], "name": name}, "ty": ref, "custom_ordering": True}
                for ref, name in self.type_names.items()
            ),
            key=lambda d: str(typing.cast(Any, d)["name"]["name"]),
        )
        self._schema_json = {
            "typespace": Typespace(tuple(self.typespace)).to_json(),
            "tables": tables,
            "reducers": reducers,
            "types": types,
            "misc_exports": [],
            "row_level_security": [],
        }
        return self._schema_json

    def schema(self) -> ModuleSchema:
        """The normalised schema (the same one clients see)."""
        return ModuleSchema.from_json(self.schema_json())

    def table_spec(self, name: str) -> TableSpec:
        """The table called ``name``."""
        for t in self.tables:
            if t.name == name:
                return t
        raise KeyError(name)

    def reducer_def(self, name: str) -> ReducerDef | None:
        """The reducer called ``name``, if any."""
        return next((r for r in self.reducers if r.name == name), None)

    def lifecycle(self, kind: Lifecycle) -> ReducerDef | None:
        """The reducer for a lifecycle event, if the module has one."""
        return next((r for r in self.reducers if r.lifecycle == kind), None)


def _enum_split(cls: type, members: list[Any]) -> Callable[[Any], tuple[int, Any]]:
    index = {m: i for i, m in enumerate(members)}

    def split(v: Any) -> tuple[int, Any]:
        if type(v) is not cls:
            raise TypeError(f"expected {cls.__name__}, got {type(v).__name__}")
        return index[v], ()

    return split


def _checked_fields(cls: type, names: list[str]) -> Callable[[Any], Any]:
    def fields(v: Any) -> Any:
        if type(v) is not cls:
            raise TypeError(f"expected {cls.__name__}, got {type(v).__name__}")
        return tuple(getattr(v, n) for n in names)

    return fields


def _make_instance(cls: type) -> Callable[[tuple[Any, ...]], Any]:
    def make(t: tuple[Any, ...]) -> Any:
        return cls(*t)

    return make


def _enum_make(members: tuple[Any, ...]) -> Callable[[int, Any], Any]:
    def make(tag: int, _payload: Any) -> Any:
        return members[tag]

    return make


def _by_name(d: dict[str, Any]) -> str:
    return str(d["name"]["some"])


# --------------------------------------------------------------------------------------------------
# the current module (set by the loader) and the decorators
# --------------------------------------------------------------------------------------------------
def snake_case(name: str) -> str:
    """``LoggedOutPlayer`` -> ``logged_out_player``."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


_local = threading.local()
_default = ModuleDef()


def current_module() -> ModuleDef:
    """The module being loaded (or a process-wide default when a module file is imported directly)."""
    mod: ModuleDef | None = getattr(_local, "module", None)
    return mod if mod is not None else _default


def _as_dataclass(cls: type) -> type:
    if not dataclasses.is_dataclass(cls):
        cls = dataclass(cls)
    cls.__spacetime_product__ = True  # type: ignore[attr-defined]
    return cls


def table(
    cls: type | None = None,
    *,
    name: str | None = None,
    public: bool = False,
    scheduled: str | None = None,
    scheduled_at: str | None = None,
    event: bool = False,
) -> Any:
    """Declare a table. Columns are the annotated fields, in order; the class becomes a dataclass.

    ``name`` defaults to the snake_case class name; ``public`` makes it visible to all clients;
    ``scheduled="reducer"`` runs that reducer for each row at its ``scheduled_at`` column.
    """

    def wrap(c: type) -> type:
        c = _as_dataclass(c)
        current_module().add_table(
            TableSpec(c, name or snake_case(c.__name__), public, scheduled, scheduled_at, event)
        )
        return c

    return wrap(cls) if cls is not None else wrap


def product_type(cls: C) -> C:
    """Declare a product type usable as a column or argument type (the class becomes a dataclass)."""
    return typing.cast(C, _as_dataclass(cls))


def _default_name(f: Callable[..., Any]) -> str:
    # a trailing underscore lets a function avoid a Python name (``def init_`` is reducer ``init``)
    return f.__name__[:-1] if f.__name__.endswith("_") and len(f.__name__) > 1 else f.__name__


def reducer(func: F | None = None, *, name: str | None = None) -> Any:
    """Declare a reducer: ``def f(ctx: ReducerContext, arg: T, ...)``. Raise :class:`ReducerError` to fail."""

    def wrap(f: F) -> F:
        current_module().add_reducer(ReducerDef(f, name or _default_name(f), None))
        return f

    return wrap(func) if func is not None else wrap


def _lifecycle(kind: Lifecycle) -> Callable[..., Any]:
    def deco(func: F | None = None, *, name: str | None = None) -> Any:
        def wrap(f: F) -> F:
            current_module().add_reducer(ReducerDef(f, name or _default_name(f), kind))
            return f

        return wrap(func) if func is not None else wrap

    deco.__doc__ = f"Declare the {kind} lifecycle reducer (``@{kind}`` or ``@{kind}(name=...)``)."
    return deco


#: ``@init``: runs once when the database is created.
init = _lifecycle("init")
#: ``@client_connected``: runs when a client connects; raising refuses the connection.
client_connected = _lifecycle("client_connected")
#: ``@client_disconnected``: runs when a client disconnects.
client_disconnected = _lifecycle("client_disconnected")


_load_lock = threading.Lock()


def _where_in(path: Path, exc: BaseException) -> str:
    """``file:line`` of the innermost frame of ``exc`` inside the module file (or the file alone)."""
    if isinstance(exc, SyntaxError) and exc.lineno:
        return f"{path}:{exc.lineno}"
    line = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if Path(frame.filename).resolve() == path:
            line = frame.lineno
    return f"{path}:{line}" if line else str(path)


def load_module(path: str | Path) -> ModuleDef:
    """Import a module file into a fresh :class:`ModuleDef` and finalize it."""
    p = Path(path).resolve()
    if not p.is_file():
        raise SchemaError(str(path), "no such module file")
    mod = ModuleDef()
    with _load_lock:
        _local.module = mod
        try:
            name = f"_spacetime_module_{abs(hash(str(p)))}"
            spec = importlib.util.spec_from_file_location(name, p)
            if spec is None or spec.loader is None:
                raise SchemaError(str(path), "cannot import this file")
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            try:
                spec.loader.exec_module(module)
            except SchemaError:
                raise
            except Exception as exc:  # the module's own error: say where, briefly
                raise SchemaError(_where_in(p, exc), f"{type(exc).__name__}: {exc}") from exc
        finally:
            _local.module = None
    declared = getattr(module, "DATABASE", None)
    if declared is not None and (not isinstance(declared, str) or not _DATABASE_NAME.fullmatch(declared)):
        raise SchemaError(
            f"{p}: DATABASE", f"{declared!r} is not a database name (lower-case letters, digits and '-')"
        )
    mod.path, mod.declared_database, mod.import_name = p, declared, name
    mod.finalize()
    return mod


_DATABASE_NAME = re.compile(r"[a-z0-9][a-z0-9-]*")
