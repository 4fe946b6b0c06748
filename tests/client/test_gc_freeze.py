"""DbConnection(gc_freeze=True): cached rows leave the collector's reach, so a full collection no longer
traverses them; and the engine's FrameDriver(gc_freeze="auto"), which turns it on once the connections cache
AUTO_GC_FREEZE_ROWS rows. Run in child processes: a freeze is process-wide, and this test process must not
be frozen."""

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

    from spacetime_game.engine import FrameDriver

    mode, n = sys.argv[1], int(sys.argv[2])
    freeze = mode == "on"
    mb = _bindings(Path(tempfile.mkdtemp()))
    codec = mb.MODULE.table("entity").codec
    rows = [codec.encode(mb.Entity(i, Identity.from_int(i + 1), 1.0, 2.0, 3)) for i in range(n)]
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
    assert conn.count_rows("entity") == n and conn.cached_rows == n
    if mode == "late":  # turned on after the load: the next update() freezes what is cached
        assert gc.get_freeze_count() == 0
        conn.gc_freeze = True
        conn.update()
    elif mode.startswith("driver"):  # driver-auto, driver-false, driver-true
        setting = {{"auto": "auto", "false": False, "true": True}}[mode.split("-")[1]]
        driver = FrameDriver(conn, gc_freeze=setting, connect=False)
        assert conn.gc_freeze is (setting is True)
        for _ in range(60):
            driver.tick(1 / 60)
    frozen = gc.get_freeze_count()
    tracked = sum(len(gc.get_objects(g)) for g in range(3))
    t0 = time.perf_counter(); gc.collect(); full = time.perf_counter() - t0
    print(json.dumps({{"frozen": frozen, "tracked": tracked, "full_ms": full * 1000, "on": conn.gc_freeze}}))
    """
)


def run(mode: str, rows: int = 30_000) -> dict[str, float]:
    import json

    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(root=str(ROOT)), mode, str(rows)],
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


def test_gc_freeze_turned_on_later_freezes_the_rows_already_cached() -> None:
    late = run("late")
    assert late["on"] and late["frozen"] >= 30_000


def test_the_frame_driver_turns_gc_freeze_on_once_the_cache_is_big() -> None:
    """FrameDriver's default, ``gc_freeze="auto"``: 30,000 cached rows (above AUTO_GC_FREEZE_ROWS) get frozen
    within its periodic check; 2,000 rows are left alone; ``False`` never turns it on, ``True`` at once."""
    from spacetime_game.engine import AUTO_GC_FREEZE_ROWS

    assert 2_000 < AUTO_GC_FREEZE_ROWS < 30_000
    big, small = run("driver-auto"), run("driver-auto", 2_000)
    assert big["on"] and big["frozen"] >= 30_000
    assert not small["on"] and small["frozen"] == 0
    off, on = run("driver-false"), run("driver-true")
    assert not off["on"] and off["frozen"] == 0
    assert on["on"] and on["frozen"] >= 30_000


def test_the_frame_driver_refuses_a_gc_freeze_setting_it_does_not_know() -> None:
    import pytest

    from spacetime_game.engine import FrameDriver

    with pytest.raises(ValueError, match='gc_freeze must be True, False or "auto"'):
        FrameDriver(gc_freeze="yes")  # type: ignore[arg-type]
