"""What the hostile-input suite shares: a dev server in a child process, a probe client in another one that
measures round trips while an attack runs, and raw WebSocket helpers that read close codes."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import websocket

from ..client._support import ServerProcess

ROOT = Path(__file__).resolve().parents[2]
CHAT = ROOT / "demos" / "chat" / "module.py"
DATABASE = "quickstart-chat"

#: The issue's bound for another client's round trip while a hostile client runs.
P99_BOUND = 0.050
#: Close codes a server may use for a hostile frame: protocol error, too big, internal (undecodable).
HOSTILE_CLOSE_CODES = {1002, 1008, 1009, 1011}


def start_child(script: str, *args: str, ready: str, what: str) -> tuple[subprocess.Popen[str], str]:
    """Run ``script`` (a file next to this one) in a child Python with the repository on its path, its
    stdin and stdout text pipes, and wait for its first line, which must start with ``ready``: the child
    and that line. When the line is wrong the child is killed and the test fails, naming ``what``."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name(script)), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith(ready):
        proc.kill()
        proc.communicate()
        raise AssertionError(f"{what} did not start: {line!r}")
    return proc, line


def stop_child(proc: subprocess.Popen[str], timeout: float) -> str:
    """Tell a child of ``start_child`` to stop (``stop`` on its stdin) and wait for it; killed when it has
    not ended within ``timeout`` seconds. Returns what it printed meanwhile."""
    try:
        out, _ = proc.communicate("stop\n", timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return out


def chat_server(data_dir: Path) -> ServerProcess:
    return ServerProcess(CHAT, DATABASE, data_dir).start()


@dataclass
class ProbeResult:
    rtts: list[float]
    errors: list[str] = field(default_factory=list)

    @property
    def p99(self) -> float:
        ordered = sorted(self.rtts)
        return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]

    def describe(self) -> str:
        if not self.rtts:
            return f"no round trips; errors: {self.errors}"
        return (
            f"{len(self.rtts)} round trips, median {statistics.median(self.rtts) * 1e3:.2f} ms, "
            f"p99 {self.p99 * 1e3:.2f} ms, max {max(self.rtts) * 1e3:.2f} ms, errors {self.errors[:3]}"
        )


class Probe:
    """``with Probe(server) as probe: attack()``; then ``probe.result`` holds the round trips measured
    while the attack ran (the probe is a separate process, so it shares no GIL with the attacker)."""

    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        self.result = ProbeResult([])
        self._proc: subprocess.Popen[str] | None = None

    def __enter__(self) -> Probe:
        self._proc, _ = start_child(
            "_probe.py", self.server.host, DATABASE, ready="ready\n", what="the probe"
        )
        time.sleep(0.2)  # a few calls before the attack starts
        return self

    def __exit__(self, *exc: Any) -> None:
        proc = self._proc
        assert proc is not None
        time.sleep(0.2)  # and a few after it, to catch a stall the attack left behind
        out = stop_child(proc, 60)
        lines = [ln for ln in out.splitlines() if ln.startswith("{")]
        if lines:
            data = json.loads(lines[-1])
            self.result = ProbeResult(data["rtts"], data["errors"])
        else:
            self.result = ProbeResult([], [f"the probe printed nothing (exit {proc.returncode})"])

    def check(self, what: str, min_calls: int = 50) -> None:
        """The other client was served all along: no error, enough calls, p99 under the bound."""
        r = self.result
        assert not r.errors, f"{what}: the probe failed: {r.describe()}"
        assert len(r.rtts) >= min_calls, f"{what}: the probe was starved: {r.describe()}"
        assert r.p99 < P99_BOUND, f"{what}: another client's round trip suffered: {r.describe()}"


def ws_url(server: ServerProcess, query: str = "compression=None") -> str:
    return f"ws://{server.host}/v1/database/{DATABASE}/subscribe?{query}"


def connect(
    server: ServerProcess, protocol: str, headers: list[str] | None = None, query: str = "compression=None"
) -> websocket.WebSocket:
    return websocket.create_connection(
        ws_url(server, query), subprotocols=[protocol], header=headers or [], timeout=10
    )


def close_code(ws: websocket.WebSocket, timeout: float = 10.0) -> int:
    """Read until the server's close frame and return its code (-1: the stream ended without one)."""
    ws.settimeout(timeout)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            opcode, frame = ws.recv_data_frame(True)
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                data = frame.data or b""
                return int.from_bytes(data[:2], "big") if len(data) >= 2 else 1005
    except (websocket.WebSocketException, OSError):
        return -1
    finally:
        ws.shutdown()  # type: ignore[no-untyped-call]
    raise AssertionError("the server neither closed the connection nor stopped sending")


def http(
    server: ServerProcess, method: str, path: str, body: bytes | None = None, token: str | None = None
) -> tuple[int, str]:
    req = urllib.request.Request(f"http://{server.host}{path}", data=body, method=method)
    if token is not None:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


def alive(server: ServerProcess) -> bool:
    """The server process runs and answers /v1/ping."""
    if not server.server.running:
        return False
    status, _ = http(server, "GET", "/v1/ping")
    return status == 200


def rss_bytes(server: ServerProcess) -> int:
    """The server process's resident memory."""
    assert server.server.pid is not None
    with open(f"/proc/{server.server.pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")
