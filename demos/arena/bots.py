"""Bot players for the arena: each is its own connection (its own identity and reducer calls, and up
to 16 bots their own subscription too), so they load the server as players do. A bot chases the nearest food or smaller circle, flees the circles
that could eat it, splits on a close prey when it is heavy, and respawns when eaten.

    python -m demos.arena.bots --count 8 --server localhost:3000 --database blackholio
"""

from __future__ import annotations

import argparse
import logging
import math
import random
import sys
import threading
import time
from collections.abc import Iterator, Sequence

from spacetime_game.sdk import DbConnection

from . import module_bindings as mb
from .game import Player, radius

log = logging.getLogger("arena.bots")

NAMES = [
    "Nova", "Pip", "Quark", "Bramble", "Echo", "Juniper", "Mochi", "Orbit", "Pebble", "Rascal",
    "Sprocket", "Tansy", "Umber", "Vesper", "Widget", "Yarrow", "Zephyr", "Comet", "Dumpling", "Fable",
]  # fmt: skip

#: How often a bot looks around and steers (per second); bots are spread over the period.
THINK_RATE = 10.0
#: How far a bot looks (world units).
SIGHT = 140.0


class World:
    """What the bots see of the arena, as of one step: the circles' owners and the entities in cells of
    :data:`SIGHT` (a bot looks at the nine cells around it, not at every entity). Made once per step and
    cache, and shared by the bots reading that cache."""

    _last: tuple[int, float, World] | None = None

    def __init__(self, conn: DbConnection) -> None:
        self.owner = {c.entity_id: c.player_id for c in mb.Circle.iter(client=conn)}
        self.cells: dict[tuple[int, int], list[mb.Entity]] = {}
        for e in mb.Entity.iter(client=conn):
            key = (int(e.position.x // SIGHT), int(e.position.y // SIGHT))
            self.cells.setdefault(key, []).append(e)

    @classmethod
    def of(cls, conn: DbConnection) -> World:
        """The world of ``conn`` 's cache, made at most once per 20 ms."""
        now = time.monotonic()
        last = cls._last
        if last is not None and last[0] == id(conn) and now - last[1] < 0.02:
            return last[2]
        world = cls(conn)
        cls._last = (id(conn), now, world)
        return world

    def near(self, x: float, y: float) -> Iterator[mb.Entity]:
        """The entities in the nine cells around ``(x, y)`` (all those within :data:`SIGHT`)."""
        cx, cy = int(x // SIGHT), int(y // SIGHT)
        for gx in (cx - 1, cx, cx + 1):
            for gy in (cy - 1, cy, cy + 1):
                yield from self.cells.get((gx, gy), ())


class Bot:
    """One bot's mind over a :class:`~demos.arena.game.Player` (a bot's own connection, or the local
    player of a headless client, whose pointer it then moves)."""

    def __init__(self, player: Player, seed: int) -> None:
        self.player = player
        self.rng = random.Random(seed)
        self.dead_since: float | None = None
        self.wander = (self.rng.uniform(-1, 1), self.rng.uniform(-1, 1))
        self.next_split = 0.0

    @property
    def conn(self) -> DbConnection:
        return self.player.conn

    def think(self, now: float) -> tuple[float, float] | None:
        """Enter the game, respawn a while after being eaten, and choose where to go: the direction
        (length 1), or None when there is nothing to steer."""
        p = self.player
        if not p.ready or p.row is None:
            return None
        if not p.entered:
            p.enter()
            return None
        mine = p.entities()
        if not mine:
            if self.dead_since is None:
                self.dead_since = now
            elif now - self.dead_since > 1.5:
                self.dead_since = None
                p.respawn()
            return None
        self.dead_since = None
        me = max(mine, key=lambda e: e.mass)
        return self.direction(me, {e.entity_id for e in mine}, now)

    def direction(self, me: mb.Entity, own: set[int], now: float) -> tuple[float, float]:
        conn = self.player.cache
        mx, my, mass = me.position.x, me.position.y, me.mass
        world = World.of(conn)
        owner = world.owner
        flee_x = flee_y = 0.0
        best: tuple[float, mb.Entity] | None = None
        for e in world.near(mx, my):
            if e.entity_id in own:
                continue
            dx, dy = e.position.x - mx, e.position.y - my
            d = math.hypot(dx, dy)
            if d > SIGHT or d == 0.0:
                continue
            if e.entity_id in owner:
                if e.mass * 0.85 > mass:  # it could eat me: away, the closer the stronger
                    w = (SIGHT - d) / SIGHT * 3.0
                    flee_x -= dx / d * w
                    flee_y -= dy / d * w
                    continue
                if e.mass >= mass * 0.85:
                    continue  # too big to eat, too small to fear
                score = d / (1.0 + e.mass)  # prey: worth a detour
            else:
                score = d / e.mass
            if best is None or score < best[0]:
                best = (score, e)
        if best is not None:
            target = best[1]
            dx, dy = target.position.x - mx, target.position.y - my
            d = max(math.hypot(dx, dy), 1e-6)
            gx, gy = dx / d, dy / d
            if target.entity_id in owner and mass >= 60 and d < radius(mass) * 3 and now >= self.next_split:
                self.next_split = now + 4.0
                self.player.split()
        else:
            if self.rng.random() < 0.05:
                self.wander = (self.rng.uniform(-1, 1), self.rng.uniform(-1, 1))
            gx, gy = self.wander
        size = self.player.world_size()  # (and keep off the walls)
        edge = 40.0
        gx += max(0.0, edge - mx) / edge - max(0.0, mx - (size - edge)) / edge
        gy += max(0.0, edge - my) / edge - max(0.0, my - (size - edge)) / edge
        x, y = gx + flee_x, gy + flee_y
        n = math.hypot(x, y)
        return (0.0, 0.0) if n == 0 else (x / n, y / n)


#: Up to this many bots each subscribe as a player does; more share one subscription (a hundred bots
#: each decoding every update of the arena would take a core of their own).
OWN_VIEWS = 16


class Bots:
    """``count`` bots playing on ``server``/``database``, on one thread of their own (:meth:`start`,
    :meth:`stop`), or in the caller's loop (:meth:`step`). Each bot is a connection of its own (its own
    identity and reducer calls); beyond :data:`OWN_VIEWS` they read the arena from one shared
    subscription (``shared``: always, never, or by that rule when None)."""

    def __init__(
        self, count: int, server: str, database: str, *, seed: int = 1, shared: bool | None = None
    ) -> None:
        self.bots: list[Bot] = []
        self.view: Player | None = None
        self.connections: list[DbConnection] = []
        if shared if shared is not None else count > OWN_VIEWS:
            watcher = DbConnection(mb.MODULE, server, database)
            watcher.connect()
            self.view = Player(watcher, "(the bots' view)")
            self.view.subscribe()
            self.connections.append(watcher)
        for i in range(count):
            conn = DbConnection(mb.MODULE, server, database)
            conn.connect()
            name = f"{NAMES[i % len(NAMES)]}{'' if i < len(NAMES) else i // len(NAMES) + 1}"
            bot = Bot(Player(conn, name, view=self.view), seed + i)
            bot.player.subscribe()
            self.bots.append(bot)
            self.connections.append(conn)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._turn = 0

    def step(self, now: float) -> None:
        """Apply what arrived for every bot, and let a share of them think (all of them over a tenth of
        a second)."""
        for conn in self.connections:
            conn.update(0.002)
        if not self.bots:
            return
        share = max(1, math.ceil(len(self.bots) * THINK_RATE / 60.0))
        for _ in range(share):
            bot = self.bots[self._turn % len(self.bots)]
            self._turn += 1
            try:
                direction = bot.think(now)
                if direction is not None:
                    bot.player.steer(direction, now)
            except Exception:  # a bot's bad moment must not stop the others
                log.exception("bot %s", bot.player.name)
            bot.player.throttle.advance(now)

    def start(self) -> Bots:
        self._thread = threading.Thread(target=self._run, name="arena-bots", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        period = 1.0 / 60.0
        while not self._stop.is_set():
            self.step(time.monotonic())
            self._stop.wait(period)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        for conn in self.connections:
            conn.close()

    def total_mass(self) -> int:
        return sum(b.player.total_mass for b in self.bots)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=8, help="how many bots (default %(default)s)")
    parser.add_argument("--server", default="localhost:3000", help="the server (default %(default)s)")
    parser.add_argument("--database", default="blackholio", help="the database (default %(default)s)")
    parser.add_argument("--seconds", type=float, default=None, help="stop after this long (default: never)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    bots = Bots(args.count, args.server, args.database)
    end = None if args.seconds is None else time.monotonic() + args.seconds
    try:
        while end is None or time.monotonic() < end:
            bots.step(time.monotonic())
            time.sleep(1 / 60)
    except KeyboardInterrupt:
        pass
    finally:
        bots.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
