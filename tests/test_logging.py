"""The library never prints: its log records reach the application's logging, and nowhere else; the one
exception is a failed connection when the application has neither logging nor on_error (one line)."""

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


CONNECT = """
import logging, socket, sys, time
from spacetime_game.sdk import DbConnection
from spacetime_game.sdk.bindings import ModuleBindings
mode = sys.argv[1]
if mode == "configured":
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
with socket.socket() as s:  # a port where nothing listens
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
errors = []
conn = DbConnection(
    ModuleBindings.from_typespace_json({"types": []}), f"127.0.0.1:{port}", "db",
    reconnect_min_delay=0.05, on_error=errors.append if mode == "on_error" else None,
)
conn.connect()
deadline = time.monotonic() + 30
while conn.stats.reconnects < 3 and time.monotonic() < deadline:
    conn.wait(0.05)
    conn.update()
conn.close()
assert conn.stats.reconnects >= 3 and conn.state == "closed", (conn.stats.reconnects, conn.state)
assert mode != "on_error" or len(errors) == conn.stats.reconnects, errors
print(port)
"""


def connect_nowhere(mode: str) -> tuple[str, list[str]]:
    done = subprocess.run(
        [sys.executable, "-c", CONNECT, mode], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip(), done.stderr.splitlines()


def test_a_failed_connection_is_one_line_on_stderr_when_nothing_is_set_up() -> None:
    port, err = connect_nowhere("silent")
    assert err == [
        f"spacetime_game: cannot connect to 127.0.0.1:{port}: connection refused (is the server running, on "
        "this port?); retrying (set on_error or configure logging to handle this yourself)"
    ]


def test_a_failed_connection_prints_nothing_when_on_error_is_set() -> None:
    _, err = connect_nowhere("on_error")
    assert err == []


def test_a_failed_connection_goes_to_the_applications_logging_once_per_run() -> None:
    port, err = connect_nowhere("configured")
    assert err == [
        f"spacetime_game.sdk.connection: cannot connect to 127.0.0.1:{port}: connection refused (is the "
        "server running, on this port?); retrying"
    ]
