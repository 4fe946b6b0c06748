"""What a reducer sees: ``ReducerContext`` and ``ctx.db.<table>`` handles."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any, NoReturn

from ..sdk import ConnectionId, Identity, Timestamp
from ._errors import ReducerError
from ._module import TableSpec
from ._store import Store, TableStore, Transaction

__all__ = ["Database", "IndexColumn", "ReducerContext", "TableHandle", "UniqueColumn"]


class UniqueColumn:
    """``ctx.db.<table>.<unique column>``: find, update and delete by that column."""

    def __init__(self, handle: TableHandle, col: int) -> None:
        self._h = handle
        self._col = col

    def find(self, value: Any) -> Any | None:
        """The row whose column equals ``value``, or None."""
        row = self._h._ts.find(self._col, value)
        return self._h._spec.from_row(row) if row is not None else None

    def update(self, obj: Any) -> Any:
        """Replace the row with the same value in this column by ``obj``; returns the stored row."""
        row = self._h._spec.to_row(obj)
        old = self._h._ts.find(self._col, row[self._col])
        if old is None:
            name = self._h._spec.columns[self._col][0]
            raise ReducerError(f"cannot update {self._h._spec.name}: no row with {name} = {row[self._col]!r}")
        self._h._tx.delete_row(self._h._spec.name, old)
        return self._h._spec.from_row(self._h._tx.insert(self._h._spec.name, row))

    def delete(self, value: Any) -> bool:
        """Delete the row whose column equals ``value``; True if there was one."""
        old = self._h._ts.find(self._col, value)
        return old is not None and self._h._tx.delete_row(self._h._spec.name, old)


class IndexColumn:
    """``ctx.db.<table>.<indexed column>``: filter and delete by that column."""

    def __init__(self, handle: TableHandle, col: int) -> None:
        self._h = handle
        self._col = col

    def filter(self, value: Any) -> Iterator[Any]:
        """The rows whose column equals ``value``."""
        spec = self._h._spec
        return iter([spec.from_row(r) for r in self._h._ts.lookup(self._col, value)])

    def delete(self, value: Any) -> int:
        """Delete every row whose column equals ``value``; returns how many."""
        rows = self._h._ts.lookup(self._col, value)
        return sum(self._h._tx.delete_row(self._h._spec.name, r) for r in rows)


class TableHandle:
    """``ctx.db.<table>``."""

    def __init__(self, ts: TableStore, tx: Transaction) -> None:
        self._ts = ts
        self._spec: TableSpec = ts.spec
        self._tx = tx
        self._cols: dict[str, UniqueColumn | IndexColumn] = {}
        for i, (name, _) in enumerate(ts.spec.columns):
            if i in ts.unique:
                self._cols[name] = UniqueColumn(self, i)
            elif i in ts.index:
                self._cols[name] = IndexColumn(self, i)

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["_cols"][name]
        except KeyError:
            raise AttributeError(
                f"table {self._spec.name!r} has no unique or indexed column {name!r}"
            ) from None

    def column(self, name: str) -> UniqueColumn | IndexColumn:
        """The handle of a unique or indexed column (for names that clash with methods)."""
        return self._cols[name]

    def insert(self, obj: Any) -> Any:
        """Insert a row; auto_inc columns holding 0 are filled. Returns the stored row."""
        return self._spec.from_row(self._tx.insert(self._spec.name, self._spec.to_row(obj)))

    def delete(self, obj: Any) -> bool:
        """Delete a row equal to ``obj``; True if there was one."""
        return self._tx.delete_row(self._spec.name, self._spec.to_row(obj))

    def iter(self) -> Iterator[Any]:
        """Every row."""
        return (self._spec.from_row(r) for r in self._ts.iter())

    def __iter__(self) -> Iterator[Any]:
        return self.iter()

    def count(self) -> int:
        """How many rows."""
        return len(self._ts)


class Database:
    """``ctx.db``: one attribute per table."""

    def __init__(self, store: Store, tx: Transaction) -> None:
        self._handles = {name: TableHandle(ts, tx) for name, ts in store.tables.items()}

    def __getattr__(self, name: str) -> TableHandle:
        try:
            return self.__dict__["_handles"][name]  # type: ignore[no-any-return]
        except KeyError:
            raise AttributeError(f"the module has no table {name!r}") from None


class ReducerContext:
    """The context of one reducer call."""

    def __init__(
        self,
        db: Database,
        sender: Identity,
        connection_id: ConnectionId | None,
        timestamp: Timestamp,
        identity: Identity,
    ) -> None:
        #: The identity of the caller (the module's own identity for scheduled reducers).
        self.sender = sender
        #: The caller's connection, or None (HTTP calls, scheduled reducers).
        self.connection_id = connection_id
        #: When the call started.
        self.timestamp = timestamp
        #: The tables.
        self.db = db
        #: The database's own identity.
        self.identity = identity
        #: A random generator seeded from the timestamp (deterministic per call).
        self.rng = random.Random(timestamp.micros_since_epoch)

    def fail(self, message: str) -> NoReturn:
        """Fail the call on purpose: the caller gets ``Err(message)``."""
        raise ReducerError(message)
