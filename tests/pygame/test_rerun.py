"""The pygame adapter's tests once more under classic pygame (they run under pygame-ce in-process)."""

from __future__ import annotations

from tests.engines._support import classic_pygame_rerun

test_tests_pygame_under_classic_pygame = classic_pygame_rerun("tests/pygame")
