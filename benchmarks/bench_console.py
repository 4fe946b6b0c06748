"""What an open dev console costs the game: `python -m benchmarks.bench_console`.

    python -m benchmarks.bench_console                 # 3 rounds of 2 x 8 s, about a minute
    python -m benchmarks.bench_console --quick         # 1 round of 2 x 3 s: checks, does not judge speed

The server and the load are bench_server's: ``spacetime-game serve benchmarks/load_module.py`` in its own
process (durable, fsync on), and 32 clients subscribed to ``SELECT * FROM counter`` (1,000 rows), each
bumping its own row at 20 calls/s, open loop (640 transactions/s). Each round measures the reducer round
trip (send -> ReducerResult) once with no console and once with a console open (signed in with the login
link the server printed, showing the ``counter`` table's first page, which every bump changes, and reading
every push), in alternating order. The figures are the medians over the rounds of each round's p50 and p99.

Target (issue #15): with the console open, the p99 stays within 10% of the p99 without it. Checked: every
call is answered, and the console received reducer calls and pages of the table while open.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from benchmarks.bench_server import (
    PROTOCOL_V2,
    Client,
    ServerProcess,
    Stats,
    connect_clients,
    drain,
    pct,
    send_open_loop,
)

TARGET_RATIO = 1.10
_CONSOLE_URL = re.compile(r"dev console \(for you only: the link signs you in\): (\S+)")


class Console:
    """A console page's traffic: signed in by the login link, viewing a table, reading every push."""

    def __init__(self) -> None:
        self.pushes = 0
        self.bytes = 0
        self.calls = 0
        self.pages = 0
        self.session: aiohttp.ClientSession | None = None
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.reader: asyncio.Task[None] | None = None

    async def open(self, login_url: str, table: str) -> None:
        base = login_url.split("/_console/")[0]
        self.session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        async with self.session.get(login_url, allow_redirects=False) as resp:
            if resp.status != 303:
                raise RuntimeError(f"console login: HTTP {resp.status}")
        self.ws = await self.session.ws_connect(base + "/_console/ws", headers={"Origin": base})
        await self.ws.send_str(json.dumps({"view": {"table": table, "offset": 0, "limit": 100}}))
        self.reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        assert self.ws is not None
        async for msg in self.ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
            self.pushes += 1
            self.bytes += len(msg.data)
            data = json.loads(msg.data)
            self.calls += len(data.get("calls", []))
            self.pages += "page" in data

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self.reader is not None:
            await asyncio.wait([self.reader], timeout=5)
        if self.session is not None:
            await self.session.close()


async def load(clients: list[Client], rate: float, seconds: float) -> tuple[float, float, int]:
    """Every client bumps its own row at ``rate`` calls/s for ``seconds`` (sends evenly interleaved);
    returns p50 and p99 of the round trips (seconds) and how many calls went unanswered."""
    for c in clients:
        c.stats = Stats()
    await send_open_loop(clients, rate, seconds)
    missing = await drain(clients, 15)
    lat = sorted(x for c in clients for x in c.stats.latencies)
    return pct(lat, 50), pct(lat, 99), missing


async def run(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(dir=".") as tmp_name:
        tmp = Path(tmp_name)
        server = ServerProcess(tmp / "data", tmp / "server.log").start()
        try:
            deadline = time.perf_counter() + 10
            login = None
            while login is None and time.perf_counter() < deadline:
                found = _CONSOLE_URL.findall(server.log_path.read_text(errors="replace"))
                login = found[-1] if found else None
                if login is None:
                    await asyncio.sleep(0.05)
            if login is None:
                raise RuntimeError(f"the server printed no console link:\n{server.log_tail()}")
            async with aiohttp.ClientSession() as session:
                clients = await connect_clients(session, server.ws_url, args.clients, PROTOCOL_V2)
                await load(clients, args.rate, 1.0)  # warm up
                results: dict[str, list[tuple[float, float]]] = {"closed": [], "open": []}
                problems: list[str] = []
                for r in range(args.rounds):
                    for mode in ("closed", "open") if r % 2 == 0 else ("open", "closed"):
                        console = Console() if mode == "open" else None
                        if console is not None:
                            await console.open(login, "counter")
                        p50, p99, missing = await load(clients, args.rate, args.seconds)
                        if console is not None:
                            await asyncio.sleep(0.6)  # the last push
                            await console.close()
                            if not (console.calls and console.pages):
                                problems.append(
                                    f"round {r + 1}: the console saw {console.calls} calls, {console.pages} pages"
                                )
                            extra = f"; console: {console.pushes} pushes, {console.bytes / 1024:.0f} KiB, {console.calls} calls"
                        else:
                            extra = ""
                        if missing:
                            problems.append(f"round {r + 1} ({mode}): {missing} calls unanswered")
                        results[mode].append((p50, p99))
                        print(
                            f"round {r + 1}/{args.rounds}, console {mode:>6}: p50 {p50 * 1e3:.2f} ms, p99 {p99 * 1e3:.2f} ms{extra}",
                            flush=True,
                        )
                for c in clients:
                    await c.close()
        finally:
            server.stop()
    med = {
        m: (statistics.median(x[0] for x in v), statistics.median(x[1] for x in v))
        for m, v in results.items()
    }
    ratio = med["open"][1] / med["closed"][1]
    print(
        f"\n{args.clients} clients x {args.rate:g} calls/s, {args.rounds} rounds of {args.seconds:g} s, medians:\n"
        f"  console closed: p50 {med['closed'][0] * 1e3:.2f} ms, p99 {med['closed'][1] * 1e3:.2f} ms\n"
        f"  console open:   p50 {med['open'][0] * 1e3:.2f} ms, p99 {med['open'][1] * 1e3:.2f} ms\n"
        f"  p99 open / closed: {ratio:.2f} (target <= {TARGET_RATIO:.2f})"
    )
    for p in problems:
        print(f"  ! {p}")
    if problems:
        return 1
    if args.quick:
        return 0
    return 0 if ratio <= TARGET_RATIO else 1


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="one round of 3 s: check, do not judge the speed")
    p.add_argument("--clients", type=int, default=32)
    p.add_argument("--rate", type=float, default=20.0)
    p.add_argument("--seconds", type=float, help="seconds per measurement (default 8; 3 with --quick)")
    p.add_argument("--rounds", type=int, help="rounds (default 3; 1 with --quick)")
    args: Any = p.parse_args(argv)
    args.seconds = args.seconds or (3.0 if args.quick else 8.0)
    args.rounds = args.rounds or (1 if args.quick else 3)
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
