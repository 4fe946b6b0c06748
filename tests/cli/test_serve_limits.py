"""``spacetime-game serve --limit NAME=VALUE``: the documented way to change a limit of the dev server
from the command line (docs/limits.md lists them)."""

from __future__ import annotations

import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from spacetime_game.cli._main import SERVER_LIMITS, _limit

from ..client._support import ServerProcess

CHAT = Path(__file__).resolve().parents[2] / "demos" / "chat" / "module.py"


def _sql(port: int, query: str) -> tuple[int, str]:
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/v1/database/quickstart-chat/sql", data=query.encode(), method="POST"
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_a_limit_set_on_the_command_line_applies() -> None:
    query = "SELECT * FROM user WHERE " + " OR ".join(f"name = 'n{i}'" for i in range(20))  # ~330 bytes
    server = ServerProcess(CHAT, "quickstart-chat", None)
    server.start()
    try:
        assert _sql(server.port, query)[0] == 200  # the default (4 KiB) lets it through
    finally:
        server.stop()
    # the same query against a server started with a lower limit
    cmd = [sys.executable, "-m", "spacetime_game.cli", "serve", str(CHAT), "--in-memory", "--port", "0"]
    proc = subprocess.Popen(
        [*cmd, "--limit", "max_query_bytes=200", "--limit", "max-query-terms=8"],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        port = 0
        for line in proc.stderr:
            if "ready in" in line:
                port = int(line.split("ws://127.0.0.1:")[1].split("/")[0])
                break
        assert port, "the server did not start"
        status, text = _sql(port, query)
        assert status == 400 and "max_query_bytes" in text and "200" in text, (status, text)
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.mark.parametrize(
    ("arg", "why"),
    [
        ("max_query_bytes", "NAME=VALUE"),
        ("no_such_limit=3", "NAME=VALUE"),
        ("max_query_bytes=lots", "not a valid value"),
        ("max_query_bytes=0", "must be positive"),
        ("idle_timeout=-1", "must be positive"),
    ],
)
def test_a_bad_limit_is_one_line_and_exit_2(arg: str, why: str) -> None:
    cmd = [sys.executable, "-m", "spacetime_game.cli", "serve", str(CHAT), "--in-memory", "--limit", arg]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert why in out.stderr and "Traceback" not in out.stderr, out.stderr


def test_sizes_take_units_and_every_name_is_a_server_keyword() -> None:
    import inspect

    from spacetime_game.server import DevServer, ServerLimits

    assert _limit("max_queued_bytes=64MiB") == ("max_queued_bytes", 64 * 1024 * 1024)
    assert _limit("max_query_bytes=8k") == ("max_query_bytes", 8000)
    assert _limit("idle_timeout=90s") == ("idle_timeout", 90.0)
    # one list of limits: the CLI's and the public ServerLimits keywords of DevServer (which
    # tests/server/test_dev_server.py checks against the application's own keywords)
    assert set(SERVER_LIMITS) == set(ServerLimits.__annotations__)
    assert "limits" in inspect.signature(DevServer).parameters
