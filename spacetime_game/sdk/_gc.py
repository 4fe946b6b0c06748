"""Garbage-collector tuning for the client's bulk work: decoding rows, and running the row callbacks of big
batches (see docs/architecture.md, "What the client does with Python's garbage collector")."""

from __future__ import annotations

import gc

__all__ = ["FREEZE_EVERY", "count_new_rows", "promote_young", "settle_frozen"]


def promote_young() -> None:
    """Move the young GC generations to the oldest one without traversing them (O(1)).

    Called after a big chunk of rows was decoded, or a big batch of row callbacks ran, with the collector
    paused: the new objects (rows, the game's entities) are long-lived, and collecting them young (then
    again in generation 1, then in the full collections their count would trigger) costs a long pause. ``freeze`` + ``unfreeze`` moves them (and whatever
    else is young) to the oldest generation, where the next regular full collection checks them. When
    someone else uses the permanent generation (``gc.freeze()`` before a fork, say) it is left alone
    and the young generation is collected instead."""
    if gc.get_freeze_count() == 0:
        gc.freeze()
        gc.unfreeze()
    else:
        gc.collect(0)


#: With ``DbConnection(gc_freeze=True)``: how many new cached rows make the next ``update()`` freeze.
FREEZE_EVERY = 1024


class _Freezer:
    """Process-wide (the collector is): rows applied since the last freeze, and whether one happened."""

    def __init__(self) -> None:
        self.pending = 0
        self.frozen = False


_FREEZER = _Freezer()


def count_new_rows(n: int) -> None:
    """``n`` new row objects entered a cache of a connection made with ``gc_freeze=True``."""
    _FREEZER.pending += n


def settle_frozen() -> None:
    """Once :data:`FREEZE_EVERY` new rows were counted: collect, then move every object the collector
    tracks into its permanent generation (``gc.freeze()``), which its collections never traverse.

    The cached rows are what a game keeps longest and in the greatest number; outside the collections
    they no longer make each full collection long (about 45 ms for 100,000 rows here). Frozen objects are
    still freed as soon as nothing refers to them (reference counting); only garbage made of reference
    cycles is never collected once frozen. So a collection runs first: of the young generations before
    the first freeze, and a full one later (short then: everything older is frozen already)."""
    if _FREEZER.pending < FREEZE_EVERY:
        return
    _FREEZER.pending = 0
    gc.collect() if _FREEZER.frozen else gc.collect(1)
    gc.freeze()
    _FREEZER.frozen = True
