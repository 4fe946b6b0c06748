"""Fixtures of the arcade adapter's tests: the engine tests' module bindings (``move_module.py``), a real
dev server, and headless windows that are closed afterwards."""

from __future__ import annotations

from tests.engine.conftest import MOVE_MODULE, mb

__all__ = ["MOVE_MODULE", "mb"]
