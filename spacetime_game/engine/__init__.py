"""Engine-neutral synchronisation for networked games (pygame and arcade adapters build on it).

:class:`FrameDriver` runs once per frame on the game's thread: ``tick()`` applies what arrived on each
connection within a time budget, delivers the row events to the :class:`EntitySync` s in the server's
order, then advances the :class:`Stepper` s. It reports the connection state with its reason, the loading
progress of the first subscription, and calls ``on_applied`` hooks after each whole transaction.

Development aids: a network simulator (:class:`NetworkSimulator`: latency, jitter and TCP loss stalls on
one machine) and net stats ready to draw (:class:`NetMonitor`). This package imports neither pygame nor
arcade.
"""

from ._driver import DEFAULT_BUDGET, ClientStatus, DriverState, FrameDriver, Stepper
from ._netsim import (
    Direction,
    NetSimSettings,
    NetworkSimulator,
    SimulatedTransport,
    add_netsim_arguments,
)
from ._stats import NetMonitor, NetReadout, percentile
from ._sync import DEFER, Change, EntitySync, Origin, origin_of

__all__ = [
    "DEFAULT_BUDGET",
    "DEFER",
    "Change",
    "ClientStatus",
    "Direction",
    "DriverState",
    "EntitySync",
    "FrameDriver",
    "NetMonitor",
    "NetReadout",
    "NetSimSettings",
    "NetworkSimulator",
    "Origin",
    "SimulatedTransport",
    "Stepper",
    "add_netsim_arguments",
    "origin_of",
    "percentile",
]
