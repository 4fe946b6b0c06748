"""What both arena clients (and the bots) share, engine-neutral: the subscriptions, entering the game,
the steering input, the local player's prediction, the camera, the leaderboard and the palette.

It uses only the generated bindings (``module_bindings``, from Blackholio's schema), the SDK and the
engine layer, so a client built on it plays the same on the dev server and on a real SpacetimeDB that
runs the official Blackholio module.
"""

from __future__ import annotations

import gc
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

from spacetime_game.engine import DEFER, InputThrottle, TickPredictor
from spacetime_game.sdk import DbConnection, ReducerCall, SubscriptionHandle

from . import module_bindings as mb

#: The main query set. ``consume_entity_event`` goes in a set of its own: a server without that table
#: (the tutorial's module, a 1.x server) then refuses only that set, not the whole game.
QUERIES = [
    "SELECT * FROM config",
    "SELECT * FROM player",
    "SELECT * FROM entity",
    "SELECT * FROM circle",
    "SELECT * FROM food",
]
EVENT_QUERIES = ["SELECT * FROM consume_entity_event"]

#: The longest name the game sends (the leaderboard's column).
MAX_NAME = 16
#: Seconds per server movement tick (``move_all_players`` every 50 ms) and input sends per second.
TICK = 0.05
INPUT_RATE = 20.0
START_MASS = 15
WORLD_SIZE = 1000.0  # until the config row says otherwise

# ----- the look (our own palette) -------------------------------------------------------------------------
BACKGROUND = (11, 13, 26)
ARENA = (20, 24, 44)
GRID = (30, 35, 62)
BORDER = (242, 176, 80)
TEXT = (236, 239, 246)
MUTED = (150, 158, 184)
SHADOW = (0, 0, 0)
PANEL = (28, 33, 62)  # behind the leaderboard and the minimap
#: Names are written on circles at least this big on screen (pixels of radius).
LABEL_MIN_RADIUS = 14
#: Players' circles, by ``player_id`` (a player keeps its colour).
PLAYER_COLORS = [
    (255, 107, 107),
    (255, 169, 77),
    (255, 212, 59),
    (105, 219, 124),
    (56, 217, 169),
    (77, 171, 247),
    (116, 143, 252),
    (151, 117, 250),
    (218, 119, 242),
    (247, 131, 172),
]
#: Food, by ``entity_id``.
FOOD_COLORS = [
    (99, 230, 190),
    (116, 192, 252),
    (177, 151, 252),
    (255, 212, 59),
    (255, 146, 43),
    (140, 233, 154),
]


def player_color(player_id: int) -> tuple[int, int, int]:
    return PLAYER_COLORS[abs(player_id) % len(PLAYER_COLORS)]


def food_color(entity_id: int) -> tuple[int, int, int]:
    return FOOD_COLORS[abs(entity_id) % len(FOOD_COLORS)]


#: The font sizes names are written in (a few: each new size costs a font's loading and glyphs).
LABEL_SIZES = (11, 13, 16, 20, 25, 32)


def label_size(text: str, r: float) -> int:
    """The font size (pixels) of a name on a circle of ``r`` pixels: the largest of :data:`LABEL_SIZES`
    that keeps it inside the circle."""
    fits = min(r * 0.45, 1.5 * r / (0.66 * max(len(text), 1)))
    best = LABEL_SIZES[0]
    for size in LABEL_SIZES:
        if size <= fits:
            best = size
    return best


def border_pixels(zoom: float) -> float:
    """How thick the arena's border is drawn, in pixels."""
    return max(2.0, 0.8 * zoom)


def radius(mass: float) -> float:
    """A circle's radius in world units (the module's ``mass_to_radius``)."""
    return math.sqrt(max(mass, 0.0))


def max_speed(mass: float) -> float:
    """World units per server tick at full throttle (the module's ``mass_to_max_move_speed``)."""
    return 2.0 * 10.0 / (1.0 + math.sqrt(max(mass, 1.0) / START_MASS))


def steering(px: float, py: float, width: float, height: float) -> tuple[float, float]:
    """The input vector for a pointer at ``(px, py)`` on a ``width`` x ``height`` screen: from the
    centre, full speed a third of the height away (as the official clients do), in the screen's own y
    direction (the server does not care which way y points, as long as the client draws the same way)."""
    scale = height / 3.0
    return ((px - width / 2.0) / scale, (py - height / 2.0) / scale)


# ----- the local player ----------------------------------------------------------------------------------
def step_entity(entity: mb.Entity, direction: tuple[float, float], dt: float) -> mb.Entity:
    """The client's copy of one movement tick of a circle (``dt`` a whole tick or a part of one): the
    input's direction at its length (capped at 1) times the mass's top speed, kept inside the arena."""
    dx, dy = direction
    length = math.hypot(dx, dy)
    if length > 1.0:
        dx, dy = dx / length, dy / length
    speed = max_speed(entity.mass) * dt / TICK
    r = radius(entity.mass)
    size = WORLD_SIZE
    x = min(max(entity.position.x + dx * speed, r), size - r)
    y = min(max(entity.position.y + dy * speed, r), size - r)
    return mb.Entity(entity.entity_id, mb.DbVector2(x, y), entity.mass)


def predictor() -> TickPredictor[mb.Entity, tuple[float, float]]:
    """The prediction of one of the local player's circles: moved on the server's tick by the input,
    re-based on each server row and blended toward it over 0.15 s."""
    return TickPredictor(
        step_entity, (0.0, 0.0), tick=TICK, fields=("position.x", "position.y", "mass"), smoothing=0.15
    )


@dataclass
class Entry:
    """A leaderboard line."""

    rank: int
    name: str
    mass: int
    me: bool


class Player:
    """One player's side of the arena on a connection: entering the game, steering, splitting,
    respawning, and what the HUD shows. The clients and the bots each make one per connection."""

    def __init__(self, conn: DbConnection, name: str | None, *, view: Player | None = None) -> None:
        #: The player's connection: its identity, and the reducers it calls.
        self.conn = conn
        #: Where the arena is read from: this connection's cache, or with ``view`` another player's
        #: (many bots can share one subscription; their own connections then subscribe to nothing).
        self.cache = conn if view is None else view.conn
        self._view = view
        #: The chosen name; None until the player types one (see :meth:`choose_name`).
        self.name: str | None = None if name is None else (name.strip()[:MAX_NAME] or "<No Name>")
        #: sends ``update_player_input`` at most 20 times a second, skipping unchanged input
        self.throttle: InputThrottle[tuple[float, float], ReducerCall] = InputThrottle(self._send, INPUT_RATE)
        self.entered = False  # enter_game was called on this connection
        self._settled = False
        #: when (``time.time()``) a frame first showed this player in the arena (None: not yet)
        self.first_seen: float | None = None
        self.subscription: SubscriptionHandle | None = None
        #: the consume events' own query set (its ``error`` says why a server refused it)
        self.events: SubscriptionHandle | None = None

    def subscribe(self) -> None:
        """The game's two query sets (none when reading another player's view)."""
        if self._view is not None:
            return
        self.subscription = self.conn.subscribe_multi(QUERIES)
        self.events = self.conn.subscribe_multi(EVENT_QUERIES)

    @property
    def ready(self) -> bool:
        """True once the arena's rows are here (the subscription, this one's or the view's, applied)."""
        sub = self.subscription if self._view is None else self._view.subscription
        return sub is not None and sub.is_active and self.conn.identity is not None

    def _send(self, direction: tuple[float, float]) -> ReducerCall:
        return mb.update_player_input(mb.DbVector2(direction[0], direction[1]), client=self.conn)

    # ----- what the cache says --------------------------------------------------------------------------
    @property
    def row(self) -> mb.Player | None:
        """The local player's row (None before the subscription, or on a server that lost it)."""
        identity = self.conn.identity
        return None if identity is None else mb.Player.filter_by_identity(identity, client=self.cache)

    @property
    def player_id(self) -> int | None:
        row = self.row
        return None if row is None else row.player_id

    def circles(self) -> list[mb.Circle]:
        pid = self.player_id
        return [] if pid is None else list(mb.Circle.filter_by_player_id(pid, client=self.cache))

    def entities(self) -> list[mb.Entity]:
        """The entities of the local player's circles."""
        out = []
        for c in self.circles():
            e = mb.Entity.filter_by_entity_id(c.entity_id, client=self.cache)
            if e is not None:
                out.append(e)
        return out

    @property
    def alive(self) -> bool:
        return bool(self.circles())

    def settle(self) -> None:
        """Once the arena has loaded (call every frame; it acts once): what is loaded by then lives as
        long as the game, so it is moved out of the collector's full passes (``gc.freeze``), which would
        otherwise stall a frame for tens of milliseconds every so often."""
        if self._settled or not self.ready:
            return
        self._settled = True
        gc.collect()
        gc.freeze()

    def drawn(self) -> None:
        """A frame was drawn: note the first one that shows this player in the arena."""
        if self.first_seen is None and self.alive:
            self.first_seen = time.time()

    @property
    def total_mass(self) -> int:
        return sum(e.mass for e in self.entities())

    def world_size(self) -> float:
        config = mb.Config.filter_by_id(0, client=self.cache)
        return WORLD_SIZE if config is None else float(config.world_size)

    # ----- what the player does ---------------------------------------------------------------------------
    @property
    def needs_name(self) -> bool:
        """True while the game should ask for a name: none was chosen and the server knows none."""
        row = self.row
        return self.name is None and row is not None and not row.name and not self.entered

    def choose_name(self, name: str) -> None:
        """The name typed at the prompt (trimmed and cut to :data:`MAX_NAME`; empty is "<No Name>",
        as the official clients do)."""
        self.name = name.strip()[:MAX_NAME] or "<No Name>"

    def enter(self) -> None:
        """Enter the game once the subscription is applied: with the chosen name if the stored one is
        empty, or again with the stored name if the player has one but no circle (a returning player).
        Without either, it waits for :meth:`choose_name`."""
        row = self.row
        if row is None or self.entered or self.alive:
            return
        name = row.name or self.name
        if name is None:
            return
        self.entered = True
        mb.enter_game(name, client=self.conn)

    def steer(self, direction: tuple[float, float], now: float) -> ReducerCall | None:
        """The steering input at ``now``: sent at most 20 times a second, unchanged input skipped."""
        if not self.alive:
            return None
        return self.throttle.set((round(direction[0], 3), round(direction[1], 3)), now)

    def split(self) -> None:
        if self.alive:
            mb.player_split(client=self.conn)

    def suicide(self) -> None:
        if self.alive:
            mb.suicide(client=self.conn)

    def respawn(self) -> None:
        """Back into the arena after dying."""
        if not self.alive and self.row is not None:
            mb.respawn(client=self.conn)

    # ----- the HUD ----------------------------------------------------------------------------------------
    def leaderboard(self, top: int = 10) -> list[Entry]:
        """The players with mass, heaviest first: the top ``top``, plus the local player if it is alive
        and not among them."""
        masses: dict[int, int] = {}
        for c in mb.Circle.iter(client=self.cache):
            e = mb.Entity.filter_by_entity_id(c.entity_id, client=self.cache)
            if e is not None:
                masses[c.player_id] = masses.get(c.player_id, 0) + e.mass
        names = {p.player_id: p.name for p in mb.Player.iter(client=self.cache)}
        mine = self.player_id
        ranked = sorted(masses.items(), key=lambda kv: (-kv[1], kv[0]))
        entries = [
            Entry(i + 1, names.get(pid, "?") or "?", mass, pid == mine)
            for i, (pid, mass) in enumerate(ranked)
        ]
        board = entries[:top]
        if mine is not None and not any(e.me for e in board):
            board += [e for e in entries if e.me]
        return board


class FrameRows:
    """The row side of a client's frame, the same in both engines: a sprite whose row went waits for the
    end of the frame (the despawn hook returns ``DEFER``), then goes at once, or is handed to the eating
    animation if a ``consume_entity_event`` of the frame names it (the order of the tables within a
    message is not something to rely on); and the local player's circles are kept predicted.

    ``sprites`` is the entities' sprite sync (the engine's ``SpriteSync``, or an adapter's); ``key_of``
    gives the entity id a sprite was made for (its row is gone by then)."""

    def __init__(self, sprites: Any, key_of: Callable[[Any], int]) -> None:
        self.sprites = sprites
        self.key_of = key_of
        self.gone: list[Any] = []  # sprites whose rows went this frame
        self.eaten: dict[int, int] = {}  # consumed entity -> its eater, this frame
        #: The entity ids of the local player's circles, drawn from predictors.
        self.predicted: set[int] = set()

    def despawned(self, sprite: Any, *row_and_change: Any) -> object:
        """The despawn hook (either adapter's signature): decided at :meth:`settle`."""
        self.gone.append(sprite)
        return DEFER

    def consumed(self, event: mb.ConsumeEntityEvent, change: Any) -> None:
        """The ``on_event`` hook of ``consume_entity_event``."""
        self.eaten[event.consumed_entity_id] = event.consumer_entity_id

    def settle(self, player: Player, cues: Cues) -> tuple[list[str], list[tuple[Any, int]]]:
        """After the frame's rows: the frame's sound cues, and the sprites being eaten with their eaters
        (the others whose rows went are released); the local player's circles predicted."""
        frame_cues = cues.frame(player, self.eaten.values())
        eating = []
        for sprite in self.gone:
            eater = self.eaten.get(self.key_of(sprite))
            if eater is None:
                self.sprites.release(sprite)
            else:
                eating.append((sprite, eater))
        self.gone.clear()
        self.eaten.clear()
        mine = {c.entity_id for c in player.circles()}  # (they move at the frame of the input)
        for key in mine - self.predicted:
            if key in self.sprites:
                self.sprites.predict(key, predictor())
                self.predicted.add(key)
        for key in self.predicted - mine:
            self.sprites.unpredict(key)
            self.predicted.discard(key)
        return frame_cues, eating


class Cues:
    """Which sound effects a frame calls for, from the local player's side of it: ``spawn`` when the
    player enters the arena, ``eaten`` when its last circle goes, ``split`` when it has more circles than
    before, ``eat`` when one of its circles ate something (a ``consume_entity_event`` names it)."""

    #: The sound files (in the assets) of the cues.
    FILES: ClassVar[dict[str, str]] = {
        "spawn": "spawn.wav",
        "eaten": "eaten.wav",
        "split": "split.wav",
        "eat": "eat.wav",
    }

    def __init__(self) -> None:
        self.alive = False
        self.count = 0

    def frame(self, player: Player, eaters: Iterable[int]) -> list[str]:
        """The cues of this frame; ``eaters`` are the eating entities of the frame's consume events."""
        ids = {c.entity_id for c in player.circles()}
        alive = bool(ids)
        cues = []
        if alive and not self.alive:
            cues.append("spawn")
        elif self.alive and not alive:
            cues.append("eaten")
        elif alive and len(ids) > self.count:
            cues.append("split")
        if any(e in ids for e in eaters):
            cues.append("eat")
        self.alive, self.count = alive, len(ids)
        return cues


class Camera:
    """Follows the local player's centre of mass and zooms out as it grows (and while it is split), as
    the official clients do; before the player has circles it shows the whole arena."""

    def __init__(self, screen_height: float) -> None:
        self.x = self.y = WORLD_SIZE / 2.0
        self.screen_height = screen_height
        #: half the visible height, in world units
        self.size = WORLD_SIZE / 2.0

    def update(self, circles: Iterable[tuple[float, float, float]], world_size: float, dt: float) -> None:
        """Move to the mass-weighted centre of ``circles`` (each ``(x, y, mass)`` as drawn) and ease the
        zoom toward its target."""
        total = sx = sy = 0.0
        n = 0
        for x, y, mass in circles:
            total += mass
            sx += x * mass
            sy += y * mass
            n += 1
        if total > 0:
            self.x, self.y = sx / total, sy / total
            target = 50.0 + min(50.0, total / 5.0) + min(max(n - 1, 0), 1) * 30.0
        else:
            self.x = self.y = world_size / 2.0
            target = world_size / 2.0 + 20.0
        self.size += (target - self.size) * min(1.0, dt * 2.0)

    @property
    def zoom(self) -> float:
        """Screen pixels per world unit."""
        return self.screen_height / (2.0 * self.size)

    def to_screen(self, x: float, y: float, width: float, height: float) -> tuple[float, float]:
        z = self.zoom
        return (width / 2.0 + (x - self.x) * z, height / 2.0 + (y - self.y) * z)

    def to_world(self, sx: float, sy: float, width: float, height: float) -> tuple[float, float]:
        z = self.zoom
        return (self.x + (sx - width / 2.0) / z, self.y + (sy - height / 2.0) / z)
