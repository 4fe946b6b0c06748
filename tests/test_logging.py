"""The library never prints: its log records reach the application's logging, and nowhere else."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SCRIPT = """
import logging, sys
from spacetime_game.sdk import DbConnection
from spacetime_game.sdk.bindings import ModuleBindings
log = logging.getLogger("spacetime_game.sdk")
log.warning("a warning from the library")
try:
    raise RuntimeError("boom")
except RuntimeError:
    log.exception("a callback raised")
if sys.argv[1] == "configured":
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    log.warning("seen by the application")
"""


def run(mode: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, timeout=60, cwd=ROOT
    )


def test_nothing_is_printed_when_the_application_has_no_logging() -> None:
    done = run("silent")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "" and done.stderr == ""


def test_an_application_that_configures_logging_sees_the_records() -> None:
    done = run("configured")
    assert done.returncode == 0
    assert done.stderr.strip() == "spacetime_game.sdk: seen by the application"
