"""The frame driver: once per frame, on the game's thread, ``tick()`` applies what arrived on each
connection under a time budget (row events reach the entity syncs in the server's order, inside
``update()``), then advances everything that moves by itself (interpolation, prediction): the
:class:`Stepper` s. It reports each connection's state with its reason and the loading progress of the
first subscription, and calls ``on_applied`` hooks after each whole server message."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Final, Literal, Protocol, Self, TypeVar, assert_never, runtime_checkable

from ._sync import Change, EntitySync, origin_of

if TYPE_CHECKING:
    from ..sdk import AppliedMessage, DbConnection

__all__ = [
    "AUTO_GC_FREEZE_ROWS",
    "DEFAULT_BUDGET",
    "DEFAULT_MAX_BUDGET",
    "ClientStatus",
    "DriverState",
    "FrameDriver",
    "Stepper",
]

log = logging.getLogger("spacetime_game.engine")

#: The default time budget of :meth:`FrameDriver.tick` for applying server messages, in seconds (4 ms,
#: a quarter of a 60 fps frame), shared by every connection of the driver.
DEFAULT_BUDGET: Final = 0.004

#: The default most a tick's budget grows to while the connections are behind (10 ms): see
#: :class:`FrameDriver`'s ``max_budget``.
DEFAULT_MAX_BUDGET: Final = 0.010

#: With ``FrameDriver(gc_freeze="auto")`` (the default): how many cached rows, over the driver's
#: connections, turn on their ``gc_freeze``. A full collection traverses every cached row; from about this
#: many it pauses the game for longer than half a 60 fps frame (about 10 ms here; docs/performance.md).
AUTO_GC_FREEZE_ROWS: Final = 20_000

#: How often (in ticks) ``gc_freeze="auto"`` counts the cached rows.
_AUTO_GC_EVERY: Final = 30

#: A connection's state as the driver reports it. A client not yet asked to connect counts as
#: ``connecting`` (the driver connects it at its first tick).
DriverState = Literal["connecting", "connected", "reconnecting", "failed", "closed"]

#: Which state speaks for several connections: the first one of this order that any of them is in.
_WORST: Final[tuple[DriverState, ...]] = ("failed", "reconnecting", "connecting", "closed", "connected")

#: The share of the loading progress given to decoding the first subscription (the rest is its delivery
#: to the entity syncs).
_DECODE_SHARE: Final = 0.8

R = TypeVar("R")
E = TypeVar("E")


@runtime_checkable
class Stepper(Protocol):
    """Something the driver advances once per frame, after the server's changes of the frame are
    applied: interpolation buffers, predicted players. ``now`` is the driver's clock (seconds), the same
    clock that stamps :attr:`Change.time`."""

    def advance(self, now: float) -> None:
        """Move to ``now`` (never blocks; called on the game's thread)."""
        ...


@dataclass(frozen=True, slots=True)
class ClientStatus:
    """One connection as the driver sees it (see :meth:`FrameDriver.status`)."""

    client: DbConnection
    #: See :data:`DriverState`.
    state: DriverState
    #: Why it is not connected, as one line (the lost connection's or the failed attempt's reason), or
    #: None (connected, or still connecting for the first time).
    reason: str | None
    #: The loading progress of its first subscription, 0.0 to 1.0 (see :attr:`FrameDriver.progress`).
    progress: float
    #: True once its first subscription has been applied and delivered (it stays True across
    #: reconnects: a re-subscription is not a new load).
    loaded: bool


class _Slot:
    """What the driver keeps for one connection."""

    __slots__ = (
        "applied_hook",
        "applying_hook",
        "change",
        "client",
        "loaded",
        "loading",
        "peak",
        "reported",
        "syncs",
    )

    def __init__(self, client: DbConnection) -> None:
        self.client = client
        self.syncs: list[EntitySync[object, object]] = []
        self.loaded = False
        #: While a subscription is being delivered: (its rows in synced tables, rows delivered before).
        self.loading: tuple[int, int] | None = None
        self.reported: tuple[DriverState, str | None] | None = None
        #: The highest loading progress reported while connected and not loaded (it never goes back).
        self.peak = 0.0
        #: The change of the message being delivered (set by its on_applying hook).
        self.change: Change | None = None
        self.applying_hook: Callable[[AppliedMessage], None] | None = None
        self.applied_hook: Callable[[AppliedMessage], None] | None = None


class FrameDriver:
    """Drives one or several connections (:class:`~spacetime_game.sdk.DbConnection`, or the documented
    Basic client ``SpacetimeDBClient``, which is one) from the game's frame loop::

        driver = FrameDriver(conn)
        players = driver.sync(module_bindings.Player, on_spawn=make_sprite, on_despawn=remove_sprite)
        while running:
            driver.tick(dt)          # once per frame
            ...draw players.entities.values()...
        driver.close()

    ``budget`` (seconds, default :data:`DEFAULT_BUDGET`; None: no limit) bounds the time ``tick()``
    spends applying server messages and running their callbacks, shared by the connections (which take
    turns going first); what does not fit continues on the next frame, in order. Once the first
    subscriptions are loaded, a driver that falls behind (more than one message still waiting after a
    tick: the server sends more than the budget can apply) raises its budget by half each tick, up to
    ``max_budget`` (default :data:`DEFAULT_MAX_BUDGET`; None: never), and returns to ``budget`` once
    it has caught up, so that what the game shows does not fall ever further behind the server (the
    frame rate dips instead while it catches up).

    ``gc_freeze`` decides whether the connections keep their cached rows out of the garbage collector's
    full collections (``DbConnection.gc_freeze``; docs/architecture.md says what that gives up): True turns
    it on for every client added, False leaves the clients as they were made, and ``"auto"`` (default)
    turns it on for all of them once they cache :data:`AUTO_GC_FREEZE_ROWS` rows between them, where a
    full collection would be a visible hitch; a small game never freezes anything. ``clock`` (default
    :func:`time.perf_counter`) is the time given to the steppers and stamped on each :class:`Change`;
    tests pass their own. With ``connect`` (default) the first tick connects the clients that have not
    been asked to yet, so syncs and hooks added before it see everything.

    Call :meth:`tick` instead of the clients' own ``update()``: the hooks still run if a client is
    updated by hand, but its changes are then stamped with the last tick's time.
    """

    def __init__(
        self,
        *clients: DbConnection,
        budget: float | None = DEFAULT_BUDGET,
        clock: Callable[[], float] = time.perf_counter,
        connect: bool = True,
        max_budget: float | None = DEFAULT_MAX_BUDGET,
        gc_freeze: bool | Literal["auto"] = "auto",
    ) -> None:
        if budget is not None and budget <= 0:
            raise ValueError(f"budget must be a positive number of seconds or None, got {budget!r}")
        if max_budget is not None and not max_budget > 0:
            raise ValueError(f"max_budget must be a positive number of seconds or None, got {max_budget!r}")
        if gc_freeze not in (True, False, "auto"):
            raise ValueError(f'gc_freeze must be True, False or "auto", got {gc_freeze!r}')
        #: The driver's ``gc_freeze`` setting: True, False or ``"auto"`` (see the class docstring).
        self.gc_freeze: bool | Literal["auto"] = gc_freeze
        #: The time budget of one tick (seconds), or None.
        self.budget = budget
        #: The most the budget grows to while the connections are behind (seconds), or None.
        self.max_budget = max_budget
        # the budget of the next tick: budget, or more while catching up
        self._boost: float | None = None
        self.clock = clock
        self.connect = connect
        #: The driver's clock at the start of the last tick (0.0 before the first).
        self.now = 0.0
        #: The ``dt`` the game passed to the last tick (seconds), for its statistics.
        self.frame_time = 0.0
        #: How many ticks have run.
        self.frames = 0
        #: How long the last tick took (seconds, by ``time.perf_counter``): the engine's share of the
        #: frame, row hooks and steppers included, for the game's statistics.
        self.tick_seconds = 0.0
        self._slots: list[_Slot] = []
        self._steppers: tuple[Stepper, ...] = ()
        self._applied_hooks: list[Callable[[Change], None]] = []
        self._state_hooks: list[Callable[[ClientStatus], None]] = []
        self._turn = 0
        self._closed = False
        for c in clients:
            self.add_client(c)

    def __repr__(self) -> str:
        return f"FrameDriver({len(self._slots)} clients, state={self.state!r})"

    # ----- clients ---------------------------------------------------------------------------------
    @property
    def clients(self) -> tuple[DbConnection, ...]:
        """The connections driven, in the order they were added."""
        return tuple(s.client for s in self._slots)

    def add_client(self, client: DbConnection) -> DbConnection:
        """Drive ``client`` too; returns it."""
        if self._closed:
            raise RuntimeError("this FrameDriver is closed; make a new one")
        for method in ("update", "register_on_applying", "register_on_applied", "on_row", "close"):
            if not callable(getattr(client, method, None)):
                raise TypeError(
                    f"a FrameDriver drives a DbConnection or a SpacetimeDBClient; {client!r} has no {method}()"
                )
        if any(s.client is client for s in self._slots):
            raise ValueError(f"{client!r} is already driven by this FrameDriver")
        slot = _Slot(client)

        def applying(message: AppliedMessage) -> None:
            self._applying(slot, message)

        def applied(message: AppliedMessage) -> None:
            self._applied(slot, message)

        slot.applying_hook, slot.applied_hook = applying, applied
        if self.gc_freeze is True and hasattr(client, "gc_freeze"):
            client.gc_freeze = True
        client.register_on_applying(applying)
        client.register_on_applied(applied)
        self._slots.append(slot)
        return client

    def _slot(self, client: DbConnection | None) -> _Slot:
        if client is None:
            if len(self._slots) != 1:
                raise ValueError(
                    f"this FrameDriver drives {len(self._slots)} connections: say which one (client=...)"
                )
            return self._slots[0]
        for s in self._slots:
            if s.client is client:
                return s
        raise ValueError(f"{client!r} is not driven by this FrameDriver (add_client it first)")

    # ----- syncs, steppers, hooks --------------------------------------------------------------------
    def sync(
        self,
        table: type[R] | str,
        *,
        client: DbConnection | None = None,
        on_spawn: Callable[[R, Change], E] | None = None,
        on_update: Callable[[E, R, R, Change], None] | None = None,
        on_despawn: Callable[[E, R, Change], object] | None = None,
        on_revive: Callable[[E, R, Change], bool] | None = None,
        on_event: Callable[[R, Change], None] | None = None,
        filter: Callable[[R], bool] | None = None,
        key: Callable[[R], Hashable] | str | Sequence[str] | None = None,
    ) -> EntitySync[R, E]:
        """Make an :class:`EntitySync` of ``table`` (see there for the hooks) on ``client`` (needed when
        the driver has several) and attach it: rows already cached spawn at once."""
        sync: EntitySync[R, E] = EntitySync(
            table,
            on_spawn=on_spawn,
            on_update=on_update,
            on_despawn=on_despawn,
            on_revive=on_revive,
            on_event=on_event,
            filter=filter,
            key=key,
        )
        return self.add_sync(sync, client=client)

    def add_sync(self, sync: EntitySync[R, E], *, client: DbConnection | None = None) -> EntitySync[R, E]:
        """Attach ``sync`` to ``client`` (needed when the driver has several); returns it."""
        if self._closed:
            raise RuntimeError("this FrameDriver is closed; make a new one")
        slot = self._slot(client)
        sync.attach(slot.client, Change("initial", None, self.clock(), {}, slot.client))
        slot.syncs.append(sync)  # type: ignore[arg-type]
        return sync

    def remove_sync(self, sync: EntitySync[R, E]) -> None:
        """Detach ``sync`` (its entities stay as they are)."""
        for slot in self._slots:
            if any(s is sync for s in slot.syncs):
                slot.syncs = [s for s in slot.syncs if s is not sync]
                sync.detach()

    @property
    def syncs(self) -> tuple[EntitySync[object, object], ...]:
        """Every attached sync."""
        return tuple(s for slot in self._slots for s in slot.syncs)

    def add_stepper(self, stepper: Stepper) -> Stepper:
        """Advance ``stepper`` at the end of every tick, in the order added; returns it."""
        if not callable(getattr(stepper, "advance", None)):
            raise TypeError(f"a stepper has an advance(now) method; {stepper!r} has none")
        self._steppers = (*self._steppers, stepper)
        return stepper

    def remove_stepper(self, stepper: Stepper) -> None:
        """Stop advancing ``stepper``."""
        self._steppers = tuple(s for s in self._steppers if s is not stepper)

    def on_applied(self, callback: Callable[[Change], None]) -> Callable[[Change], None]:
        """Call ``callback(change)`` after each whole server message (a transaction, a subscription
        applied, a set ended) is applied and delivered to the syncs; returns ``callback``. ``change``
        tells its origin, its SDK event (for ``own``: the reducer and its arguments), the rows it
        changed per table and its connection."""
        self._applied_hooks.append(callback)
        return callback

    def remove_on_applied(self, callback: Callable[[Change], None]) -> None:
        """Stop calling an ``on_applied`` callback."""
        if callback in self._applied_hooks:
            self._applied_hooks.remove(callback)

    def on_state(self, callback: Callable[[ClientStatus], None]) -> Callable[[ClientStatus], None]:
        """Call ``callback(status)`` from :meth:`tick` whenever a connection's state or reason changes
        (and once for each at the first tick); returns ``callback``."""
        self._state_hooks.append(callback)
        return callback

    def remove_on_state(self, callback: Callable[[ClientStatus], None]) -> None:
        """Stop calling an ``on_state`` callback."""
        if callback in self._state_hooks:
            self._state_hooks.remove(callback)

    # ----- the frame ------------------------------------------------------------------------------
    def tick(self, dt: float | None = None) -> int:
        """Run one frame: apply what arrived on each connection (within the budget), then advance the
        steppers. ``dt`` is the frame time the game measured (kept in :attr:`frame_time`; the driver's
        own clock stamps arrivals). Returns how many server messages were applied. Never blocks; row
        hooks run inside, on this thread."""
        started = time.perf_counter()
        self.now = self.clock()
        self.frames += 1
        if dt is not None:
            self.frame_time = dt
        slots = self._slots
        applied = 0
        if slots and not self._closed:
            if self.connect:
                for slot in slots:
                    if slot.client.state == "idle":
                        slot.client.connect()
            n = len(slots)
            first = self._turn % n
            self._turn = first + 1
            budget = self.budget
            if budget is None:
                for i in range(n):
                    applied += slots[(first + i) % n].client.update()
            else:
                if self._boost is not None and self._boost > budget:
                    budget = self._boost
                start = time.perf_counter()
                for i in range(n):
                    left = budget - (time.perf_counter() - start)
                    if left <= 0:
                        break  # the others go first next frame
                    applied += slots[(first + i) % n].client.update(left)
                self._boost = self._next_budget(budget)
            if self._state_hooks:
                self._report_states()
            if self.gc_freeze == "auto" and self.frames % _AUTO_GC_EVERY == 0:
                self._auto_gc_freeze()
        now = self.now
        for stepper in self._steppers:
            stepper.advance(now)
        self.tick_seconds = time.perf_counter() - started
        return applied

    def _auto_gc_freeze(self) -> None:
        """``gc_freeze="auto"``: once the connections cache :data:`AUTO_GC_FREEZE_ROWS` rows between
        them, turn their ``gc_freeze`` on (their next ``update()`` freezes)."""
        clients = [s.client for s in self._slots if hasattr(s.client, "cached_rows")]
        if sum(c.cached_rows for c in clients) < AUTO_GC_FREEZE_ROWS:
            return
        for c in clients:
            if not c.gc_freeze:
                c.gc_freeze = True
        log.debug(
            "%d rows cached: gc_freeze turned on for %d connection(s)", AUTO_GC_FREEZE_ROWS, len(clients)
        )

    def _next_budget(self, used: float) -> float | None:
        """The next tick's budget: half more than ``used`` while a connection is behind (a whole message
        still waiting after the one in progress) once the first loads are done, up to ``max_budget``;
        else None (the plain budget)."""
        top = self.max_budget
        if top is None or self.budget is None or not all(s.loaded for s in self._slots):
            return None
        if any(s.client.stats.queue_depth > 1 for s in self._slots):
            return min(top, max(used * 1.5, self.budget))
        return None

    @property
    def tick_budget(self) -> float | None:
        """The budget the next tick applies messages under (seconds): :attr:`budget`, or more while the
        driver catches up with its connections (see ``max_budget``); None without a budget."""
        if self.budget is None:
            return None
        return self._boost if self._boost is not None and self._boost > self.budget else self.budget

    def _report_states(self) -> None:
        for slot in self._slots:
            st = self._status(slot)
            if slot.reported != (st.state, st.reason):
                slot.reported = (st.state, st.reason)
                for cb in list(self._state_hooks):
                    try:
                        cb(st)
                    except Exception:
                        log.exception("an on_state callback raised: %r", cb)

    # ----- the SDK's per-message hooks ------------------------------------------------------------
    def _applying(self, slot: _Slot, message: AppliedMessage) -> None:
        slot.change = change = Change(origin_of(message), message.event, self.now, message.rows, slot.client)
        for sync in slot.syncs:
            sync.begin(change)
        if message.kind == "subscribe" and not slot.loaded:
            total = sum(message.rows.get(s.table, 0) for s in slot.syncs)
            slot.loading = (total, sum(s.delivered for s in slot.syncs))

    def _applied(self, slot: _Slot, message: AppliedMessage) -> None:
        change, slot.change = slot.change, None
        for sync in slot.syncs:
            sync.end()
        if message.kind == "subscribe" and not slot.loaded:
            slot.loaded = True
            slot.loading = None
        if self._applied_hooks:
            if change is None:
                change = Change(origin_of(message), message.event, self.now, message.rows, slot.client)
            for cb in list(self._applied_hooks):
                cb(change)  # the SDK logs and reports an exception, and goes on

    # ----- what the game shows --------------------------------------------------------------------
    def status(self, client: DbConnection | None = None) -> ClientStatus:
        """The state, reason and loading progress of ``client`` (needed when the driver has several)."""
        return self._status(self._slot(client))

    def _status(self, slot: _Slot) -> ClientStatus:
        c = slot.client
        raw = c.state
        state: DriverState = "connecting" if raw == "idle" else raw
        reason: str | None
        match state:
            case "connected" | "connecting":
                reason = None
            case "failed":
                reason = c.last_error.reason if c.last_error is not None else c.disconnect_reason
            case "reconnecting" | "closed":
                reason = c.disconnect_reason
            case _:
                assert_never(state)
        return ClientStatus(c, state, reason, self._progress(slot, state), slot.loaded)

    def _progress(self, slot: _Slot, state: DriverState) -> float:
        if slot.loaded:
            return 1.0
        if slot.loading is not None:
            total, before = slot.loading
            done = sum(s.delivered for s in slot.syncs) - before
            slot.peak = _DECODE_SHARE + (1.0 - _DECODE_SHARE) * (min(done, total) / total if total else 1.0)
            return slot.peak
        if state != "connected":
            slot.peak = 0.0  # a new connection loads afresh
            return 0.0
        # 1.0 both when nothing is being decoded (waiting for the server) and when the rows are all
        # decoded but not applied yet: the peak keeps the latter from reading as a step back to 0
        decoded = slot.client.progress
        if decoded < 1.0:
            slot.peak = max(slot.peak, _DECODE_SHARE * decoded)
        return slot.peak

    @property
    def state(self) -> DriverState:
        """The state of the connections taken together: the first of ``failed``, ``reconnecting``,
        ``connecting``, ``closed``, ``connected`` that any of them is in (``closed`` with none)."""
        return self._worst()[0]

    @property
    def reason(self) -> str | None:
        """The reason that goes with :attr:`state` (that of the connection which decides it)."""
        return self._worst()[1]

    def _worst(self) -> tuple[DriverState, str | None]:
        statuses = [self._status(s) for s in self._slots]
        if not statuses:
            return ("closed", None)
        best = min(statuses, key=lambda st: _WORST.index(st.state))
        return (best.state, best.reason)

    @property
    def progress(self) -> float:
        """The loading progress of the first subscription, 0.0 to 1.0, averaged over the connections:
        0 until its rows arrive, then decoding (up to 0.8) and delivery to the syncs (the rest); 1.0
        once it is applied, and from then on (a reconnect does not start a new load)."""
        if not self._slots:
            return 0.0
        return sum(self._progress(s, self._status(s).state) for s in self._slots) / len(self._slots)

    @property
    def loaded(self) -> bool:
        """True once every connection's first subscription is applied and delivered."""
        return bool(self._slots) and all(s.loaded for s in self._slots)

    # ----- the end -------------------------------------------------------------------------------
    def close(self) -> None:
        """Close every connection and detach the syncs (their entities stay); returns at once. The
        connections' threads end in the background within about a second. Calling it again does
        nothing."""
        if self._closed:
            return
        self._closed = True
        for slot in self._slots:
            for sync in slot.syncs:
                sync.detach()
            c = slot.client
            if slot.applying_hook is not None:
                c.unregister_on_applying(slot.applying_hook)
            if slot.applied_hook is not None:
                c.unregister_on_applied(slot.applied_hook)
            try:
                c.close()
            except Exception:
                log.exception("closing %r failed", c)
        if self._state_hooks:
            self._report_states()

    @property
    def closed(self) -> bool:
        """True after :meth:`close`."""
        return self._closed

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
