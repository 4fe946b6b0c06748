"""Sprite sync over a scripted server (no network, a hand-moved clock): a predicted player whose module
moves it on a server tick (``TickPredictor``) is drawn from the predictor, which moves it every frame and
re-bases on each server row; sprites are placed from their floats, rounded alike in both flavours."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest

from spacetime_game.engine import TickPredictor
from spacetime_game.pygame import SpriteSync, circle_image
from tests.engine._scripted import Net


def make(pygame: ModuleType) -> Any:
    def factory(row: Any) -> Any:
        sprite = pygame.sprite.Sprite()
        sprite.image = circle_image(3, (255, 255, 255))
        sprite.rect = sprite.image.get_rect()
        return sprite

    return factory


def test_a_tick_predicted_player_moves_every_frame_and_follows_the_server(
    pygame: ModuleType, mb: ModuleType
) -> None:
    P = mb.Player
    net = Net(mb).connect()
    players: SpriteSync[Any, Any] = SpriteSync(P, make(pygame), clock=net.clock)
    net.driver.add_sync(players.sync)
    net.driver.add_stepper(players)
    row = P(1, "me", 0.0, 0.0, 0.0)
    h = net.subscribe({"player": [row]})
    net.tick()
    me = players.sprites[1]

    def step(p: Any, vx: float, dt: float) -> Any:  # the server's tick: x += vx per 50 ms
        return P(p.id, p.name, p.x + vx * dt / 0.05, p.y, p.vx)

    predictor: TickPredictor[Any, float] = TickPredictor(step, 0.0, tick=0.05, smoothing=0.1, lead=0.0)
    players.predict(1, predictor)
    predictor.set_input(1.0)  # one unit per tick, starting now
    xs = []
    for _ in range(9):  # 9 frames of 1/60 s: three ticks
        net.tick(1 / 60)
        xs.append(me.x)
    assert xs == sorted(xs) and len(set(xs)) == len(xs), f"not moving every frame: {xs}"
    assert xs[-1] == pytest.approx(2.0, abs=0.75)  # about 0.15 s at one unit per 0.05 s

    # the server's row says it is elsewhere: the prediction re-bases on it, and the sprite glides there
    moved = P(1, "me", 10.0, 0.0, 0.0)
    net.tx(net.update(h, {"player": ([moved], [row])}))
    net.tick(1 / 60)
    assert predictor.server == moved and me.row == moved
    assert me.x < 10.0, "the correction jumped"
    for _ in range(30):
        net.tick(1 / 60)
    assert me.x == pytest.approx(10.0 + 30 * 1 / 60 / 0.05 + 1 / 60 / 0.05, abs=1.0)
    assert predictor.error == 0.0

    # placing: half away from zero, whatever the flavour's Rect does with floats
    me.x, me.y = 2.5, -3.5
    players.place()
    assert me.rect.center == (3, -4)


def test_rows_and_update_hooks_reach_the_sprites(pygame: ModuleType, mb: ModuleType) -> None:
    """``sprite.row`` follows the rows; an ``on_update`` hook set after construction is called (and
    none is called once it is cleared); ``rect.center`` is set in the tick that moves the sprite."""
    P = mb.Player
    net = Net(mb).connect()
    players: SpriteSync[Any, Any] = SpriteSync(P, make(pygame), clock=net.clock)
    players.attach(net.driver)
    a = P(1, "a", 0.0, 0.0, 0.0)
    h = net.subscribe({"player": [a]})
    net.tick()
    sprite = players.sprites[1]
    assert sprite.row == a and sprite.rect.center == (0, 0)
    seen: list[tuple[float, float]] = []
    players.on_update = lambda s, old, new: seen.append((old.x, new.x))
    b = P(1, "a", 4.0, 0.0, 0.0)
    net.tx(net.update(h, {"player": ([b], [a])}))
    net.tick(1 / 60)
    assert seen == [(0.0, 4.0)] and sprite.row == b
    players.on_update = None
    c = P(1, "a", 8.0, 0.0, 0.0)
    net.tx(net.update(h, {"player": ([c], [b])}))
    for _ in range(40):
        net.tick(1 / 60)
    assert seen == [(0.0, 4.0)] and sprite.row == c
    assert (sprite.x, sprite.rect.center) == (8.0, (8, 0))  # placed by the ticks, no draw() needed


def test_bridge_sprites_passes_on_exactly_the_sprite_syncs_keywords(pygame: ModuleType) -> None:
    """``Bridge.sprites`` takes SpriteSync's keywords through ``SpriteSyncOptions``: the two lists cannot
    drift apart (all of SpriteSync's keyword-only parameters but the bridge's own clock)."""
    import inspect

    from spacetime_game.pygame import Bridge, SpriteSyncOptions

    params = inspect.signature(SpriteSync.__init__).parameters.values()
    keywords = {p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY}
    assert set(SpriteSyncOptions.__annotations__) == keywords - {"clock"}
    bridge_params = inspect.signature(Bridge.sprites).parameters
    assert bridge_params["options"].kind is inspect.Parameter.VAR_KEYWORD
    assert "clock" not in bridge_params
