"""Errors a module raises on purpose."""

from __future__ import annotations

from ..sdk.sats import SpacetimeError

__all__ = ["ReducerError"]


class ReducerError(SpacetimeError):
    """Raise this in a reducer to fail on purpose: the transaction rolls back and the caller gets
    ``Err`` with the message (any other exception is reported as an internal error)."""
