"""Garbage-collector tuning for the client's bulk work: decoding rows, and running the row callbacks of big
batches (see docs/architecture.md, "What the client does with Python's garbage collector")."""

from __future__ import annotations

import gc

__all__ = ["promote_young"]


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
