"""The arena module: a Python port of Blackholio, SpacetimeDB's tutorial game, for the dev server.

Serve it with ``spacetime-game serve demos/arena/module.py --database blackholio``.

It has Blackholio's wire schema (table, column, type and reducer names and types, in the list orders
the server exports; ``docs/arena.md``) and its rules: circles move toward their owner's input every
50 ms, eat food and other players' circles at least 15% lighter (one tick later, through a one-shot
``consume_entity`` timer that also emits a ``consume_entity_event``), split in halves from mass 60 up
to 16 circles, are pushed apart while split and pulled back together before merging 5 s later, and
decay by 1% every 5 s above mass 15. Food is topped up to 600 every 500 ms while anyone is connected.
A player who disconnects keeps its circles in the private ``logged_out_*`` tables until it comes back.

Arithmetic follows the Rust module in f32: positions are rounded to f32 as they are stored, so the
server's rows are exactly what clients decode.
"""

from __future__ import annotations

import math
import struct
from typing import Annotated

from spacetime_game.server import (
    Identity,
    ReducerContext,
    ReducerError,
    ScheduleAt,
    TimeDuration,
    Timestamp,
    auto_inc,
    client_connected,
    client_disconnected,
    f32,
    i32,
    i64,
    index,
    init,
    primary_key,
    product_type,
    reducer,
    table,
    u64,
    unique,
)

#: The database's name when served (Blackholio's; ``spacetime-game serve`` uses it unless ``--database``).
DATABASE = "blackholio"

START_PLAYER_MASS = 15
START_PLAYER_SPEED = 10
FOOD_MASS_MIN = 2
FOOD_MASS_MAX = 4  # exclusive
TARGET_FOOD_COUNT = 600
MINIMUM_SAFE_MASS_RATIO = 0.85
MIN_MASS_TO_SPLIT = START_PLAYER_MASS * 2
MAX_CIRCLES_PER_PLAYER = 16
SPLIT_RECOMBINE_DELAY_SEC = 5.0
SPLIT_GRAV_PULL_BEFORE_RECOMBINE_SEC = 2.0
ALLOWED_SPLIT_CIRCLE_OVERLAP_PCT = 0.9
SELF_COLLISION_SPEED = 0.05
WORLD_SIZE = 1000
DECAY_FACTOR = 0.99
GRAVITY = 0.05
MOVE_EVERY_US = 50_000
FOOD_EVERY_US = 500_000
DECAY_EVERY_US = 5_000_000

_F32 = struct.Struct("<f")


def f32_round(value: float) -> float:
    """``value`` as the nearest f32 (how the Rust module holds it)."""
    return float(_F32.unpack(_F32.pack(value))[0])


# ----- types -------------------------------------------------------------------------------------------
@product_type
class DbVector2:
    x: f32
    y: f32


def vec(x: float, y: float) -> DbVector2:
    """A vector whose components are rounded to f32."""
    return DbVector2(f32_round(x), f32_round(y))


def normalized(x: float, y: float) -> tuple[float, float]:
    """``(x, y)`` of length 1; the zero vector stays zero (as the Rust module divides)."""
    m = math.sqrt(x * x + y * y)
    return (x / m, y / m) if m > 0.0 else (0.0, 0.0)


def mass_to_radius(mass: int) -> float:
    return math.sqrt(mass)


def mass_to_max_move_speed(mass: int) -> float:
    return 2.0 * START_PLAYER_SPEED / (1.0 + math.sqrt(mass / START_PLAYER_MASS))


# ----- tables (declared in the order of their row types' names: the typespace follows it) -----------------
@table(name="logged_out_circle")
@table(name="circle", public=True)
class Circle:
    entity_id: Annotated[i32, primary_key]
    player_id: Annotated[i32, index]
    direction: DbVector2
    speed: f32
    last_split_time: Timestamp


@table(scheduled="circle_decay")
class CircleDecayTimer:
    scheduled_id: Annotated[u64, primary_key, auto_inc]
    scheduled_at: ScheduleAt


@table(scheduled="circle_recombine")
class CircleRecombineTimer:
    scheduled_id: Annotated[u64, primary_key, auto_inc]
    scheduled_at: ScheduleAt
    player_id: i32


@table(public=True)
class Config:
    id: Annotated[i32, primary_key]
    world_size: i64


@table(public=True, event=True)
class ConsumeEntityEvent:
    consumed_entity_id: i32
    consumer_entity_id: i32


@table(scheduled="consume_entity")
class ConsumeEntityTimer:
    scheduled_id: Annotated[u64, primary_key, auto_inc]
    scheduled_at: ScheduleAt
    consumed_entity_id: i32
    consumer_entity_id: i32


@table(name="logged_out_entity")
@table(name="entity", public=True)
class Entity:
    entity_id: Annotated[i32, primary_key, auto_inc]
    position: DbVector2
    mass: i32


@table(public=True)
class Food:
    entity_id: Annotated[i32, primary_key]


@table(scheduled="move_all_players")
class MoveAllPlayersTimer:
    scheduled_id: Annotated[u64, primary_key, auto_inc]
    scheduled_at: ScheduleAt


@table(name="logged_out_player")
@table(name="player", public=True)
class Player:
    identity: Annotated[Identity, primary_key]
    player_id: Annotated[i32, unique, auto_inc]
    name: str


@table(scheduled="spawn_food")
class SpawnFoodTimer:
    scheduled_id: Annotated[u64, primary_key, auto_inc]
    scheduled_at: ScheduleAt


# ----- helpers -------------------------------------------------------------------------------------------
def world_size(ctx: ReducerContext) -> int:
    config = ctx.db.config.id.find(0)
    if config is None:
        raise ReducerError("Config not found")
    return int(config.world_size)


def spawn_circle_at(
    ctx: ReducerContext, player_id: int, mass: int, position: DbVector2, t: Timestamp
) -> Entity:
    entity = ctx.db.entity.insert(Entity(0, position, mass))
    ctx.db.circle.insert(Circle(entity.entity_id, player_id, DbVector2(0.0, 1.0), 0.0, t))
    return entity  # type: ignore[no-any-return]


def spawn_player_initial_circle(ctx: ReducerContext, player_id: int) -> Entity:
    size = world_size(ctx)
    r = mass_to_radius(START_PLAYER_MASS)
    x = ctx.rng.uniform(r, size - r)
    y = ctx.rng.uniform(r, size - r)
    return spawn_circle_at(ctx, player_id, START_PLAYER_MASS, vec(x, y), ctx.timestamp)


def destroy_entity(ctx: ReducerContext, entity_id: int) -> None:
    ctx.db.food.entity_id.delete(entity_id)
    ctx.db.circle.entity_id.delete(entity_id)
    ctx.db.entity.entity_id.delete(entity_id)


def schedule_consume_entity(ctx: ReducerContext, consumer_id: int, consumed_id: int) -> None:
    ctx.db.consume_entity_timer.insert(
        ConsumeEntityTimer(0, ScheduleAt(ctx.timestamp), consumed_id, consumer_id)
    )


def sender_player(ctx: ReducerContext, missing: str) -> Player:
    player = ctx.db.player.identity.find(ctx.sender)
    if player is None:
        raise ReducerError(missing)
    return player  # type: ignore[no-any-return]


# ----- lifecycle -------------------------------------------------------------------------------------------
@init
def init_(ctx: ReducerContext) -> None:
    ctx.db.config.insert(Config(0, WORLD_SIZE))
    every = ScheduleAt.interval
    ctx.db.circle_decay_timer.insert(CircleDecayTimer(0, every(TimeDuration(DECAY_EVERY_US))))
    ctx.db.spawn_food_timer.insert(SpawnFoodTimer(0, every(TimeDuration(FOOD_EVERY_US))))
    ctx.db.move_all_players_timer.insert(MoveAllPlayersTimer(0, every(TimeDuration(MOVE_EVERY_US))))


@client_connected
def connect(ctx: ReducerContext) -> None:
    player = ctx.db.logged_out_player.identity.find(ctx.sender)
    if player is None:
        ctx.db.player.insert(Player(ctx.sender, 0, ""))
        return
    ctx.db.player.insert(player)
    ctx.db.logged_out_player.identity.delete(player.identity)
    for circle in ctx.db.logged_out_circle.player_id.filter(player.player_id):
        ctx.db.logged_out_circle.entity_id.delete(circle.entity_id)
        ctx.db.circle.insert(circle)
        entity = ctx.db.logged_out_entity.entity_id.find(circle.entity_id)
        if entity is None:
            raise ReducerError(f"Could not find logged out entity {circle.entity_id}")
        ctx.db.logged_out_entity.entity_id.delete(entity.entity_id)
        ctx.db.entity.insert(entity)


@client_disconnected
def disconnect(ctx: ReducerContext) -> None:
    player = sender_player(ctx, "Player not found")
    ctx.db.logged_out_player.insert(player)
    ctx.db.player.identity.delete(player.identity)
    for circle in ctx.db.circle.player_id.filter(player.player_id):
        entity = ctx.db.entity.entity_id.find(circle.entity_id)
        if entity is None:
            raise ReducerError(f"Could not find entity {circle.entity_id}")
        ctx.db.logged_out_entity.insert(entity)
        ctx.db.entity.entity_id.delete(entity.entity_id)
        ctx.db.logged_out_circle.insert(circle)
        ctx.db.circle.entity_id.delete(circle.entity_id)


# ----- what a client calls -------------------------------------------------------------------------------
@reducer
def enter_game(ctx: ReducerContext, name: str) -> None:
    player = sender_player(ctx, "")
    player.name = name
    ctx.db.player.identity.update(player)
    spawn_player_initial_circle(ctx, player.player_id)


@reducer
def respawn(ctx: ReducerContext) -> None:
    player = sender_player(ctx, "No such player found")
    spawn_player_initial_circle(ctx, player.player_id)


@reducer
def suicide(ctx: ReducerContext) -> None:
    player = sender_player(ctx, "No such player found")
    for circle in ctx.db.circle.player_id.filter(player.player_id):
        destroy_entity(ctx, circle.entity_id)


@reducer
def update_player_input(ctx: ReducerContext, direction: DbVector2) -> None:
    player = sender_player(ctx, "Player not found")
    nx, ny = normalized(direction.x, direction.y)
    throttle = min(max(math.sqrt(direction.x * direction.x + direction.y * direction.y), 0.0), 1.0)
    for circle in ctx.db.circle.player_id.filter(player.player_id):
        circle.direction = vec(nx, ny)
        circle.speed = f32_round(throttle)
        ctx.db.circle.entity_id.update(circle)


@reducer
def player_split(ctx: ReducerContext) -> None:
    player = sender_player(ctx, "Sender has no player")
    circles = list(ctx.db.circle.player_id.filter(player.player_id))
    count = len(circles)
    if count >= MAX_CIRCLES_PER_PLAYER:
        return
    for circle in circles:
        entity = ctx.db.entity.entity_id.find(circle.entity_id)
        if entity is None:
            raise ReducerError("Circle has no entity")
        if entity.mass >= MIN_MASS_TO_SPLIT * 2:
            half = entity.mass // 2
            at = vec(entity.position.x + circle.direction.x, entity.position.y + circle.direction.y)
            spawn_circle_at(ctx, circle.player_id, half, at, ctx.timestamp)
            entity.mass -= half
            circle.last_split_time = ctx.timestamp
            ctx.db.circle.entity_id.update(circle)
            ctx.db.entity.entity_id.update(entity)
            count += 1
            if count >= MAX_CIRCLES_PER_PLAYER:
                break
    due = ctx.timestamp + TimeDuration.from_seconds(SPLIT_RECOMBINE_DELAY_SEC)
    ctx.db.circle_recombine_timer.insert(CircleRecombineTimer(0, ScheduleAt(due), player.player_id))


# ----- scheduled -------------------------------------------------------------------------------------------
@reducer
def move_all_players(ctx: ReducerContext, _timer: MoveAllPlayersTimer) -> None:
    size = world_size(ctx)
    entities = ctx.db.entity.entity_id
    circles = list(ctx.db.circle.iter())
    dirs = {c.entity_id: [c.direction.x * c.speed, c.direction.y * c.speed] for c in circles}

    # forces between a player's own circles, from where they were before this tick's moves
    by_player: dict[int, list[Circle]] = {}
    for c in circles:
        by_player.setdefault(c.player_id, []).append(c)
    for player_id, own in by_player.items():
        if len(own) > 1 and ctx.db.player.player_id.find(player_id) is not None:
            _own_forces(ctx, own, [entities.find(c.entity_id) for c in own], dirs)

    for c in circles:
        entity = entities.find(c.entity_id)
        if entity is None:
            continue
        r = mass_to_radius(entity.mass)
        dx, dy = dirs[c.entity_id]
        speed = mass_to_max_move_speed(entity.mass)
        x = min(max(entity.position.x + dx * speed, r), size - r)
        y = min(max(entity.position.y + dy * speed, r), size - r)
        entity.position = vec(x, y)
        entities.update(entity)  # (a circle that did not move is a no-op: no traffic)

    _detect_eating(ctx, circles)


def _own_forces(
    ctx: ReducerContext, own: list[Circle], ents: list[Entity | None], dirs: dict[int, list[float]]
) -> None:
    n = len(own)
    now = ctx.timestamp.micros_since_epoch

    def apart(i: int, j: int) -> tuple[float, float, float, float] | None:
        a, b = ents[i], ents[j]
        if a is None or b is None:
            return None
        dx, dy = a.position.x - b.position.x, a.position.y - b.position.y
        d2 = dx * dx + dy * dy
        if d2 <= 0.0001:
            dx, dy, d2 = 1.0, 0.0, 1.0
        return dx, dy, d2, math.sqrt(a.mass) + math.sqrt(b.mass)

    def push(i: int, j: int, dx: float, dy: float, scale: float) -> None:
        nx, ny = normalized(dx, dy)
        vx, vy = nx * scale / 2.0, ny * scale / 2.0
        di, dj = dirs[own[i].entity_id], dirs[own[j].entity_id]
        di[0] += vx
        di[1] += vy
        dj[0] -= vx
        dj[1] -= vy

    for i in range(n):  # pulled together in the last 2 s before the merge
        since = (now - own[i].last_split_time.micros_since_epoch) / 1e6
        left = max(SPLIT_RECOMBINE_DELAY_SEC - since, 0.0)
        if left > SPLIT_GRAV_PULL_BEFORE_RECOMBINE_SEC:
            continue
        for j in range(n):
            got = apart(i, j) if j != i else None
            if got is None:
                continue
            dx, dy, d2, rs = got
            if d2 > rs * rs:
                g = 1.0 - left / SPLIT_GRAV_PULL_BEFORE_RECOMBINE_SEC
                push(i, j, dx, dy, (rs - math.sqrt(d2)) * g * GRAVITY / n)
    for i in range(n):  # pushed apart while they overlap too much, at all times
        for j in range(i + 1, n):
            got = apart(i, j)
            if got is None:
                continue
            dx, dy, d2, rs = got
            if d2 < (ALLOWED_SPLIT_CIRCLE_OVERLAP_PCT * rs) ** 2:
                push(i, j, dx, dy, (rs - math.sqrt(d2)) * SELF_COLLISION_SPEED)


#: The ratio in f32, as the Rust module compares it (0.85 is a little more in f32).
_SAFE_RATIO = f32_round(MINIMUM_SAFE_MASS_RATIO)
#: The side of a cell of the grid that finds what each circle overlaps (world units).
_CELL = 16.0


def _detect_eating(ctx: ReducerContext, circles: list[Circle]) -> None:
    """Schedule a consume for every circle over food, or over another player's circle under 0.85 of its
    mass. Both need the other's centre inside the eater (its radius is the larger: food weighs at most 3
    and circles at least 15), so a grid of the entities' centres finds the candidates."""
    owner = {c.entity_id: c.player_id for c in circles}
    grid: dict[tuple[int, int], list[Entity]] = {}
    for e in ctx.db.entity.iter():
        grid.setdefault((int(e.position.x // _CELL), int(e.position.y // _CELL)), []).append(e)
    entities = ctx.db.entity.entity_id
    for c in circles:
        me = entities.find(c.entity_id)
        if me is None:
            continue
        r = mass_to_radius(me.mass)
        mx, my = me.position.x, me.position.y
        for gx in range(int((mx - r) // _CELL), int((mx + r) // _CELL) + 1):
            for gy in range(int((my - r) // _CELL), int((my + r) // _CELL) + 1):
                for o in grid.get((gx, gy), ()):
                    if o.entity_id == me.entity_id:
                        continue
                    dx, dy = mx - o.position.x, my - o.position.y
                    big = max(r, mass_to_radius(o.mass))
                    if dx * dx + dy * dy > big * big:
                        continue
                    other = owner.get(o.entity_id)
                    if other is None:
                        schedule_consume_entity(ctx, me.entity_id, o.entity_id)  # food
                    elif other != c.player_id and f32_round(o.mass / me.mass) < _SAFE_RATIO:
                        schedule_consume_entity(ctx, me.entity_id, o.entity_id)


@reducer
def spawn_food(ctx: ReducerContext, _timer: SpawnFoodTimer) -> None:
    if ctx.db.player.count() == 0:
        return
    size = world_size(ctx)
    while ctx.db.food.count() < TARGET_FOOD_COUNT:
        mass = ctx.rng.randrange(FOOD_MASS_MIN, FOOD_MASS_MAX)
        r = mass_to_radius(mass)
        x = ctx.rng.uniform(r, size - r)
        y = ctx.rng.uniform(r, size - r)
        entity = ctx.db.entity.insert(Entity(0, vec(x, y), mass))
        ctx.db.food.insert(Food(entity.entity_id))


@reducer
def consume_entity(ctx: ReducerContext, request: ConsumeEntityTimer) -> None:
    consumed = ctx.db.entity.entity_id.find(request.consumed_entity_id)
    if consumed is None:
        raise ReducerError("Consumed entity doesn't exist")
    consumer = ctx.db.entity.entity_id.find(request.consumer_entity_id)
    if consumer is None:
        raise ReducerError("Consumer entity doesn't exist")
    ctx.db.consume_entity_event.insert(ConsumeEntityEvent(consumed.entity_id, consumer.entity_id))
    consumer.mass += consumed.mass
    destroy_entity(ctx, consumed.entity_id)
    ctx.db.entity.entity_id.update(consumer)


@reducer
def circle_decay(ctx: ReducerContext, _timer: CircleDecayTimer) -> None:
    for circle in list(ctx.db.circle.iter()):
        entity = ctx.db.entity.entity_id.find(circle.entity_id)
        if entity is None:
            raise ReducerError("Entity not found")
        if entity.mass <= START_PLAYER_MASS:
            continue
        entity.mass = int(f32_round(entity.mass * f32_round(DECAY_FACTOR)))
        ctx.db.entity.entity_id.update(entity)


@reducer
def circle_recombine(ctx: ReducerContext, timer: CircleRecombineTimer) -> None:
    now = ctx.timestamp.micros_since_epoch
    delay = int(SPLIT_RECOMBINE_DELAY_SEC * 1_000_000)
    ready = [
        c
        for c in ctx.db.circle.player_id.filter(timer.player_id)
        if now - c.last_split_time.micros_since_epoch >= delay
    ]
    if len(ready) <= 1:
        return
    base = ready[0]
    for other in ready[1:]:
        schedule_consume_entity(ctx, base.entity_id, other.entity_id)
