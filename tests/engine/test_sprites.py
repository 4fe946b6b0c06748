"""The engine's SpriteSync over a scripted server (no engine, plain objects as sprites, a hand-moved
clock): sprites are made, placed from the interpolation, kept for a death animation and removed; the
local player's sprite follows its predictor, which gets each row at the end of the frame."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest

from spacetime_game.engine import DEFER, Change, InputPredictor, Interpolator, SpriteSync
from tests.engine._scripted import Net


class Thing:
    """A sprite of no engine."""

    def __init__(self, row: Any, change: Change) -> None:
        self.made_from = (row.id, change.origin)


def test_sprites_follow_rows_through_the_interpolator(mb: ModuleType) -> None:
    P = mb.Player
    net = Net(mb).connect()
    container: list[Thing] = []
    dying: list[Thing] = []

    def on_despawn(sprite: Thing, row: Any, change: Change) -> object:
        dying.append(sprite)
        return DEFER

    things: SpriteSync[Any, Thing] = SpriteSync(
        P,
        Thing,
        add=container.append,
        remove=container.remove,
        interpolator=Interpolator(("x", "y"), delay=0.1),
        on_despawn=on_despawn,
    )
    things.attach(net.driver)
    a, b = P(1, "a", 0.0, 0.0, 0.0), P(2, "b", 50.0, 5.0, 0.0)
    h = net.subscribe({"player": [a, b]})
    net.tick()
    one, two = things.get(1), things.get(2)
    assert one is not None and two is not None and container == [one, two]
    assert one.made_from == (1, "initial") and (two.x, two.y) == (50.0, 5.0)  # type: ignore[attr-defined]
    assert things.key_of(one) == 1 and things.row(1) == a and len(things) == 2 and 1 in things
    assert things.state(1) is things.interpolator.get(1)  # type: ignore[union-attr]

    # a move: the sprite glides there over the render delay, between the two snapshots
    moved = P(1, "a", 10.0, 0.0, 0.0)
    net.tx(net.update(h, {"player": ([moved], [a])}))
    xs = []
    for _ in range(12):
        net.tick(1 / 60)
        xs.append(one.x)  # type: ignore[attr-defined]
    assert xs == sorted(xs) and xs[-1] == 10.0 and any(0.0 < x < 10.0 for x in xs), xs
    assert things.row(1) == moved

    # a deferred despawn: the sprite stays in the container until released
    net.tx(net.update(h, {"player": ([], [b])}))
    net.tick()
    assert dying == [two] and 2 not in things and things.dying == {2: [two]} and two in container
    assert things.key_of(two) is None and things.row(2) is None
    assert things.release(two) and two not in container and not things.release(two)

    things.detach()
    net.tx(net.update(h, {"player": ([], [moved])}))
    net.tick()
    assert container == [one], "a detached sync follows no more rows"


def test_without_an_interpolator_sprites_are_placed_at_their_rows(mb: ModuleType) -> None:
    P = mb.Player
    net = Net(mb).connect()
    placed: list[tuple[int, float]] = []
    things: SpriteSync[Any, Thing] = SpriteSync(
        P, Thing, interpolator=None, place=lambda s, state: placed.append((state.id, state.x))
    )
    things.attach(net.driver)
    a = P(1, "a", 0.0, 0.0, 0.0)
    h = net.subscribe({"player": [a]})
    net.tick()
    net.tx(net.update(h, {"player": ([P(1, "a", 7.0, 0.0, 0.0)], [a])}))
    placed.clear()
    net.tick()
    assert placed == [(1, 7.0)]
    with pytest.raises(ValueError, match="place="):
        SpriteSync(P, Thing, interpolator=None)


def test_only_sprites_that_moved_are_placed(mb: ModuleType) -> None:
    """A frame places the sprites its interpolation moved, nothing else: 200 sprites at rest cost no
    place call, one moving sprite is placed every frame until it rests, and without an interpolator a
    sprite is placed once per change of its row. The row is kept on ``row_attribute``."""
    P = mb.Player
    net = Net(mb).connect()
    placed: list[int] = []

    def place(sprite: Thing, state: Any) -> None:
        placed.append(state.key)
        sprite.x = state.x  # type: ignore[attr-defined]

    things: SpriteSync[Any, Thing] = SpriteSync(
        P,
        Thing,
        place=place,
        interpolator=Interpolator(("x", "y"), delay=0.1, extrapolate=0.0),
        row_attribute="row",
    )
    things.attach(net.driver)
    rows = [P(i, "p", float(i), 0.0, 0.0) for i in range(200)]
    h = net.subscribe({"player": rows})
    net.tick()
    assert sorted(placed) == list(range(200))  # once each, as they spawned
    for _ in range(5):
        net.tick(1 / 60)
    placed.clear()
    for _ in range(5):
        net.tick(1 / 60)
    assert placed == [], "sprites at rest were placed again"

    moved = P(7, "p", 50.0, 0.0, 0.0)
    net.tx(net.update(h, {"player": ([moved], [rows[7]])}))
    net.tick(1 / 60)
    sprite = things.get(7)
    assert sprite is not None and sprite.row == moved  # type: ignore[attr-defined]
    frames = 0
    while sprite.x != 50.0:  # type: ignore[attr-defined]
        placed.clear()
        net.tick(1 / 60)
        frames += 1
        assert placed == [7] and frames < 60
    placed.clear()
    net.tick(1 / 60)
    net.tick(1 / 60)
    assert placed == []

    still: list[int] = []
    rowwise: SpriteSync[Any, Thing] = SpriteSync(
        P, Thing, interpolator=None, place=lambda s, row: still.append(row.id)
    )
    rowwise.attach(net.driver)
    still.clear()
    for _ in range(3):
        net.tick(1 / 60)
    assert still == []
    net.tx(net.update(h, {"player": ([P(3, "p", 9.0, 0.0, 0.0)], [rows[3]])}))
    net.tick(1 / 60)
    net.tick(1 / 60)
    assert still == [3]


def test_the_predicted_sprite_gets_its_own_rows_after_the_call_outcome(mb: ModuleType) -> None:
    """The predicted sprite is placed at the predictor's drawn state from its first frame on; the row of
    this client's own move (with the move's outcome, in one message) reaches the predictor within the
    frame, which drops the acknowledged input instead of replaying it on the row."""
    P = mb.Player
    net = Net(mb).connect()
    things: SpriteSync[Any, Thing] = SpriteSync(P, Thing, interpolator=Interpolator(("x", "y")))
    things.attach(net.driver)
    a = P(1, "me", 0.0, 0.0, 0.0)
    h = net.subscribe({"player": [a]})

    def step(p: Any, dx: float) -> Any:
        return P(p.id, p.name, p.x + dx, p.y, p.vx)

    predictor: InputPredictor[Any, float] = InputPredictor(step, smoothing=0.0)
    assert things.predict(1, predictor) is predictor and things.predictors == (predictor,)
    net.tick()  # the sprite spawns: the predictor gets its row at the end of the frame
    me = things.get(1)
    assert predictor.server == a and things.state(1) is predictor.rendered and me.x == 0.0  # type: ignore[union-attr]

    call = mb.move(1, 5.0, 0.0, client=net.conn)
    predictor.input(5.0, call)
    net.tick()
    assert me.x == 5.0, "the input shows at the next frame"  # type: ignore[union-attr]
    net.own(call, net.update(h, {"player": ([step(a, 5.0)], [a])}))
    net.tick()
    assert call.committed and predictor.pending == 0
    assert predictor.state == step(a, 5.0) and me.x == 5.0  # type: ignore[union-attr]

    things.unpredict(1)
    assert things.predictor(1) is None and things.state(1) is things.interpolator.get(1)  # type: ignore[union-attr]
