"""Engine-neutral synchronisation: a frame driver and entity sync (interpolation and prediction to come).

:class:`FrameDriver` runs once per frame on the game's thread: ``tick()`` applies what arrived on each
connection within a time budget, delivers the row events to the :class:`EntitySync` s in the server's
order, then advances the :class:`Stepper` s. It reports the connection state with its reason, the loading
progress of the first subscription, and calls ``on_applied`` hooks after each whole transaction. This
package imports neither pygame nor arcade: the adapters in :mod:`spacetime_game.pygame` and
:mod:`spacetime_game.arcade` build on it.
"""

from ._driver import DEFAULT_BUDGET, ClientStatus, DriverState, FrameDriver, Stepper
from ._sync import DEFER, Change, EntitySync, Origin, origin_of

__all__ = [
    "DEFAULT_BUDGET",
    "DEFER",
    "Change",
    "ClientStatus",
    "DriverState",
    "EntitySync",
    "FrameDriver",
    "Origin",
    "Stepper",
    "origin_of",
]
