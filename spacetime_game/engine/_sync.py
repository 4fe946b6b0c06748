"""Entity sync: the rows of one table become game entities through spawn / update / despawn hooks.

An :class:`EntitySync` is attached to one connection by a :class:`~spacetime_game.engine.FrameDriver`
(``driver.sync(...)`` or ``driver.add_sync(...)``); its row callbacks then run inside the driver's
``tick()``, under the frame budget, in the server's order. Every hook gets a :class:`Change` that says
why and when the rows changed (one per server message, shared by its rows: nothing is allocated per row
for it).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from operator import itemgetter
from typing import TYPE_CHECKING, Any, Final, Generic, Literal, TypeVar, assert_never, cast

if TYPE_CHECKING:
    from ..sdk import AppliedMessage, DbConnection, ReducerEvent

__all__ = ["DEFER", "Change", "EntitySync", "Origin", "origin_of"]

log = logging.getLogger("spacetime_game.engine")

#: Where a change comes from: ``initial`` (the rows of a subscription being applied: the first load, or
#: the re-subscription after a reconnect, which brings only the rows that changed while away), ``own``
#: (this client's own reducer call), ``other`` (another client's call or a scheduled reducer: the v2
#: protocol does not say which) or ``unsubscribe`` (a query set ended, so its rows leave the cache).
Origin = Literal["initial", "own", "other", "unsubscribe"]

R = TypeVar("R")
E = TypeVar("E")


@dataclass(frozen=True, slots=True)
class Change:
    """Why and when rows changed: one per server message, passed to every hook of its rows and to the
    driver's ``on_applied`` hooks."""

    #: Where the change comes from (see :data:`Origin`).
    origin: Origin
    #: The SDK's event for the message: None for ``initial`` and ``unsubscribe``; for ``own`` it names
    #: the reducer, its arguments and the caller; for ``other`` only its status is known.
    event: ReducerEvent | None
    #: The driver's clock when the message was applied (its local arrival time, in seconds): v2
    #: transactions carry no server time, so interpolation stamps snapshots with this.
    time: float
    #: How many rows changed in each table the message touched.
    rows: Mapping[str, int] = field(default_factory=dict)
    #: The connection the message arrived on.
    client: DbConnection | None = None


def origin_of(message: AppliedMessage) -> Origin:
    """The :data:`Origin` of an applied message (see :meth:`DbConnection.register_on_applying`)."""
    match message.kind:
        case "subscribe":
            return "initial"
        case "unsubscribe":
            return "unsubscribe"
        case "transaction":
            ev = message.event
            return "own" if ev is not None and ev.reducer_name is not None else "other"
        case _:
            assert_never(message.kind)


class _Defer:
    """The type of :data:`DEFER`."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "DEFER"


#: What an ``on_despawn`` hook returns to keep the entity until the game calls
#: :meth:`EntitySync.release` (a death animation, say). Any other return value (None) means it is gone.
DEFER: Final = _Defer()


class EntitySync(Generic[R, E]):
    """Keeps one entity per row of a table (optionally only the rows ``filter(row)`` accepts), keyed by
    the primary key, or by ``key`` for a table without one (a view).

    ``table`` is a generated table class (``module_bindings.Player``) or a table name. The hooks:

    * ``on_spawn(row, change) -> entity``: a row appeared (None: the entity is the row itself, and it is
      replaced by the new row on each update);
    * ``on_update(entity, old, new, change)``: the row of an entity changed;
    * ``on_despawn(entity, row, change)``: the row went. Return :data:`DEFER` to keep the entity until
      :meth:`release` (it waits in :attr:`dying`); anything else drops it at once;
    * ``on_revive(entity, row, change) -> bool``: a row came back under the key of an entity still in
      :attr:`dying`: return True to bring that entity back (it gets the new row through this hook, and a
      later :meth:`release` of it is ignored). Without this hook, or if it returns False, a new entity is
      spawned and the dying one finishes on its own;
    * ``on_event(row, change)``: for an event table, each row (a one-shot event; no entity is kept).
      Giving it makes the table one of events even when its bindings do not say so (a V9 schema, such
      as the dev server's, cannot mark event tables).

    ``key`` (tables without a primary key only): a function of the row, a column name or a sequence of
    column names, naming the entity a row belongs to. Within one transaction, a delete and an insert of
    the same key are one update (a view recomputed by the server deletes and re-inserts its rows:
    without this, each change would despawn and respawn the entity).

    A reconnect keeps the entities: the SDK re-applies the subscription and reports only the rows that
    changed while away, which arrive here as ordinary ``initial`` changes.
    """

    def __init__(
        self,
        table: type[R] | str,
        *,
        on_spawn: Callable[[R, Change], E] | None = None,
        on_update: Callable[[E, R, R, Change], None] | None = None,
        on_despawn: Callable[[E, R, Change], object] | None = None,
        on_revive: Callable[[E, R, Change], bool] | None = None,
        on_event: Callable[[R, Change], None] | None = None,
        filter: Callable[[R], bool] | None = None,
        key: Callable[[R], Hashable] | str | Sequence[str] | None = None,
    ) -> None:
        name = table if isinstance(table, str) else getattr(table, "table_name", None)
        if not isinstance(name, str):
            raise TypeError(
                f"table must be a generated table class (module_bindings.<Table>) or a table name, got {table!r}"
            )
        self.table: str = name
        self.on_spawn = on_spawn
        self.on_update = on_update
        self.on_despawn = on_despawn
        self.on_revive = on_revive
        self.on_event = on_event
        self.filter = filter
        self._key_spec = key
        #: The live entities by key.
        self.entities: dict[Hashable, E] = {}
        #: Entities whose ``on_despawn`` returned :data:`DEFER`, by key, oldest first, until released.
        self.dying: dict[Hashable, list[E]] = {}
        #: How many row events this sync has received (the driver's loading progress counts them).
        self.delivered = 0
        #: The connection it is attached to (None until a driver attaches it).
        self.client: DbConnection | None = None
        self._dying_ids: dict[int, Hashable] = {}
        self._key: Callable[[Any], Hashable] = _no_key
        self._keyless = False
        self._is_event = False
        self._change: Change | None = None
        self._pending: dict[Hashable, Any] = {}  # key-less deletes waiting for the end of the message
        self._rows: dict[Hashable, Any] = {}  # key-less tables: the row each entity follows
        # (event, callback, bulk): bulk callbacks are registered with on_rows (a chunk of rows a call)
        self._callbacks: list[tuple[Literal["insert", "update", "delete"], Callable[..., None], bool]] = []
        # the engine's own users (SpriteSync) take updates with the key already computed, in place of
        # on_update on the hot path: hook(key, entity, old, new, change) for one row, and
        # many(keys, entities, olds, news, change) for a chunk of a transaction's updated rows
        self._keyed_update: Callable[[Hashable, Any, Any, Any, Change], None] | None = None
        self._keyed_many: Callable[[list[Any], list[Any], list[Any], list[Any], Change], None] | None = None

    def __repr__(self) -> str:
        return f"EntitySync({self.table!r}, {len(self.entities)} entities)"

    # ----- attaching (the driver does this) -------------------------------------------------------
    def attach(self, client: DbConnection, change: Change) -> None:
        """Start following ``client``: register the row callbacks, and spawn an entity for each row
        already cached (with ``change``, an ``initial`` one). Called by the driver."""
        if self.client is not None:
            raise RuntimeError(f"{self!r} is already attached to a connection; make another EntitySync")
        binding = client.module.tables.get(self.table)
        if binding is None:
            known = ", ".join(sorted(client.module.tables)) or "none"
            raise KeyError(f"the module has no table {self.table!r} (its tables: {known})")
        # a V9 schema (the dev server publishes one) does not mark event tables: on_event says it
        self._is_event = binding.is_event or self.on_event is not None
        if self._is_event:
            if self.on_event is None:
                raise ValueError(f"{self.table!r} is an event table: pass on_event=... to receive its rows")
            if (
                self.on_spawn
                or self.on_update
                or self.on_despawn
                or self.on_revive
                or self._key_spec is not None
            ):
                raise ValueError(
                    f"{self.table!r} is synced as an event table (on_event): its rows are one-shot events, "
                    "never entities (no on_spawn, on_update, on_despawn, on_revive or key)"
                )
            self._callbacks = [("insert", self._on_event_row, False)]
        else:
            self._key = self._key_getter(binding.primary_key, binding.column_names)
            self._callbacks = [
                ("insert", self._on_insert, False),
                ("update", self._on_update_rows, True),  # a transaction's updates, a chunk a call
                ("delete", self._on_delete, False),
            ]
        self.client = client
        for event, cb, bulk in self._callbacks:
            if bulk:
                client.on_rows(self.table, event, cb)
            else:
                client.on_row(self.table, event, cb)
        if not self._is_event:
            self._change = change
            try:
                for row in client.iter_rows(self.table):
                    self._on_insert(row, None)
            finally:
                self._change = None

    def detach(self) -> None:
        """Stop following the connection (the entities stay as they are). Called by the driver."""
        client, self.client = self.client, None
        if client is not None:
            for event, cb, bulk in self._callbacks:
                if bulk:
                    client.remove_on_rows(self.table, event, cb)
                else:
                    client.remove_on_row(self.table, event, cb)
        self._change = None
        self._pending.clear()

    def _key_getter(self, pk: str | None, columns: Sequence[str]) -> Callable[[Any], Hashable]:
        spec = self._key_spec
        if pk is not None:
            if spec is not None:
                raise ValueError(
                    f"table {self.table!r} has a primary key ({pk!r}): its entities are keyed by it, "
                    "so key=... is only for tables without one"
                )
            return itemgetter(columns.index(pk))
        self._keyless = True
        if spec is None:
            raise ValueError(
                f"table {self.table!r} has no primary key: pass key=... (a function of the row, or column "
                "names) to say which entity each row is"
            )
        if callable(spec):
            return spec
        names = [spec] if isinstance(spec, str) else list(spec)
        missing = [n for n in names if n not in columns]
        if missing or not names:
            raise ValueError(
                f"key names no column of {self.table!r}: {missing} (its columns: {list(columns)})"
            )
        return itemgetter(*(columns.index(n) for n in names))

    # ----- message framing (the driver calls these from the SDK's hooks) --------------------------
    def begin(self, change: Change) -> None:
        """A message begins: its rows get ``change``."""
        self._change = change

    def end(self) -> None:
        """The message's rows are all delivered: key-less deletes that no insert matched despawn now."""
        if self._pending:
            pending, self._pending = self._pending, {}
            for key, row in pending.items():
                self._despawn(key, row)
        self._change = None

    def _context(self, event: ReducerEvent | None) -> Change:
        """The change of a row delivered outside a framed message (no driver hook ran)."""
        change = self._change
        if change is not None:
            return change
        if event is None:
            origin: Origin = "initial"
        else:
            origin = "own" if event.reducer_name is not None else "other"
        return Change(origin, event, 0.0, {}, self.client)

    # ----- row callbacks (hot path) ---------------------------------------------------------------
    def _on_insert(self, row: Any, event: ReducerEvent | None) -> None:
        self.delivered += 1
        key = self._key(row)
        if self._keyless:
            old = self._pending.pop(key, _MISSING)
            if old is not _MISSING:  # a delete and an insert of one key in one message: an update
                self._changed(key, old, row)
                return
            if key in self.entities:  # a second row for one key: the entity follows the newer one
                log.warning(
                    "table %r: two rows for the key %r; the entity follows the newer", self.table, key
                )
                self._changed(key, self._rows[key], row)
                return
        f = self.filter
        if f is not None and not f(row):
            return
        self._spawn(key, row)

    def _on_update_row(self, old: Any, new: Any, event: ReducerEvent | None) -> None:
        self.delivered += 1
        key = self._key(new)
        if self.filter is None and not self._keyless:
            # the common case of _changed and _updated, inlined (one row of a big transaction)
            entity = self.entities.get(key, _MISSING)
            if entity is not _MISSING:
                keyed = self._keyed_update
                if keyed is not None:
                    change = self._change
                    keyed(key, entity, old, new, change if change is not None else self._context(None))
                    return
                if self.on_spawn is None:
                    self.entities[key] = new
                on_update = self.on_update
                if on_update is not None:
                    change = self._change
                    on_update(entity, old, new, change if change is not None else self._context(None))
                return
        self._changed(key, old, new)

    def _on_update_rows(self, olds: list[Any], news: list[Any], event: ReducerEvent | None) -> None:
        """A chunk of a message's updated rows (the SDK's bulk callback): one loop instead of a call per
        row. The first exception of a hook is raised after the chunk (the SDK reports it), the others
        are logged: one bad row loses no other."""
        if self.filter is not None or self._keyless:
            for old, new in zip(olds, news, strict=True):
                self._on_update_row(old, new, event)
            return
        self.delivered += len(news)
        change = self._change if self._change is not None else self._context(None)
        keys = list(map(self._key, news))
        entities: list[Any] = list(map(self.entities.get, keys, repeat(_MISSING)))
        many = self._keyed_many
        if many is not None and _MISSING not in entities:
            many(keys, entities, olds, news, change)
            return
        rows = zip(keys, entities, olds, news, repeat(change), strict=False)
        call_each(self._update_one, rows, f"table {self.table!r}: an entity hook")

    def _update_one(self, key: Hashable, entity: Any, old: Any, new: Any, change: Change) -> None:
        if entity is _MISSING:
            self._changed(key, old, new)
            return
        keyed = self._keyed_update
        if keyed is not None:
            keyed(key, entity, old, new, change)
            return
        if self.on_spawn is None:
            self.entities[key] = new
        if self.on_update is not None:
            self.on_update(entity, old, new, change)

    def _on_delete(self, row: Any, event: ReducerEvent | None) -> None:
        self.delivered += 1
        key = self._key(row)
        if key not in self.entities:
            return
        if self._keyless:
            if self._rows[key] != row:
                return  # an older row of a key held twice went: the entity stays with the newer one
            self._pending[key] = row  # perhaps re-inserted later in this message
            return
        self._despawn(key, row)

    def _on_event_row(self, row: Any, event: ReducerEvent | None) -> None:
        self.delivered += 1
        f = self.filter
        if f is not None and not f(row):
            return
        assert self.on_event is not None
        self.on_event(row, self._context(event))

    # ----- the transitions ----------------------------------------------------------------------
    def _changed(self, key: Hashable, old: Any, new: Any) -> None:
        """``old`` became ``new`` under ``key``: update, spawn or despawn as the filter says."""
        entity = self.entities.get(key, _MISSING)
        f = self.filter
        if f is not None and not f(new):
            if entity is not _MISSING:
                self._despawn(key, old)
            return
        if entity is _MISSING:
            self._spawn(key, new)
        else:
            self._updated(key, entity, old, new)

    def _updated(self, key: Hashable, entity: Any, old: Any, new: Any) -> None:
        if self._keyless:
            self._rows[key] = new
        if self.on_spawn is None:
            self.entities[key] = new
        if self.on_update is not None:
            self.on_update(entity, old, new, self._context(None))

    def _spawn(self, key: Hashable, row: Any) -> None:
        change = self._context(None)
        if self._keyless:
            self._rows[key] = row
        if self.on_revive is not None:
            dying = self.dying.get(key)
            if dying:
                entity = dying[-1]
                if self.on_revive(entity, row, change):
                    self._forget_dying(key, entity)
                    self.entities[key] = entity
                    return
        self.entities[key] = self.on_spawn(row, change) if self.on_spawn is not None else cast(E, row)

    def _despawn(self, key: Hashable, row: Any) -> None:
        entity = self.entities.pop(key, _MISSING)
        if entity is _MISSING:
            return
        if self._keyless:
            del self._rows[key]
        if self.on_despawn is not None and self.on_despawn(entity, row, self._context(None)) is DEFER:
            self.dying.setdefault(key, []).append(entity)
            self._dying_ids[id(entity)] = key

    def _forget_dying(self, key: Hashable, entity: Any) -> None:
        lst = self.dying[key]
        for i, e in enumerate(lst):
            if e is entity:
                del lst[i]
                break
        if not lst:
            del self.dying[key]
        self._dying_ids.pop(id(entity), None)

    # ----- the game's side ----------------------------------------------------------------------
    def release(self, entity: E) -> bool:
        """The game is done with a deferred entity (its animation ended): forget it. False if it was not
        waiting (already released, or revived)."""
        key = self._dying_ids.get(id(entity), _MISSING)
        if key is _MISSING or not any(e is entity for e in self.dying.get(key, ())):
            return False
        self._forget_dying(key, entity)
        return True

    def key_of(self, row: R) -> Hashable:
        """The key of the entity ``row`` belongs to (its primary key, or what ``key`` makes of it for a
        table without one): what :attr:`entities` is keyed by. Hooks use it to file their own state
        (an interpolation track, say) under the same key. Raises ``RuntimeError`` before the sync is
        attached to a connection."""
        return self._key(row)

    def get(self, key: Hashable) -> E | None:
        """The live entity of ``key``, or None."""
        return self.entities.get(key)

    def __len__(self) -> int:
        return len(self.entities)

    def __iter__(self) -> Iterator[E]:
        return iter(self.entities.values())


def call_each(fn: Callable[..., object], calls: Iterable[tuple[Any, ...]], what: str) -> None:
    """``fn(*args)`` for each of ``calls``, all of them even if some raise: the first exception is raised
    at the end (for the SDK to report, as a row callback's), the later ones are logged (``what``
    raised). One bad row of a bulk delivery loses no other."""
    failed: Exception | None = None
    for args in calls:
        try:
            fn(*args)
        except Exception as exc:
            if failed is None:
                failed = exc
            else:
                log.exception("%s raised", what)
    if failed is not None:
        raise failed


class _Missing:
    __slots__ = ()


_MISSING: Final[Any] = _Missing()


def _no_key(row: Any) -> Hashable:
    raise RuntimeError("this EntitySync is not attached to a connection (add it with driver.add_sync)")
