"""Rows of a table as sprites placed each frame from interpolation or prediction (engine-neutral glue).

:class:`SpriteSync` joins the engine's parts the way every adapter needs them: an
:class:`~spacetime_game.engine.EntitySync` makes a sprite per row through the game's factory, an
:class:`~spacetime_game.engine.Interpolator` buffers the rows' positions, the local player's sprite may
follow a predictor (:class:`~spacetime_game.engine.InputPredictor` or
:class:`~spacetime_game.engine.TickPredictor`) instead, and once per frame (it is a driver
:class:`~spacetime_game.engine.Stepper`) each sprite is placed from its state. Nothing here knows an
engine: the adapter supplies its container (``add`` / ``remove``) and, if copying the fields onto the
sprite as attributes is not what its sprites want, ``place(sprite, state)``.
"""

from __future__ import annotations

import keyword
import logging
from collections.abc import Callable, Hashable, Iterator, Sequence
from itertools import repeat
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from ._interp import Interpolator
from ._predict import InputPredictor, TickPredictor
from ._sync import DEFER, Change, EntitySync, call_each

if TYPE_CHECKING:
    from spacetime_game.sdk import DbConnection

    from ._driver import FrameDriver

__all__ = ["SpriteSync"]

log = logging.getLogger("spacetime_game.engine")

R = TypeVar("R")
S = TypeVar("S")

# a predictor a SpriteSync can draw the local player from
Predictor = InputPredictor[Any, Any] | TickPredictor[Any, Any]


def _nothing(sprite: Any) -> None:
    return None


def _copier(fields: Sequence[str]) -> Callable[[Any, Any], None]:
    """A ``place(sprite, state)`` setting each of ``fields`` of the state as an attribute of the sprite.

    It runs for every sprite every frame, so it is compiled with the names written out (plain attribute
    access is about three times faster than ``getattr`` / ``setattr`` by name); names that are not
    identifiers fall back to the by-name copy."""
    if fields and all(f.isidentifier() and not keyword.iskeyword(f) for f in fields):
        body = "".join(f"    sprite.{f} = state.{f}\n" for f in fields)
        namespace: dict[str, Any] = {}
        exec(f"def place(sprite, state):\n{body}", namespace)  # the names are checked identifiers
        place: Callable[[Any, Any], None] = namespace["place"]
        return place

    def copy(sprite: Any, state: Any) -> None:
        for f in fields:
            setattr(sprite, f, getattr(state, f))

    return copy


class SpriteSync(Generic[R, S]):
    """One sprite per row of ``table`` (a generated table class or a table name), placed every frame at
    its interpolated (or predicted) state. Adapters build on it (the pygame ``SpriteSync``, the arcade
    ``SpriteTable``); a game on another engine can use it as it is.

    - ``factory(row, change) -> sprite`` makes the sprite of a new row (``change`` says whether the row
      comes from the first load, this client's call or another client).
    - ``add(sprite)`` / ``remove(sprite)``: put a sprite into the engine's container and take it out
      (default: nothing).
    - ``place(sprite, state)``: move a sprite to a state (an :class:`~spacetime_game.engine.Interpolated`,
      a predictor's :class:`~spacetime_game.engine.Rendered`, or the row itself without an
      interpolator), at spawn and once per frame. Default: copy the interpolator's fields onto the
      sprite as attributes (``sprite.x = state.x``...).
    - ``interpolator``: an :class:`~spacetime_game.engine.Interpolator` over the position columns; None
      places the sprites at the rows' own values on every update (no smoothing).
    - ``on_update(sprite, old, new, change)`` (optional) sees every change of a row (colours, names,
      scores; positions are the sync's business).
    - ``on_despawn(sprite, row, change)`` (optional): the row went. Return
      :data:`~spacetime_game.engine.DEFER` to keep the sprite (a death animation: it stays where it
      was, in its container) until :meth:`release`; anything else removes it at once.
    - ``filter`` and ``key``: as for :class:`~spacetime_game.engine.EntitySync` (a row filter; the
      identity of rows of a table without a primary key).
    - ``clock``: the time given to a :class:`~spacetime_game.engine.TickPredictor` when
      :meth:`predict` hands it the current row (default: the attached driver's ``now``).
    - ``row_attribute``: the name of a sprite attribute to hold the sprite's latest row (set after the
      factory, on each update and at despawn), or None.

    Attach it to a :class:`~spacetime_game.engine.FrameDriver` with :meth:`attach` (or add :attr:`sync`
    with ``add_sync`` and this object with ``add_stepper`` yourself). Rows reach the predictors at the
    end of the frame (in :meth:`advance`), after every row callback of the frame, when the outcomes of
    the calls the frame settled are recorded: an :class:`~spacetime_game.engine.InputPredictor` needs
    them to drop the inputs the row already holds.
    """

    def __init__(
        self,
        table: type[R] | str,
        factory: Callable[[R, Change], S],
        *,
        add: Callable[[S], object] = _nothing,
        remove: Callable[[S], object] = _nothing,
        place: Callable[[S, Any], object] | None = None,
        interpolator: Interpolator | None,
        on_update: Callable[[S, R, R, Change], object] | None = None,
        on_despawn: Callable[[S, R, Change], object] | None = None,
        filter: Callable[[R], bool] | None = None,
        key: Callable[[R], Hashable] | str | Sequence[str] | None = None,
        clock: Callable[[], float] | None = None,
        row_attribute: str | None = None,
    ) -> None:
        #: The interpolator of the positions (None: sprites are placed at their rows).
        self.interpolator = interpolator
        #: The fields a predictor's state must have to be drawn (the interpolator's attribute names).
        self.fields: tuple[str, ...] = () if interpolator is None else interpolator.names
        if place is None:
            if interpolator is None:
                raise ValueError("without an interpolator, say how to place a sprite: place=...")
            place = _copier(self.fields)
        self._factory = factory
        self._on_update = on_update
        self._on_despawn = on_despawn
        self._add = add
        self._remove = remove
        self._place = place
        self._clock = clock
        self._row_attribute = row_attribute
        #: The engine's sync underneath: ``entities`` are the live sprites by key, ``dying`` the deferred.
        self.sync: EntitySync[R, S] = EntitySync(
            table,
            on_spawn=self._spawn,
            on_update=self._update,
            on_despawn=self._despawn,
            filter=filter,
            key=key,
        )
        self.sync._keyed_update = self._update_keyed
        self.sync._keyed_many = self._update_many
        # per live entity, as few maps as possible (each is rebuilt as it grows: a 100,000-row load
        # pays every map's resizes in the same frames): the sync's entities (the sprites), the
        # interpolator's states (their rows too), the key of each sprite, and the rows only without an
        # interpolator
        self._keys: dict[int, Hashable] = {}  # id(sprite) -> key, for the sprites alive
        self._rows: dict[Hashable, R] = {}  # (without an interpolator)
        self._predicted: dict[Hashable, Predictor] = {}
        # the predicted keys whose sprites are placed from their predictor's rendered state
        self._following: set[Hashable] = set()
        # the predicted entities' latest rows, given to their predictors at the end of the frame: the
        # outcome of the call a row reflects is known only after the row's callbacks
        self._auth: dict[Hashable, tuple[Any, float]] = {}
        # without an interpolator: the sprites whose rows changed this frame, placed at the frame's end
        self._dirty: dict[Hashable, tuple[S, Any]] = {}
        self._driver: FrameDriver | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.sync.table!r}, {len(self.sync.entities)} sprites)"

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
        interp = self.interpolator
        if interp is None:
            return self._rows.get(key)
        if key not in self.sync.entities or key not in interp:
            return None
        row: R = interp.get(key).row
        return row

    def key_of(self, sprite: S) -> Hashable | None:
        """The key of a live sprite, or None."""
        return self._keys.get(id(sprite))

    def state(self, key: Hashable) -> Any | None:
        """What ``key`` 's sprite is placed from: the interpolated state (an
        :class:`~spacetime_game.engine.Interpolated`), the predictor's rendered state, or the row."""
        if key not in self.sync.entities:
            return None
        if key in self._following:
            return self._predicted[key].rendered
        interp = self.interpolator
        if interp is None:
            return self._rows.get(key)
        return interp.get(key) if key in interp else None

    def __len__(self) -> int:
        return len(self.sync.entities)

    def __iter__(self) -> Iterator[S]:
        return iter(self.sync.entities.values())

    def __contains__(self, key: object) -> bool:
        return key in self.sync.entities

    # ----- prediction -------------------------------------------------------------------------------
    def predict(self, key: Hashable, predictor: Predictor) -> Predictor:
        """Draw ``key`` 's sprite (the local player, now or when it spawns) from ``predictor`` instead of
        the interpolation: each authoritative row of ``key`` goes to it at the end of its frame
        (``authoritative(row)``, or ``authoritative(row, now)`` for a
        :class:`~spacetime_game.engine.TickPredictor`), it is advanced once per frame, and the sprite is
        placed at its ``rendered`` state (which moves at the frame of the input). The game feeds it
        input (``predictor.input(...)`` / ``set_input(...)``) when it sends the input reducer. Returns
        it."""
        self._predicted[key] = predictor
        self._following.discard(key)  # (a predictor replacing another: follow the new one)
        row = self.row(key)
        if row is not None:
            self._authoritative(predictor, row, self._now())
        self._follow(key)
        return predictor

    def unpredict(self, key: Hashable) -> None:
        """Draw ``key`` 's sprite from the interpolation again."""
        if self._predicted.pop(key, None) is None:
            return
        self._auth.pop(key, None)
        self._following.discard(key)
        sprite = self.sync.entities.get(key)
        source = self.state(key)
        if sprite is not None and source is not None:
            if self.interpolator is not None:
                source.target = sprite  # placed by the interpolation's frames again
            self._place(sprite, source)

    def predictor(self, key: Hashable) -> Predictor | None:
        """The predictor of ``key``, if any."""
        return self._predicted.get(key)

    @property
    def predictors(self) -> tuple[Predictor, ...]:
        """Every predictor given to :meth:`predict` (and not taken back)."""
        return tuple(self._predicted.values())

    def _now(self) -> float:
        if self._clock is not None:
            return self._clock()
        return self._driver.now if self._driver is not None else 0.0

    @staticmethod
    def _authoritative(predictor: Predictor, row: Any, now: float) -> None:
        if isinstance(predictor, TickPredictor):
            predictor.authoritative(row, now)
        else:
            predictor.authoritative(row)

    def _follow(self, key: Hashable) -> None:
        """Place the sprite of ``key`` from its predictor's drawn state, if that state has the fields."""
        predictor = self._predicted.get(key)
        if predictor is None or key in self._following or key not in self.sync.entities:
            return
        if all(hasattr(predictor.rendered, f) for f in self.fields):
            if self.interpolator is not None and key in self.interpolator:
                self.interpolator.get(key).target = None  # placed from the predictor instead
            self._following.add(key)

    # ----- the game's side ----------------------------------------------------------------------------
    def release(self, sprite: S) -> bool:
        """A deferred sprite's animation is over: remove it and forget it. False if it was not waiting."""
        if not self.sync.release(sprite):
            return False
        self._remove(sprite)
        return True

    # ----- the sync's hooks (inside the driver's tick) -------------------------------------------------
    def _spawn(self, row: R, change: Change) -> S:
        key = self.sync.key_of(row)
        sprite = self._factory(row, change)
        if self._row_attribute is not None:
            setattr(sprite, self._row_attribute, row)
        self._keys[id(sprite)] = key
        interp = self.interpolator
        source: Any = row
        if interp is not None:
            interp.remove(key)  # a key back from the dead starts a new track
            interp.push(key, row, change.time)
            source = interp.get(key)
            source.target = sprite  # placed by the frames that move it (see advance)
        else:
            self._rows[key] = row
        if key in self._predicted:
            self._auth[key] = (row, change.time)
        self._place(sprite, source)
        self._add(sprite)
        return sprite

    def _update(self, sprite: S, old: R, new: R, change: Change) -> None:
        self._update_keyed(self.sync.key_of(new), sprite, old, new, change)

    def _update_keyed(self, key: Hashable, sprite: S, old: R, new: R, change: Change) -> None:
        # (the hot path: one call per changed row of every transaction; the sync passes the key)
        if self._row_attribute is not None:
            setattr(sprite, self._row_attribute, new)
        interp = self.interpolator
        if key in self._predicted:
            self._auth[key] = (new, change.time)
            if interp is not None:
                interp.push(key, new, change.time)
        elif interp is not None:
            interp.push(key, new, change.time)
        if interp is None:
            self._rows[key] = new
            if key not in self._following:
                self._dirty[key] = (sprite, new)
        if self._on_update is not None:
            self._on_update(sprite, old, new, change)

    def _update_many(
        self, keys: list[Hashable], sprites: list[S], olds: list[R], news: list[R], change: Change
    ) -> None:
        """A chunk of a transaction's updated rows, every key live (the sync's bulk path): the same as
        :meth:`_update_keyed` row by row, in a few loops."""
        if self._predicted:
            for args in zip(keys, sprites, olds, news, strict=True):
                self._update_keyed(*args, change)
            return
        attr = self._row_attribute
        if attr is not None:
            for sprite, new in zip(sprites, news, strict=True):
                setattr(sprite, attr, new)
        interp = self.interpolator
        if interp is not None:
            interp.push_many(keys, news, change.time)
        else:
            self._rows.update(zip(keys, news, strict=True))
            dirty = self._dirty
            for key, sprite, new in zip(keys, sprites, news, strict=True):
                dirty[key] = (sprite, new)
        on_update = self._on_update
        if on_update is not None:
            rows = zip(sprites, olds, news, repeat(change), strict=False)
            call_each(on_update, rows, f"table {self.table!r}: on_update")

    def _despawn(self, sprite: S, row: R, change: Change) -> object:
        if self._row_attribute is not None:
            setattr(sprite, self._row_attribute, row)
        key = self._keys.pop(id(sprite), None)
        if key is None:
            key = self.sync.key_of(row)
        # (the sync despawns only the live sprite of a key, and before any new one of the same key)
        self._dirty.pop(key, None)
        self._rows.pop(key, None)
        self._following.discard(key)
        if self.interpolator is not None:
            self.interpolator.remove(key)
        if self._on_despawn is not None and self._on_despawn(sprite, row, change) is DEFER:
            return DEFER  # it stays where it was until release()
        self._remove(sprite)
        return None

    # ----- once per frame (a Stepper of the driver) ----------------------------------------------------
    def advance(self, now: float) -> None:
        """Advance the interpolation and the predictors to ``now`` (handing the predictors the frame's
        rows first) and place the sprites that moved: those the interpolation moved this frame, the
        predicted ones, and (without an interpolator) those whose rows changed. A sprite at rest costs
        nothing per frame. The driver calls it once per frame, after the server's changes of the frame."""
        place = self._place
        interp = self.interpolator
        if interp is not None:
            interp.advance(now)
            for state in interp.moved:
                sprite = state.target
                if sprite is not None:
                    place(sprite, state)
        elif self._dirty:
            dirty, self._dirty = self._dirty, {}
            for sprite, row in dirty.values():
                place(sprite, row)
        if self._predicted:
            if self._auth:
                auth, self._auth = self._auth, {}
                for key, (row, at) in auth.items():
                    predictor = self._predicted.get(key)
                    if predictor is not None:
                        self._authoritative(predictor, row, at)
            entities = self.sync.entities
            for key, predictor in self._predicted.items():
                predictor.advance(now)
                self._follow(key)
                if key in self._following:
                    sprite = entities.get(key)
                    if sprite is not None:
                        place(sprite, predictor.rendered)
