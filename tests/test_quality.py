"""Lint, format and strict typing are part of the suite."""

from __future__ import annotations

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
    """`python -m benchmarks.compare --quick`: both SDKs apply the same frames (N = 1,000, one round) and
    every final cache is checked; the speed is not judged here (docs/performance.md holds the figures)."""
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
        assert f"| 1,000 | {shape} |" in text
