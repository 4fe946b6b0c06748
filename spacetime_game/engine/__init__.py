"""Engine-neutral synchronisation: rows to entities, interpolation, prediction and input throttling.

Nothing here imports pygame or arcade; the adapters (``spacetime_game.pygame``, ``spacetime_game.arcade``)
build on these pieces. Everything runs on the game's thread, once per frame, and never blocks:

- :class:`Interpolator`: snapshot interpolation of many entities (render delay, short-way angles, capped
  extrapolation, snaps, adaptive playback rate); :class:`Interpolated` is the drawn state of one entity.
- :class:`InputPredictor` and :class:`TickPredictor`: prediction of the local player, for input reducers that
  change the row directly and for modules that integrate input on a server tick; :class:`Rendered` is the
  smoothed state they draw.
- :class:`InputThrottle`: sends an input reducer at most N times a second, skipping unchanged input.
"""

from ._interp import Interpolated, Interpolator
from ._predict import InputPredictor, Rendered, TickPredictor
from ._throttle import InputThrottle

__all__ = [
    "InputPredictor",
    "InputThrottle",
    "Interpolated",
    "Interpolator",
    "Rendered",
    "TickPredictor",
]
