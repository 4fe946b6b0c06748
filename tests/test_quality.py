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
