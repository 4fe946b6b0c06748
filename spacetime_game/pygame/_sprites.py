"""Sprites kept in sync with a table: the engine's :class:`~spacetime_game.engine.SpriteSync` (sprites
placed each frame from an :class:`~spacetime_game.engine.Interpolator`, or, for the local player, from a
predictor) with a ``pygame.sprite.Group`` as its container.

The float position lives on the sprite (``sprite.x``, ``sprite.y``, and any other interpolated field);
its ``rect`` is set from the floats, rounded the same way in pygame and pygame-ce, only when it is
drawn (:meth:`SpriteSync.place`, :meth:`SpriteSync.draw`): a ``Rect`` truncates floats in pygame-ce and
rounds them in pygame, so a position kept in it would drift differently in each.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable, Sequence
from typing import Any, TypeVar

import pygame
import pygame.gfxdraw

from spacetime_game.engine import Change, Interpolator
from spacetime_game.engine import SpriteSync as EngineSpriteSync

__all__ = ["SpriteSync", "circle_image"]

log = logging.getLogger("spacetime_game.pygame")

R = TypeVar("R")
S = TypeVar("S", bound=pygame.sprite.Sprite)


def _kill(sprite: pygame.sprite.Sprite) -> None:
    sprite.kill()


class SpriteSync(EngineSpriteSync[R, S]):
    """One sprite per row of a table, in :attr:`group` (a ``pygame.sprite.Group``, or the
    ``LayeredUpdates`` / other group given), made by ``factory(row)``; see :meth:`Bridge.sprites
    <spacetime_game.pygame.Bridge.sprites>`, which makes it. The engine's
    :class:`~spacetime_game.engine.SpriteSync` does the syncing, interpolation and prediction; this adds
    the pygame side: the group, the sprites' ``row`` and ``key`` attributes, and the ``Rect`` placing.

    Each sprite gets ``sprite.row`` (its latest row), ``sprite.key`` (its primary key) and, every frame,
    one float attribute per interpolated field (``sprite.x``, ``sprite.y``, ``sprite.angle``...).
    ``position`` names the two fields that place ``sprite.rect.center`` when drawn.

    ``on_despawn(sprite, row)`` may return :data:`~spacetime_game.engine.DEFER` to keep the sprite
    (a death animation; it stays in the group, still, until :meth:`release`); otherwise, and without the
    hook, the sprite is killed when its row goes. ``on_update(sprite, old, new)`` is called after the
    row of a sprite changed.
    """

    interpolator: Interpolator

    def __init__(
        self,
        table: type[R] | str,
        factory: Callable[[R], S],
        *,
        interpolate: Sequence[str] = ("x", "y"),
        angles: Sequence[str] = (),
        degrees: bool = False,
        position: tuple[str, str] | None = ("x", "y"),
        group: pygame.sprite.AbstractGroup[Any] | None = None,
        filter: Callable[[R], bool] | None = None,
        key: Callable[[R], Hashable] | str | Sequence[str] | None = None,
        on_update: Callable[[S, R, R], None] | None = None,
        on_despawn: Callable[[S, R], object] | None = None,
        interpolator: Interpolator | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        fields = (*interpolate, *angles)
        if position is not None and any(p not in fields for p in position):
            raise ValueError(f"position {position} names fields that are not interpolated: {fields}")
        #: The group holding the sprites (draw it, or call :meth:`draw`).
        self.group: pygame.sprite.AbstractGroup[Any] = group if group is not None else pygame.sprite.Group()
        self.position = position
        self.factory = factory
        self.on_update = on_update
        self.on_despawn = on_despawn
        super().__init__(
            table,
            self._make,
            add=self.group.add,
            remove=_kill,
            interpolator=(
                interpolator
                if interpolator is not None
                else Interpolator(interpolate, angles, degrees=degrees)
            ),
            on_update=self._updated,
            on_despawn=self._despawned,
            filter=filter,
            key=key,
            clock=clock,
        )

    # ----- the entity hooks (inside the driver's tick) ---------------------------------------------
    def _make(self, row: R, change: Change) -> S:
        sprite = self.factory(row)
        if not isinstance(sprite, pygame.sprite.Sprite):
            raise TypeError(f"the sprite factory of {self.sync.table!r} returned {sprite!r}, not a Sprite")
        sprite.row = row  # type: ignore[attr-defined]
        sprite.key = self.sync.key_of(row)  # type: ignore[attr-defined]
        return sprite

    def _updated(self, sprite: S, old: R, new: R, change: Change) -> None:
        sprite.row = new  # type: ignore[attr-defined]
        if self.on_update is not None:
            self.on_update(sprite, old, new)

    def _despawned(self, sprite: S, row: R, change: Change) -> object:
        sprite.row = row  # type: ignore[attr-defined]
        return None if self.on_despawn is None else self.on_despawn(sprite, row)

    # ----- the game's side ---------------------------------------------------------------------------
    def place(self) -> None:
        """Set each sprite's ``rect.center`` from its float position (rounded half away from zero, in
        both pygame flavours). :meth:`draw` does it; call it yourself before drawing the group another
        way."""
        if self.position is None:
            return
        a, b = self.position
        for sprite in self.group.sprites():
            x, y = getattr(sprite, a, None), getattr(sprite, b, None)
            rect = sprite.rect
            if x is None or y is None or rect is None:
                continue
            # half away from zero, like classic pygame's Rect (Python's round() rounds half to even);
            # written out: it runs for every sprite every frame
            rect.center = (
                int(x + 0.5) if x >= 0 else -int(0.5 - x),
                int(y + 0.5) if y >= 0 else -int(0.5 - y),
            )

    def draw(self, surface: pygame.Surface, *args: Any) -> Any:
        """Place the sprites (:meth:`place`) and draw the group on ``surface``; further arguments go to
        the group's ``draw`` positionally (its background keyword differs between pygame flavours)."""
        self.place()
        return self.group.draw(surface, *args)


def circle_image(
    radius: int,
    color: Any,
    *,
    outline: Any | None = None,
    width: int = 0,
) -> pygame.Surface:
    """A transparent surface holding an anti-aliased filled circle of ``radius`` pixels (``color``),
    with an optional anti-aliased ``outline`` ring of ``width`` pixels, in both pygame flavours
    (``pygame.draw.aacircle`` is pygame-ce's; classic pygame uses ``pygame.gfxdraw``)."""
    if radius < 1:
        raise ValueError(f"radius must be at least 1 pixel, got {radius}")
    size = 2 * radius + 3  # room for the anti-aliased rim; the centre is the surface's centre pixel
    surface = pygame.Surface((size, size), pygame.SRCALPHA)
    c = (radius + 1, radius + 1)
    _disc(surface, outline if outline is not None and width > 0 else color, c, radius)
    if outline is not None and width > 0 and radius - width >= 1:
        _disc(surface, color, c, radius - width)
    return surface


def _disc(surface: pygame.Surface, color: Any, center: tuple[int, int], radius: int) -> None:
    aacircle = getattr(pygame.draw, "aacircle", None)
    if aacircle is not None:
        aacircle(surface, color, center, radius)
        return
    pygame.gfxdraw.filled_circle(surface, center[0], center[1], radius, color)
    pygame.gfxdraw.aacircle(surface, center[0], center[1], radius, color)
