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
