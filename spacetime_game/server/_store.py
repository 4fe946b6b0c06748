"""The in-memory datastore: tables of rows with set semantics, unique and btree indexes, sequences,
and transactions with an undo log. One writer at a time (the host serialises reducer calls)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from ..sdk.sats import (
    AlgebraicType,
    ArrayType,
    Codec,
    PrimitiveType,
    ProductBinding,
    ProductElement,
    ProductType,
    RefType,
    Typespace,
    compile_codec,
)
from ._errors import ReducerError
from ._module import ModuleDef, TableSpec

__all__ = ["Store", "TableChanges", "TableStore", "Transaction", "TxRecord", "tx_record_codec"]


class UniqueViolation(ReducerError):
    """An insert would duplicate the value of a unique column."""


@dataclass
class TableChanges:
    """The net rows a transaction inserted into and deleted from one table (row tuples)."""

    inserts: list[tuple[Any, ...]] = field(default_factory=list)
    deletes: list[tuple[Any, ...]] = field(default_factory=list)
    insert_bytes: list[bytes] = field(default_factory=list)
    delete_bytes: list[bytes] = field(default_factory=list)


class TableStore:
    """One table's rows and indexes."""

    def __init__(self, spec: TableSpec, codec: Codec) -> None:
        self.spec = spec
        self.name = spec.name
        self.codec = codec
        self.rows: dict[bytes, tuple[Any, ...]] = {}
        uniq = sorted({*spec.unique, *([spec.primary_key] if spec.primary_key is not None else [])})
        self.unique: dict[int, dict[Any, bytes]] = {c: {} for c in uniq}
        self.index: dict[int, dict[Any, set[bytes]]] = {c: {} for c in spec.indexed if c not in self.unique}
        self.seq_next: dict[int, int] = {c: 1 for c in spec.auto_inc}

    def __len__(self) -> int:
        return len(self.rows)

    def iter(self) -> Iterator[tuple[Any, ...]]:
        """A snapshot iteration of the rows (safe while the table changes)."""
        return iter(list(self.rows.values()))

    def find(self, col: int, value: Any) -> tuple[Any, ...] | None:
        """The row whose unique column ``col`` equals ``value``."""
        key = self.unique[col].get(_hkey(value))
        return self.rows[key] if key is not None else None

    def lookup(self, col: int, value: Any) -> list[tuple[Any, ...]]:
        """The rows whose column ``col`` equals ``value`` (an index when there is one, else a scan)."""
        hv = _hkey(value)
        if col in self.unique:
            key = self.unique[col].get(hv)
            return [self.rows[key]] if key is not None else []
        if col in self.index:
            return [self.rows[k] for k in self.index[col].get(hv, ())]
        return [r for r in self.rows.values() if r[col] == value]

    # raw mutations (no undo): used by transactions and by replay
    def put_raw(self, key: bytes, row: tuple[Any, ...]) -> None:
        """Store ``row`` under ``key`` and index it, with no undo record (transactions and replay)."""
        self.rows[key] = row
        for c, ix in self.unique.items():
            ix[_hkey(row[c])] = key
        for c, nx in self.index.items():
            nx.setdefault(_hkey(row[c]), set()).add(key)

    def load(self, keys: list[bytes], rows: list[tuple[Any, ...]]) -> None:
        """Add many rows at once, with no undo record (replay, module updates): ``rows[i]`` is stored
        under ``keys[i]``, and each index is built in one pass."""
        self.rows.update(zip(keys, rows, strict=True))
        for c, ix in self.unique.items():
            try:
                ix.update(zip([r[c] for r in rows], keys, strict=True))
            except TypeError:  # an unhashable value: index by its stand-in
                ix.update(zip([_hkey(r[c]) for r in rows], keys, strict=True))
        for c, nx in self.index.items():
            for key, row in zip(keys, rows, strict=True):
                nx.setdefault(_hkey(row[c]), set()).add(key)

    def remove_raw(self, key: bytes) -> tuple[Any, ...]:
        """Remove the row under ``key`` and its index entries, with no undo record; returns it."""
        row = self.rows.pop(key)
        for c, ix in self.unique.items():
            ix.pop(_hkey(row[c]), None)
        for c, nx in self.index.items():
            bucket = nx.get(_hkey(row[c]))
            if bucket is not None:
                bucket.discard(key)
                if not bucket:
                    del nx[_hkey(row[c])]
        return row


def _hkey(value: Any) -> Any:
    try:
        hash(value)
    except TypeError:
        return repr(value)
    return value


class Transaction:
    """Changes made by one reducer call; :meth:`Store.commit` or :meth:`Store.rollback` ends it."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.undo: list[tuple[str, Literal["ins", "del"], bytes, tuple[Any, ...]]] = []
        self.inserted: dict[str, dict[bytes, tuple[Any, ...]]] = {}
        self.deleted: dict[str, dict[bytes, tuple[Any, ...]]] = {}
        self.open = True

    def insert(self, table: str, row: tuple[Any, ...]) -> tuple[Any, ...]:
        """Insert a row (auto_inc columns holding 0 are filled); returns the stored row."""
        ts = self.store.tables[table]
        if ts.seq_next:
            row = list(row)  # type: ignore[assignment]
            for c in ts.seq_next:
                if row[c] == 0:
                    row[c] = ts.seq_next[c]  # type: ignore[index]
                    ts.seq_next[c] += 1
                elif row[c] >= ts.seq_next[c]:
                    ts.seq_next[c] = row[c] + 1
            row = tuple(row)
        key = ts.codec.encode(row)
        if key in ts.rows:
            return ts.rows[key]  # set semantics: an identical row is already there
        for c, ix in ts.unique.items():
            if _hkey(row[c]) in ix:
                col = ts.spec.columns[c][0]
                raise UniqueViolation(
                    f"duplicate unique column value: {table}.{col} = {row[c]!r} already exists"
                )
        ts.put_raw(key, row)
        self.undo.append((table, "ins", key, row))
        dels = self.deleted.get(table)
        if dels is not None and key in dels:
            del dels[key]
        else:
            self.inserted.setdefault(table, {})[key] = row
        return row

    def delete_key(self, table: str, key: bytes) -> tuple[Any, ...] | None:
        """Delete the row stored under ``key``."""
        ts = self.store.tables[table]
        if key not in ts.rows:
            return None
        row = ts.remove_raw(key)
        self.undo.append((table, "del", key, row))
        ins = self.inserted.get(table)
        if ins is not None and key in ins:
            del ins[key]
        else:
            self.deleted.setdefault(table, {})[key] = row
        return row

    def delete_row(self, table: str, row: tuple[Any, ...]) -> bool:
        """Delete a row equal to ``row``; True if there was one."""
        return self.delete_key(table, self.store.tables[table].codec.encode(row)) is not None


@dataclass
class TxRecord:
    """A committed transaction: per-table changes (the durable record is their BSATN)."""

    changes: dict[str, TableChanges]
    seqs: dict[tuple[str, int], int]

    def is_empty(self) -> bool:
        """True when nothing changed."""
        return not any(c.inserts or c.deletes for c in self.changes.values())


class Store:
    """All tables of a module."""

    def __init__(self, module: ModuleDef) -> None:
        module.finalize()
        self.module = module
        ts = Typespace(tuple(module.typespace))
        self.typespace = ts
        self.tables: dict[str, TableStore] = {}
        for spec in module.tables:
            bindings: dict[Any, Any] = dict(module.bindings)
            bindings[spec.ref] = ProductBinding(tuple, _tuple_fields(len(spec.columns)), tuple)
            codec = compile_codec(RefType(spec.ref), ts, bindings, name=spec.name)
            self.tables[spec.name] = TableStore(spec, codec)
        self.tx: Transaction | None = None

    def begin(self) -> Transaction:
        """Start a transaction (one at a time)."""
        if self.tx is not None and self.tx.open:
            raise RuntimeError("a transaction is already open")
        self.tx = Transaction(self)
        return self.tx

    def rollback(self, tx: Transaction) -> None:
        """Undo every change of ``tx``."""
        for table, kind, key, row in reversed(tx.undo):
            ts = self.tables[table]
            if kind == "ins":
                ts.remove_raw(key)
            else:
                ts.put_raw(key, row)
        tx.open = False
        self.tx = None

    def commit(self, tx: Transaction) -> TxRecord:
        """End ``tx`` and return its net changes."""
        changes: dict[str, TableChanges] = {}
        for table in {*tx.inserted, *tx.deleted}:
            ins = tx.inserted.get(table, {})
            dels = tx.deleted.get(table, {})
            if ins or dels:
                changes[table] = TableChanges(list(ins.values()), list(dels.values()), list(ins), list(dels))
        for table, ch in changes.items():
            ts = self.tables[table]
            if ts.spec.event:  # event rows are reported once and never stored
                for key in ch.insert_bytes:
                    ts.remove_raw(key)
        seqs = {(t.name, c): n for t in self.tables.values() for c, n in t.seq_next.items()}
        tx.open = False
        self.tx = None
        return TxRecord(changes, seqs)

    # ----- durability ------------------------------------------------------------------------------
    def encode_record(self, rec: TxRecord) -> bytes:
        """The durable form of a committed transaction."""
        return tx_record_codec.encode(
            (
                [(t, c.insert_bytes, c.delete_bytes) for t, c in sorted(rec.changes.items())],
                [(t, c, n) for (t, c), n in sorted(rec.seqs.items())],
            )
        )

    def replay(self, record: bytes) -> None:
        """Apply a durable record (at startup)."""
        tables, seqs = tx_record_codec.decode(record)
        for name, inserts, deletes in tables:
            ts = self.tables.get(name)
            if ts is None:
                continue  # a table the module no longer has
            for key in deletes:
                if key in ts.rows:
                    ts.remove_raw(key)
            for key in inserts:
                if key not in ts.rows:
                    ts.put_raw(key, ts.codec.decode(key))
        for name, col, n in seqs:
            ts = self.tables.get(name)
            if ts is not None and col in ts.seq_next:
                ts.seq_next[col] = max(ts.seq_next[col], n)

    def iter_rows(self, table: str) -> Iterable[tuple[Any, ...]]:
        """Rows of ``table`` (for queries)."""
        return self.tables[table].rows.values()


def _tuple_fields(n: int) -> Any:
    def fields(v: Any) -> Any:
        if type(v) is not tuple or len(v) != n:
            raise TypeError(f"expected a row tuple of {n} values")
        return v

    return fields


_B = ArrayType(PrimitiveType("U8"))
_S = PrimitiveType("String")
_TX_TYPE: AlgebraicType = ProductType(
    (
        ProductElement(
            "tables",
            ArrayType(
                ProductType(
                    (
                        ProductElement("table", _S),
                        ProductElement("inserts", ArrayType(_B)),
                        ProductElement("deletes", ArrayType(_B)),
                    )
                )
            ),
        ),
        ProductElement(
            "seqs",
            ArrayType(
                ProductType(
                    (
                        ProductElement("table", _S),
                        ProductElement("col", PrimitiveType("U16")),
                        ProductElement("next", PrimitiveType("I128")),
                    )
                )
            ),
        ),
    )
)


def _untuple(t: tuple[Any, ...]) -> tuple[Any, ...]:
    return t


def _tx_bindings() -> dict[Any, Any]:
    assert isinstance(_TX_TYPE, ProductType)
    out: dict[Any, Any] = {_TX_TYPE: ProductBinding(_untuple, _seq, tuple)}
    for e in _TX_TYPE.elements:
        assert isinstance(e.type, ArrayType)
        out[e.type.elem] = ProductBinding(_untuple, _seq, tuple)
    return out


def _seq(v: Any) -> Any:
    return v


#: Codec of the durable transaction record.
tx_record_codec: Codec = compile_codec(_TX_TYPE, None, _tx_bindings(), name="TxRecord")
