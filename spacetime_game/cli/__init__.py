"""The ``spacetime-game`` command."""

from ._main import main

__all__ = ["main"]
