"""The pygame adapter against a real dev server (``move_module.py``) with two clients, headless: sprites
appear, move and disappear with the rows and show in the pixels; interpolated positions stay between
the snapshots; the predicted local player reconciles after a rejected call and a server correction;
despawns wait for an animation; nothing is left running after close.

This module runs under pygame-ce and, through ``test_rerun.py``, under classic pygame.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest

from spacetime_game.engine import DEFER, InputPredictor, Interpolator
from spacetime_game.pygame import Bridge, SpriteSync, circle_image
from spacetime_game.sdk import DbConnection
from spacetime_game.server import DevServer

from .conftest import MOVE_MODULE, wait_no_sdk_threads

BACKGROUND = (12, 16, 28)
RED = (235, 80, 80)
QUERIES = ["SELECT * FROM player"]


def pump(bridges: list[Bridge], until: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    """Run frames of every bridge until ``until()`` holds."""
    deadline = time.monotonic() + timeout
    while not until():
        for b in bridges:
            b.tick(0.004)
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.004)


class Client:
    """One game: a connection, its bridge and a sprite per player."""

    def __init__(self, pygame: ModuleType, mb: ModuleType, server: DevServer, **sprites: Any) -> None:
        self.mb = mb
        self.conn = DbConnection(mb.MODULE, server.address, server.database)
        self.bridge = Bridge(self.conn)
        self.bridge.subscribe(QUERIES)

        def factory(row: Any) -> Any:
            sprite = pygame.sprite.Sprite()
            sprite.image = circle_image(6, RED)
            sprite.rect = sprite.image.get_rect()
            return sprite

        self.players: SpriteSync[Any, Any] = self.bridge.sprites(mb.Player, factory, **sprites)


def colour(surface: Any, x: float, y: float) -> tuple[int, int, int]:
    return tuple(surface.get_at((round(x), round(y))))[:3]  # type: ignore[return-value]


def test_sprites_appear_move_and_disappear_with_the_rows(pygame: ModuleType, mb: ModuleType) -> None:
    with DevServer(MOVE_MODULE, database="move") as server:
        a, b = Client(pygame, mb, server), Client(pygame, mb, server)
        bridges = [a.bridge, b.bridge]
        try:
            pump(bridges, lambda: a.bridge.loaded and b.bridge.loaded, "the subscriptions")
            mb.join(1, "a", 50.0, 60.0, client=a.conn)
            pump(bridges, lambda: 1 in a.players.sprites and 1 in b.players.sprites, "player 1")
            sprite = b.players.get(1)
            assert sprite is not None and sprite.alive() and sprite in b.players.group
            assert sprite.row == mb.Player(1, "a", 50.0, 60.0, 0.0) and sprite.key == 1
            assert (sprite.x, sprite.y) == (50.0, 60.0)
            assert isinstance(sprite.x, float)

            screen = pygame.display.get_surface()
            screen.fill(BACKGROUND)
            b.players.draw(screen)
            assert sprite.rect.center == (50, 60)
            assert colour(screen, 50, 60) == RED
            assert colour(screen, 50 + 4, 60 - 3) == RED  # inside the radius-6 disc
            assert colour(screen, 200, 100) == BACKGROUND

            mb.move(1, 200.5, 100.0, client=a.conn)
            pump(bridges, lambda: b.players.sprites[1].x == 200.5, "the move, interpolated to its end")
            assert b.players.get(1) is sprite and sprite.row.x == 200.5
            screen.fill(BACKGROUND)
            b.players.draw(screen)
            # half away from zero in both flavours (pygame-ce's Rect would truncate, pygame's round)
            assert sprite.rect.center == (201, 100)
            assert colour(screen, 201, 100) == RED
            assert colour(screen, 50, 60) == BACKGROUND

            mb.leave(1, client=a.conn)
            pump(bridges, lambda: not b.players.sprites and not a.players.sprites, "the leave")
            assert not sprite.alive() and len(b.players.group) == 0
            screen.fill(BACKGROUND)
            b.players.draw(screen)
            assert colour(screen, 201, 100) == BACKGROUND
        finally:
            a.bridge.close()
            b.bridge.close()
        wait_no_sdk_threads()


def test_interpolated_positions_stay_between_the_snapshots(pygame: ModuleType, mb: ModuleType) -> None:
    with DevServer(MOVE_MODULE, database="move") as server:
        a = Client(pygame, mb, server)
        snapshots: list[float] = []
        b = Client(
            pygame,
            mb,
            server,
            interpolator=Interpolator(("x", "y"), extrapolate=0.0),
            on_update=lambda sprite, old, new: snapshots.append(new.x),
        )
        bridges = [a.bridge, b.bridge]
        try:
            pump(bridges, lambda: a.bridge.loaded and b.bridge.loaded, "the subscriptions")
            mb.join(2, "b", 10.0, 20.0, client=a.conn)
            pump(bridges, lambda: 2 in b.players.sprites, "player 2")
            snapshots.append(10.0)
            mb.set_velocity(2, 1.0, client=a.conn)
            mb.start_ticking(25, client=a.conn)
            sprite = b.players.sprites[2]
            drawn: list[float] = []
            deadline = time.monotonic() + 20
            while sprite.x < 25.0:
                assert time.monotonic() < deadline, f"the ticks did not move the sprite: {drawn[-5:]}"
                a.bridge.tick(0.004)
                b.bridge.tick(0.004)
                # never ahead of the newest snapshot (no extrapolation here), never behind the first
                assert min(snapshots) <= sprite.x <= max(snapshots), (sprite.x, snapshots[-3:])
                assert sprite.y == 20.0
                drawn.append(sprite.x)
                time.sleep(0.003)
            assert drawn == sorted(drawn), "the interpolated position went backwards"
            between = [x for x in drawn if x not in snapshots]
            assert between, "every frame drew a snapshot: nothing was interpolated"
            assert len(set(snapshots)) >= 10
        finally:
            a.bridge.close()
            b.bridge.close()
        wait_no_sdk_threads()


def test_the_predicted_player_reconciles_after_a_rejection_and_a_correction(
    pygame: ModuleType, mb: ModuleType
) -> None:
    P = mb.Player

    def step(p: Any, dx: float) -> Any:
        return P(p.id, p.name, p.x + dx, p.y, p.vx)

    with DevServer(MOVE_MODULE, database="move") as server:
        a, b = Client(pygame, mb, server), Client(pygame, mb, server)
        bridges = [a.bridge, b.bridge]
        try:
            pump(bridges, lambda: a.bridge.loaded and b.bridge.loaded, "the subscriptions")
            mb.join(3, "me", 100.0, 50.0, client=a.conn)
            pump(bridges, lambda: 3 in a.players.sprites, "my player")
            predictor: InputPredictor[Any, float] = InputPredictor(step, ("x", "y"), smoothing=0.3)
            assert a.players.predict(3, predictor) is predictor
            assert a.players.predictor(3) is predictor and a.players.predictors == (predictor,)
            me = a.players.sprites[3]
            a.bridge.tick(0.004)
            assert me.x == 100.0

            # an accepted input shows at the next frame, before the server has answered
            predictor.input(10.0, mb.move(3, 110.0, 50.0, client=a.conn))
            a.bridge.tick(0.004)
            assert me.x == 110.0
            pump(bridges, lambda: predictor.pending == 0 and me.row.x == 110.0, "the server's row")
            a.bridge.tick(0.004)
            assert me.x == 110.0 and predictor.error == 0.0

            # an input whose call the server rejects: shown at once, then taken back smoothly
            bad = mb.move(99, 0.0, 0.0, client=a.conn)  # there is no player 99
            predictor.input(10.0, bad)
            a.bridge.tick(0.004)
            if bad.done:  # the refusal came back within this very tick (a local server, a loaded machine)
                assert 110.0 < me.x <= 120.0  # the correction began from the predicted spot
            else:
                assert me.x == 120.0
            drawn: list[float] = [me.x]

            def back() -> bool:
                drawn.append(me.x)
                return predictor.rejected == 1 and me.x == 110.0

            pump(bridges, back, "the rejected input to be undone")
            assert predictor.pending == 0
            assert any(110.0 < x < 120.0 for x in drawn), f"the correction jumped: {drawn}"
            assert drawn == sorted(drawn, reverse=True)

            # the server corrects the player (another client moves it): the sprite follows, smoothly
            mb.move(3, 40.0, 50.0, client=b.conn)
            drawn.clear()

            def corrected() -> bool:
                drawn.append(me.x)
                return me.x == 40.0

            pump(bridges, corrected, "the correction")
            assert me.row.x == 40.0 and predictor.server is not None and predictor.server.x == 40.0
            assert any(40.0 < x < 110.0 for x in drawn), f"the correction jumped: {drawn}"
            # the other client interpolates my player
            pump(bridges, lambda: b.players.sprites[3].x == 40.0, "the other client")

            a.players.unpredict(3)
            a.bridge.tick(0.004)
            assert a.players.predictor(3) is None and me.x == 40.0
        finally:
            a.bridge.close()
            b.bridge.close()
        wait_no_sdk_threads()


def test_a_despawn_can_wait_for_an_animation_and_groups_can_be_layered(
    pygame: ModuleType, mb: ModuleType
) -> None:
    dying: list[Any] = []

    def on_despawn(sprite: Any, row: Any) -> object:
        dying.append(sprite)
        return DEFER

    with DevServer(MOVE_MODULE, database="move") as server:
        layers = pygame.sprite.LayeredUpdates()
        a = Client(pygame, mb, server, group=layers, on_despawn=on_despawn)
        try:
            pump([a.bridge], lambda: a.bridge.loaded, "the subscription")
            mb.join(4, "d", 30.0, 40.0, client=a.conn)
            pump([a.bridge], lambda: 4 in a.players.sprites, "player 4")
            sprite = a.players.sprites[4]
            assert a.players.group is layers and sprite in layers
            mb.leave(4, client=a.conn)
            pump([a.bridge], lambda: 4 not in a.players.sprites, "the leave")
            assert dying == [sprite] and sprite.alive() and sprite in layers
            assert a.players.sync.dying == {4: [sprite]}
            screen = pygame.display.get_surface()
            screen.fill(BACKGROUND)
            a.players.draw(screen)  # still drawn where it was, for its animation
            assert colour(screen, 30, 40) == RED
            assert a.players.release(sprite) and not sprite.alive() and not a.players.sync.dying
            assert not a.players.release(sprite)
        finally:
            a.bridge.close()
        wait_no_sdk_threads()


def test_close_leaves_no_thread_and_quit_can_close(pygame: ModuleType, mb: ModuleType) -> None:
    with DevServer(MOVE_MODULE, database="move") as server:
        conn = DbConnection(mb.MODULE, server.address, server.database)
        with Bridge(conn, close_on_quit=True) as bridge:
            pump([bridge], lambda: bridge.state == "connected", "the connection")
            assert not bridge.handle(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_a))
            assert bridge.handle(pygame.event.Event(pygame.QUIT))
            assert bridge.closed and bridge.state == "closed" and conn.state == "closed"
            assert bridge.tick(0.004) == 0  # a tick after close does nothing
        wait_no_sdk_threads()

        other = DbConnection(mb.MODULE, server.address, server.database)
        keep = Bridge(other)  # without close_on_quit, QUIT is the game's business
        try:
            pump([keep], lambda: keep.state == "connected", "the connection")
            assert not keep.handle(pygame.event.Event(pygame.QUIT)) and not keep.closed
        finally:
            keep.close()
        wait_no_sdk_threads()


def test_a_bridge_needs_a_connection(pygame: ModuleType) -> None:
    with pytest.raises(ValueError, match="at least one connection"):
        Bridge()
