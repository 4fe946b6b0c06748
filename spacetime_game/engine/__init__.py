"""Engine-neutral synchronisation: rows to entities, interpolation, prediction, and the development aids
of a networked game: a network simulator (:class:`NetworkSimulator`, latency, jitter and TCP loss stalls
on one machine) and net stats ready to draw (:class:`NetMonitor`)."""

from ._netsim import (
    Direction,
    NetSimSettings,
    NetworkSimulator,
    SimulatedTransport,
    add_netsim_arguments,
)
from ._stats import NetMonitor, NetReadout, percentile

__all__: list[str] = [
    "Direction",
    "NetMonitor",
    "NetReadout",
    "NetSimSettings",
    "NetworkSimulator",
    "SimulatedTransport",
    "add_netsim_arguments",
    "percentile",
]
