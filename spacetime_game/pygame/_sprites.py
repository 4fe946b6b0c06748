"""Sprites kept in sync with a table: an :class:`~spacetime_game.engine.EntitySync` whose entities are
sprites, placed each frame from an :class:`~spacetime_game.engine.Interpolator` (or, for the local
player, from a predictor).

The float position lives on the sprite (``sprite.x``, ``sprite.y``, and any other interpolated field);
its ``rect`` is set from the floats, rounded the same way in pygame and pygame-ce, only when it is
drawn (:meth:`SpriteSync.place`, :meth:`SpriteSync.draw`): a ``Rect`` truncates floats in pygame-ce and
rounds them in pygame, so a position kept in it would drift differently in each.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable, Iterator, Sequence
from typing import Any, Generic, TypeVar

import pygame
import pygame.gfxdraw

from spacetime_game.engine import DEFER, Change, EntitySync, InputPredictor, Interpolator, TickPredictor

__all__ = ["SpriteSync", "circle_image"]

log = logging.getLogger("spacetime_game.pygame")

R = TypeVar("R")
S = TypeVar("S", bound=pygame.sprite.Sprite)

Predictor = InputPredictor[Any, Any] | TickPredictor[Any, Any]


class SpriteSync(Generic[R, S]):
    """One sprite per row of a table, in :attr:`group` (a ``pygame.sprite.Group``, or the
    ``LayeredUpdates`` / other group given), made by ``factory(row)``; see :meth:`Bridge.sprites
    <spacetime_game.pygame.Bridge.sprites>`, which makes it.

    Each sprite gets ``sprite.row`` (its latest row), ``sprite.key`` (its primary key) and, every frame,
    one float attribute per interpolated field (``sprite.x``, ``sprite.y``, ``sprite.angle``...).
    ``position`` names the two fields that place ``sprite.rect.center`` when drawn.

    ``on_despawn(sprite, row)`` may return :data:`~spacetime_game.engine.DEFER` to keep the sprite
    (a death animation; it stays in the group, still, until :meth:`release`); otherwise, and without the
    hook, the sprite is killed when its row goes. ``on_update(sprite, old, new)`` is called after the
    row of a sprite changed.
    """

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
        #: The interpolator of the sprites' fields (a stepper of the bridge's driver).
        self.interpolator = (
            interpolator if interpolator is not None else Interpolator(interpolate, angles, degrees=degrees)
        )
        self.fields: tuple[str, ...] = tuple(self.interpolator.fields + self.interpolator.angles)
        self.position = position
        self.factory = factory
        self.on_update = on_update
        self.on_despawn = on_despawn
        #: The entity sync (its ``entities``: the live sprites by key; ``dying``: deferred ones).
        self.sync: EntitySync[R, S] = EntitySync(
            table,
            on_spawn=self._spawn,
            on_update=self._update,
            on_despawn=self._despawn,
            filter=filter,
            key=key,
        )
        self._clock = clock
        self._predicted: dict[Hashable, Predictor] = {}
        self._states: dict[Hashable, Any] = {}  # key -> the object its floats are read from
        # the predicted entities' latest rows, given to their predictors at the end of the frame: the
        # outcome of the call a row reflects is known only after the row's callbacks
        self._auth: dict[Hashable, tuple[Any, float]] = {}

    def __repr__(self) -> str:
        return f"SpriteSync({self.sync.table!r}, {len(self.sync.entities)} sprites)"

    # ----- the entity hooks (inside the driver's tick) ---------------------------------------------
    def _spawn(self, row: R, change: Change) -> S:
        sprite = self.factory(row)
        if not isinstance(sprite, pygame.sprite.Sprite):
            raise TypeError(f"the sprite factory of {self.sync.table!r} returned {sprite!r}, not a Sprite")
        key = self.sync.key_of(row)
        sprite.row = row  # type: ignore[attr-defined]
        sprite.key = key  # type: ignore[attr-defined]
        interp = self.interpolator
        interp.remove(key)  # a key that comes back starts a new track
        interp.push(key, row, change.time)
        if key in self._predicted:
            self._auth[key] = (row, change.time)
        self._states[key] = interp.get(key)
        self._copy(sprite, key)
        self.group.add(sprite)
        return sprite

    def _update(self, sprite: S, old: R, new: R, change: Change) -> None:
        key = sprite.key  # type: ignore[attr-defined]
        sprite.row = new  # type: ignore[attr-defined]
        self.interpolator.push(key, new, change.time)
        if key in self._predicted:
            self._auth[key] = (new, change.time)
        if self.on_update is not None:
            self.on_update(sprite, old, new)

    def _despawn(self, sprite: S, row: R, change: Change) -> object:
        key = sprite.key  # type: ignore[attr-defined]
        sprite.row = row  # type: ignore[attr-defined]
        self.interpolator.remove(key)
        self._states.pop(key, None)
        if self.on_despawn is not None and self.on_despawn(sprite, row) is DEFER:
            return DEFER  # it stays in the group where it was, until release()
        sprite.kill()
        return None

    @staticmethod
    def _authoritative(predictor: Predictor, row: Any, now: float) -> None:
        if isinstance(predictor, TickPredictor):
            predictor.authoritative(row, now)
        else:
            predictor.authoritative(row)

    # ----- the frame ---------------------------------------------------------------------------------
    def advance(self, now: float) -> None:
        """Advance the interpolator and the predictors to ``now``, then copy the fields onto the sprites
        (the bridge's driver calls this once per frame, after the server's changes of the frame)."""
        self.interpolator.advance(now)
        if self._predicted:
            if self._auth:
                auth, self._auth = self._auth, {}
                for key, (row, at) in auth.items():
                    predictor = self._predicted.get(key)
                    if predictor is not None:
                        self._authoritative(predictor, row, at)
            for predictor in self._predicted.values():
                predictor.advance(now)
            self._follow_predicted()
        fields = self.fields
        entities = self.sync.entities
        if len(fields) == 2:
            a, b = fields
            for key, state in self._states.items():
                sprite = entities.get(key)
                if sprite is not None:
                    setattr(sprite, a, getattr(state, a))
                    setattr(sprite, b, getattr(state, b))
        else:
            for key in self._states:
                sprite = entities.get(key)
                if sprite is not None:
                    self._copy(sprite, key)

    def _copy(self, sprite: S, key: Hashable) -> None:
        state = self._states.get(key)
        if state is None:
            return
        for f in self.fields:
            setattr(sprite, f, getattr(state, f))

    # ----- prediction ----------------------------------------------------------------------------------
    def predict(self, key: Hashable, predictor: Predictor) -> Predictor:
        """Draw the sprite of ``key`` (the local player, now or when it spawns) from ``predictor``
        (an :class:`~spacetime_game.engine.InputPredictor` or
        :class:`~spacetime_game.engine.TickPredictor` over the same fields) instead of the
        interpolator: its rows become the predictor's authoritative state, and its drawn position is
        the predictor's ``rendered`` state, which moves at the frame of the input. The bridge advances
        the predictor each frame. Returns it."""
        self._predicted[key] = predictor
        self._follow(key)
        sprite = self.sync.entities.get(key)
        if sprite is not None:
            now = self._clock() if self._clock is not None else 0.0
            self._authoritative(predictor, sprite.row, now)  # type: ignore[attr-defined]
        return predictor

    def unpredict(self, key: Hashable) -> None:
        """Draw the sprite of ``key`` from the interpolator again."""
        self._predicted.pop(key, None)
        if key in self.interpolator:
            self._states[key] = self.interpolator.get(key)

    def predictor(self, key: Hashable) -> Predictor | None:
        """The predictor of ``key``, if any."""
        return self._predicted.get(key)

    @property
    def predictors(self) -> tuple[Predictor, ...]:
        """Every predictor given to :meth:`predict`."""
        return tuple(self._predicted.values())

    def _follow(self, key: Hashable) -> None:
        """Read the floats of ``key`` from its predictor once it has drawn something (from the
        interpolator before)."""
        predictor = self._predicted.get(key)
        if predictor is None:
            return
        rendered = predictor.rendered
        if all(hasattr(rendered, f) for f in self.fields):
            self._states[key] = rendered

    def _follow_predicted(self) -> None:
        for key in self._predicted:
            if self._states.get(key) is not self._predicted[key].rendered and key in self.sync.entities:
                self._follow(key)

    # ----- the game's side ---------------------------------------------------------------------------
    def release(self, sprite: S) -> bool:
        """A deferred sprite's animation ended: kill it and forget it. False if it was not waiting."""
        released = self.sync.release(sprite)
        if released:
            sprite.kill()
        return released

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
            rect.center = (_round(x), _round(y))

    def draw(self, surface: pygame.Surface, *args: Any) -> Any:
        """Place the sprites (:meth:`place`) and draw the group on ``surface``; further arguments go to
        the group's ``draw`` positionally (its background keyword differs between pygame flavours)."""
        self.place()
        return self.group.draw(surface, *args)

    def get(self, key: Hashable) -> S | None:
        """The live sprite of ``key``, or None."""
        return self.sync.entities.get(key)

    @property
    def sprites(self) -> dict[Hashable, S]:
        """The live sprites by key (deferred ones are in ``sync.dying``)."""
        return self.sync.entities

    def __len__(self) -> int:
        return len(self.sync.entities)

    def __iter__(self) -> Iterator[S]:
        return iter(self.sync.entities.values())


def _round(v: float) -> int:
    """Half away from zero, like classic pygame's ``Rect`` (Python's ``round`` rounds half to even)."""
    return int(v + 0.5) if v >= 0 else -int(-v + 0.5)


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
