"""LAN play (issue: the game-jam workflow): ``serve --listen ADDRESS`` makes the dev server reachable from
other machines only when asked, and says what a teammate's client gives as ``--server``; by default it
listens on loopback, where another machine cannot reach it."""

from __future__ import annotations

import ipaddress
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from spacetime_game.server import reachable_address

CHAT = Path(__file__).resolve().parents[2] / "demos" / "chat" / "module.py"


def test_the_address_a_teammate_uses() -> None:
    assert reachable_address("127.0.0.1") is None
    assert reachable_address("::1") is None
    assert reachable_address("localhost") is None
    assert reachable_address("192.168.1.20") == "192.168.1.20"
    assert reachable_address("jam-laptop.local") == "jam-laptop.local"
    lan = reachable_address("0.0.0.0")
    assert lan is not None and lan != "0.0.0.0"
    try:
        assert not ipaddress.ip_address(lan).is_unspecified
    except ValueError:  # (no route and no address for the host name: the host name itself)
        assert lan


def _serve(*extra: str) -> tuple[subprocess.Popen[str], list[str], int]:
    """``serve`` the chat module in memory on a free port; its log lines up to ready, and the port."""
    cmd = [sys.executable, "-m", "spacetime_game.cli", "serve", str(CHAT), "--in-memory", "--port", "0"]
    proc = subprocess.Popen([*cmd, *extra], stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    assert proc.stderr is not None
    lines: list[str] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        lines.append(line)
        m = re.search(r"ready in \d+ ms: ws://[^:]+:(\d+)/", line)
        if m:
            lines.append(proc.stderr.readline())  # the owner's line
            if "--listen" in extra:
                lines.append(proc.stderr.readline())  # then the join line
            return proc, lines, int(m.group(1))
        if not line and proc.poll() is not None:
            break
    proc.kill()
    raise AssertionError(f"the server did not start: {lines}")


def _answers(host: str, port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/v1/database/quickstart-chat", timeout=3) as r:
            return bool(r.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def test_serve_is_reachable_from_the_network_only_when_asked() -> None:
    lan = reachable_address("0.0.0.0")
    assert lan is not None
    if ipaddress.ip_address(lan).is_loopback:
        pytest.skip("this machine has no network address but loopback")
    proc, lines, port = _serve("--listen", "0.0.0.0")
    try:
        joined = [line for line in lines if "reachable from other machines" in line]
        assert joined, lines
        assert f"--server {lan}:{port} --database quickstart-chat" in joined[0]
        assert _answers(lan, port), "the server does not answer at the address it gave"
    finally:
        proc.terminate()
        proc.wait(10)
    proc, lines, port = _serve()  # the default: loopback only
    try:
        assert not any("reachable from other machines" in line for line in lines), lines
        assert _answers("127.0.0.1", port)
        assert not _answers(lan, port), "the default server is reachable from the network"
    finally:
        proc.terminate()
        proc.wait(10)
