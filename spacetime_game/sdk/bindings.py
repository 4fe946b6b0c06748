"""The runtime support of generated ``module_bindings`` packages, and their one seam to a client.

Generated table classes and reducer functions never touch a client's internals. They call the functions
below, which forward to a :class:`BindingsClient`: the connection passed as ``client=``, or else the
default one set with :func:`set_default_client` (the Basic client sets itself there on ``init``, so the
documented singleton-style calls such as ``User.iter()`` keep working). Several connections in one process
are served by passing ``client=`` explicitly.

A generated package describes itself to clients through its :class:`ModuleBindings` (``MODULE`` in the
package): the typespace, one :class:`TableBinding` per table and one :class:`ReducerBinding` per reducer.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar, cast, runtime_checkable

from .sats import (
    AlgebraicType,
    Codec,
    EncodeError,
    ProductBinding,
    ProductType,
    RefType,
    SpacetimeError,
    SumBinding,
    Typespace,
    compile_codec,
)

if TYPE_CHECKING:
    from . import ReducerCall

__all__ = [
    "BatchRowEvent",
    "BindingsClient",
    "ModuleBindings",
    "NoClientError",
    "ReducerBinding",
    "RowEvent",
    "TableBinding",
    "bind_enum",
    "bind_product",
    "bind_reducer",
    "bind_sum",
    "bind_table",
    "call_reducer",
    "count_rows",
    "filter_rows",
    "find_row",
    "get_default_client",
    "iter_rows",
    "on_reducer",
    "on_row",
    "remove_on_reducer",
    "remove_on_row",
    "set_default_client",
]

R = TypeVar("R")
RowEvent = Literal["row_update", "insert", "update", "delete"]
#: The events of bulk row callbacks (``DbConnection.on_rows``).
BatchRowEvent = Literal["insert", "update", "delete"]


class NoClientError(SpacetimeError, RuntimeError):
    """A generated function was used with no client: pass ``client=`` or connect a client first."""


@runtime_checkable
class BindingsClient(Protocol):
    """What a connection offers to generated bindings. The SDK's clients implement it; tests can use a
    stand-in. Table and reducer names are canonical wire names."""

    def iter_rows(self, table: str) -> Iterator[Any]:
        """Every cached row of ``table``."""
        ...

    def count_rows(self, table: str) -> int:
        """How many rows of ``table`` are cached."""
        ...

    def find_row(self, table: str, column: str, value: Any) -> Any | None:
        """The row whose unique ``column`` equals ``value`` (an index lookup), or None."""
        ...

    def filter_rows(self, table: str, column: str, value: Any) -> Iterator[Any]:
        """The rows whose ``column`` equals ``value``."""
        ...

    def on_row(self, table: str, event: RowEvent, callback: Callable[..., None]) -> Any:
        """Register a row callback; returns the callback (usable with :meth:`remove_on_row`)."""
        ...

    def remove_on_row(self, table: str, event: RowEvent, callback: Callable[..., None]) -> None:
        """Unregister a row callback."""
        ...

    def call_reducer(
        self, reducer: str, args: bytes, callback: Callable[..., None] | None = None
    ) -> ReducerCall:
        """Send a reducer call (``args`` is the BSATN of its parameters); returns its call handle."""
        ...

    def on_reducer(self, reducer: str, callback: Callable[..., None]) -> Any:
        """Register a callback for this client's own calls of ``reducer``."""
        ...

    def remove_on_reducer(self, reducer: str, callback: Callable[..., None]) -> None:
        """Unregister a reducer callback."""
        ...


_default_lock = threading.Lock()
_default_client: BindingsClient | None = None


def set_default_client(client: BindingsClient | None) -> None:
    """Make ``client`` the connection used when generated code gets no ``client=`` (None clears it)."""
    global _default_client
    with _default_lock:
        _default_client = client


def get_default_client() -> BindingsClient:
    """The default connection (:class:`NoClientError` if there is none)."""
    client = _default_client
    if client is None:
        raise NoClientError(
            "no SpacetimeDB client is connected: call SpacetimeDBClient.init(...) first, "
            "or pass client=... to the generated function"
        )
    return client


def _client(client: BindingsClient | None) -> BindingsClient:
    return client if client is not None else get_default_client()


# --------------------------------------------------------------------------------------------------
# the module description
# --------------------------------------------------------------------------------------------------
@dataclass(eq=False)
class TableBinding:
    """One table of a generated module: its row class and codec, and what the cache needs to know."""

    module: ModuleBindings
    name: str
    ref: int
    row_class: type
    column_names: tuple[str, ...]
    primary_key: str | None
    unique_columns: tuple[str, ...]
    is_event: bool = False
    _codec: Codec | None = None

    @property
    def codec(self) -> Codec:
        """The row codec (compiled on first use if :meth:`ModuleBindings.compile` has not run)."""
        if self._codec is None:
            bindings: dict[Any, ProductBinding | SumBinding] = dict(self.module.type_bindings)
            bindings[self.ref] = ProductBinding(
                partial(tuple.__new__, self.row_class), _tuple_fields(self.row_class), self.row_class
            )
            self._codec = compile_codec(RefType(self.ref), self.module.typespace, bindings, name=self.name)
        return self._codec

    def column_index(self, column: str) -> int:
        """The position of ``column`` in the row."""
        try:
            return self.column_names.index(column)
        except ValueError:
            raise KeyError(f"table {self.name!r} has no column {column!r}") from None


@dataclass(eq=False)
class ReducerBinding:
    """One reducer of a generated module: its wire name, argument names and argument codec."""

    module: ModuleBindings
    name: str
    params: ProductType
    _codec: Codec | None = None

    @property
    def arg_names(self) -> tuple[str, ...]:
        """The parameter names, in order."""
        return tuple(str(e.name) for e in self.params.elements)

    @property
    def args_codec(self) -> Codec:
        """The codec of the parameter product, values being tuples of the arguments."""
        if self._codec is None:
            binding = ProductBinding(tuple, _args_fields(len(self.params.elements)), tuple)
            self._codec = compile_codec(
                self.params,
                self.module.typespace,
                {**self.module.type_bindings, self.params: binding},
                name=f"{self.name}(args)",
            )
        return self._codec

    def encode_args(self, args: Sequence[Any]) -> bytes:
        """The BSATN of the argument product."""
        return self.args_codec.encode(tuple(args))

    def decode_args(self, data: bytes) -> list[Any]:
        """The argument values, in order."""
        return list(self.args_codec.decode(data))


@dataclass(eq=False)
class ModuleBindings:
    """Everything a client needs to know about one generated module."""

    typespace: Typespace
    source: str = ""
    tables: dict[str, TableBinding] = field(default_factory=dict)
    reducers: dict[str, ReducerBinding] = field(default_factory=dict)
    type_bindings: dict[int, ProductBinding | SumBinding] = field(default_factory=dict)

    @staticmethod
    def from_typespace_json(obj: Mapping[str, Any], source: str = "") -> ModuleBindings:
        """Build from the typed SATS-JSON of the typespace (as generated code embeds it)."""
        return ModuleBindings(Typespace.from_json(obj), source)

    def table(self, name: str) -> TableBinding:
        """The table with this wire name (KeyError naming the known ones otherwise)."""
        try:
            return self.tables[name]
        except KeyError:
            raise KeyError(f"unknown table {name!r}; the bindings have {sorted(self.tables)}") from None

    def compile(self) -> None:
        """Compile every table and reducer codec now (generated packages call this at import)."""
        for t in self.tables.values():
            _ = t.codec
        for r in self.reducers.values():
            _ = r.args_codec

    def reducer(self, name: str) -> ReducerBinding:
        """The reducer with this wire name."""
        try:
            return self.reducers[name]
        except KeyError:
            raise KeyError(f"unknown reducer {name!r}; the bindings have {sorted(self.reducers)}") from None


def _tuple_fields(cls: type) -> Callable[[Any], Sequence[Any]]:
    def fields(v: Any) -> Sequence[Any]:
        if v.__class__ is not cls:
            raise TypeError(f"expected {cls.__name__}, got {type(v).__name__}")
        return cast(Sequence[Any], v)

    return fields


def bind_product(module: ModuleBindings, ref: int, cls: type) -> None:
    """Bind typespace entry ``ref`` (a product) to ``cls``, a ``tuple`` subclass holding the fields in order."""
    module.type_bindings[ref] = ProductBinding(partial(tuple.__new__, cls), _tuple_fields(cls), cls)


def bind_enum(module: ModuleBindings, ref: int, cls: type) -> None:
    """Bind typespace entry ``ref`` (a sum of unit variants) to ``cls``, an ``enum.Enum`` whose values are
    the variant tags."""
    members: tuple[Any, ...] = tuple(cast(Any, cls))

    def split(v: Any) -> tuple[int, Any]:
        if v.__class__ is not cls:
            raise TypeError(f"expected {cls.__name__}, got {type(v).__name__}")
        return cast(Any, v).value, ()

    module.type_bindings[ref] = SumBinding(lambda tag, _p: members[tag], split, cls)


def bind_sum(module: ModuleBindings, ref: int, cls: type) -> None:
    """Bind typespace entry ``ref`` (a sum with payloads) to ``cls``, built as ``cls(tag, value)`` and
    read through its ``tag`` and ``value`` attributes."""

    def split(v: Any) -> tuple[int, Any]:
        if v.__class__ is not cls:
            raise TypeError(f"expected {cls.__name__}, got {type(v).__name__}")
        return cast(Any, v).tag, cast(Any, v).value

    module.type_bindings[ref] = SumBinding(cls, split, cls)


def bind_table(
    module: ModuleBindings,
    cls: type,
    *,
    name: str,
    ref: int,
    primary_key: str | None,
    unique_columns: Sequence[str],
    is_event: bool = False,
    row_type_name: bool = False,
) -> TableBinding:
    """Register a generated row class for table ``name`` (typespace entry ``ref``).

    With ``row_type_name=True`` the class also stands for typespace entry ``ref`` wherever that type is
    used (the table class is the named type). The codec is compiled by :meth:`ModuleBindings.compile`.
    """
    row_type = module.typespace.resolve(RefType(ref))
    if not isinstance(row_type, ProductType):
        raise TypeError(f"typespace entry {ref} of table {name!r} is not a product")
    if row_type_name:
        bind_product(module, ref, cls)
    table = TableBinding(
        module,
        name,
        ref,
        cls,
        tuple(str(e.name) for e in row_type.elements),
        primary_key,
        tuple(unique_columns),
        is_event,
    )
    module.tables[name] = table
    return table


def bind_reducer(
    module: ModuleBindings, name: str, params: Mapping[str, Any] | ProductType
) -> ReducerBinding:
    """Register a reducer with its parameters (a ProductType, or its typed SATS-JSON ``{"elements": ...}``)."""
    ptype = params if isinstance(params, ProductType) else AlgebraicType.from_json({"Product": params})
    if not isinstance(ptype, ProductType):
        raise TypeError("reducer parameters must be a product")
    reducer = ReducerBinding(module, name, ptype)
    module.reducers[name] = reducer
    return reducer


def _args_fields(count: int) -> Callable[[Any], Sequence[Any]]:
    def fields(v: Any) -> Sequence[Any]:
        if not isinstance(v, tuple | list) or len(v) != count:
            raise TypeError(f"expected {count} arguments")
        return v

    return fields


# --------------------------------------------------------------------------------------------------
# what generated code calls
# --------------------------------------------------------------------------------------------------
def iter_rows(table: str, client: BindingsClient | None = None) -> Iterator[Any]:
    """Every cached row of ``table``."""
    return _client(client).iter_rows(table)


def count_rows(table: str, client: BindingsClient | None = None) -> int:
    """How many rows of ``table`` are cached."""
    return _client(client).count_rows(table)


def find_row(table: str, column: str, value: Any, client: BindingsClient | None = None) -> Any | None:
    """The row with ``column == value`` on a unique column, through the client's index."""
    return _client(client).find_row(table, column, value)


def filter_rows(table: str, column: str, value: Any, client: BindingsClient | None = None) -> Iterator[Any]:
    """The rows with ``column == value``."""
    return _client(client).filter_rows(table, column, value)


def on_row(
    table: str, event: RowEvent, callback: Callable[..., None], client: BindingsClient | None = None
) -> Callable[..., None]:
    """Register a row callback; returns ``callback``."""
    if not callable(callback):
        raise TypeError(f"callback must be callable, got {type(callback).__name__}")
    _client(client).on_row(table, event, callback)
    return callback


def remove_on_row(
    table: str, event: RowEvent, callback: Callable[..., None], client: BindingsClient | None = None
) -> None:
    """Unregister a row callback."""
    _client(client).remove_on_row(table, event, callback)


def call_reducer(
    module: ModuleBindings,
    reducer: str,
    args: Sequence[Any],
    client: BindingsClient | None = None,
    callback: Callable[..., None] | None = None,
) -> ReducerCall:
    """Encode ``args`` with the reducer's codec and send the call; returns the client's call handle.

    A wrong argument type raises :class:`EncodeError` naming the argument, before anything is sent.
    """
    binding = module.reducer(reducer)
    try:
        data = binding.encode_args(args)
    except EncodeError as exc:
        raise EncodeError(
            exc.path.replace(f"{reducer}(args).", f"{reducer}(): argument "), exc.reason
        ) from None
    return _client(client).call_reducer(reducer, data, callback)


def on_reducer(reducer: str, callback: Callable[..., None], client: BindingsClient | None = None) -> None:
    """Register a callback for this client's own calls of ``reducer``."""
    if not callable(callback):
        raise TypeError(f"callback must be callable, got {type(callback).__name__}")
    _client(client).on_reducer(reducer, callback)


def remove_on_reducer(
    reducer: str, callback: Callable[..., None], client: BindingsClient | None = None
) -> None:
    """Unregister a reducer callback."""
    _client(client).remove_on_reducer(reducer, callback)
