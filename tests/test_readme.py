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


# ---- the repository is self-contained: every file the docs and the code cite is in it ----------------------

DOCS = sorted((ROOT / "docs").glob("*.md"))
MARKDOWN = [ROOT / "README.md", *DOCS]
SOURCES = sorted(
    p
    for folder in ("spacetime_game", "tests", "benchmarks", "demos")
    for p in (ROOT / folder).rglob("*")
    if p.suffix in {".py", ".mjs", ".md"} and "node_modules" not in p.parts and p.is_file()
)

# a file of our flat docs/ folder (not `docs/docs/...`, a path in SpacetimeDB's repository)
DOCS_PATH = re.compile(r"(?<![\w/.-])docs/[\w-]+\.md\b")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
PROTOCOL_SECTION = re.compile(
    r"docs/protocol\.md,?\s+sections?\s+(\d+(?:\.\d+)?)(?:(?:,| and| to)\s+(\d+(?:\.\d+)?))?"
)


def _relative_links(text: str) -> list[str]:
    links = [m.group(1).split("#", 1)[0] for m in LINK.finditer(text)]
    return [link for link in links if link and not re.match(r"[a-z]+:", link)]


def test_docs_exist() -> None:
    assert {p.name for p in DOCS} >= {"architecture.md", "protocol.md", "limits.md", "owner.md"}


def test_markdown_links_and_cited_docs_exist() -> None:
    missing = []
    for md in MARKDOWN:
        text = md.read_text(encoding="utf-8")
        for link in _relative_links(text):
            if not (md.parent / link).exists():
                missing.append(f"{md.relative_to(ROOT)}: link {link}")
        for cited in DOCS_PATH.findall(text):
            if not (ROOT / cited).is_file():
                missing.append(f"{md.relative_to(ROOT)}: {cited}")
    assert not missing, f"cited files that are not in the repository: {missing}"


def test_readme_paths_exist() -> None:
    """Every repository path the README names in backquotes (``demos/chat/module.py``) exists."""
    tops = {p.name for p in ROOT.iterdir() if p.is_dir() and not p.name.startswith(".")}
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    cited = [
        t.rstrip("/") for t in re.findall(r"`([^`\s]+)`", text) if t.split("/", 1)[0] in tops and "/" in t
    ]
    assert cited, "the README names no repository path: has the pattern gone stale?"
    missing = [t for t in cited if not (ROOT / t).exists()]
    assert not missing, f"the README names paths that do not exist: {missing}"


def test_no_citation_leaves_the_repository() -> None:
    """Nothing points at the team's workspace (``../shared``), and the README and the code name a notes
    file by its path (``docs/protocol.md``), not by a bare name. (Within docs/, a bare name is a sibling.)"""
    bad = []
    for path in [*MARKDOWN, *SOURCES]:
        if path == Path(__file__).resolve():
            continue  # the patterns themselves
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if "shared/" in line and (
                "../shared" in line or "shared/specs" in line or "shared/reference" in line
            ):
                bad.append(f"{path.relative_to(ROOT)}:{n}")
            if path.parent != ROOT / "docs" and re.search(r"(?<![\w/])(protocol|design)\.md", line):
                bad.append(f"{path.relative_to(ROOT)}:{n}")
    assert not bad, f"citations of files outside the repository (cite docs/<file>.md instead): {bad}"


def _protocol_sections() -> set[str]:
    text = (ROOT / "docs" / "protocol.md").read_text(encoding="utf-8")
    return set(re.findall(r"^#{2,3} (\d+(?:\.\d+)?)[. ]", text, flags=re.M))


def test_code_cites_docs_that_exist() -> None:
    """Docstrings and comments cite ``docs/<file>.md`` files that exist, and protocol sections that exist."""
    sections = _protocol_sections()
    assert {"3.1", "3.4", "4.1", "6.2"} <= sections
    missing = []
    cited_sections = 0
    for path in SOURCES:
        text = path.read_text(encoding="utf-8")
        for cited in DOCS_PATH.findall(text):
            if not (ROOT / cited).is_file():
                missing.append(f"{path.relative_to(ROOT)}: {cited}")
        # a citation may wrap onto the next line of a docstring
        for match in PROTOCOL_SECTION.finditer(re.sub(r"\s+", " ", text)):
            for number in filter(None, match.groups()):
                cited_sections += 1
                if number not in sections:
                    missing.append(f"{path.relative_to(ROOT)}: docs/protocol.md section {number}")
    assert cited_sections >= 8, "the code's citations of docs/protocol.md sections were not found"
    assert not missing, f"cited docs or sections that do not exist: {missing}"
