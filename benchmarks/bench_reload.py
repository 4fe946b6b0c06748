"""What a save costs under `spacetime-game dev`: serving a new version of a module that holds many rows.

    python -m benchmarks.bench_reload            # 100,000 rows
    python -m benchmarks.bench_reload --quick    # 10,000 rows

Three ways to get the new module running, timed whole and measured in the same run (medians of 5):

* ``reload, reducers only``: ``DevServer.reload`` with the tables unchanged (rows re-decoded into the
  new module's classes; clients stay connected);
* ``reload, column added``: ``DevServer.reload`` with a column appended (every row migrated, a layout
  record written);
* ``restart`` (the baseline: what a developer did before ``dev``): stop the server and start a new one
  on the same data (replay of the commit log), as ``serve`` would after Ctrl-C.

Each result is checked: the row count, and a row's values, after the change.

Target: a reload of 100,000 rows takes less than the restart it replaces (ratio < 1).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from spacetime_game.server import DevServer
from tests._support import http_call as call
from tests._support import owner_sql as sql

MODULE = """
from typing import Annotated
from spacetime_game.server import ReducerContext, Identity, auto_inc, index, primary_key, reducer, table, u32

@table(public=True)
class Entity:
    id: Annotated[u32, primary_key, auto_inc]
    owner: Identity
    x: float
    y: float
    name: str
    hp: u32{extra}

@reducer
def fill(ctx: ReducerContext, n: u32) -> None:
    for i in range(n):
        ctx.db.entity.insert(Entity(0, ctx.sender, float(i), float(-i), f"e{{i}}", 100))
"""


def write(path: Path, extra: str = "", note: str = "") -> None:
    path.write_text(textwrap.dedent(MODULE.format(extra=extra)) + note)


def count(server: DevServer) -> int:
    return int(sql(server, "SELECT COUNT(*) AS n FROM entity")[0][0])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="10,000 rows, 3 rounds")
    args = p.parse_args(argv)
    rows, rounds = (10_000, 3) if args.quick else (100_000, 5)
    times: dict[str, list[float]] = {"reload, reducers only": [], "reload, column added": [], "restart": []}
    for r in range(rounds):
        with tempfile.TemporaryDirectory() as tmp:
            module, data = Path(tmp) / "m.py", Path(tmp) / "data"
            write(module)
            server = DevServer(module, "bench", data_dir=data).start_in_thread()
            try:
                for _ in range(rows // 10_000):
                    call(server, "fill", 10_000)
                assert count(server) == rows
                write(module, note=f"\n# round {r}\n")
                t0 = time.perf_counter()
                update = server.reload(module)
                times["reload, reducers only"].append(time.perf_counter() - t0)
                assert not update.tables_changed and count(server) == rows
                write(module, extra="\n    level: u32 = 7")
                t0 = time.perf_counter()
                update = server.reload(module)
                times["reload, column added"].append(time.perf_counter() - t0)
                assert update.tables_changed and count(server) == rows
                assert sql(server, "SELECT * FROM entity WHERE id = 5")[0][-1] == 7
            finally:
                server.close()
            t0 = time.perf_counter()  # the baseline: stop and start again on the data
            server = DevServer(module, "bench", data_dir=data).start_in_thread()
            times["restart"].append(time.perf_counter() - t0)
            try:
                assert count(server) == rows
                assert sql(server, "SELECT * FROM entity WHERE id = 5")[0][-1] == 7
            finally:
                server.close()
    restart = statistics.median(times["restart"])
    print(f"{rows:,} rows, median of {rounds} rounds")
    print(f"{'':24} {'median':>10} {'vs restart':>11}")
    ok = True
    for name, values in times.items():
        m = statistics.median(values)
        print(f"{name:24} {m * 1000:8.0f} ms {m / restart:10.2f}x")
        if name.startswith("reload") and m >= restart:
            ok = False
    print("target (each reload < restart):", "pass" if ok else "FAIL")
    return 0 if ok or args.quick else 1


if __name__ == "__main__":
    sys.exit(main())
