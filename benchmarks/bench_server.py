"""Dev-server benchmark: cold start, round-trip latency under a subscribed load, and maximum throughput.

    python -m benchmarks.bench_server                  # about 40 s
    python -m benchmarks.bench_server --quick          # about 20 s, for a smoke run
    python -m benchmarks.bench_server --clients 32 --rate 20 --seconds 10 --no-check
    python -m benchmarks.bench_server --server-profile /tmp/server.prof   # cProfile the server process

The server runs in its own process (``spacetime-game serve benchmarks/load_module.py --data-dir <tmp>``:
durable, fsync on); the load generator is this process, one asyncio loop with one aiohttp WebSocket per
client (v2.bsatn.spacetimedb, ``compression=None``). The module is ``benchmarks/load_module.py``: a table
``counter`` of 1,000 rows and a reducer ``bump(id)`` that adds 1 to one row.

1. Cold start: wall time from starting the server process to its first accepted TCP connection (a fresh
   data directory, so ``init`` seeds the table), and the server's own "ready in" figure, which starts
   counting only once the CLI has been imported. Target: <= 1 s from process start to accepting.
2. Main scenario: ``--clients`` clients each subscribe to ``SELECT * FROM counter``, keep a cache of it
   keyed by primary key (every TransactionUpdate and the caller's own ReducerResult applied: deletes, then
   inserts, by row bytes) and call ``bump`` on their own row at ``--rate`` calls/s (open loop, the sends of
   all clients evenly interleaved) for ``--seconds``. Round trip: send -> that call's ReducerResult.
   Targets: p50 <= 5 ms, p99 <= 25 ms. Then the table is read back over a fresh subscription and every
   client's cache must equal it, no update may have deleted a row the cache did not hold or inserted over
   a cached key (a lost or repeated update), and each client's row must hold exactly its acknowledged
   bumps: OK or MISMATCH (a MISMATCH always exits 1, even with ``--no-check``).
3. Maximum sustained transactions/s, closed loop, with ``--clients`` subscribers (the same clients) and
   with 1: each client keeps K calls in flight and K doubles each step until two doublings in a row add
   less than 5% tx/s, or p99 > 100 ms; the figure is the best tx/s of a step with p99 <= 100 ms. Here
   clients count the TransactionUpdates of other clients' calls without decoding them (so the load
   generator, which shares the machine, takes less CPU from the server).
4. Restart: the server is stopped (SIGTERM) and started again on the same data directory (replaying the
   whole commit log); the time to accepting and the table are checked against what was served before.

CPU use is printed for the server process, the load process and all other processes on the machine
(each as % of one core): the latency figures only mean something when "other processes" is near 0.

Exit code 1 if a target is missed (``--no-check`` to only print). The data directory goes to a temporary
directory in ``--dir`` (default: the current directory; a tmpfs would make fsync free).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from spacetime_game.sdk.protocol import (
    PROTOCOL_V2,
    PROTOCOL_V3,
    CallReducer,
    InitialConnection,
    PersistentTableRows,
    ReducerOk,
    ReducerResult,
    Subscribe,
    SubscribeApplied,
    SubscriptionError,
    TransactionUpdate,
    decode_server_frame,
    encode_client_frame,
)
from tests._support import free_port

ROOT = Path(__file__).resolve().parent.parent
MODULE = ROOT / "benchmarks" / "load_module.py"
DATABASE = "bench"
QUERY = "SELECT * FROM counter"
ROWS = 1000

COLD_START_TARGET_S = 1.0
P50_TARGET_MS = 5.0
P99_TARGET_MS = 25.0
RAMP_P99_LIMIT_MS = 100.0

# v2 frames with compression None: byte 0 is the compression tag, byte 1 the ServerMessage tag
_TAG_TRANSACTION_UPDATE = 4
_ID = struct.Struct("<I")
_VALUE = struct.Struct("<Q")

# --------------------------------------------------------------------------------------------------
# the server process
# --------------------------------------------------------------------------------------------------


def serve_command(data_dir: Path, port: int, profile: Path | None = None) -> list[str]:
    """The command line of ``spacetime-game serve`` for the load module (optionally under cProfile)."""
    args = ["serve", str(MODULE), "--database", DATABASE, "--port", str(port), "--data-dir", str(data_dir)]
    if profile is not None:
        return [sys.executable, "-m", "cProfile", "-o", str(profile), "-m", "spacetime_game.cli._main", *args]
    script = Path(sys.executable).parent / "spacetime-game"
    if script.exists():
        return [str(script), *args]
    return [sys.executable, "-m", "spacetime_game.cli._main", *args]


class ServerProcess:
    """``spacetime-game serve`` in a child process; its stderr goes to a file."""

    def __init__(self, data_dir: Path, log_path: Path, profile: Path | None = None) -> None:
        self.data_dir = data_dir
        self.log_path = log_path
        self.profile = profile
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.accept_s = float("nan")  # process start -> first accepted TCP connection
        self.ready_ms = float("nan")  # the server's own "ready in" figure

    def start(self, timeout: float = 60.0) -> ServerProcess:
        cmd = serve_command(self.data_dir, self.port, self.profile)
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0  # the log may be shared
        with open(self.log_path, "ab") as log:
            t0 = time.perf_counter()
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=log, cwd=ROOT)
        deadline = t0 + timeout
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    break
            except OSError as exc:
                if self.proc.poll() is not None:
                    raise RuntimeError(
                        f"the server exited ({self.proc.returncode}):\n{self.log_tail()}"
                    ) from exc
                if time.perf_counter() > deadline:
                    raise RuntimeError(
                        f"the server did not start in {timeout} s:\n{self.log_tail()}"
                    ) from exc
                time.sleep(0.002)
        self.accept_s = time.perf_counter() - t0
        while time.perf_counter() < deadline:  # the "ready" line follows the listen() closely
            with open(self.log_path, "rb") as f:
                f.seek(offset)
                found = re.findall(r"ready in (\d+) ms", f.read().decode(errors="replace"))
            if found:
                self.ready_ms = float(found[-1])
                break
            time.sleep(0.005)
        return self

    def cpu_seconds(self) -> float:
        """User + system CPU time the server process has used (Linux; NaN elsewhere)."""
        try:
            fields = Path(f"/proc/{self.proc.pid if self.proc else 0}/stat").read_text().rsplit(")", 1)[1]
            utime, stime = fields.split()[11:13]
            return (int(utime) + int(stime)) / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError):
            return float("nan")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def log_tail(self, n: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/v1/database/{DATABASE}/subscribe?compression=None"


# --------------------------------------------------------------------------------------------------
# the load generator's clients
# --------------------------------------------------------------------------------------------------


@dataclass
class Pending:
    sent: float
    waiter: asyncio.Future[None] | None = None


@dataclass
class Stats:
    latencies: list[float] = field(default_factory=list)  # seconds, per acknowledged call
    done_at: list[float] = field(default_factory=list)  # perf_counter() of each acknowledgement
    ok: int = 0
    failed: int = 0


class Client:
    """One WebSocket client with a subscription cache, on the shared asyncio loop."""

    def __init__(self, index: int, protocol: str) -> None:
        self.index = index
        self.protocol = protocol
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.cache: dict[bytes, bytes] = {}  # primary key bytes (u32 LE) -> row bytes
        self.anomalies: list[str] = []  # a delete of a row not cached, an insert over a cached key
        self.pending: dict[int, Pending] = {}
        self.stats = Stats()
        self.sent = 0
        self.next_request = 0
        self.light = False  # count other clients' TransactionUpdates without decoding them
        self.updates_seen = 0
        self.applied: asyncio.Future[None] | None = None
        self.initial: asyncio.Future[None] | None = None
        self.reader: asyncio.Task[None] | None = None
        self.closed_reason: str | None = None

    async def connect(self, session: aiohttp.ClientSession, url: str) -> None:
        loop = asyncio.get_running_loop()
        self.initial = loop.create_future()
        self.ws = await session.ws_connect(
            url, protocols=(self.protocol,), max_msg_size=0, autoping=True, heartbeat=None, compress=0
        )
        self.reader = loop.create_task(self._read())
        await asyncio.wait_for(self.initial, 30)

    async def subscribe(self) -> None:
        assert self.ws is not None
        self.applied = asyncio.get_running_loop().create_future()
        self.next_request += 1
        await self.ws.send_bytes(
            encode_client_frame(Subscribe(self.next_request, 1, (QUERY,)), self.protocol)
        )
        await asyncio.wait_for(self.applied, 30)

    async def call_bump(self, row: int, waiter: asyncio.Future[None] | None = None) -> None:
        assert self.ws is not None
        self.next_request += 1
        rid = self.next_request
        frame = encode_client_frame(CallReducer(rid, 0, "bump", _ID.pack(row)), self.protocol)
        self.pending[rid] = Pending(time.perf_counter(), waiter)
        self.sent += 1
        await self.ws.send_bytes(frame)

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self.reader is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self.reader, 5)

    # ----- receiving ---------------------------------------------------------------------------------
    async def _read(self) -> None:
        assert self.ws is not None
        try:
            while True:
                msg = await self.ws.receive()
                if msg.type != aiohttp.WSMsgType.BINARY:
                    if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
                        self.closed_reason = f"closed by the server: {msg.data} {msg.extra}"
                    elif msg.type == aiohttp.WSMsgType.ERROR:
                        self.closed_reason = f"error: {msg.data}"
                    return
                data: bytes = msg.data
                if (
                    self.light
                    and self.protocol == PROTOCOL_V2
                    and data[0] == 0
                    and data[1] == _TAG_TRANSACTION_UPDATE
                ):
                    self.updates_seen += 1
                    continue
                for m in decode_server_frame(data, self.protocol):
                    self._on_message(m)
        except Exception as exc:  # surfaces in the report rather than as a stray traceback
            self.closed_reason = f"reader failed: {type(exc).__name__}: {exc}"
        finally:
            for p in self.pending.values():
                if p.waiter is not None and not p.waiter.done():
                    p.waiter.set_result(None)

    def _on_message(self, m: Any) -> None:
        if isinstance(m, ReducerResult):
            now = time.perf_counter()
            p = self.pending.pop(m.request_id, None)
            if p is None:
                self.anomalies.append(f"ReducerResult for unknown request {m.request_id}")
                return
            if isinstance(m.result, ReducerOk):
                self.stats.ok += 1
                self.stats.latencies.append(now - p.sent)
                self.stats.done_at.append(now)
                self._apply(m.result.transaction_update)
            else:
                self.stats.failed += 1
            if p.waiter is not None and not p.waiter.done():
                p.waiter.set_result(None)
        elif isinstance(m, TransactionUpdate):
            self.updates_seen += 1
            self._apply(m)
        elif isinstance(m, SubscribeApplied):
            self.cache = {}
            for t in m.rows.tables:
                for row in t.rows.rows():
                    self.cache[row[:4]] = row
            if self.applied is not None and not self.applied.done():
                self.applied.set_result(None)
        elif isinstance(m, InitialConnection):
            if self.initial is not None and not self.initial.done():
                self.initial.set_result(None)
        elif isinstance(m, SubscriptionError) and self.applied is not None and not self.applied.done():
            self.applied.set_exception(RuntimeError(f"subscription failed: {m.error}"))

    def _apply(self, tu: TransactionUpdate) -> None:
        cache = self.cache
        for qs in tu.query_sets:
            for table in qs.tables:
                for rows in table.rows:
                    if not isinstance(rows, PersistentTableRows):
                        continue
                    for row in rows.deletes.rows():
                        key = row[:4]
                        if cache.get(key) != row:
                            self.anomalies.append(f"delete of a row not in the cache: {row.hex()}")
                        else:
                            del cache[key]
                    for row in rows.inserts.rows():
                        key = row[:4]
                        if key in cache:
                            self.anomalies.append(f"insert over a cached row: {row.hex()}")
                        cache[key] = row


async def connect_clients(
    session: aiohttp.ClientSession, url: str, n: int, protocol: str, first_index: int = 0
) -> list[Client]:
    clients = [Client(first_index + i, protocol) for i in range(n)]
    await asyncio.gather(*(c.connect(session, url) for c in clients))
    await asyncio.gather(*(c.subscribe() for c in clients))
    return clients


async def read_table(session: aiohttp.ClientSession, url: str, protocol: str) -> dict[bytes, bytes]:
    """The served table, by a fresh subscription."""
    c = Client(-1, protocol)
    await c.connect(session, url)
    await c.subscribe()
    table = dict(c.cache)
    await c.close()
    return table


async def drain(clients: Sequence[Client], timeout: float) -> int:
    """Wait until every sent call has its ReducerResult; returns how many are still missing."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        missing = sum(len(c.pending) for c in clients if c.closed_reason is None)
        if missing == 0:
            return 0
        await asyncio.sleep(0.01)
    return sum(len(c.pending) for c in clients)


# --------------------------------------------------------------------------------------------------
# figures
# --------------------------------------------------------------------------------------------------


def pct(sorted_values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of sorted values (NaN if empty)."""
    if not sorted_values:
        return float("nan")
    k = max(0, min(len(sorted_values) - 1, math.ceil(p / 100 * len(sorted_values)) - 1))
    return sorted_values[k]


def ms(x: float) -> str:
    return f"{x * 1e3:7.2f}"


def machine_busy_seconds() -> float:
    """CPU seconds all processes on the machine have used (every core; Linux; NaN elsewhere)."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
        user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
        return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return float("nan")


class CpuMeter:
    """CPU used over an interval by the server process, this (load) process and everything else, each
    as a fraction of one core. The machine is shared: "others" shows what else competed for its cores."""

    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        self.start()

    def start(self) -> None:
        self.t0 = time.perf_counter()
        self.s0 = self.server.cpu_seconds()
        self.o0 = time.process_time()
        self.m0 = machine_busy_seconds()

    def stop(self) -> tuple[float, float, float]:
        wall = time.perf_counter() - self.t0
        server = (self.server.cpu_seconds() - self.s0) / wall
        own = (time.process_time() - self.o0) / wall
        others = (machine_busy_seconds() - self.m0) / wall - server - own
        return server, own, max(others, 0.0)

    def describe(self) -> str:
        server, own, others = self.stop()
        return (
            f"server process {server * 100:.0f}%, load process {own * 100:.0f}%, other processes "
            f"{others * 100:.0f}% (% of one core; {os.cpu_count()} cores)"
        )


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    correctness: bool = False  # a correctness check fails the run even with --no-check
    info: bool = False  # a figure without a target


# --------------------------------------------------------------------------------------------------
# scenarios
# --------------------------------------------------------------------------------------------------


def cold_start(tmp: Path, runs: int) -> tuple[list[ServerProcess], list[Check]]:
    print(f"1. cold start ({runs} runs, fresh data directory each; the server's init seeds {ROWS} rows)")
    servers = []
    for i in range(runs):
        s = ServerProcess(tmp / f"cold{i}", tmp / f"cold{i}.log")
        try:
            s.start()
        finally:
            s.stop()
        servers.append(s)
        print(
            f"   run {i + 1}: process start -> accepting {s.accept_s * 1e3:6.0f} ms   "
            f"(server's own 'ready in': {s.ready_ms:.0f} ms)"
        )
    worst = max(s.accept_s for s in servers)
    return servers, [
        Check(
            "cold start (process start -> accepting)",
            worst <= COLD_START_TARGET_S,
            f"worst {worst * 1e3:.0f} ms, target <= {COLD_START_TARGET_S * 1e3:.0f} ms",
        )
    ]


async def send_open_loop(
    clients: Sequence[Client], rate: float, seconds: float, lags: list[float] | None = None
) -> None:
    """Every client bumps its own row at ``rate`` calls/s for ``seconds`` (open loop: on schedule whatever
    the answers do), the sends of all clients evenly interleaved; ``lags`` gets how late each send was."""
    loop = asyncio.get_running_loop()
    n = len(clients)
    interval = 1.0 / rate
    start = loop.time() + 0.2
    end = start + seconds

    async def sender(c: Client) -> None:
        k = 0
        phase = c.index * interval / n  # all clients' sends evenly interleaved
        while True:
            due = start + phase + k * interval
            if due >= end:
                return
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            if lags is not None:
                lags.append(loop.time() - due)
            await c.call_bump(c.index)
            k += 1

    await asyncio.gather(*(sender(c) for c in clients))


async def main_scenario(
    session: aiohttp.ClientSession,
    server: ServerProcess,
    clients: list[Client],
    rate: float,
    seconds: float,
    protocol: str,
) -> list[Check]:
    n = len(clients)
    print(
        f"2. main scenario: {n} clients subscribed to '{QUERY}' ({ROWS} rows), each bumping its own row "
        f"at {rate:g} calls/s for {seconds:g} s = {n * rate:g} tx/s offered (open loop)"
    )
    initial = {c.index: _VALUE.unpack_from(c.cache[_ID.pack(c.index)], 4)[0] for c in clients}
    lags: list[float] = []
    meter = CpuMeter(server)
    await send_open_loop(clients, rate, seconds, lags)
    missing = await drain(clients, 15)
    cpu = meter.describe()
    lat = sorted(x for c in clients for x in c.stats.latencies)
    sent = sum(c.sent for c in clients)
    ok = sum(c.stats.ok for c in clients)
    failed = sum(c.stats.failed for c in clients)
    lags.sort()
    print(
        f"   calls sent {sent}, acknowledged Ok {ok}, failed {failed}, unanswered {missing}; "
        f"achieved {ok / seconds:.0f} tx/s"
    )
    print(
        f"   round trip ms: p50 {ms(pct(lat, 50))}  p95 {ms(pct(lat, 95))}  p99 {ms(pct(lat, 99))}  "
        f"max {ms(lat[-1] if lat else float('nan'))}"
    )
    print(
        f"   load generator send lag behind schedule ms: p50 {ms(pct(lags, 50))}  p99 {ms(pct(lags, 99))}  "
        f"max {ms(lags[-1] if lags else float('nan'))}"
    )
    print(f"   CPU: {cpu}")
    closed = [f"client {c.index}: {c.closed_reason}" for c in clients if c.closed_reason]
    for line in closed[:5]:
        print(f"   ! {line}")

    # consistency: every cache equals the served table, every row holds exactly its acknowledged bumps
    table = await read_table(session, server.ws_url, protocol)
    deadline = time.perf_counter() + (10 if not missing else 0)
    while time.perf_counter() < deadline and any(c.cache != table for c in clients):
        await asyncio.sleep(0.05)  # TransactionUpdates of the last calls may still be on their way
    problems: list[str] = []
    for c in clients:
        if c.cache != table:
            differ = sorted({*c.cache, *table} - {k for k in c.cache if c.cache.get(k) == table.get(k)})
            problems.append(
                f"client {c.index}: cache differs from the table in {len(differ)} row(s), e.g. id "
                f"{_ID.unpack(differ[0])[0]}: cache {c.cache.get(differ[0], b'').hex()} "
                f"table {table.get(differ[0], b'').hex()}"
            )
        if c.anomalies:
            problems.append(f"client {c.index}: {len(c.anomalies)} anomalies, first: {c.anomalies[0]}")
        row = table.get(_ID.pack(c.index))
        value = _VALUE.unpack_from(row, 4)[0] if row else None
        if value != initial[c.index] + c.stats.ok:
            problems.append(
                f"row {c.index}: value {value}, expected {initial[c.index]} + {c.stats.ok} acknowledged bumps"
            )
    if len(table) != ROWS:
        problems.append(f"the table has {len(table)} rows, not {ROWS}")
    if missing or failed or closed:
        problems.append(f"{missing} calls unanswered, {failed} failed, {len(closed)} clients closed")
    verdict = "OK" if not problems else "MISMATCH"
    print(
        f"   consistency ({n} client caches vs the served table, {ROWS} rows; values vs acknowledged "
        f"calls): {verdict}"
    )
    for line in problems[:10]:
        print(f"   ! {line}")
    return [
        Check(
            "round trip p50",
            pct(lat, 50) * 1e3 <= P50_TARGET_MS,
            f"{pct(lat, 50) * 1e3:.2f} ms, target <= {P50_TARGET_MS:g} ms",
        ),
        Check(
            "round trip p99",
            pct(lat, 99) * 1e3 <= P99_TARGET_MS,
            f"{pct(lat, 99) * 1e3:.2f} ms, target <= {P99_TARGET_MS:g} ms",
        ),
        Check("consistency", not problems, verdict, correctness=True),
    ]


@dataclass
class Step:
    in_flight: int
    tx_per_s: float
    p50: float
    p99: float
    server_cpu: float
    load_cpu: float
    other_cpu: float


async def closed_loop_step(
    clients: list[Client], per_client: int, seconds: float, server: ServerProcess
) -> Step:
    """Every client keeps ``per_client`` bump calls in flight for ``seconds``; the first 20% is warm-up."""
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    for c in clients:
        c.stats = Stats()

    async def slot(c: Client) -> None:
        while loop.time() < end and c.closed_reason is None:
            waiter = loop.create_future()
            await c.call_bump(c.index, waiter)
            await waiter

    t0 = time.perf_counter()
    warm = t0 + 0.2 * seconds
    meter = CpuMeter(server)

    async def mark_cpu() -> None:
        await asyncio.sleep(0.2 * seconds)
        meter.start()

    marker = loop.create_task(mark_cpu())
    await asyncio.gather(*(slot(c) for c in clients for _ in range(per_client)))
    t1 = time.perf_counter()
    cpu = meter.stop()
    await marker
    await drain(clients, 15)
    done = sum(1 for c in clients for t in c.stats.done_at if warm <= t <= t1)
    lat = sorted(
        x for c in clients for x, t in zip(c.stats.latencies, c.stats.done_at, strict=True) if warm <= t <= t1
    )
    return Step(per_client * len(clients), done / (t1 - warm), pct(lat, 50), pct(lat, 99), *cpu)


async def ramp(clients: list[Client], seconds: float, server: ServerProcess, label: str) -> str:
    """Double the calls in flight until tx/s stops rising or p99 passes the limit; the figure printed."""
    print(f"   {label}:")
    print(
        f"   {'in flight':>11} {'tx/s':>8} {'p50 ms':>8} {'p99 ms':>8}   CPU % of a core: "
        f"{'server':>6} {'load':>6} {'others':>6}"
    )
    for c in clients:
        c.light = True
    best = 0.0
    first: Step | None = None
    flat = 0
    per_client = 1
    while per_client <= 256:
        step = await closed_loop_step(clients, per_client, seconds, server)
        first = first or step
        closed = [c for c in clients if c.closed_reason]
        print(
            f"   {step.in_flight:>11} {step.tx_per_s:>8.0f} {ms(step.p50):>8} {ms(step.p99):>8} "
            f"{'':17} {step.server_cpu * 100:>6.0f} {step.load_cpu * 100:>6.0f} {step.other_cpu * 100:>6.0f}"
        )
        if closed:
            print(f"   ! {len(closed)} client(s) closed: {closed[0].closed_reason}")
            break
        if step.p99 * 1e3 > RAMP_P99_LIMIT_MS:
            break
        flat = 0 if step.tx_per_s > best * 1.05 else flat + 1
        best = max(best, step.tx_per_s)
        if flat == 2:  # two doublings without 5% more: the plateau (one flat step can be noise)
            break
        per_client *= 2
    for c in clients:
        c.light = False
    if best == 0.0 and first is not None:
        figure = (
            f"{first.tx_per_s:.0f} tx/s, but p99 {first.p99 * 1e3:.0f} ms > {RAMP_P99_LIMIT_MS:g} ms "
            f"already at {first.in_flight} in flight"
        )
    else:
        figure = f"{best:.0f} tx/s"
    print(f"   => max sustained: {figure}")
    return figure


async def run_load(
    args: argparse.Namespace, server: ServerProcess, protocol: str
) -> tuple[list[Check], dict[bytes, bytes]]:
    """Scenarios 2 and 3; returns their checks and the table as served at the end."""
    checks: list[Check] = []
    async with aiohttp.ClientSession() as session:
        t0 = time.perf_counter()
        clients = await connect_clients(session, server.ws_url, args.clients, protocol)
        print(
            f"   ({args.clients} clients connected and subscribed in {(time.perf_counter() - t0) * 1e3:.0f} ms)"
        )
        checks += await main_scenario(session, server, clients, args.rate, args.seconds, protocol)
        step = 1.0 if args.quick else 2.0
        print(
            f"3. maximum sustained tx/s, closed loop ({step:g} s per step, K calls in flight per client, "
            f"doubling until two doublings add < 5% tx/s or p99 > {RAMP_P99_LIMIT_MS:g} ms)"
        )
        best_many = await ramp(clients, step, server, f"{len(clients)} subscribers, each calling")
        for c in clients[1:]:
            await c.close()
        best_one = await ramp(clients[:1], step, server, "1 subscriber, calling")
        await clients[0].close()
        checks.append(Check("max sustained, 1 subscriber", True, best_one, info=True))
        checks.append(Check(f"max sustained, {len(clients)} subscribers", True, best_many, info=True))
        table = await read_table(session, server.ws_url, protocol)
    return checks, table


async def check_restart(server: ServerProcess, protocol: str, before: dict[bytes, bytes]) -> list[Check]:
    async with aiohttp.ClientSession() as session:
        table = await read_table(session, server.ws_url, protocol)
    same = table == before
    return [Check("restart keeps the table", same, "same" if same else "DIFFERENT", correctness=True)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=32, help="clients in the main scenario (default 32)")
    parser.add_argument("--rate", type=float, default=20.0, help="calls/s per client (default 20)")
    parser.add_argument(
        "--seconds", type=float, default=None, help="main scenario length (default 10, quick 3)"
    )
    parser.add_argument("--quick", action="store_true", help="shorter runs (under 30 s), for a smoke run")
    parser.add_argument("--no-check", action="store_true", help="only print: no exit 1 for a missed target")
    parser.add_argument("--protocol", choices=["v2", "v3"], default="v2", help="WebSocket subprotocol")
    parser.add_argument("--dir", type=Path, default=Path.cwd(), help="where the data directory goes")
    parser.add_argument("--server-profile", type=Path, help="run the server under cProfile, write stats here")
    args = parser.parse_args(argv)
    if args.seconds is None:
        args.seconds = 3.0 if args.quick else 10.0
    if not 1 <= args.clients <= ROWS:
        parser.error(f"--clients must be between 1 and {ROWS}")
    protocol = PROTOCOL_V2 if args.protocol == "v2" else PROTOCOL_V3
    t_start = time.perf_counter()
    checks: list[Check] = []
    with tempfile.TemporaryDirectory(prefix="bench_server-", dir=args.dir) as tmp_name:
        tmp = Path(tmp_name)
        print(
            f"dev server benchmark: module {MODULE.relative_to(ROOT)}, data in {tmp} (fsync on), "
            f"protocol {protocol}, compression None"
        )
        _, cold = cold_start(tmp, 1 if args.quick else 3)
        checks += cold
        server = ServerProcess(tmp / "data", tmp / "server.log", args.server_profile)
        server.start()
        print(
            f"   (load server: accepting after {server.accept_s * 1e3:.0f} ms, pid {server.proc.pid if server.proc else 0})"
        )
        try:
            more, before = asyncio.run(run_load(args, server, protocol))
            checks += more
        finally:
            server.stop()
        log_size = (tmp / "data" / "databases" / DATABASE / "commitlog.bin").stat().st_size
        print(f"4. restart on the same data directory (commit log {log_size / 1e6:.1f} MB)")
        again = ServerProcess(server.data_dir, tmp / "server.log")
        try:
            again.start()
            print(
                f"   process start -> accepting {again.accept_s * 1e3:.0f} ms (server's 'ready in' "
                f"{again.ready_ms:.0f} ms)"
            )
            checks += asyncio.run(check_restart(again, protocol, before))
        finally:
            again.stop()
        if args.server_profile:
            print(f"server profile written to {args.server_profile}")
        warnings = [
            ln
            for ln in (tmp / "server.log").read_text(errors="replace").splitlines()
            if " WARNING " in ln or " ERROR " in ln
        ]
        for ln in warnings[:5]:
            print(f"   server log: {ln}")
    print(f"summary ({time.perf_counter() - t_start:.0f} s):")
    for c in checks:
        print(f"   {'    ' if c.info else 'ok  ' if c.ok else 'MISS'} {c.name}: {c.detail}")
    if any(not c.ok and c.correctness for c in checks):
        return 1
    if not args.no_check and any(not c.ok for c in checks):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
