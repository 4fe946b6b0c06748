"""The client cache's tables (docs/protocol.md section 6.2), sans-I/O: the rows of each table by key,
their reference counts and unique indexes, and what one message changed in a table.

A row's key is its BSATN bytes, except in a table with a primary key, where it is the primary key's value
(as in the official TypeScript SDK): the server never holds two rows with one primary key, a delete names
its row by the key (cut straight from the row bytes for fixed-width layouts), and an insert of a key
already held with other contents replaces the row and is reported as an update. Keyed by the primary key,
the common update touches less memory (no bytes object per row, no separate primary-key index).
The counts are stored sparsely: a cached row is held at least once, so only rows held more than once have
a stored total (``TableCache.multi``), and while a single query set holds a table its per-set counts *are*
the totals (``TableCache.alias``, read through the table's :class:`TotalCounts` ``view``).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import filterfalse, repeat
from operator import itemgetter
from typing import Any

from ._keys import key_cutter, rows_of
from .bindings import TableBinding
from .protocol import BsatnRowList
from .sats import DecodeError

__all__ = ["TableCache", "TableDiff", "TotalCounts", "decode_row_values"]

log = logging.getLogger("spacetime_game.sdk.cache")


@dataclass(slots=True)
class TableDiff:
    """What one message changed in one table (events to fire, after the whole message is applied)."""

    table: str
    inserts: list[Any] = field(default_factory=list)
    deletes: list[Any] = field(default_factory=list)
    # updates, paired by primary key: the old rows and, at the same positions, the new rows
    updates_old: list[Any] = field(default_factory=list)
    updates_new: list[Any] = field(default_factory=list)
    events: list[Any] = field(default_factory=list)  # event-table rows (never stored)

    @property
    def updates(self) -> list[tuple[Any, Any]]:
        """The updates as (old, new) pairs."""
        return list(zip(self.updates_old, self.updates_new, strict=True))

    def __bool__(self) -> bool:
        return bool(self.inserts or self.deletes or self.updates_old or self.events)


class TableCache:
    """The rows of one table by their key (the primary key's value, or else the row's BSATN bytes),
    with indexes for the other unique columns."""

    def __init__(self, binding: TableBinding) -> None:
        self.binding = binding
        self.name = binding.name
        pk = binding.primary_key
        #: True when rows are keyed by their primary key's value (else by their BSATN bytes).
        self.by_pk = pk is not None and not binding.is_event
        self.rows: dict[Any, Any] = {}
        #: The total count of each row held more than once (every other cached row is held once).
        self.multi: dict[Any, int] = {}
        #: Unique column -> value -> row key (the primary key needs none when it is the key).
        self.unique: dict[str, dict[Any, Any]] = {
            c: {} for c in binding.unique_columns if not (self.by_pk and c == pk)
        }
        #: Unique column -> a getter of its value from a row.
        self.getters = {c: itemgetter(binding.column_index(c)) for c in binding.unique_columns}
        self.pk_getter = itemgetter(binding.column_index(pk)) if pk else None
        self.pk_column = pk
        self._key_cutter: Callable[[BsatnRowList], list[Any]] | None = None
        #: The query set whose per-set counts *are* the totals (while it is the table's only set).
        self.alias: int | None = None
        #: What ``ClientCache.sets`` holds for the ``alias`` set: a live read-only view of the totals.
        self.view = TotalCounts(self)

    @property
    def counts(self) -> dict[Any, int]:
        """Every cached row's total count by its key (a new dict; for inspection and tests)."""
        mget = self.multi.get
        return {k: mget(k, 1) for k in self.rows}

    def count(self, key: Any) -> int:
        """How many times the row ``key`` is held, over every query set."""
        return self.multi.get(key, 1) if key in self.rows else 0

    def keys_of(self, rl: BsatnRowList) -> list[Any]:
        """The cache keys of the rows of ``rl`` (a :class:`DecodeError` if they are malformed)."""
        if not self.by_pk:
            return rows_of(rl)
        if not len(rl):
            return []
        if self._key_cutter is None:
            self._key_cutter = key_cutter(self.binding)
        return self._key_cutter(rl)

    def __len__(self) -> int:
        return len(self.rows)

    def iter(self) -> Iterator[Any]:
        """The rows (a snapshot, safe while callbacks change the cache)."""
        return iter(list(self.rows.values()))

    def find(self, column: str, value: Any) -> Any | None:
        """The row whose unique ``column`` equals ``value`` (an index lookup)."""
        if self.by_pk and column == self.pk_column:
            try:
                return self.rows.get(value)
            except TypeError:  # an unhashable value matches no row
                return None
        index = self.unique.get(column)
        if index is None:
            raise KeyError(f"column {column!r} of table {self.name!r} is not unique; use filter")
        key = index.get(value)
        return self.rows.get(key) if key is not None else None

    def filter(self, column: str, value: Any) -> Iterator[Any]:
        """The rows whose ``column`` equals ``value``."""
        if column in self.unique or (self.by_pk and column == self.pk_column):
            row = self.find(column, value)
            return iter([row] if row is not None else [])
        get = itemgetter(self.binding.column_index(column))
        return iter([r for r in self.rows.values() if get(r) == value])

    def index_add(self, keys: list[bytes], values: list[Any]) -> None:
        """Point the unique indexes at the rows ``values`` stored under ``keys``."""
        for col, index in self.unique.items():
            index.update(zip(map(self.getters[col], values), keys, strict=True))

    def index_remove(self, rows: Iterable[Any], replacing: Iterable[Any] = ()) -> None:
        """Drop ``rows`` from the unique indexes; values that ``replacing`` rows bring back (an update
        that keeps its key) are left for :meth:`index_add` to overwrite."""
        if not self.unique:
            return
        rows = list(rows)
        if not rows:
            return
        replacing = list(replacing)
        for col in self.unique:
            self.index_remove_col(col, rows, replacing)

    def index_remove_col(self, col: str, rows: list[Any], replacing: list[Any]) -> None:
        """:meth:`index_remove` for the index of one unique column."""
        g = self.getters[col]
        gone = list(map(g, rows))
        if replacing:
            back = set(map(g, replacing))
            if back.issuperset(gone):
                return
            gone = list(filterfalse(back.__contains__, gone))
        _consume(map(self.unique[col].pop, gone, repeat(None)))


class TotalCounts(Mapping[bytes, int]):
    """The counts of a table's only query set: the table's own totals, read-only."""

    __slots__ = ("table",)

    def __init__(self, tc: TableCache) -> None:
        #: The table whose totals these are.
        self.table = tc

    def __getitem__(self, key: bytes) -> int:
        n = self.table.count(key)
        if not n:
            raise KeyError(key)
        return n

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.table.rows)

    def __len__(self) -> int:
        return len(self.table.rows)

    def __contains__(self, key: object) -> bool:
        return key in self.table.rows


_consume: Callable[[Iterable[Any]], None] = deque(maxlen=0).extend


_told_longer: set[str] = set()


def decode_row_values(tc: TableCache, keys: list[bytes]) -> list[Any]:
    """The decoded rows of ``keys`` (row bytes) of table ``tc``.

    A row longer than the bindings' row type (the module gained columns at the end since the bindings
    were generated: an automatic migration) is decoded from its start, ignoring the new columns, as the
    other SpacetimeDB SDKs do; this is said once per table, at INFO, with the way to see them."""
    codec = tc.binding.codec
    try:
        return codec.decode_many(keys)
    except DecodeError:
        values = []
        for k in keys:
            value, used = codec.decode_prefix(k)  # raises the real error for a row that does not fit
            if used < len(k) and tc.name not in _told_longer:
                _told_longer.add(tc.name)
                log.info(
                    "rows of table %s hold %d bytes more than these bindings know: the module gained columns;"
                    " regenerate the bindings (spacetime-game generate) to see them",
                    tc.name,
                    len(k) - used,
                )
            values.append(value)
        return values
