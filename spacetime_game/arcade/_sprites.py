"""Rows of a table as sprites, placed from an interpolator each frame (engine-neutral glue).

Nothing here imports arcade: the engine's :class:`~spacetime_game.engine.EntitySync` makes a sprite per row
through the game's factory, an :class:`~spacetime_game.engine.Interpolator` buffers the rows' positions,
and once per frame (a driver ``Stepper``) the interpolated values are written into the sprites. The
adapter supplies three small functions: ``add(sprite)`` and ``remove(sprite)`` (its sprite container)
and ``place(sprite, state)`` (copy a state's fields into a sprite). The local player's sprite can follow a
predictor (:class:`~spacetime_game.engine.InputPredictor` or :class:`~spacetime_game.engine.TickPredictor`)
instead of the interpolation.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from spacetime_game.engine import DEFER, Change, EntitySync, Interpolator, TickPredictor

if TYPE_CHECKING:
    from spacetime_game.engine import FrameDriver, InputPredictor
    from spacetime_game.sdk import DbConnection

__all__ = ["SpriteSync"]

log = logging.getLogger("spacetime_game.arcade")

R = TypeVar("R")
S = TypeVar("S")


class _Predictor(Protocol):
    """What a predictor offers the sprites: its drawn state and a per-frame step."""

    @property
    def rendered(self) -> Any: ...

    def advance(self, now: float) -> None: ...


class SpriteSync(Generic[R, S]):
    """Keeps one sprite per row of ``table`` (a generated table class or a table name) and places the
    sprites every frame; built by an adapter (``window.net.sprites(...)``), which passes the container
    functions ``add``, ``remove`` and ``place``.

    - ``factory(row, change) -> sprite`` makes the sprite of a new row (``change`` says whether the row
      comes from the first load, this client's call or another client).
    - ``on_update(sprite, old, new, change)`` (optional) sees every change of a row: colours, names,
      scores; positions are the sync's business.
    - ``on_despawn(sprite, row, change)`` (optional): the row went. Return
      :data:`~spacetime_game.engine.DEFER` to keep the sprite (a death animation) until
      :meth:`release`; anything else removes it at once.
    - ``interpolator``: an :class:`~spacetime_game.engine.Interpolator` over the position columns; None
      places the sprites at the rows' own values on every update (no smoothing).
    - ``filter`` and ``key``: as for :class:`~spacetime_game.engine.EntitySync` (a row filter; the
      identity of rows of a table without a primary key).
    """

    def __init__(
        self,
        table: type[R] | str,
        factory: Callable[[R, Change], S],
        *,
        add: Callable[[S], object],
        remove: Callable[[S], object],
        place: Callable[[S, Any], object],
        interpolator: Interpolator | None,
        on_update: Callable[[S, R, R, Change], object] | None = None,
        on_despawn: Callable[[S, R, Change], object] | None = None,
        filter: Callable[[R], bool] | None = None,
        key: Callable[[R], Hashable] | str | Sequence[str] | None = None,
    ) -> None:
        self.factory = factory
        self.on_update = on_update
        self.on_despawn = on_despawn
        #: The interpolator of the positions (None: sprites are placed at their rows).
        self.interpolator = interpolator
        self._add = add
        self._remove = remove
        self._place = place
        #: The engine's sync underneath: ``entities`` are the live sprites by key, ``dying`` the deferred.
        self.sync: EntitySync[R, S] = EntitySync(
            table,
            on_spawn=self._spawn,
            on_update=self._update,
            on_despawn=self._despawn,
            filter=filter,
            key=key,
        )
        # key -> (sprite, what to place it from: the interpolated state, or a predictor's rendered state)
        self._placed: dict[Hashable, tuple[S, Any]] = {}
        self._keys: dict[int, Hashable] = {}  # id(sprite) -> key, for the sprites alive
        self._predictors: dict[Hashable, _Predictor] = {}
        self._rows: dict[Hashable, R] = {}
        self._driver: FrameDriver | None = None

    def __repr__(self) -> str:
        return f"SpriteSync({self.sync.table!r}, {len(self._placed)} sprites)"

    # ----- attaching ----------------------------------------------------------------------------------
    def attach(self, driver: FrameDriver, client: DbConnection | None = None) -> None:
        """Follow ``client`` of ``driver`` (its only one by default) and be placed at each of its ticks;
        rows already cached become sprites at once."""
        self._driver = driver
        driver.add_stepper(self)
        driver.add_sync(self.sync, client=client)

    def detach(self) -> None:
        """Stop following the connection and stop placing the sprites (they stay where they are)."""
        driver, self._driver = self._driver, None
        if driver is not None:
            driver.remove_sync(self.sync)
            driver.remove_stepper(self)

    # ----- reading --------------------------------------------------------------------------------------
    @property
    def table(self) -> str:
        """The table's name."""
        return self.sync.table

    @property
    def sprites(self) -> dict[Hashable, S]:
        """The live sprites by key (the row's primary key). Do not modify."""
        return self.sync.entities

    @property
    def dying(self) -> dict[Hashable, list[S]]:
        """Sprites whose ``on_despawn`` returned DEFER, by key, until :meth:`release`."""
        return self.sync.dying

    def get(self, key: Hashable) -> S | None:
        """The live sprite of ``key``, or None."""
        return self.sync.entities.get(key)

    def row(self, key: Hashable) -> R | None:
        """The latest row of ``key`` (None if it has no live sprite)."""
        return self._rows.get(key)

    def key_of(self, sprite: S) -> Hashable | None:
        """The key of a live sprite, or None."""
        return self._keys.get(id(sprite))

    def state(self, key: Hashable) -> Any | None:
        """What ``key`` 's sprite is placed from: the interpolated state (an
        :class:`~spacetime_game.engine.Interpolated`), the predictor's rendered state, or the row."""
        entry = self._placed.get(key)
        return None if entry is None else entry[1]

    def __len__(self) -> int:
        return len(self.sync.entities)

    def __iter__(self) -> Iterator[S]:
        return iter(self.sync.entities.values())

    def __contains__(self, key: object) -> bool:
        return key in self.sync.entities

    # ----- prediction -------------------------------------------------------------------------------
    def predict(self, key: Hashable, predictor: InputPredictor[Any, Any] | TickPredictor[Any, Any]) -> None:
        """Draw ``key`` 's sprite (the local player) from ``predictor`` instead of the interpolation: the
        sync hands it each authoritative row of ``key`` (``authoritative(row)``, or
        ``authoritative(row, now)`` for a :class:`~spacetime_game.engine.TickPredictor`) and advances it
        once per frame before placing the sprite at its ``rendered`` state. The game feeds it input
        (``predictor.input(...)`` / ``set_input(...)``) when it sends the input reducer."""
        self._predictors[key] = predictor
        row = self._rows.get(key)
        if row is not None:
            self._authoritative(predictor, row, self._driver.now if self._driver is not None else 0.0)
        entry = self._placed.get(key)
        if entry is not None:
            self._placed[key] = (entry[0], predictor.rendered)

    def unpredict(self, key: Hashable) -> None:
        """Draw ``key`` 's sprite from the interpolation again."""
        if self._predictors.pop(key, None) is None:
            return
        entry = self._placed.get(key)
        if entry is not None:
            self._placed[key] = (entry[0], self._source(key, self._rows[key]))

    @staticmethod
    def _authoritative(predictor: _Predictor, row: Any, now: float) -> None:
        if isinstance(predictor, TickPredictor):
            predictor.authoritative(row, now)
        else:
            predictor.authoritative(row)  # type: ignore[attr-defined]

    # ----- the game's side ----------------------------------------------------------------------------
    def release(self, sprite: S) -> bool:
        """A deferred sprite's animation is over: remove it. False if it was not waiting."""
        if not self.sync.release(sprite):
            return False
        self._remove(sprite)
        return True

    # ----- the sync's hooks (inside the driver's tick) -------------------------------------------------
    def _source(self, key: Hashable, row: R) -> Any:
        p = self._predictors.get(key)
        if p is not None:
            return p.rendered
        interp = self.interpolator
        return interp.get(key) if interp is not None else row

    def _spawn(self, row: R, change: Change) -> S:
        key = self.sync.key_of(row)
        sprite = self.factory(row, change)
        self._rows[key] = row
        self._keys[id(sprite)] = key
        interp = self.interpolator
        if interp is not None:
            interp.remove(key)  # a key back from the dead starts a new track
            interp.push(key, row, change.time)
        p = self._predictors.get(key)
        if p is not None:
            self._authoritative(p, row, change.time)
        source = self._source(key, row)
        self._placed[key] = (sprite, source)
        self._place(sprite, source)
        self._add(sprite)
        return sprite

    def _update(self, sprite: S, old: R, new: R, change: Change) -> None:
        key = self.sync.key_of(new)
        self._rows[key] = new
        p = self._predictors.get(key)
        if p is not None:
            self._authoritative(p, new, change.time)
        interp = self.interpolator
        if interp is not None:
            interp.push(key, new, change.time)
        elif p is None:
            self._placed[key] = (sprite, new)
        if self.on_update is not None:
            self.on_update(sprite, old, new, change)

    def _despawn(self, sprite: S, row: R, change: Change) -> object:
        key = self._keys.pop(id(sprite), None)
        if key is None:
            key = self.sync.key_of(row)
        entry = self._placed.get(key)
        if entry is not None and entry[0] is sprite:
            del self._placed[key]
            self._rows.pop(key, None)
            if self.interpolator is not None:
                self.interpolator.remove(key)
        result = None
        if self.on_despawn is not None:
            result = self.on_despawn(sprite, row, change)
        if result is DEFER:
            return DEFER  # it stays drawn where it was until release()
        self._remove(sprite)
        return None

    # ----- once per frame (a Stepper of the driver) ----------------------------------------------------
    def advance(self, now: float) -> None:
        """Advance the interpolation and the predictors to ``now`` and place every sprite."""
        interp = self.interpolator
        if interp is not None:
            interp.advance(now)
        for p in self._predictors.values():
            p.advance(now)
        place = self._place
        for sprite, state in self._placed.values():
            place(sprite, state)
