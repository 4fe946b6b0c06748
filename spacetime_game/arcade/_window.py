"""The arcade Window and View of a networked game, and the bridge between them and the engine.

:class:`Window` owns a :class:`NetBridge` (``window.net``): a :class:`~spacetime_game.engine.FrameDriver`
ticked before every ``on_update`` (whatever the game's own ``on_update`` does), whose news become
handler calls on the Window and on the current View, like arcade's own events. The event types are
registered on the Window class's own copy of ``event_types`` when the class is made, so a View shown
later gets them as native handlers. Sprites follow tables through :meth:`NetBridge.sprites`; the debug
overlay (:class:`~spacetime_game.arcade.NetOverlay`) is toggled with F3 and drawn on top of each frame.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable, Hashable, Iterable, Sequence
from operator import attrgetter
from typing import Any, ClassVar, Final, Generic, TypedDict, TypeVar, Unpack, assert_never

import arcade
import pyglet

from spacetime_game.engine import (
    DEFAULT_BUDGET,
    Change,
    ClientStatus,
    EntitySync,
    FrameDriver,
    Interpolator,
    NetMonitor,
    SpriteSync,
)
from spacetime_game.sdk import AppliedMessage, DbConnection, ReducerEvent, SubscriptionHandle

from ._overlay import NetOverlay

__all__ = ["NET_EVENT_TYPES", "NetBridge", "NetView", "SpriteTable", "Window"]

log = logging.getLogger("spacetime_game.arcade")

R = TypeVar("R")
S = TypeVar("S", bound=arcade.BasicSprite)

#: The event types a :class:`Window` adds to arcade's, and the arguments of their handlers:
#:
#: - ``on_connect(status)``: a connection is up (a :class:`~spacetime_game.engine.ClientStatus`; also
#:   after each reconnect);
#: - ``on_disconnect(status)``: it went down (``status.state`` is ``reconnecting``, ``failed`` or
#:   ``closed``; ``status.reason`` says why);
#: - ``on_connection_state(status)``: any change of state or reason, including ``connecting``;
#: - ``on_row_insert(table, row, change)``, ``on_row_update(table, old, new, change)``,
#:   ``on_row_delete(table, row, change)``: rows of the tables the game watches
#:   (:meth:`NetBridge.watch`), in the server's order; ``change.origin`` says ``initial``, ``own`` or
#:   ``other``;
#: - ``on_reducer_result(event)``: the outcome of one of this client's reducer calls (a
#:   :class:`~spacetime_game.sdk.ReducerEvent`: ``reducer_name``, ``args``, ``status``, ``message``),
#:   committed or refused;
#: - ``on_transaction(change)``: a whole transaction was applied (every row handler has seen it);
#: - ``on_subscription_applied(change)``: a subscription's rows are in (the first load, and again after
#:   a reconnect);
#: - ``on_subscription_error(message, handle)``: the server refused a subscription made with
#:   :meth:`NetBridge.subscribe`.
NET_EVENT_TYPES: Final[tuple[str, ...]] = (
    "on_connect",
    "on_disconnect",
    "on_connection_state",
    "on_row_insert",
    "on_row_update",
    "on_row_delete",
    "on_reducer_result",
    "on_transaction",
    "on_subscription_applied",
    "on_subscription_error",
)

#: A first load of at least this many rows sizes a sprite table's own sprite list up front.
RESERVE_ROWS: Final = 4096

#: Run this many frames, then close the window (headless runs and CI; unset: run until closed).
FRAMES_ENV: Final = "SPACETIME_GAME_FRAMES"
#: Where to save a PNG of the last frame when :data:`FRAMES_ENV` closes the window.
SCREENSHOT_ENV: Final = "SPACETIME_GAME_SCREENSHOT"

_dispatch = pyglet.event.EventDispatcher.dispatch_event
#: The Window's own event that stands for ``on_update`` (see ``Window.dispatch_event``).
_FRAME_EVENT: Final = "on_spacetime_frame"


class SpriteTableOptions(TypedDict, Generic[R, S], total=False):
    """The keyword arguments of :class:`SpriteTable` (and of :meth:`NetBridge.sprites`, which passes
    them on): see :meth:`NetBridge.sprites` for what each does."""

    position: tuple[str, str]
    angle: str | None
    degrees: bool
    interpolate: bool | Interpolator
    place: Callable[[S, Any], object] | None
    on_update: Callable[[S, R, R, Change], object] | None
    on_despawn: Callable[[S, R, Change], object] | None
    filter: Callable[[R], bool] | None
    key: Callable[[R], Hashable] | str | Sequence[str] | None
    sprite_list: arcade.SpriteList[S] | None


class SpriteTable(SpriteSync[R, S]):
    """The rows of a table as sprites in an ``arcade.SpriteList`` (:attr:`sprite_list`), placed at their
    interpolated positions before each frame is drawn: the engine's
    :class:`~spacetime_game.engine.SpriteSync` with arcade's sprite list and positions. Usually made by
    :meth:`NetBridge.sprites` (see there for the arguments); made directly, :meth:`attach` it to a
    :class:`~spacetime_game.engine.FrameDriver`. Draw it with :meth:`draw` (or draw :attr:`sprite_list`
    yourself)."""

    def __init__(
        self,
        table: type[R] | str,
        factory: Callable[[R, Change], S],
        *,
        position: tuple[str, str] = ("x", "y"),
        angle: str | None = None,
        degrees: bool = True,
        interpolate: bool | Interpolator = True,
        place: Callable[[S, Any], object] | None = None,
        on_update: Callable[[S, R, R, Change], object] | None = None,
        on_despawn: Callable[[S, R, Change], object] | None = None,
        filter: Callable[[R], bool] | None = None,
        key: Callable[[R], Hashable] | str | Sequence[str] | None = None,
        sprite_list: arcade.SpriteList[S] | None = None,
    ) -> None:
        #: The sprites (a ``SpriteList(use_spatial_hash=False)`` unless the game passed its own).
        self.sprite_list: arcade.SpriteList[S] = (
            sprite_list if sprite_list is not None else arcade.SpriteList(use_spatial_hash=False)
        )
        self._own_list = sprite_list is None
        self._watched: DbConnection | None = None
        interpolator: Interpolator | None
        if isinstance(interpolate, Interpolator):
            interpolator = interpolate
        elif interpolate:
            angles = () if angle is None else (angle,)
            interpolator = Interpolator(fields=position, angles=angles, degrees=degrees)
        else:
            interpolator = None
        super().__init__(
            table,
            factory,
            add=self.sprite_list.append,
            remove=self._drop,
            place=place if place is not None else _placer(position, angle, degrees, interpolator is not None),
            interpolator=interpolator,
            on_update=on_update,
            on_despawn=on_despawn,
            filter=filter,
            key=key,
        )

    def attach(self, driver: FrameDriver, client: DbConnection | None = None) -> None:
        """Follow ``client`` of ``driver`` (see the engine's ``SpriteSync.attach``). A big first load sizes
        the table's own sprite list once, before its sprites come: arcade would otherwise copy its
        buffers at each doubling, in whichever frame the doubling falls (60 ms at 65,000 sprites)."""
        super().attach(driver, client)
        conn = self.sync.client
        if conn is not None and self._own_list:
            conn.register_on_applying(self._reserve)
            self._watched = conn

    def detach(self) -> None:
        """Stop following the connection (the sprites stay where they are)."""
        conn, self._watched = self._watched, None
        if conn is not None:
            conn.unregister_on_applying(self._reserve)
        super().detach()

    def _reserve(self, message: AppliedMessage) -> None:
        n = message.rows.get(self.table, 0)
        if message.kind == "subscribe" and n >= RESERVE_ROWS and len(self.sprite_list) == 0:
            self.sprite_list.clear(capacity=n)

    def _drop(self, sprite: S) -> None:
        if sprite.sprite_lists:
            sprite.remove_from_sprite_lists()

    def draw(self, **kwargs: Any) -> None:
        """Draw the sprites (``kwargs`` go to ``SpriteList.draw``: ``filter``, ``pixelated``, ``blend_function``)."""
        self.sprite_list.draw(**kwargs)


def _placer(
    position: tuple[str, str], angle: str | None, degrees: bool, interpolated: bool
) -> Callable[[Any, Any], None]:
    """A ``place(sprite, state)`` copying the ``position`` fields (and the ``angle`` field: arcade's
    angles are degrees, clockwise) of a state (interpolated, predicted, or the row) into a sprite. A
    field may be a dotted path into a column (``"position.x"``): read so from a row, and by its last part
    from an interpolated or predicted state (``state.x``)."""
    if interpolated:
        position = (_last(position[0]), _last(position[1]))
        angle = None if angle is None else _last(angle)
    xy = attrgetter(*position)  # one C call making the (x, y) tuple the setter wants
    if angle is None:

        def place(sprite: Any, state: Any) -> None:
            sprite.position = xy(state)

        return place
    factor = 1.0 if degrees else 57.29577951308232
    turn = attrgetter(angle)

    def place_turned(sprite: Any, state: Any) -> None:
        sprite.position = xy(state)
        sprite.angle = turn(state) * factor

    return place_turned


def _last(path: str) -> str:
    return path.rsplit(".", 1)[-1]


class NetBridge:
    """The engine inside an arcade window: a :class:`~spacetime_game.engine.FrameDriver` over the game's
    connections, ticked once per frame by the :class:`Window` (before ``on_update``), whose news reach the
    window's handlers (:data:`NET_EVENT_TYPES`), plus sprite tables and the overlay.

    A game rarely makes one itself: ``window.net`` is the window's. ``budget`` bounds the time a tick spends
    applying server messages (a big first subscription is spread over frames); ``clock`` is the time of
    the driver, the interpolation and the overlay (tests pass their own).
    """

    def __init__(
        self,
        window: arcade.Window,
        *clients: DbConnection,
        budget: float | None = DEFAULT_BUDGET,
        clock: Callable[[], float] | None = None,
        overlay_key: int = arcade.key.F3,
    ) -> None:
        self.window = window
        #: The engine's frame driver (its ``state``, ``reason``, ``progress``, ``loaded``, ``syncs``).
        self.driver = FrameDriver(budget=budget) if clock is None else FrameDriver(budget=budget, clock=clock)
        #: The key that shows and hides the overlay (None: no key).
        self.overlay_key: int | None = overlay_key
        #: The net stats of the first connection (sampled while the overlay is shown).
        self.monitor: NetMonitor | None = None
        #: The debug overlay (hidden until toggled).
        self.overlay = NetOverlay(self)
        #: The sprite tables made by :meth:`sprites`.
        self.tables: list[SpriteTable[Any, Any]] = []
        self._was_connected: dict[int, bool] = {}
        self._updating = False
        self._registered: list[tuple[DbConnection, Callable[[Any], None] | None, Callable[[Any], None]]] = []
        self.driver.on_applied(self._on_applied)
        for c in clients:
            self.add_client(c)

    def __repr__(self) -> str:
        return f"NetBridge({len(self.driver.clients)} clients, state={self.driver.state!r})"

    # ----- connections ----------------------------------------------------------------------------------
    @property
    def clients(self) -> tuple[DbConnection, ...]:
        """The connections driven."""
        return self.driver.clients

    @property
    def client(self) -> DbConnection:
        """The connection (the first, when there are several)."""
        if not self.driver.clients:
            raise RuntimeError("this window has no connection yet: pass client=... or call net.add_client()")
        return self.driver.clients[0]

    def add_client(self, client: DbConnection) -> DbConnection:
        """Drive ``client`` too (connected at the next tick if it is not yet); returns it."""
        self.driver.add_client(client)
        client.register_on_event(self._on_event)
        # state changes in the server's order (a connect before the rows that follow it): the
        # connection's own on_state hook, which runs inside update(); the game's own hook still runs
        previous = client.on_state

        def on_state(state: Any) -> None:
            self._on_state(self.driver.status(client))
            if previous is not None:
                previous(state)

        client.on_state = on_state
        self._registered.append((client, previous, on_state))
        if self.monitor is None:
            self.monitor = NetMonitor(client, clock=self.driver.clock)
        return client

    def subscribe(
        self, queries: str | Sequence[str], *, client: DbConnection | None = None
    ) -> SubscriptionHandle:
        """Subscribe to ``queries`` (SQL); a refusal reaches ``on_subscription_error(message, handle)``."""
        c = client if client is not None else self.client
        handle = c.subscribe_multi([queries] if isinstance(queries, str) else list(queries))

        def refused(h: SubscriptionHandle, message: str) -> None:
            self._emit("on_subscription_error", message, h)

        handle.on_error(refused)
        return handle

    # ----- row events -----------------------------------------------------------------------------------
    def watch(
        self,
        table: type[Any] | str,
        *,
        initial: bool = True,
        event: bool = False,
        key: Callable[[Any], Hashable] | str | Sequence[str] | None = None,
        filter: Callable[[Any], bool] | None = None,
        client: DbConnection | None = None,
    ) -> EntitySync[Any, Any]:
        """Deliver the rows of ``table`` to ``on_row_insert`` / ``on_row_update`` / ``on_row_delete``
        (tables not watched cost nothing). ``initial=False`` leaves out the rows of the first load (a
        100,000-row table then makes one ``on_subscription_applied`` instead of 100,000 calls; read the
        cache there); the rows a reconnect brings back are always delivered. ``event=True`` says the
        table is an event table (a V9 schema, the dev server's, cannot say so): each row is one
        ``on_row_insert``. ``key``: for a table without a primary key, which rows are one entity (a
        delete and an insert of it in one transaction become one ``on_row_update``). Returns the
        engine's sync (its ``entities`` are the rows by key)."""
        name = table if isinstance(table, str) else getattr(table, "table_name", str(table))
        driver = self.driver

        def first_load(change: Change) -> bool:
            if initial or change.origin != "initial" or change.client is None:
                return False
            return not driver.status(change.client).loaded

        if event:

            def on_event(row: Any, change: Change) -> None:
                self._emit("on_row_insert", name, row, change)

            return driver.sync(table, client=client, on_event=on_event, filter=filter)

        def on_spawn(row: Any, change: Change) -> Any:
            if not first_load(change):
                self._emit("on_row_insert", name, row, change)
            return row

        def on_update(entity: Any, old: Any, new: Any, change: Change) -> None:
            self._emit("on_row_update", name, old, new, change)

        def on_despawn(entity: Any, row: Any, change: Change) -> None:
            self._emit("on_row_delete", name, row, change)

        return driver.sync(
            table,
            client=client,
            on_spawn=on_spawn,
            on_update=on_update,
            on_despawn=on_despawn,
            filter=filter,
            key=key,
        )

    # ----- sprites --------------------------------------------------------------------------------------
    def sprites(
        self,
        table: type[R] | str,
        factory: Callable[[R, Change], S],
        *,
        client: DbConnection | None = None,
        **options: Unpack[SpriteTableOptions[R, S]],
    ) -> SpriteTable[R, S]:
        """Keep a sprite per row of ``table`` in a :class:`SpriteTable` (its ``sprite_list`` is an
        ``arcade.SpriteList(use_spatial_hash=False)``, or ``sprite_list``).

        ``factory(row, change)`` makes a row's sprite. Its position follows the ``position`` columns
        (dotted paths read into a column: ``position=("position.x", "position.y")``) (and ``angle``, in
        degrees, or radians with ``degrees=False``), interpolated between the updates
        the server sends (``interpolate=True``: an :class:`~spacetime_game.engine.Interpolator` with its
        automatic render delay; pass your own to tune it; False places sprites at each row as it
        arrives). ``place(sprite, state)`` replaces the copying (world to screen coordinates, say).
        ``on_update`` sees every change of a row, ``on_despawn`` each row gone (return
        :data:`~spacetime_game.engine.DEFER` to keep the sprite for an animation, then call
        ``release(sprite)``). The local player's sprite can follow a predictor: ``table.predict(key,
        predictor)``."""
        t: SpriteTable[R, S] = SpriteTable(table, factory, **options)
        t.attach(self.driver, client)
        self.tables.append(t)
        return t

    # ----- the frame ------------------------------------------------------------------------------------
    def run_update(self, delta_time: float, update: Callable[..., Any], *args: Any) -> Any:
        """Tick (unless this frame's update is already under way: a View's ``on_update`` then the
        Window's, or a ``super().on_update()``), then call ``update(*args)``; returns what it returns.
        The Window and :class:`NetView` wrap every ``on_update`` with this, so the engine is pumped
        however arcade calls them (pyglet's event loop, or headless ``arcade.run``, which calls the
        active View's or Window's ``on_update`` directly)."""
        if self._updating:
            return update(*args)
        self.tick(delta_time)
        self._updating = True
        try:
            return update(*args)
        finally:
            self._updating = False

    def tick(self, dt: float | None = None) -> int:
        """One frame of the engine (the :class:`Window` calls it before each ``on_update``): apply what
        arrived within the budget (handlers run inside), move the sprites; returns the messages applied."""
        applied = self.driver.tick(dt)
        if self.overlay.visible:
            self.sample()
        return applied

    def sample(self) -> None:
        """Refresh the net stats the overlay shows (done each tick while it is shown)."""
        if self.monitor is None:
            return
        depths = [t.interpolator.depth for t in self.tables if t.interpolator is not None and len(t)]
        self.monitor.sample(self.driver.now, buffer_depth_ms=1000.0 * max(depths) if depths else None)

    def close(self) -> None:
        """Close every connection (their threads end in the background within about a second)."""
        registered, self._registered = self._registered, []
        self.driver.close()  # (its state change still reaches the handlers)
        for c, previous, hook in registered:
            c.unregister_on_event(self._on_event)
            if c.on_state is hook:
                c.on_state = previous

    @property
    def closed(self) -> bool:
        """True after :meth:`close`."""
        return self.driver.closed

    # ----- hooks into events ----------------------------------------------------------------------------
    def _emit(self, name: str, *args: Any) -> None:
        """Call the handlers of ``name`` now (the current View's, then the Window's), bypassing pyglet's
        window event queue so that they run in the server's order, inside the tick."""
        _dispatch(self.window, name, *args)

    def _on_state(self, status: ClientStatus) -> None:
        self._emit("on_connection_state", status)
        ident = id(status.client)
        was = self._was_connected.get(ident, False)
        now = status.state == "connected"
        self._was_connected[ident] = now
        if now and not was:
            self._emit("on_connect", status)
        elif was and not now:
            self._emit("on_disconnect", status)

    def _on_applied(self, change: Change) -> None:
        match change.origin:
            case "initial":
                self._emit("on_subscription_applied", change)
            case "own" | "other":
                self._emit("on_transaction", change)
            case "unsubscribe":
                pass
            case _:
                assert_never(change.origin)

    def _on_event(self, message: Any) -> None:
        event: ReducerEvent | None = getattr(message, "reducer_event", None)
        if event is not None and event.reducer_name is not None:
            self._emit("on_reducer_result", event)


def _pumping(update: Callable[..., Any], net_of: Callable[[Any], NetBridge | None]) -> Callable[..., Any]:
    """``update`` (an ``on_update`` method) made to pump the engine first (see :meth:`NetBridge.run_update`)."""
    if getattr(update, "_spacetime_pumps", False):
        return update

    @functools.wraps(update)
    def on_update(self: Any, delta_time: float, *args: Any) -> Any:
        net = net_of(self)
        if net is None:
            return update(self, delta_time, *args)
        return net.run_update(delta_time, update, self, delta_time, *args)

    on_update._spacetime_pumps = True  # type: ignore[attr-defined]
    return on_update


def _window_net(window: Any) -> NetBridge | None:
    return getattr(window, "net", None)


def _view_net(view: Any) -> NetBridge | None:
    net = getattr(view.window, "net", None)
    return net if isinstance(net, NetBridge) else None


class Window(arcade.Window):
    """An ``arcade.Window`` whose game is networked: subclass it as usual and write handler methods for
    the network's events (:data:`NET_EVENT_TYPES`) on it or on the current View.

    ``client`` (a :class:`~spacetime_game.sdk.DbConnection`, or several) is driven by :attr:`net`, a
    :class:`NetBridge`: it connects at the first frame, and every frame, before ``on_update`` reaches
    the game, it applies what arrived (within ``budget`` seconds), calls the handlers, and moves the
    sprite tables. F3 (``overlay_key``; None for none) shows the net overlay; ``overlay=True`` shows it
    from the start. Closing the window closes the connections.

    For headless runs and CI: with the environment variable ``SPACETIME_GAME_FRAMES=N`` the window
    closes itself after N frames, saving the last one as a PNG to ``SPACETIME_GAME_SCREENSHOT`` if set.
    """

    event_types: ClassVar[list[str]] = [
        *arcade.Window.event_types,
        *(e for e in (*NET_EVENT_TYPES, "on_spacetime_frame") if e not in arcade.Window.event_types),
    ]

    def __init__(
        self,
        width: int = 1280,
        height: int = 720,
        title: str | None = "spacetime-game",
        *,
        client: DbConnection | Iterable[DbConnection] | None = None,
        budget: float | None = DEFAULT_BUDGET,
        overlay: bool = False,
        overlay_key: int | None = arcade.key.F3,
        clock: Callable[[], float] | None = None,
        **kwargs: Any,
    ) -> None:
        clients: tuple[DbConnection, ...]
        if client is None:
            clients = ()
        elif isinstance(client, DbConnection):
            clients = (client,)
        else:
            clients = tuple(client)
        # made before arcade's __init__, which may already dispatch events (on_resize)
        #: The engine of this window: connections, row events, sprite tables, overlay.
        self.net = NetBridge(self, *clients, budget=budget, clock=clock)
        self.net.overlay_key = overlay_key
        #: Frames presented so far.
        self.frames_shown = 0
        frames = os.environ.get(FRAMES_ENV, "").strip()
        self._frame_limit: int | None = int(frames) if frames else None
        super().__init__(width, height, title, **kwargs)
        self.net.overlay.visible = overlay

    # ----- pumping the engine: before every on_update, whatever the game's handlers do --------------------
    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        own = cls.__dict__.get("on_update")
        if own is not None:
            cls.on_update = _pumping(own, _window_net)  # type: ignore[method-assign]

    def dispatch_event(self, *args: Any) -> None:
        """pyglet's dispatch, with the engine's tick before ``on_update`` reaches any handler, and the
        overlay key."""
        net = self.net
        if args and args[0] == "on_update":
            # in its place an event of our own, queued or not as pyglet decides, that ticks and then
            # dispatches on_update to every handler under one guard (one tick per frame)
            super().dispatch_event(_FRAME_EVENT, *args[1:])
            return
        if args and args[0] == "on_key_press" and net.overlay_key is not None and args[1] == net.overlay_key:
            net.overlay.toggle()
        super().dispatch_event(*args)

    def on_update(self, delta_time: float) -> bool | None:
        """Pumps the engine (every ``on_update`` of a subclass does, before its own code)."""
        return None

    def on_spacetime_frame(self, delta_time: float) -> None:
        """(Internal event) the engine's tick, then ``on_update`` for every handler."""
        self.net.run_update(delta_time, _dispatch, self, "on_update", delta_time)

    def flip(self) -> None:
        """Draw the overlay on top of the frame (when shown), then present it."""
        net = self.net
        if net.overlay.visible:
            net.overlay.draw()
        self.frames_shown += 1
        limit = self._frame_limit
        if limit is not None and self.frames_shown >= limit and not self.closed:
            path = os.environ.get(SCREENSHOT_ENV, "").strip()
            if path:
                # (RGB: the framebuffer's alpha is whatever was drawn last, not the window's look)
                arcade.get_image(0, 0, *self.get_framebuffer_size()).convert("RGB").save(path)
            super().flip()
            self.close()
            return
        super().flip()

    def close(self) -> None:
        """Close the connections, then the window."""
        self.net.close()
        super().close()

    # ----- the network's handlers: override the ones you need (on a View too) -------------------------------
    def on_connect(self, status: ClientStatus) -> bool | None:
        """A connection is up (also after a reconnect)."""
        return None

    def on_disconnect(self, status: ClientStatus) -> bool | None:
        """A connection went down: ``status.state`` (reconnecting, failed, closed) and ``status.reason``."""
        return None

    def on_connection_state(self, status: ClientStatus) -> bool | None:
        """A connection's state or reason changed."""
        return None

    def on_row_insert(self, table: str, row: Any, change: Change) -> bool | None:
        """A row of a watched table appeared (see :meth:`NetBridge.watch`)."""
        return None

    def on_row_update(self, table: str, old: Any, new: Any, change: Change) -> bool | None:
        """A row of a watched table changed."""
        return None

    def on_row_delete(self, table: str, row: Any, change: Change) -> bool | None:
        """A row of a watched table went."""
        return None

    def on_reducer_result(self, event: ReducerEvent) -> bool | None:
        """One of this client's reducer calls has its outcome (``event.status``, ``event.message``)."""
        return None

    def on_transaction(self, change: Change) -> bool | None:
        """A whole transaction was applied (every row handler has seen it)."""
        return None

    def on_subscription_applied(self, change: Change) -> bool | None:
        """A subscription's rows are in the cache."""
        return None

    def on_subscription_error(self, message: str, handle: SubscriptionHandle) -> bool | None:
        """The server refused a subscription made with ``net.subscribe``."""
        return None


Window.on_update = _pumping(Window.on_update, _window_net)  # type: ignore[method-assign]


class NetView(arcade.View):
    """An ``arcade.View`` for a :class:`Window`: the network's handlers (:data:`NET_EVENT_TYPES`) written
    on it are called while it is shown (before the Window's; return ``pyglet.event.EVENT_HANDLED`` to stop
    there), and :attr:`net` is the window's :class:`NetBridge`. (Any ``arcade.View`` shown in a
    :class:`Window` gets the handlers it defines; this class adds :attr:`net`.)

    Its ``on_update`` (and that of every subclass) pumps the window's engine first: headless
    ``arcade.run`` calls the shown View's ``on_update`` directly, so a View of a networked game should be
    a NetView."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        own = cls.__dict__.get("on_update")
        if own is not None:
            cls.on_update = _pumping(own, _view_net)  # type: ignore[method-assign]

    def on_update(self, delta_time: float) -> bool | None:
        """Pumps the window's engine (every ``on_update`` of a subclass does, before its own code)."""
        return None

    @property
    def net(self) -> NetBridge:
        """The window's :class:`NetBridge` (the View must be shown in, or made for, a :class:`Window`)."""
        window = self.window
        net = getattr(window, "net", None)
        if not isinstance(net, NetBridge):
            raise RuntimeError(
                f"{type(self).__name__} is a NetView but its window ({window!r}) is not a "
                "spacetime_game.arcade.Window: make the window with that class"
            )
        return net


NetView.on_update = _pumping(NetView.on_update, _view_net)  # type: ignore[method-assign]
