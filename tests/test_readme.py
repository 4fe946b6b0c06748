"""The README opens with the demo command and the test command, and the test command is exactly what
CI runs."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return re.findall(r"```bash\n(.*?)\n```", text, flags=re.S)


def test_readme_opens_with_the_demo_and_the_test_command() -> None:
    commands = _readme_commands()
    assert len(commands) >= 2, "README needs the demo and the test command"
    demo, tests = commands[0].strip(), commands[1].strip()
    assert demo.startswith("python3 -m venv .venv && .venv/bin/pip install") and "'.[server]'" in demo
    script = demo.rsplit("&& .venv/bin/python ", 1)[1].split()[0]
    assert (ROOT / script).is_file(), f"the demo command runs {script}, which does not exist"
    assert "pytest" in tests and "pip install" in tests and "npm ci" in tests


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    tests = _readme_commands()[1].strip()
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert tests in [line.strip() for line in ci], "the README's test command must appear verbatim in .ci/run"
