"""Network statistics of a connection: :class:`NetStats`."""

from __future__ import annotations

import math
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any

__all__ = ["NetStats"]


@dataclass
class NetStats:
    """Network statistics of a connection: counters that only grow (an engine samples them once per
    frame and diffs them, see :class:`spacetime_game.engine.NetMonitor`), plus the depth of the
    incoming queue and the calls in flight as of the last ``update()``."""

    messages_in: int = 0
    messages_out: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    rows_in: int = 0
    #: Transactions applied by ``update()``: the server's TransactionUpdates and this client's committed
    #: reducer calls that changed subscribed rows (counted as each is applied, so its growth between two
    #: frames is the number of updates the game saw).
    transactions: int = 0
    apply_seconds: float = 0.0
    reconnects: int = 0
    #: Messages received but not applied yet, plus the one being applied (set by ``update()``).
    queue_depth: int = 0
    #: Reducer calls sent whose result has not arrived.
    calls_in_flight: int = 0
    #: The latest round trips of each reducer (seconds from the call to its result being applied).
    round_trips: dict[str, deque[float]] = field(
        default_factory=lambda: defaultdict(lambda: deque(maxlen=512))
    )
    #: How many round trips of each reducer have been recorded in all (``round_trips`` keeps only the
    #: latest 512): the growth between two samples says how many entries of ``round_trips`` are new.
    round_trip_counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def round_trip(self, reducer: str, q: float) -> float | None:
        """The ``q`` quantile (0..1) of recent round trips of ``reducer``, in seconds."""
        data = sorted(self.round_trips.get(reducer, ()))
        if not data:
            return None
        return data[min(len(data) - 1, max(0, math.ceil(q * len(data)) - 1))]

    def summary(self) -> dict[str, Any]:
        """Everything as plain numbers (p50/p95 per reducer, in milliseconds)."""
        return {
            "messages_in": self.messages_in,
            "messages_out": self.messages_out,
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
            "rows_in": self.rows_in,
            "transactions": self.transactions,
            "apply_ms": round(self.apply_seconds * 1000, 3),
            "reconnects": self.reconnects,
            "queue_depth": self.queue_depth,
            "calls_in_flight": self.calls_in_flight,
            "round_trip_ms": {
                r: {
                    "p50": 1000 * (self.round_trip(r, 0.5) or 0),
                    "p95": 1000 * (self.round_trip(r, 0.95) or 0),
                }
                for r in self.round_trips
            },
        }
