"""The bridge between a pygame main loop and one or several SpacetimeDB connections."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypeVar, Unpack

import pygame

from spacetime_game.engine import (
    DEFAULT_BUDGET,
    ClientStatus,
    DriverState,
    FrameDriver,
    NetMonitor,
)

from ._events import (
    CONNECTED,
    DISCONNECTED,
    REDUCER_RESULT,
    SUBSCRIPTION_APPLIED,
    SUBSCRIPTION_ERROR,
    EventPoster,
)
from ._overlay import Overlay
from ._sprites import SpriteSync, SpriteSyncOptions

if TYPE_CHECKING:
    from spacetime_game.sdk import DbConnection, ReducerEvent, SubscriptionHandle

__all__ = ["Bridge"]

log = logging.getLogger("spacetime_game.pygame")

R = TypeVar("R")
S = TypeVar("S", bound=pygame.sprite.Sprite)


def _origin(event: ReducerEvent | None) -> str:
    if event is None:
        return "initial"
    return "own" if event.reducer_name is not None else "other"


class _ClientHooks:
    """The SDK callbacks the bridge registers on one connection (kept to unregister them)."""

    def __init__(self, bridge: Bridge, client: DbConnection) -> None:
        self.bridge = bridge
        self.client = client
        self.rows: list[tuple[str, str, Callable[..., None]]] = []
        self.handle_applied = False  # a watched handle posted the applied event of this message

    def on_event(self, message: Any) -> None:
        ev = message.reducer_event
        if ev is None or ev.reducer_name is None:  # another client's transaction
            return
        self.bridge.poster.post(
            REDUCER_RESULT,
            reducer=ev.reducer_name,
            status=ev.status,
            message=ev.message,
            args=ev.args,
            event=ev,
            client=self.client,
        )

    def on_subscription_applied(self) -> None:
        if self.handle_applied:
            self.handle_applied = False
            return
        self.bridge.poster.post(SUBSCRIPTION_APPLIED, client=self.client, handle=None)

    def watch(self, handle: SubscriptionHandle) -> None:
        poster = self.bridge.poster

        def applied(h: SubscriptionHandle) -> None:
            self.handle_applied = True
            poster.post(SUBSCRIPTION_APPLIED, client=self.client, handle=h)

        def failed(h: SubscriptionHandle, error: str) -> None:
            poster.post(SUBSCRIPTION_ERROR, client=self.client, handle=h, error=error)

        handle.on_applied(applied)
        handle.on_error(failed)

    def follow_rows(self, table: str) -> None:
        poster, client = self.bridge.poster, self.client

        def insert(row: Any, event: ReducerEvent | None) -> None:
            poster.row(
                table, 0, client, {"table": table, "row": row, "origin": _origin(event), "client": client}
            )

        def update(old: Any, new: Any, event: ReducerEvent | None) -> None:
            attributes = {"table": table, "old": old, "new": new, "origin": _origin(event), "client": client}
            poster.row(table, 1, client, attributes)

        def delete(row: Any, event: ReducerEvent | None) -> None:
            poster.row(
                table, 2, client, {"table": table, "row": row, "origin": _origin(event), "client": client}
            )

        for kind, cb in (("insert", insert), ("update", update), ("delete", delete)):
            self.client.on_row(table, kind, cb)  # type: ignore[arg-type]
            self.rows.append((table, kind, cb))

    def register(self) -> None:
        self.client.register_on_event(self.on_event)
        self.client.register_on_subscription_applied(self.on_subscription_applied)

    def unregister(self) -> None:
        c = self.client
        c.unregister_on_event(self.on_event)
        c.unregister_on_subscription_applied(self.on_subscription_applied)
        for table, kind, cb in self.rows:
            c.remove_on_row(table, kind, cb)  # type: ignore[arg-type]
        self.rows.clear()


class Bridge:
    """Makes a plain pygame loop multiplayer: give it the connection(s), call :meth:`tick` once per
    frame, :meth:`close` at the end::

        bridge = Bridge(conn)
        players = bridge.sprites(module_bindings.Player, make_sprite)
        while running:
            for event in pygame.event.get():
                bridge.handle(event)             # F3 toggles the net overlay
                ...
            bridge.tick(dt)                      # apply what arrived, interpolate
            screen.fill(BACKGROUND)
            players.draw(screen)
            bridge.draw_overlay(screen)
            pygame.display.flip()
        bridge.close()

    ``clients`` are :class:`~spacetime_game.sdk.DbConnection` s (the documented Basic
    ``SpacetimeDBClient`` is one); the first tick connects those not connected yet. ``budget`` is the
    time (seconds per frame) spent applying server messages (see
    :class:`~spacetime_game.engine.FrameDriver`). The SDK's events are posted into pygame's queue as
    the event types of this package (``CONNECTED``, ``REDUCER_RESULT``...; row events only for the
    tables named in ``rows`` or :meth:`post_rows`, and summarised as ``ROWS_CHANGED`` beyond
    ``max_row_events`` per table per frame); ``events=False`` posts none. ``close_on_quit`` makes
    :meth:`handle` close the connections on ``pygame.QUIT``. ``overlay_key`` toggles the net overlay
    (None: no key). ``clock`` is the time source of the driver and the overlay (tests pass their own).
    """

    def __init__(
        self,
        *clients: DbConnection,
        budget: float | None = DEFAULT_BUDGET,
        events: bool = True,
        rows: Sequence[type[Any] | str] = (),
        max_row_events: int = 64,
        close_on_quit: bool = False,
        overlay_key: int | None = pygame.K_F3,
        clock: Callable[[], float] = time.perf_counter,
        post: Callable[[pygame.event.Event], object] | None = None,
    ) -> None:
        if not clients:
            raise ValueError("a Bridge needs at least one connection: Bridge(conn)")
        #: The frame driver (connections, syncs, state, progress).
        self.driver = FrameDriver(*clients, budget=budget, clock=clock)
        #: Posts the SDK's events into pygame's queue (its ``dropped`` and ``summaries`` counters).
        self.poster = EventPoster(max_row_events, post)
        #: Whether SDK events are posted.
        self.events = events
        self.close_on_quit = close_on_quit
        self.clock = clock
        #: The net stats of each connection (sampled every tick), in the order given.
        self.monitors = [NetMonitor(c, clock=clock) for c in clients]
        #: The net overlay of the first connection (toggled by ``overlay_key``; draw it with
        #: :meth:`draw_overlay`).
        self.overlay = Overlay(self.driver, self.monitors[0], key=overlay_key, clock=clock)
        self._hooks: dict[int, _ClientHooks] = {}
        self._syncs: list[SpriteSync[Any, Any]] = []
        self._closed = False
        for c in clients:
            hooks = _ClientHooks(self, c)
            if events:
                hooks.register()
            self._hooks[id(c)] = hooks
        if events:
            self.driver.on_state(self._on_state)
        self._was_connected: dict[int, bool] = {}
        for table in rows:
            self.post_rows(table)

    def __repr__(self) -> str:
        return f"Bridge({len(self.driver.clients)} clients, state={self.state!r})"

    # ----- set-up --------------------------------------------------------------------------------------
    def _client(self, client: DbConnection | None) -> DbConnection:
        clients = self.driver.clients
        if client is None:
            if len(clients) != 1:
                raise ValueError(f"this Bridge has {len(clients)} connections: say which one (client=...)")
            return clients[0]
        if not any(c is client for c in clients):
            raise ValueError(f"{client!r} is not a connection of this Bridge")
        return client

    def post_rows(self, table: type[Any] | str, *, client: DbConnection | None = None) -> None:
        """Post ``ROW_INSERT`` / ``ROW_UPDATE`` / ``ROW_DELETE`` events for ``table`` (a generated table
        class or a table name) from now on (coalesced into ``ROWS_CHANGED`` beyond ``max_row_events`` a
        frame)."""
        name = table if isinstance(table, str) else getattr(table, "table_name", None)
        if not isinstance(name, str):
            raise TypeError(f"table must be a generated table class or a table name, got {table!r}")
        if self.events:
            self._hooks[id(self._client(client))].follow_rows(name)

    def subscribe(self, queries: Sequence[str], *, client: DbConnection | None = None) -> SubscriptionHandle:
        """Subscribe to ``queries`` (``subscribe_multi``) and post ``SUBSCRIPTION_APPLIED`` /
        ``SUBSCRIPTION_ERROR`` with its handle; returns the handle."""
        handle = self._client(client).subscribe_multi(queries)
        self.watch(handle, client=client)
        return handle

    def watch(self, handle: SubscriptionHandle, *, client: DbConnection | None = None) -> SubscriptionHandle:
        """Post ``SUBSCRIPTION_APPLIED`` / ``SUBSCRIPTION_ERROR`` (with the handle) for a subscription
        made elsewhere; errors of subscriptions neither made nor watched by the bridge go to the
        connection's ``on_error`` as usual."""
        if self.events:
            self._hooks[id(self._client(client))].watch(handle)
        return handle

    def sprites(
        self,
        table: type[R] | str,
        factory: Callable[[R], S],
        *,
        client: DbConnection | None = None,
        **options: Unpack[SpriteSyncOptions[R, S]],
    ) -> SpriteSync[R, S]:
        """Keep one sprite per row of ``table`` (a generated table class) in a group: ``factory(row)``
        makes each sprite (any ``pygame.sprite.Sprite`` with an ``image`` and a ``rect``). The fields
        ``interpolate`` (linear) and ``angles`` (the short way round; radians, or degrees with
        ``degrees=True``) are interpolated between the server's updates and written onto the sprite
        each frame as floats (``sprite.x``); ``position`` names the two that place ``rect.center``
        when drawn. ``group`` (default a new ``pygame.sprite.Group``; a ``LayeredUpdates`` works too)
        holds the sprites. ``on_despawn(sprite, row)`` returning ``DEFER`` keeps a sprite for its death
        animation until :meth:`SpriteSync.release`. ``interpolator`` replaces the default one (render
        delay, snap distance, adaptive rate...: see :class:`~spacetime_game.engine.Interpolator`).
        Rows already cached get their sprites at once."""
        sync: SpriteSync[R, S] = SpriteSync(table, factory, clock=self.driver.clock, **options)
        sync.attach(self.driver, client)
        self._syncs.append(sync)
        return sync

    # ----- the frame ------------------------------------------------------------------------------------
    def tick(self, dt: float | None = None) -> int:
        """Run one frame: apply what arrived (within the budget), move the sprites, sample the net stats,
        post the frame's events. Returns how many server messages were applied. Never blocks."""
        if self._closed:
            return 0
        applied = self.driver.tick(dt)
        now = self.driver.now
        depth: float | None = None
        if self._syncs:
            depth = 1000.0 * max(s.interpolator.depth for s in self._syncs)
        for i, monitor in enumerate(self.monitors):
            monitor.sample(now, buffer_depth_ms=depth if i == 0 else None)
        self.poster.flush()
        return applied

    def _on_state(self, status: ClientStatus) -> None:
        client = status.client
        key = id(client)
        if status.state == "connected":
            self._was_connected[key] = True
            self.poster.post(CONNECTED, client=client, identity=client.identity)
        elif status.state in ("reconnecting", "failed", "closed") and (
            self._was_connected.pop(key, False) or status.state == "failed"
        ):
            self.poster.post(DISCONNECTED, client=client, state=status.state, reason=status.reason)

    def handle(self, event: pygame.event.Event) -> bool:
        """Give the bridge a pygame event: the overlay key toggles the overlay; with ``close_on_quit``,
        ``pygame.QUIT`` closes the connections. True if the bridge used the event."""
        if self.overlay.handle(event):
            return True
        if event.type == pygame.QUIT and self.close_on_quit:
            self.close()
            return True
        return False

    def draw_overlay(self, surface: pygame.Surface) -> pygame.Rect | None:
        """Draw the net overlay on ``surface`` if it is shown (F3); the area drawn, or None."""
        return self.overlay.draw(surface)

    # ----- what the game shows ---------------------------------------------------------------------------
    @property
    def state(self) -> DriverState:
        """The connections' state taken together (see :attr:`FrameDriver.state`)."""
        return self.driver.state

    @property
    def reason(self) -> str | None:
        """Why the connection is not up, or None."""
        return self.driver.reason

    @property
    def progress(self) -> float:
        """The loading progress of the first subscription, 0.0 to 1.0."""
        return self.driver.progress

    @property
    def loaded(self) -> bool:
        """True once every connection's first subscription is applied."""
        return self.driver.loaded

    @property
    def syncs(self) -> tuple[SpriteSync[Any, Any], ...]:
        """The sprite syncs made by :meth:`sprites`."""
        return tuple(self._syncs)

    # ----- the end ----------------------------------------------------------------------------------------
    def close(self) -> None:
        """Close the connections (returns at once; their threads end within about a second), post
        ``DISCONNECTED`` for each, and stop posting. The sprites stay as they are. Calling it again does
        nothing."""
        if self._closed:
            return
        self._closed = True
        self.driver.close()  # reports the closed states (DISCONNECTED) first
        for hooks in self._hooks.values():
            hooks.unregister()
        self.poster.clear()

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
