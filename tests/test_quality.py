"""Lint, format and strict typing are part of the suite."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests._support import tool

ROOT = Path(__file__).resolve().parent.parent


def test_ruff_lint_and_format() -> None:
    for args in (["check", "."], ["format", "--check", "."]):
        proc = subprocess.run([tool("ruff"), *args], cwd=ROOT, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout + proc.stderr


def test_mypy_strict_on_sdk() -> None:
    proc = subprocess.run([tool("mypy")], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_benchmark_runs_quick() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_protocol", "--quick", "--no-check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "rows/s" in proc.stdout and "us per call" in proc.stdout


def test_the_comparison_with_the_typescript_sdk_runs_and_checks_its_results(tmp_path: Path) -> None:
    """`python -m benchmarks.compare --quick`: this SDK, the TypeScript SDK and the original Python SDK
    (PyPI 0.7.0, in a venv the runner makes) apply the same rows (N = 1,000, one round) and every final cache
    is checked; the speed is not judged here (docs/performance.md holds the figures)."""
    out = tmp_path / "performance.md"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.compare", "--quick", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = out.read_text()
    for shape in ("fixed, shared ids", "fixed, distinct ids", "variable"):
        assert text.count(f"| 1,000 | {shape} |") == 2  # beside TypeScript, and beside 0.7
    assert "PyPI `spacetimedb-sdk` 0.7.0" in text


def test_the_original_sdk_run_fails_on_a_wrong_final_state(tmp_path: Path) -> None:
    """The 0.7 contender's harness checks its final cache: the same messages with an expected checksum one
    off make it fail (so a wrong decode or a lost update could not pass as a fast run)."""
    from benchmarks.compare import SDK07_SCRIPT, sdk07_python

    frames = tmp_path / "frames.jsonl"
    gen = [sys.executable, str(SDK07_SCRIPT), "frames", "variable", "200", "3", str(frames)]
    subprocess.run(gen, check=True, cwd=ROOT)
    run = [str(sdk07_python()), str(SDK07_SCRIPT), "run", str(frames)]
    good = subprocess.run(run, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert good.returncode == 0, good.stdout + good.stderr
    assert '"ok": true' in good.stdout
    head, rest = frames.read_text().split("\n", 1)
    expected = json.loads(head)
    expected["checksum"] += 1
    frames.write_text(json.dumps(expected) + "\n" + rest)
    bad = subprocess.run(run, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1 and '"ok": false' in bad.stdout
