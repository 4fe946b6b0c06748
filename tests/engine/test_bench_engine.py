"""The engine benchmark runs: ``python -m benchmarks.bench_engine --quick`` completes (its correctness
checks raise when an entity ends away from the server's position, the loading progress goes down, or a
predicted input is lost) and prints a PASS or MISS line for every target, for the engine and for each
adapter rig (pygame, arcade; headless) that imports here. Whether the targets are met is
the benchmark's business, not this test's: timing on a shared machine is not a unit test."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

#: One line per target: (rig or subject, what) - the quick run measures the same sizes as the full one.
EXPECTED = [
    r"engine: mean <= 1 ms per frame at 1,000 entities",
    r"engine: median <= 1 ms per frame at 1,000 entities",
    r"engine: keeps up with 20 Hz at 1,000 entities",
    r"engine: mean <= 8 ms per frame at 10,000 entities",
    r"engine: median <= 8 ms per frame at 10,000 entities",
    r"engine: keeps up with 20 Hz at 10,000 entities",
    r"engine: no frame > 6 ms while 20,000 rows load",
    r"predicted position drawn on the next frame at 0 ms lag",
    r"predicted position drawn on the next frame at 150 ms lag",
]


def test_bench_engine_quick_completes_and_reports_every_target() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_engine", "--quick", "--no-check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    for section in (
        "stream: 1,000 entities",
        "stream: 10,000 entities",
        "loading: a 20,000-row",
        "prediction:",
    ):
        assert section in out, out
    # the baseline and the engine are both measured, side by side
    assert out.count("    SDK only (update, no sync) ") == 2, out
    assert len(re.findall(r"    engine .* x[\d.]+ the SDK's mean", out)) == 2, out
    # the floor (the engine's own placement of the sprites, plus the SDK) is measured for every rig
    floors = re.findall(
        r"    (\w+) +placement alone mean +([\d.]+) ms, median +[\d.]+; with the SDK +([\d.]+) ms: "
        r"(above|within) the (\d+) ms target",
        out,
    )
    assert [f[0] for f in floors].count("engine") == 2, out
    for name, alone, total, verdict, target in floors:
        assert 0 < float(alone) < float(total), (name, alone, total)
        assert (verdict == "above") == (float(total) > float(target)), (name, total, verdict, target)
    targets = out.split("\ntargets\n", 1)[1].splitlines()
    labels = []
    for line in targets:
        m = re.fullmatch(r"    (PASS|MISS)  (.+)", line)
        assert m, f"not a target line: {line!r}"
        labels.append(m.group(2))
    for pattern in EXPECTED:
        assert any(re.match(re.escape(pattern), label) for label in labels), (pattern, labels)
    # the adapters are measured beside the engine when they import (headless), or the report says why not
    for adapter in ("pygame", "arcade"):
        if re.search(rf"    {adapter}: not measured \(", out):
            continue
        assert len(re.findall(rf"    {adapter} .* x[\d.]+ the SDK's mean", out)) == 2, out
        assert [f[0] for f in floors].count(adapter) == 2, out
        for pattern in EXPECTED:
            if pattern.startswith("engine: "):
                mine = adapter + pattern[len("engine") :]
                assert any(re.match(re.escape(mine), label) for label in labels), (mine, labels)
