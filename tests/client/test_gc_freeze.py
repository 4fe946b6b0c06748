"""DbConnection(gc_freeze=True): cached rows leave the collector's reach, so a full collection no longer
traverses them. Run in a child process: a freeze is process-wide, and this test process must not be frozen."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent(
    """
    import gc, json, sys, tempfile, time
    from pathlib import Path
    sys.path.insert(0, {root!r})
    from benchmarks.compare import _bindings
    from tests._support import QueueTransport
    from spacetime_game.sdk import ConnectionId, DbConnection, Identity, TransportMessage
    from spacetime_game.sdk.protocol import (
        BsatnRowList, InitialConnection, QueryRows, SingleTableRows, SubscribeApplied,
    )

    freeze = sys.argv[1] == "on"
    mb = _bindings(Path(tempfile.mkdtemp()))
    codec = mb.MODULE.table("entity").codec
    rows = [codec.encode(mb.Entity(i, Identity.from_int(i + 1), 1.0, 2.0, 3)) for i in range(30_000)]
    t = QueueTransport()
    conn = DbConnection(mb.MODULE, "m:1", "b", transport_factory=lambda u, k: t, reconnect=False,
                        gc_freeze=freeze)
    conn.connect()
    t.events.put(TransportMessage(InitialConnection(Identity.from_int(7), ConnectionId.from_int(1), "t")))
    conn.update()
    conn.subscribe_multi(["SELECT * FROM entity"])
    t.events.put(TransportMessage(
        SubscribeApplied(1, 1, QueryRows((SingleTableRows("entity", BsatnRowList.from_rows(rows)),)))))
    conn.update()
    assert conn.count_rows("entity") == 30_000
    frozen = gc.get_freeze_count()
    tracked = sum(len(gc.get_objects(g)) for g in range(3))
    t0 = time.perf_counter(); gc.collect(); full = time.perf_counter() - t0
    print(json.dumps({{"frozen": frozen, "tracked": tracked, "full_ms": full * 1000}}))
    """
)


def run(mode: str) -> dict[str, float]:
    import json

    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(root=str(ROOT)), mode],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_gc_freeze_moves_the_cached_rows_out_of_the_collections() -> None:
    off, on = run("off"), run("on")
    assert off["frozen"] == 0  # the default changes nothing
    assert on["frozen"] >= 30_000  # the rows (and what else was alive) are in the permanent generation
    assert on["tracked"] < off["tracked"] - 25_000  # a full collection has that much less to traverse
