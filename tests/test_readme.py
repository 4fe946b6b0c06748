"""The README's test command is exactly what CI runs."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return re.findall(r"```bash\n(.*?)\n```", text, flags=re.S)


def test_readme_opens_with_the_test_command() -> None:
    commands = _readme_commands()
    assert commands, "README has no bash block"
    first = commands[0].strip()
    assert "pytest" in first and "pip install" in first and "npm ci" in first


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    first = _readme_commands()[0].strip()
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert first in [line.strip() for line in ci], "the README's test command must appear verbatim in .ci/run"
