"""Engine-neutral synchronisation for networked games (the pygame and arcade adapters build on it).

Nothing here imports pygame or arcade. Everything runs on the game's thread, once per frame, and never
blocks:

- :class:`FrameDriver`: ``tick()`` applies what arrived on each connection within a time budget, delivers
  the row events to the :class:`EntitySync` s in the server's order, then advances the :class:`Stepper` s;
  it reports the connection state with its reason, the loading progress of the first subscription, and
  calls ``on_applied`` hooks after each whole transaction.
- :class:`EntitySync`: one entity per row (spawn / update / despawn by key, deferred despawn, event rows,
  delete+insert coalescing for key-less tables, each change with its :data:`Origin`).
- :class:`Interpolator`: snapshot interpolation of many entities (render delay, short-way angles, capped
  extrapolation, snaps, adaptive playback rate); :class:`Interpolated` is the drawn state of one entity.
- :class:`InputPredictor` and :class:`TickPredictor`: prediction of the local player, for input reducers
  that change the row directly and for modules that integrate input on a server tick; :class:`Rendered`
  is the smoothed state they draw.
- :class:`SpriteSync`: the glue of the above for sprites: one sprite per row (through the game's factory,
  into the engine's container), placed each frame at its interpolated state, or the local player's at its
  predicted one; the pygame and arcade adapters build on it.
- :class:`InputThrottle`: sends an input reducer at most N times a second, skipping unchanged input.
- Development aids: :class:`NetworkSimulator` (latency, jitter and TCP loss stalls on one machine) and
  :class:`NetMonitor` (net stats ready to draw).
"""

from ._driver import (
    AUTO_GC_FREEZE_ROWS,
    DEFAULT_BUDGET,
    DEFAULT_MAX_BUDGET,
    ClientStatus,
    DriverState,
    FrameDriver,
    Stepper,
)
from ._interp import Interpolated, Interpolator
from ._netsim import (
    Direction,
    NetSimSettings,
    NetworkSimulator,
    SimulatedTransport,
    add_netsim_arguments,
)
from ._predict import InputPredictor, Rendered, TickPredictor
from ._sprites import SpriteSync
from ._stats import NetMonitor, NetReadout, percentile
from ._sync import DEFER, Change, EntitySync, Origin, origin_of
from ._throttle import InputThrottle

__all__ = [
    "AUTO_GC_FREEZE_ROWS",
    "DEFAULT_BUDGET",
    "DEFAULT_MAX_BUDGET",
    "DEFER",
    "Change",
    "ClientStatus",
    "Direction",
    "DriverState",
    "EntitySync",
    "FrameDriver",
    "InputPredictor",
    "InputThrottle",
    "Interpolated",
    "Interpolator",
    "NetMonitor",
    "NetReadout",
    "NetSimSettings",
    "NetworkSimulator",
    "Origin",
    "Rendered",
    "SimulatedTransport",
    "SpriteSync",
    "Stepper",
    "TickPredictor",
    "add_netsim_arguments",
    "origin_of",
    "percentile",
]
