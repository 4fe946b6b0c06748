"""Sprites kept in sync with a table: the engine's :class:`~spacetime_game.engine.SpriteSync` (sprites
placed each frame from an :class:`~spacetime_game.engine.Interpolator`, or, for the local player, from a
predictor) with a ``pygame.sprite.Group`` as its container.

The float position lives on the sprite (``sprite.x``, ``sprite.y``, and any other interpolated field);
its ``rect`` is set from the floats, rounded the same way in pygame and pygame-ce, whenever they change
(never read back: a ``Rect`` truncates floats in pygame-ce and rounds them in pygame, so a position
kept in it would drift differently in each). Only the sprites that moved in a frame are placed: a
sprite at rest costs nothing per frame.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable, Sequence
from typing import Any, Generic, TypedDict, TypeVar

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


class SpriteSyncOptions(TypedDict, Generic[R, S], total=False):
    """The keyword arguments of :class:`SpriteSync` that :meth:`Bridge.sprites
    <spacetime_game.pygame.Bridge.sprites>` passes on (all but ``clock``, the bridge's own): see
    :class:`SpriteSync` and :meth:`~spacetime_game.pygame.Bridge.sprites` for what each does."""

    interpolate: Sequence[str]
    angles: Sequence[str]
    degrees: bool
    position: tuple[str, str] | None
    group: pygame.sprite.AbstractGroup[Any] | None
    filter: Callable[[R], bool] | None
    key: Callable[[R], Hashable] | str | Sequence[str] | None
    on_update: Callable[[S, R, R], None] | None
    on_despawn: Callable[[S, R], object] | None
    interpolator: Interpolator | None


class SpriteSync(EngineSpriteSync[R, S]):
    """One sprite per row of a table, in :attr:`group` (a ``pygame.sprite.Group``, or the
    ``LayeredUpdates`` / other group given), made by ``factory(row)``; see :meth:`Bridge.sprites
    <spacetime_game.pygame.Bridge.sprites>`, which makes it. The engine's
    :class:`~spacetime_game.engine.SpriteSync` does the syncing, interpolation and prediction; this adds
    the pygame side: the group, the sprites' ``row`` and ``key`` attributes, and the ``Rect`` placing.

    Each sprite gets ``sprite.row`` (its latest row), ``sprite.key`` (its primary key) and, every frame,
    one float attribute per interpolated field (``sprite.x``, ``sprite.y``, ``sprite.angle``...).
    ``position`` names the two fields that place ``sprite.rect.center`` (set with the floats, each
    frame the sprite moves).

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
        if interpolator is None:
            interpolator = Interpolator(interpolate, angles, degrees=degrees)
        fields = interpolator.names
        if position is not None and any(p not in fields for p in position):
            raise ValueError(f"position {position} names fields that are not interpolated: {fields}")
        #: The group holding the sprites (draw it, or call :meth:`draw`).
        self.group: pygame.sprite.AbstractGroup[Any] = group if group is not None else pygame.sprite.Group()
        self.position = position
        self.factory = factory
        self._user_update = on_update
        self.on_despawn = on_despawn
        super().__init__(
            table,
            self._make,
            add=self.group.add,
            remove=_kill,
            place=_placer(fields, position),
            interpolator=interpolator,
            on_update=self._updated if on_update is not None else None,
            on_despawn=self._despawned,
            filter=filter,
            key=key,
            clock=clock,
            row_attribute="row",
        )

    # ----- the entity hooks (inside the driver's tick) ---------------------------------------------
    def _make(self, row: R, change: Change) -> S:
        sprite = self.factory(row)
        if not isinstance(sprite, pygame.sprite.Sprite):
            raise TypeError(f"the sprite factory of {self.sync.table!r} returned {sprite!r}, not a Sprite")
        sprite.key = self.sync.key_of(row)  # type: ignore[attr-defined]
        return sprite

    @property
    def on_update(self) -> Callable[[S, R, R], None] | None:
        """Called as ``on_update(sprite, old, new)`` after a sprite's row changed (None: nothing)."""
        return self._user_update

    @on_update.setter
    def on_update(self, hook: Callable[[S, R, R], None] | None) -> None:
        self._user_update = hook
        self._on_update = self._updated if hook is not None else None  # the sync calls nothing without

    def _updated(self, sprite: S, old: R, new: R, change: Change) -> None:
        if self._user_update is not None:
            self._user_update(sprite, old, new)

    def _despawned(self, sprite: S, row: R, change: Change) -> object:
        return None if self.on_despawn is None else self.on_despawn(sprite, row)

    # ----- the game's side ---------------------------------------------------------------------------
    def place(self) -> None:
        """Set every sprite's ``rect.center`` from its float position (rounded half away from zero, in
        both pygame flavours). Each frame does it for the sprites that moved; call it after setting the
        floats yourself."""
        if self.position is None:
            return
        a, b = self.position
        for sprite in self.group.sprites():
            x, y = getattr(sprite, a, None), getattr(sprite, b, None)
            if x is not None and y is not None and sprite.rect is not None:
                sprite.rect.center = _center(x, y)

    def draw(self, surface: pygame.Surface, *args: Any) -> Any:
        """Draw the group on ``surface`` (the sprites are placed by each frame's tick); further arguments
        go to the group's ``draw`` positionally (its background keyword differs between pygame
        flavours)."""
        return self.group.draw(surface, *args)


def _center(x: float, y: float) -> tuple[int, int]:
    """``(x, y)`` rounded half away from zero, as classic pygame's ``Rect`` rounds (pygame-ce's
    truncates; Python's ``round`` rounds half to even)."""
    return (int(x + 0.5) if x >= 0 else -int(0.5 - x), int(y + 0.5) if y >= 0 else -int(0.5 - y))


def _placer(fields: Sequence[str], position: tuple[str, str] | None) -> Callable[[Any, Any], None]:
    """A ``place(sprite, state)`` copying ``fields`` onto the sprite as floats and, with ``position``,
    setting ``rect.center`` from them (as :func:`_center` rounds, written out). It runs for every sprite
    that moved, every frame, so it is compiled with the names written out (they are the interpolator's
    fields: checked identifiers)."""
    lines = ["def place(sprite, state):"]
    names = {f: f"v{i}" for i, f in enumerate(fields)}
    lines += [f"    sprite.{f} = {names[f]} = state.{f}" for f in fields]
    if position is not None:
        x, y = (names[p] for p in position)
        lines += [
            "    rect = sprite.rect",
            "    if rect is not None:",
            f"        rect.center = (int({x} + 0.5) if {x} >= 0 else -int(0.5 - {x}), "
            f"int({y} + 0.5) if {y} >= 0 else -int(0.5 - {y}))",
        ]
    namespace: dict[str, Any] = {}
    exec("\n".join(lines), namespace)
    place: Callable[[Any, Any], None] = namespace["place"]
    return place


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
