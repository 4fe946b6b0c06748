"""One hosted database: the module host, its commit log, the connected clients, their query sets,
and the scheduler. Transport-agnostic: a connection is anything with ``send(message)`` and
``close(code, reason)``; everything here runs on the server's event loop thread.

Ordering and durability: a committed transaction is appended to the commit log, and its updates are
computed at once (against the state right after it) but held until the log says the transaction is
durable. Every other reply to a client is queued behind the transactions appended before it, so each
client sees messages in request order and never sees data that a crash could take back.

A failing disk: when the commit log cannot write or flush a batch, the runtime enters a failed state for
good (it never retries, like PostgreSQL after a failed fsync): it logs one error line naming the file and
the OS error, drops every message still waiting for durability (so nobody is acknowledged or shown a
transaction that is not durable), closes every client with 1011 and a short reason, fails every waiting
HTTP call with :class:`ServerFailed`, and runs no reducer any more (calls, scheduled and lifecycle ones).
Every acknowledged transaction is in the log; the process is meant to stop and be restarted.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, assert_never

from ..sdk import ConnectionId, EncodeError, Identity, ScheduleAt, SpacetimeError, TimeDuration, Timestamp
from ..sdk.protocol import (
    BsatnRowList,
    CallProcedure,
    CallReducer,
    ClientMessage,
    Err,
    EventTableRows,
    InitialConnection,
    Ok,
    OneOffQuery,
    OneOffQueryResult,
    PersistentTableRows,
    ProcedureInternalError,
    ProcedureResult,
    QueryRows,
    QuerySetUpdate,
    ReducerErr,
    ReducerInternalError,
    ReducerOk,
    ReducerResult,
    ServerMessage,
    SingleTableRows,
    Subscribe,
    SubscribeApplied,
    SubscriptionError,
    TableUpdate,
    TransactionUpdate,
    Unsubscribe,
    UnsubscribeApplied,
    UnsubscribeFlags,
    encode_server_message,
)
from ..sdk.sats import (
    AlgebraicType,
    ArrayType,
    Codec,
    DecodeError,
    PrimitiveType,
    ProductType,
    RefType,
    SumType,
    compile_codec,
)
from ._files import ensure_private_dir
from ._host import CallResult, Host
from ._logsafe import server_logger
from ._migrate import (
    IncompatibleSchema,
    Layout,
    Migration,
    decode_layout_record,
    encode_layout_record,
    is_layout_record,
    module_layout,
    plan_migration,
)
from ._module import ModuleDef
from ._sql import DEFAULT_SQL_LIMITS, Query, RowDelta, SqlError, SqlLimits, compile_query
from ._store import Store, TableChanges, TxRecord, tx_record_codec
from ._v1 import TxCall, V1Link, transaction_bytes
from ._wal import CommitLog, CommitLogError

__all__ = [
    "MAX_QUERIES_PER_CONNECTION",
    "MAX_QUERY_SETS_PER_CONNECTION",
    "Connection",
    "DatabaseRuntime",
    "ProtocolViolation",
    "ServerFailed",
    "RuntimeLimits",
]

log = server_logger("spacetime_game.server")

_STRING = compile_codec(PrimitiveType("String"))

#: The close code for every client when the commit log fails (RFC 6455 "internal error").
CLOSE_SERVER_FAILED = 1011


#: The close code for every client when a module update changes tables (RFC 6455 "service restart").
CLOSE_MODULE_UPDATED = 1012


def _decode_rows(codec: Codec, keys: list[bytes]) -> list[tuple[Any, ...]]:
    """The rows whose encodings are ``keys``, decoded in one pass (the collector paused: the new rows
    hold no cycles, and a collection triggered by a burst of them would cost more than the decoding)."""
    paused = gc.isenabled()
    gc.disable()
    try:
        rows: list[tuple[Any, ...]] = codec.decode_concatenated(b"".join(keys))
    finally:
        if paused:
            gc.enable()
    if len(rows) != len(keys):  # (a key that is not one whole row)
        rows = [codec.decode(k) for k in keys]
    return rows


def _holds_module_classes(columns: list[tuple[str, AlgebraicType]], module: ModuleDef) -> bool:
    """Whether values of these columns may hold instances of the module's classes (product types and
    enums it declares), which a new version of the module declares anew."""
    seen: set[int] = set()

    def walk(ty: AlgebraicType) -> bool:
        if isinstance(ty, RefType):
            if ty.index in module.bindings:
                return True
            if ty.index in seen:
                return False
            seen.add(ty.index)
            return walk(module.typespace[ty.index])
        if isinstance(ty, ProductType):
            return any(walk(e.type) for e in ty.elements)
        if isinstance(ty, SumType):
            return any(walk(v.type) for v in ty.variants)
        if isinstance(ty, ArrayType):
            return walk(ty.elem)
        return False

    return any(walk(t) for _, t in columns)


def _start_new_sequences(store: Store, plan: Migration) -> None:
    """Columns that just became auto_inc continue after the largest stored value."""
    for name, cols in plan.new_sequences.items():
        ts = store.tables.get(name)
        if ts is None:
            continue
        for col in cols:
            top = max((row[col] for row in ts.rows.values()), default=0)
            ts.seq_next[col] = max(ts.seq_next.get(col, 1), top + 1)


def log_migration(database: str, plan: Migration, when: str) -> None:
    """One log line per change the migration made."""
    for change in plan.changes:
        log.info("database %s: %s (%s)", database, change, when)


#: Default for :attr:`RuntimeLimits.max_query_sets`.
MAX_QUERY_SETS_PER_CONNECTION = 256
#: Default for :attr:`RuntimeLimits.max_queries`.
MAX_QUERIES_PER_CONNECTION = 1024


class ProtocolViolation(Exception):
    """A client broke the protocol; its connection is closed with 1011 and this message."""


@dataclass(frozen=True)
class RuntimeLimits:
    """What one client may ask of the database (DevServer options of the same names set them).

    ``max_query_sets`` bounds the active query sets of one connection and ``max_queries`` the queries
    in all of them together (distinct texts within a set; each costs work on every commit that touches
    a table it reads). ``sql`` bounds each query's size and complexity. A Subscribe over a limit is
    answered with a ``SubscriptionError`` naming the limit; the connection stays open.
    """

    max_query_sets: int = MAX_QUERY_SETS_PER_CONNECTION
    max_queries: int = MAX_QUERIES_PER_CONNECTION
    sql: SqlLimits = DEFAULT_SQL_LIMITS

    def __post_init__(self) -> None:
        for name in ("max_query_sets", "max_queries"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"RuntimeLimits.{name} must be a positive int, got {value!r}")


class ServerFailed(SpacetimeError):
    """The database stopped for good because its commit log failed; ``str()`` is the one-line reason
    (the file, the operation, the OS error and what to do)."""


class Transport(Protocol):
    """What the runtime needs from a client connection."""

    def send(self, message: ServerMessage | bytes) -> None:
        """Queue a message (or its BSATN, already encoded) for the client (never blocks)."""

    def close(self, code: int, reason: str) -> None:
        """Close the connection."""


@dataclass
class QuerySet:
    """One subscribed query set: its queries (de-duplicated by text)."""

    id: int
    queries: list[Query]
    texts: tuple[str, ...] = field(init=False)  # its identity for sharing work between clients
    uses_sender: bool = field(init=False)  # whether its results depend on the subscriber

    def __post_init__(self) -> None:
        self.texts = tuple(q.sql for q in self.queries)
        self.uses_sender = any(q.uses_sender for q in self.queries)


@dataclass(eq=False)
class Connection:
    """A connected client."""

    identity: Identity
    connection_id: ConnectionId
    token: str
    transport: Transport
    confirmed: bool = True
    query_sets: dict[int, QuerySet] = field(default_factory=dict)
    alive: bool = True
    query_count: int = 0  # queries in all of query_sets
    # for the dev console: when it connected (time.time()), what it sent, its reducer calls and their time
    connected_at: float = field(default_factory=time.time)
    messages_in: int = 0
    bytes_in: int = 0
    calls: int = 0
    call_seconds: float = 0.0
    #: The v1 protocol's translation for this client (None on v2 and v3).
    v1: V1Link | None = None


class _StoreView:
    """The store as the SQL layer reads it."""

    def __init__(self, runtime: DatabaseRuntime) -> None:
        self._store = runtime.host.store

    def rows(self, table: str) -> Iterable[tuple[Any, ...]]:
        return self._store.tables[table].rows.values()

    def lookup(self, table: str, column: int, value: Any) -> Iterable[tuple[Any, ...]]:
        return self._store.tables[table].lookup(column, value)


class DatabaseRuntime:
    """A database served by this process."""

    #: What one client may ask of the database (the DevServer sets it from its options).
    limits: RuntimeLimits = RuntimeLimits()

    def __init__(
        self,
        name: str,
        module: ModuleDef,
        identity: Identity,
        data_dir: Path | None,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.name = name
        self.module = module
        self.loop = loop
        self.host = Host(module, identity)
        #: Called with each committed transaction while a dev console is open (else None).
        self.observer: Callable[[TxRecord], None] | None = None
        self.schema = module.schema()
        self.connections: dict[ConnectionId, Connection] = {}
        self.view = _StoreView(self)
        self._pending: list[tuple[int, list[tuple[Connection, ServerMessage | bytes]]]] = []
        self._appended = 0  # seq of the newest record given to the log
        self._durable = 0
        self._timers: dict[tuple[str, bytes], asyncio.TimerHandle] = {}
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        #: Why the database stopped (one line), or None while it works.
        self.failed: str | None = None
        self._failed_short = ""  # the same, short enough for a WebSocket close frame
        #: Set once ``failed`` is.
        self.failed_event = asyncio.Event()
        self.log: CommitLog | None = None
        #: The stored shape of the tables (what the commit log's records are written in).
        self.layout = module_layout(module)
        if data_dir is not None:
            ensure_private_dir(data_dir)
            self.log = CommitLog(data_dir / "commitlog.bin", on_failure=self._on_log_failure)
            try:
                fresh = self._load(self.log)
            except IncompatibleSchema as exc:
                self._close_log()
                raise IncompatibleSchema(
                    exc.problems,
                    f"The data in {data_dir} was stored by an earlier version of the module: undo that"
                    " change, or start over with an empty database (`spacetime-game dev --clear`, or"
                    f" delete {data_dir})",
                ) from None
            except BaseException:
                self._close_log()
                raise
        else:
            fresh = True
        if fresh:
            if self.log is not None:
                self._appended = self.log.append(encode_layout_record(self.layout, {}), self._on_durable)
            result = self.host.lifecycle("init", identity, None)
            if result is not None and result.status != "ok":
                raise RuntimeError(f"the module's init reducer failed: {result.message}")
            if result is not None and result.record is not None:
                self._commit(result.record)
        for spec in module.tables:
            if spec.scheduled:
                for key, row in list(self.host.store.tables[spec.name].rows.items()):
                    self._schedule(spec.name, key, row)

    def _load(self, log: CommitLog) -> bool:
        """Replay the commit log into the store (True when it holds nothing yet).

        Rows are replayed as bytes and decoded once at the end, in the module's layout; records written
        under an earlier layout get the bytes its layout records say were appended. A log whose last
        layout differs from the module's is migrated (:func:`plan_migration`; an incompatible change
        raises :class:`IncompatibleSchema`) and a layout record is added for the new one."""
        tables: dict[str, dict[bytes, None]] = {}
        seqs: dict[tuple[str, int], int] = {}
        stored: Layout | None = None
        fresh = True
        for seq, record in log.replay():
            self._appended = self._durable = seq
            fresh = False
            if is_layout_record(record):
                stored, append = decode_layout_record(record)
                for name, suffix in append.items():
                    if suffix and name in tables:
                        tables[name] = dict.fromkeys(k + suffix for k in tables[name])
                continue
            changed, seq_values = tx_record_codec.decode(record)
            for name, inserts, deletes in changed:
                rows = tables.setdefault(name, {})
                for key in deletes:
                    rows.pop(key, None)
                for key in inserts:
                    rows[key] = None
            for name, col, n in seq_values:
                seqs[(name, col)] = max(seqs.get((name, col), 0), n)
        if fresh:
            return True
        plan = Migration()
        if stored is not None and stored != self.layout:
            counts = {name: len(rows) for name, rows in tables.items()}
            plan = plan_migration(stored, self.module, counts)
            for name, suffix in plan.append.items():
                if suffix and name in tables:
                    tables[name] = dict.fromkeys(k + suffix for k in tables[name])
            log_migration(self.name, plan, "since the data was last served")
        store = self.host.store
        for name, rows in tables.items():
            ts = store.tables.get(name)
            if ts is None:
                continue  # a table the module no longer has (a log from before layout records)
            keys = list(rows)
            try:
                ts.load(keys, _decode_rows(ts.codec, keys))
            except DecodeError as exc:
                raise CommitLogError(
                    f"commit log {log.path}: a stored row of table {name!r} does not fit the module's"
                    f" columns ({exc}); the data was written by another version of the module"
                ) from exc
        for (name, col), n in seqs.items():
            ts = store.tables.get(name)
            if ts is not None and col in ts.seq_next:
                ts.seq_next[col] = max(ts.seq_next[col], n)
        _start_new_sequences(store, plan)
        if stored != self.layout:  # (also a log from before layout records: it was read in this layout)
            self._appended = log.append(encode_layout_record(self.layout, plan.append), self._on_durable)
        return False

    def _close_log(self) -> None:
        if self.log is not None:
            with contextlib.suppress(CommitLogError):
                self.log.close()

    # ----- module updates ----------------------------------------------------------------------------
    def reload(self, module: ModuleDef) -> Migration:
        """Serve ``module`` from now on, keeping the data (see :mod:`._migrate` for what may change).

        The stored rows move to the new tables before anything is swapped, so a failure (an
        incompatible change: :class:`IncompatibleSchema`) leaves the old module serving as it was. When
        only reducers changed, clients stay connected and notice nothing. When tables changed, every
        client is closed with 1012 ("service restart") and the reason: their subscriptions and caches
        were made for the old tables, and a reconnect renews both."""
        if self.failed is not None:
            raise ServerFailed(self.failed)
        old = self.host.store
        plan = plan_migration(self.layout, module, {name: len(t.rows) for name, t in old.tables.items()})
        host = Host(module, self.host.identity)
        host.observer = self.host.observer  # an open dev console keeps seeing the calls
        moved: set[str] = set()
        for name, ts in host.store.tables.items():
            before = old.tables.get(name)
            if before is None:
                continue
            suffix = plan.append.get(name, b"")
            if suffix:
                moved.add(name)
            if not suffix and not _holds_module_classes(ts.spec.columns, module):
                # the rows hold no object of the module's own classes: the old ones serve as they are
                ts.load(list(before.rows), list(before.rows.values()))
            else:  # (values of the new classes, in the new layout)
                keys = [key + suffix for key in before.rows] if suffix else list(before.rows)
                ts.load(keys, _decode_rows(ts.codec, keys))
            for col, n in before.seq_next.items():
                if col in ts.seq_next:
                    ts.seq_next[col] = max(ts.seq_next[col], n)
        _start_new_sequences(host.store, plan)
        layout = module_layout(module)
        if layout != self.layout and self.log is not None:
            self._appended = self.log.append(encode_layout_record(layout, plan.append), self._on_durable)
        # the swap (nothing above changed what clients see)
        for (table, key), timer in list(self._timers.items()):
            spec = next((t for t in module.tables if t.name == table), None)
            if spec is None or not spec.scheduled or table in moved:
                timer.cancel()
                del self._timers[(table, key)]
        self.module, self.host, self.layout = module, host, layout
        self.schema = module.schema()
        self.view = _StoreView(self)
        for spec in module.tables:
            if spec.scheduled:
                for key, row in list(host.store.tables[spec.name].rows.items()):
                    if (spec.name, key) not in self._timers:
                        self._schedule(spec.name, key, row)
        if plan.tables_changed:
            for conn in list(self.connections.values()):
                conn.transport.close(CLOSE_MODULE_UPDATED, "the module's tables changed: reconnect")
        return plan

    # ----- durability gate ---------------------------------------------------------------------------
    @property
    def appended(self) -> int:
        """The log position of the newest committed transaction (what a confirmed read waits for)."""
        return self._appended

    def _deliver(self, conn: Connection, msg: ServerMessage | bytes, gate: int | None = None) -> None:
        """Send now, or once record ``gate`` (default: the newest appended one) is durable."""
        if self.failed is not None:
            return
        g = self._appended if gate is None else gate
        if not conn.confirmed or g <= self._durable:
            if conn.alive:
                conn.transport.send(msg)
            return
        if self._pending and self._pending[-1][0] == g:
            self._pending[-1][1].append((conn, msg))
        else:
            self._pending.append((g, [(conn, msg)]))

    def _on_durable(self, seq: int) -> None:
        self.loop.call_soon_threadsafe(self._release, seq)

    def _release(self, seq: int) -> None:
        self._durable = max(self._durable, seq)
        if self._waiters:
            still = []
            for want, fut in self._waiters:
                if want <= self._durable:
                    if not fut.done():
                        fut.set_result(None)
                else:
                    still.append((want, fut))
            self._waiters = still
        while self._pending and self._pending[0][0] <= self._durable:
            _, batch = self._pending.pop(0)
            for conn, msg in batch:
                if conn.alive:
                    conn.transport.send(msg)

    def _on_log_failure(self, error: CommitLogError) -> None:
        """The commit log stopped (called on its writer thread)."""
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is left to tell
            self.loop.call_soon_threadsafe(self._fail, error)

    def _fail(self, error: CommitLogError) -> None:
        """Enter the failed state (once): see the module docstring."""
        if self.failed is not None:
            return
        if self.log is not None:  # batches that did become durable before the failure still count
            self._release(self.log.durable_seq)
        detail = str(error)
        if self.log is not None:
            detail = detail.removeprefix(f"commit log {self.log.path}: ")
        self.failed = (
            f"{error}; the server stopped accepting work; fix the disk (e.g. free space) and restart "
            f"the server: every acknowledged transaction is kept"
        )
        short = f"commit log {detail}; server stopped".encode()[:120]  # a close reason holds 123 bytes
        self._failed_short = short.decode(errors="ignore")
        log.error("%s", self.failed)
        for t in self._timers.values():
            t.cancel()
        self._timers.clear()
        self._pending.clear()  # never sent: these transactions are not durable
        waiters, self._waiters = self._waiters, []
        for _, fut in waiters:
            if not fut.done():
                fut.set_exception(ServerFailed(self.failed))
        for conn in list(self.connections.values()):
            conn.transport.close(CLOSE_SERVER_FAILED, self._failed_short)
        self.failed_event.set()

    def flush(self) -> None:
        """Make everything appended durable and send what waits for it."""
        if self.log is not None:
            self.log.flush()
            self._release(self.log.durable_seq)

    def close(self) -> None:
        """Flush and close the commit log and cancel timers."""
        for t in self._timers.values():
            t.cancel()
        self._timers.clear()
        if self.log is not None:
            try:
                self.log.close()
            except CommitLogError:
                if self.log.failure is None:
                    raise
                return  # reported once already, by _fail
            self._release(self._appended)

    # ----- transactions ------------------------------------------------------------------------------
    def _commit(
        self,
        record: TxRecord,
        caller: Connection | None = None,
        call: Callable[[], TxCall] | None = None,
    ) -> tuple[int, list[QuerySetUpdate]]:
        """Log a committed transaction, compute every client's update now, deliver once durable.

        Returns the log position to wait for and, when ``caller`` is given, the caller's own changed
        query sets (which go into its ReducerResult instead of a TransactionUpdate). ``call`` describes
        the reducer call for v1 clients (made only if one of them is told)."""
        persistent = TxRecord(
            {t: c for t, c in record.changes.items() if not self.module.table_spec(t).event}, record.seqs
        )
        if self.failed is None and self.log is not None and not persistent.is_empty():
            try:
                self._appended = self.log.append(self.host.store.encode_record(persistent), self._on_durable)
            except CommitLogError as exc:  # the writer failed before the loop heard of it
                self._fail(self.log.failure or exc)
        elif self.log is None:
            self._appended += 1
            self._durable = self._appended
        if self.failed is not None:  # nothing of it is ever sent, and a waiter for it fails
            return self._appended + 1, []
        updates = self._updates(record.changes)
        gate = self._appended
        encoded: dict[Any, bytes] = {}  # clients with the same sets (and protocol) share the bytes
        made: list[TxCall | None] = []
        for conn in list(self.connections.values()):
            sets = updates.get(conn.connection_id)
            if sets and conn is not caller:
                key: Any = tuple((qs.query_set_id, id(qs.tables)) for qs in sets)
                link = conn.v1
                if link is not None:
                    key = (key, link.light)
                data = encoded.get(key)
                if data is None:
                    if link is None:
                        data = encode_server_message(TransactionUpdate(tuple(sets)))
                    else:
                        if not made:
                            made.append(call() if call is not None else None)
                        data = transaction_bytes(sets, made[0], link.light, self.table_id)
                    encoded[key] = data
                self._deliver(conn, data, gate)
        self._after_commit(record)
        if self.observer is not None:
            try:
                self.observer(record)
            except Exception:  # the console must never break a commit
                log.exception("the dev console's commit observer failed")
        return gate, (updates.get(caller.connection_id, []) if caller is not None else [])

    def _updates(self, changes: Mapping[str, TableChanges]) -> dict[ConnectionId, list[QuerySetUpdate]]:
        """Per connection, the query sets whose results this transaction changed (incrementally)."""
        if not changes:
            return {}
        sql_changes = {t: RowDelta(c.inserts, c.deletes) for t, c in changes.items()}
        by_id: dict[str, dict[int, bytes]] = {}
        for t, c in changes.items():
            m: dict[int, bytes] = {}
            for row, b in zip(c.inserts, c.insert_bytes, strict=True):
                m[id(row)] = b
            for row, b in zip(c.deletes, c.delete_bytes, strict=True):
                m[id(row)] = b
            by_id[t] = m
        cache: dict[tuple[str, str], RowDelta] = {}
        # the tables of a query set depend only on its query texts (and the sender, for :sender), so
        # clients subscribed to the same queries share one computed tuple of TableUpdates
        set_cache: dict[tuple[tuple[str, ...], str], tuple[TableUpdate, ...]] = {}
        touched = set(changes)
        out: dict[ConnectionId, list[QuerySetUpdate]] = {}
        for conn in self.connections.values():
            sets = []
            for qs in conn.query_sets.values():
                if not any(q.reads & touched for q in qs.queries):
                    continue
                personal = str(conn.identity) if qs.uses_sender else ""
                skey = (qs.texts, personal)
                tables = set_cache.get(skey)
                if tables is None:
                    tables = set_cache[skey] = self._set_tables(
                        qs, personal, touched, cache, sql_changes, by_id
                    )
                if tables:
                    sets.append(QuerySetUpdate(qs.id, tables))
            if sets:
                out[conn.connection_id] = sets
        return out

    def _set_tables(
        self,
        qs: QuerySet,
        personal: str,
        touched: set[str],
        cache: dict[tuple[str, str], RowDelta],
        sql_changes: Mapping[str, RowDelta],
        by_id: dict[str, dict[int, bytes]],
    ) -> tuple[TableUpdate, ...]:
        """The changed tables of one query set, from the (shared) deltas of its queries."""
        per_table: dict[str, tuple[list[bytes], list[bytes]]] = {}
        for q in qs.queries:
            if not (q.reads & touched):
                continue
            # the same query text gives the same delta for everyone, unless it uses :sender
            key = (q.sql, personal if q.uses_sender else "")
            delta = cache.get(key)
            if delta is None:
                delta = cache[key] = q.delta(self.view, sql_changes)
            if not delta.inserts and not delta.deletes:
                continue
            ins, dels = per_table.setdefault(q.table, ([], []))
            ins += [self._row_bytes(q.table, r, by_id) for r in delta.inserts]
            dels += [self._row_bytes(q.table, r, by_id) for r in delta.deletes]
        return tuple(
            TableUpdate(t, (self._table_rows(t, ins, dels),)) for t, (ins, dels) in per_table.items()
        )

    def _table_rows(
        self, table: str, ins: list[bytes], dels: list[bytes]
    ) -> PersistentTableRows | EventTableRows:
        if self.module.table_spec(table).event:
            return EventTableRows(BsatnRowList.from_rows(ins))
        return PersistentTableRows(BsatnRowList.from_rows(ins), BsatnRowList.from_rows(dels))

    def table_id(self, table: str) -> int:
        """The id of ``table`` in v1 messages: 4096 plus its place in the module (the first user table of a
        real server has id 4096)."""
        for i, spec in enumerate(self.module.tables):
            if spec.name == table:
                return 4096 + i
        return 0

    def reducer_id(self, reducer: str) -> int:
        """The id of ``reducer`` in v1 messages: its place in the module."""
        for i, rd in enumerate(self.module.reducers):
            if rd.name == reducer:
                return i
        return 0xFFFFFFFF

    def _tx_call(
        self,
        reducer: str,
        args: bytes | tuple[Any, ...],
        caller: Identity,
        connection_id: ConnectionId | None,
        request_id: int,
        timestamp: Timestamp,
        seconds: float,
    ) -> Callable[[], TxCall]:
        """What a v1 TransactionUpdate says about a call (made when a v1 client is told about it)."""

        def make() -> TxCall:
            raw = args
            if isinstance(raw, tuple):
                try:
                    raw = self.host.args_codec(reducer).encode(raw)
                except (KeyError, EncodeError):
                    raw = b""
            return TxCall(
                reducer,
                self.reducer_id(reducer),
                raw,
                caller,
                connection_id,
                request_id,
                timestamp,
                int(seconds * 1e6),
            )

        return make

    def _row_bytes(self, table: str, row: tuple[Any, ...], by_id: dict[str, dict[int, bytes]]) -> bytes:
        b = by_id.get(table, {}).get(id(row))
        return b if b is not None else self.host.store.tables[table].codec.encode(row)

    # ----- clients --------------------------------------------------------------------------------------
    def connect(self, conn: Connection) -> bool:
        """Run client_connected; on success register the client and send InitialConnection. A client
        whose connection id is already live is refused (before client_connected runs)."""
        if conn.connection_id in self.connections:
            log.info("refused a second connection with the live connection id %s", conn.connection_id)
            return False
        if self.failed is not None:
            return False
        result = self.host.lifecycle("client_connected", conn.identity, conn.connection_id)
        if result is not None and result.status != "ok":
            log.info("client_connected refused %s: %s", conn.identity, result.message)
            return False
        self.connections[conn.connection_id] = conn
        log.info("client connected: %s (connection %s)", conn.identity, conn.connection_id)
        conn.transport.send(InitialConnection(conn.identity, conn.connection_id, conn.token))
        if result is not None and result.record is not None:
            self._commit(result.record, call=self._lifecycle_call("client_connected", conn, result))
        return True

    def disconnect(self, conn: Connection) -> None:
        """Forget the client and run client_disconnected."""
        if self.connections.pop(conn.connection_id, None) is None:
            return
        conn.alive = False
        log.info("client disconnected: %s (connection %s)", conn.identity, conn.connection_id)
        if self.failed is not None:  # no reducer runs any more
            return
        result = self.host.lifecycle("client_disconnected", conn.identity, conn.connection_id)
        if result is not None and result.status == "ok" and result.record is not None:
            self._commit(result.record, call=self._lifecycle_call("client_disconnected", conn, result))

    def _lifecycle_call(self, kind: Any, conn: Connection, result: CallResult) -> Callable[[], TxCall]:
        rd = self.module.lifecycle(kind)
        name = rd.name if rd is not None else kind
        return self._tx_call(name, b"", conn.identity, conn.connection_id, 0, result.timestamp, 0.0)

    def handle(self, conn: Connection, msg: ClientMessage) -> None:
        """Answer one client message at once (raises :class:`ProtocolViolation` to close the connection)."""
        for _ in self.steps(conn, msg):
            pass

    def steps(self, conn: Connection, msg: ClientMessage) -> Iterator[None]:
        """Answer one client message in steps: the caller may let other work run at each ``yield``.

        Only work that does not read the database (compiling queries, one at a time) is split; what
        reads or changes it runs after the last step, at once, so each answer still reflects one
        state. Raises :class:`ProtocolViolation` to close the connection."""
        if self.failed is not None:  # the connection is being closed with the reason
            return
        # exhaustive: a new kind of ClientMessage fails type checking here until it is handled
        match msg:
            case CallReducer():
                self._call_reducer(conn, msg)
            case Subscribe():
                yield from self._subscribe(conn, msg)
            case Unsubscribe():
                self._unsubscribe(conn, msg)
            case OneOffQuery():
                yield from self._one_off(conn, msg)
            case CallProcedure():
                self._call_procedure(conn, msg)
            case _:
                assert_never(msg)

    def _call_procedure(self, conn: Connection, msg: CallProcedure) -> None:
        if msg.flags != 0:
            raise ProtocolViolation(f"invalid CallProcedure flags {msg.flags}")
        self._deliver(
            conn,
            ProcedureResult(
                ProcedureInternalError(f"No such procedure: {msg.procedure!r}"),
                Timestamp.now(),
                TimeDuration(0),
                msg.request_id,
            ),
        )

    def refuse_subscribe(self, conn: Connection, request_id: int, query_set_id: int, queries: int) -> None:
        """Answer a Subscribe of ``queries`` query strings that is over the per-connection query limit
        without decoding it (the transport found the count in its header)."""
        error = self._room_error(conn, queries)
        assert error is not None, "refuse_subscribe is only for a Subscribe over the limits"
        self._deliver(conn, SubscriptionError(request_id, query_set_id, error))

    def _room_error(self, conn: Connection, queries: int) -> str | None:
        """Why ``conn`` may not add a query set of ``queries`` queries (None: it may)."""
        limits = self.limits
        if len(conn.query_sets) >= limits.max_query_sets:
            return (
                f"too many query sets: this connection already has {len(conn.query_sets):,}, the server's "
                f"limit (max_query_sets_per_connection = {limits.max_query_sets:,}); unsubscribe "
                "from some first, or start the server with a higher limit"
            )
        if conn.query_count + queries > limits.max_queries:
            return (
                f"too many queries: this connection would have {conn.query_count + queries:,} queries "
                f"in its query sets, more than the server's limit (max_queries_per_connection = "
                f"{limits.max_queries:,}); unsubscribe from some first, or start the server with a "
                "higher limit"
            )
        return None

    def _call_reducer(self, conn: Connection, msg: CallReducer) -> None:
        if msg.flags != 0:
            raise ProtocolViolation(f"invalid CallReducer flags {msg.flags}")
        t0 = time.perf_counter()
        result = self.host.call(msg.reducer, msg.args, conn.identity, conn.connection_id)
        seconds = time.perf_counter() - t0
        conn.calls += 1
        conn.call_seconds += seconds
        call = self._tx_call(
            msg.reducer,
            msg.args,
            conn.identity,
            conn.connection_id,
            msg.request_id,
            result.timestamp,
            seconds,
        )
        self._reply_reducer(conn, msg.request_id, result, call)

    def _reply_reducer(
        self, conn: Connection, request_id: int, result: CallResult, call: Callable[[], TxCall]
    ) -> None:
        status = result.status
        match status:
            case "ok":
                assert result.record is not None
                gate, own = self._commit(result.record, conn, call)
                outcome: Any = ReducerOk(b"", TransactionUpdate(tuple(own)))
                self._deliver(conn, ReducerResult(request_id, result.timestamp, outcome), gate)
            case "err":
                self._deliver(
                    conn,
                    ReducerResult(request_id, result.timestamp, ReducerErr(_STRING.encode(result.message))),
                )
            case "internal":
                self._deliver(
                    conn, ReducerResult(request_id, result.timestamp, ReducerInternalError(result.message))
                )
            case _:
                assert_never(status)

    def _compile(self, conn: Connection, sqls: Iterable[str], out: list[Query]) -> Iterator[None]:
        """Compile ``sqls`` (distinct texts) into ``out``, one step per query."""
        for sql in sqls:
            out.append(compile_query(sql, self.schema, conn.identity, limits=self.limits.sql))
            yield

    def _query_rows(self, queries: list[Query]) -> QueryRows:
        per_table: dict[str, list[bytes]] = {}
        for q in queries:
            ts = self.host.store.tables[q.table]
            rows = q.evaluate(self.view)
            if len(rows) > 64:
                # the store keys each row by its BSATN: reuse it rather than encode every row again
                # (several times faster for a large result)
                stored = {id(r): key for key, r in ts.rows.items()}
                out = [stored.get(id(r)) or ts.codec.encode(r) for r in rows]
            else:
                out = [ts.codec.encode(r) for r in rows]
            per_table.setdefault(q.table, []).extend(out)
        return QueryRows(
            tuple(SingleTableRows(t, BsatnRowList.from_rows(rows)) for t, rows in per_table.items())
        )

    def _subscribe(self, conn: Connection, msg: Subscribe) -> Iterator[None]:
        if msg.query_set_id in conn.query_sets:
            # not answered with a SubscriptionError: the client would take it to end the active set
            raise ProtocolViolation(f"query set id {msg.query_set_id} is already in use")
        sqls = list(dict.fromkeys(msg.query_strings))
        error = self._room_error(conn, len(sqls))
        if error is not None:
            self._deliver(conn, SubscriptionError(msg.request_id, msg.query_set_id, error))
            return
        queries: list[Query] = []
        try:
            yield from self._compile(conn, sqls, queries)
            rows = self._query_rows(queries)
        except SqlError as exc:
            self._deliver(conn, SubscriptionError(msg.request_id, msg.query_set_id, str(exc)))
            return
        conn.query_sets[msg.query_set_id] = QuerySet(msg.query_set_id, queries)
        conn.query_count += len(queries)
        self._deliver(conn, SubscribeApplied(msg.request_id, msg.query_set_id, rows))

    def _unsubscribe(self, conn: Connection, msg: Unsubscribe) -> None:
        qs = conn.query_sets.pop(msg.query_set_id, None)
        if qs is None:
            # an ordinary bad request, answered like the official server does; the connection stays
            error = (
                f"no active query set with id {msg.query_set_id}: it was never subscribed, or it "
                "was already unsubscribed or ended with an error"
            )
            self._deliver(conn, SubscriptionError(msg.request_id, msg.query_set_id, error))
            return
        conn.query_count -= len(qs.queries)
        rows = self._query_rows(qs.queries) if msg.flags == UnsubscribeFlags.SEND_DROPPED_ROWS else None
        self._deliver(conn, UnsubscribeApplied(msg.request_id, msg.query_set_id, rows))

    def _one_off(self, conn: Connection, msg: OneOffQuery) -> Iterator[None]:
        queries: list[Query] = []
        try:
            yield from self._compile(conn, [msg.query_string], queries)
            result: Any = Ok(self._query_rows(queries))
        except SqlError as exc:
            result = Err(str(exc))
        self._deliver(conn, OneOffQueryResult(msg.request_id, result))

    # ----- calls from HTTP ---------------------------------------------------------------------------
    async def call_http(self, reducer: str, args: tuple[Any, ...], sender: Identity) -> CallResult:
        """A reducer call over HTTP: committed changes go to subscribers as usual, and the answer
        waits until the transaction is durable (like every other reply).

        Raises :class:`ServerFailed` if the database has failed, or fails before the transaction is
        durable."""
        if self.failed is not None:
            raise ServerFailed(self.failed)
        t0 = time.perf_counter()
        result = self.host.call(reducer, args, sender, None)
        if result.status == "ok" and result.record is not None:
            call = self._tx_call(
                reducer, tuple(args), sender, None, 0, result.timestamp, time.perf_counter() - t0
            )
            gate, _ = self._commit(result.record, call=call)
            await self.durable(gate)
        return result

    async def durable(self, seq: int) -> None:
        """Wait until log record ``seq`` is durable (:class:`ServerFailed` if it never will be)."""
        if seq <= self._durable:
            return
        if self.failed is not None:
            raise ServerFailed(self.failed)
        done = self.loop.create_future()
        self._waiters.append((seq, done))
        await done

    # ----- the scheduler --------------------------------------------------------------------------------
    def _after_commit(self, record: TxRecord) -> None:
        for table, changes in record.changes.items():
            spec = self.module.table_spec(table)
            if not spec.scheduled:
                continue
            for key in changes.delete_bytes:
                timer = self._timers.pop((table, key), None)
                if timer is not None:
                    timer.cancel()
            for key, row in zip(changes.insert_bytes, changes.inserts, strict=True):
                self._schedule(table, key, row)

    def _schedule(self, table: str, key: bytes, row: tuple[Any, ...], due: int | None = None) -> None:
        """Set the timer of a scheduled row: an interval row first fires one interval after it was
        inserted (or at ``due``, its next intended time), a one-shot row at its time (at once if past)."""
        spec = self.module.table_spec(table)
        col = [n for n, _ in spec.columns].index(spec.scheduled_at or "scheduled_at")
        at: ScheduleAt = row[col]
        now = Timestamp.now().micros_since_epoch
        if due is None:
            if at.is_interval:
                assert isinstance(at.value, TimeDuration)
                due = now + max(at.value.micros, 0)
            else:
                assert isinstance(at.value, Timestamp)
                due = at.value.micros_since_epoch
        old = self._timers.pop((table, key), None)
        if old is not None:
            old.cancel()
        delay = max(due - now, 0) / 1e6
        self._timers[(table, key)] = self.loop.call_later(delay, self._fire, table, key, due)

    def _fire(self, table: str, key: bytes, due: int) -> None:
        """Run a scheduled row's reducer (the call's timestamp is its intended time, or now if later);
        then an interval row is set again at its next intended time (anchored to the previous one, ticks
        missed while late are skipped) and a one-shot row is deleted."""
        self._timers.pop((table, key), None)
        if self.failed is not None:
            return
        ts = self.host.store.tables[table]
        row = ts.rows.get(key)
        if row is None:
            return
        spec = ts.spec
        assert spec.scheduled is not None
        now = Timestamp.now().micros_since_epoch
        t0 = time.perf_counter()
        args = (spec.from_row(row),)
        result = self.host.call(
            spec.scheduled, args, self.host.identity, None, Timestamp(max(due, now)), internal=True
        )
        seconds = time.perf_counter() - t0
        if result.status == "err":  # failed on purpose (a stale timer, say): the module's business
            log.info("scheduled reducer %s failed: %s", spec.scheduled, result.message)
        elif result.status != "ok":  # crashed
            log.warning("scheduled reducer %s failed: %s", spec.scheduled, result.message)
        elif result.record is not None:
            call = self._tx_call(spec.scheduled, args, self.host.identity, None, 0, result.timestamp, seconds)
            self._commit(result.record, call=call)
        if self.failed is not None:
            return
        at = row[[n for n, _ in spec.columns].index(spec.scheduled_at or "scheduled_at")]
        still = key in ts.rows
        if at.is_interval and still and (table, key) not in self._timers:
            every = max(at.value.micros, 1)
            after = Timestamp.now().micros_since_epoch
            nxt = due + every
            if nxt <= after:  # late: skip the ticks missed, keep the phase
                nxt = due + every * ((after - due) // every + 1)
            self._schedule(table, key, row, nxt)
        elif not at.is_interval and still:
            tx = self.host.store.begin()
            tx.delete_key(table, key)
            self._commit(self.host.store.commit(tx))
