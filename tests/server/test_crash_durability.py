"""Crash durability of the dev server, end to end: every acknowledged reducer call survives ``kill -9``.

The server (``spacetime-game serve benchmarks/load_module.py --data-dir DIR``) runs as a child process.
A few clients call ``bump`` as fast as they can (many calls in flight each) and count, per row, the calls
they sent and the calls whose ReducerResult came back Ok. In the middle of the load the server is killed
with SIGKILL, started again on the same data directory, and every row must hold at least its acknowledged
bumps (an acknowledged transaction is never lost) and at most the bumps sent (nothing invented or applied
twice). Then another round of load and SIGKILL runs on the recovered data.

SIGKILL alone loses only what the server had not yet written: the kernel keeps written data even if it
was never fsynced. The ``power-loss`` variant therefore runs the server with the commit log's writes held
in a volatile cache in the server process until ``fdatasync``/``fsync`` (which it makes take 30 ms more, a
slow disk), so the kill also loses everything not flushed, as a power cut would: a server that
acknowledged after ``write`` but before ``fsync`` fails it. ``test_the_check_catches_acknowledgement_before_fsync`` shows the check failing on a server patched
to acknowledge before the commit log is flushed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import socket
import struct
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest

aiohttp = pytest.importorskip("aiohttp")

from spacetime_game.sdk.protocol import (  # noqa: E402
    PROTOCOL_V2,
    CallReducer,
    ReducerOk,
    ReducerResult,
    decode_server_frame,
    encode_client_frame,
)
from tests._support import free_port  # noqa: E402

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(sys.platform == "win32", reason="needs SIGKILL"),
]

ROOT = Path(__file__).resolve().parents[2]
MODULE = ROOT / "benchmarks" / "load_module.py"
DATABASE = "crash"
CLIENTS = 4
IN_FLIGHT = 16  # calls each client keeps in flight
SHARED_ROW = 0  # every client bumps it too, so concurrent updates of one row are covered
LOAD_SECONDS = 3.0  # how long a round's load would run; the kill comes in its middle third

# Runs the CLI in the server process, after optional fault injection (see the module docstring).
SERVER = r"""
import os, sys, threading, time
from spacetime_game.server import _wal

if os.environ.get("CRASH_TEST_POWER_LOSS"):
    class VolatileCacheOs:
        '''os for the commit log: writes stay in this process until fsync, as in a volatile disk cache,
        and a flush takes 30 ms (a slow disk), so a kill often lands while records are written but not
        yet durable.'''

        def __init__(self, real):
            self._real = real
            self._cache = {}
            self._lock = threading.Lock()

        def __getattr__(self, name):
            return getattr(self._real, name)

        def write(self, fd, data):
            with self._lock:
                self._cache.setdefault(fd, bytearray()).extend(data)
            return len(data)

        def _flush(self, fd):
            time.sleep(0.03)
            with self._lock:
                data = self._cache.pop(fd, b"")
            view = memoryview(bytes(data))
            while view:
                view = view[self._real.write(fd, view):]

        def fdatasync(self, fd):
            self._flush(fd)
            self._real.fdatasync(fd)

        def fsync(self, fd):
            self._flush(fd)
            self._real.fsync(fd)

        def ftruncate(self, fd, length):
            with self._lock:
                self._cache.pop(fd, None)
            self._real.ftruncate(fd, length)

        def close(self, fd):
            self._flush(fd)
            self._real.close(fd)

    _wal.os = VolatileCacheOs(os)

if os.environ.get("CRASH_TEST_ACK_BEFORE_FSYNC"):  # a deliberately broken server
    _append = _wal.CommitLog.append

    def append(self, record, on_durable=None):
        seq = _append(self, record, None)
        if on_durable is not None:
            on_durable(seq)  # "durable" before the writer thread has written or flushed it
        return seq

    _wal.CommitLog.append = append

from spacetime_game.cli import main
sys.exit(main(sys.argv[1:]))
"""


class Server:
    """The dev server in a child process."""

    def __init__(self, data_dir: Path, env: dict[str, str]) -> None:
        self.port = free_port()
        self.log = data_dir.parent / f"server-{self.port}.log"
        args = [
            "serve",
            str(MODULE),
            "--database",
            DATABASE,
            "--port",
            str(self.port),
            "--data-dir",
            str(data_dir),
        ]
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", SERVER, *args],
                stdout=log,
                stderr=log,
                cwd=ROOT,
                env={**os.environ, **env},
            )
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.kill()
                    pytest.fail(f"the server did not start:\n{self.log.read_text(errors='replace')}")
                time.sleep(0.03)

    def values(self) -> dict[int, int]:
        """``counter``: id -> value, by SQL over HTTP."""
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/v1/database/{DATABASE}/sql",
            data=b"SELECT * FROM counter",
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            result = json.loads(response.read())
        return {row[0]: row[1] for row in result[0]["rows"]}

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()


@dataclass
class Tally:
    """Per row: bump calls sent, and calls acknowledged (ReducerResult Ok received)."""

    sent: Counter[int] = field(default_factory=Counter)
    acked: Counter[int] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    ended_before_kill: int = 0  # clients whose load had stopped before the kill (should be none)


async def _client(url: str, own_row: int, tally: Tally, stop: asyncio.Event, rng: random.Random) -> None:
    pending: dict[int, int] = {}  # request id -> row
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(url, protocols=(PROTOCOL_V2,), max_msg_size=0, heartbeat=None)
        room = asyncio.Semaphore(IN_FLIGHT)
        request_id = 0

        async def send() -> None:
            nonlocal request_id
            while not stop.is_set():
                await room.acquire()
                if stop.is_set() or ws.closed:
                    return
                request_id += 1
                row = rng.choice((own_row, SHARED_ROW))
                pending[request_id] = row
                tally.sent[row] += 1  # counted as sent before it can reach the server
                try:
                    await ws.send_bytes(
                        encode_client_frame(CallReducer(request_id, 0, "bump", struct.pack("<I", row)))
                    )
                except (ConnectionError, RuntimeError):
                    return

        sender = asyncio.get_running_loop().create_task(send())
        # read until the connection drops: acknowledgements already sent by the server still count
        async for msg in ws:
            if msg.type != aiohttp.WSMsgType.BINARY:
                break
            for m in decode_server_frame(msg.data, PROTOCOL_V2):
                if isinstance(m, ReducerResult):
                    row = pending.pop(m.request_id)
                    if isinstance(m.result, ReducerOk):
                        tally.acked[row] += 1
                    else:
                        tally.errors.append(repr(m.result))
                    room.release()
        stop.set()
        room.release()
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sender


async def _load_and_kill(server: Server, tally: Tally, rng: random.Random) -> None:
    url = f"ws://127.0.0.1:{server.port}/v1/database/{DATABASE}/subscribe?compression=None"
    stop = asyncio.Event()
    clients = [
        asyncio.get_running_loop().create_task(_client(url, 1 + i, tally, stop, random.Random(rng.random())))
        for i in range(CLIENTS)
    ]
    await asyncio.sleep(rng.uniform(LOAD_SECONDS / 3, 2 * LOAD_SECONDS / 3))
    tally.ended_before_kill += sum(task.done() for task in clients)
    server.proc.send_signal(signal.SIGKILL)  # in the middle of the load: every client is still sending
    await asyncio.wait_for(asyncio.gather(*clients), 30)
    server.proc.wait(30)


def _round(data_dir: Path, env: dict[str, str], tally: Tally, rng: random.Random) -> Server:
    """Start the server, load it, SIGKILL it mid-load; then start it again and return it."""
    server = Server(data_dir, env)
    try:
        before = sum(tally.acked.values())
        asyncio.run(_load_and_kill(server, tally, rng))
        assert not tally.errors, tally.errors[:3]
        assert sum(tally.acked.values()) - before >= 100, "too few calls acknowledged to test anything"
        assert tally.ended_before_kill == 0, "a client had stopped before the kill"
    finally:
        server.kill()
    return Server(data_dir, env)


def _lost_or_invented(values: dict[int, int], tally: Tally) -> list[str]:
    problems = []
    for row, value in sorted(values.items()):
        if value < tally.acked[row]:
            problems.append(f"row {row}: value {value} < {tally.acked[row]} acknowledged bumps (lost)")
        if value > tally.sent[row]:
            problems.append(f"row {row}: value {value} > {tally.sent[row]} bumps sent (invented)")
    return problems


@pytest.mark.parametrize("crash", ["process-kill", "power-loss"])
def test_acknowledged_calls_survive_sigkill(tmp_path: Path, crash: str) -> None:
    env = {"CRASH_TEST_POWER_LOSS": "1"} if crash == "power-loss" else {}
    data_dir = tmp_path / "data"
    tally = Tally()
    rng = random.Random(1234)
    for _ in range(2):  # the second round loads, and kills, a server that recovered from the first
        server = _round(data_dir, env, tally, rng)
        try:
            values = server.values()
        finally:
            server.stop()
        assert len(values) == 1000
        assert not _lost_or_invented(values, tally)
        assert all(values[row] == 0 for row in values if row not in tally.sent)
    assert sum(tally.acked.values()) >= 200


def test_the_check_catches_acknowledgement_before_fsync(tmp_path: Path) -> None:
    """The same check against a server that acknowledges before its commit log is flushed fails."""
    env = {"CRASH_TEST_POWER_LOSS": "1", "CRASH_TEST_ACK_BEFORE_FSYNC": "1"}
    rng = random.Random(99)
    for attempt in range(3):  # lost acknowledgements are near certain in one round; allow for bad luck
        tally = Tally()
        server = _round(tmp_path / f"data{attempt}", env, tally, rng)
        try:
            values = server.values()
        finally:
            server.stop()
        if any("lost" in problem for problem in _lost_or_invented(values, tally)):
            return
    pytest.fail("a server acknowledging before fsync went unnoticed in 3 rounds")
