"""Golden tests: the generated packages of the test schemas equal the committed copies in
``tests/data/golden/<name>/``, file by file (Blackholio's is the arena demo's own bindings,
``demos/arena/module_bindings/``: one copy, which the demo uses).

After an intended change of the generator, regenerate them with
``SPACETIME_GAME_UPDATE_GOLDEN=1 pytest tests/codegen/test_golden.py`` and review the diff.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

import pytest

from ._helpers import DATA, ROOT, SCHEMAS, generated_files

GOLDEN = DATA / "golden"
#: golden copies that live elsewhere, by schema name
ELSEWHERE = {"blackholio": ROOT / "demos" / "arena" / "module_bindings"}
UPDATE = os.environ.get("SPACETIME_GAME_UPDATE_GOLDEN", "") not in ("", "0")


def _update(folder: Path, files: dict[str, str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.py"):
        if old.name not in files:
            old.unlink()
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_generated_package_equals_golden(name: str) -> None:
    files = generated_files(name)
    folder = ELSEWHERE.get(name, GOLDEN / name)
    if UPDATE:
        _update(folder, files)
    assert folder.is_dir(), f"no golden copy in {folder}; run with SPACETIME_GAME_UPDATE_GOLDEN=1"
    golden = {p.name: p.read_text(encoding="utf-8") for p in sorted(folder.glob("*.py"))}
    assert sorted(files) == sorted(golden), "the generated file names differ from the golden copy"
    for fname in sorted(files):
        if files[fname] != golden[fname]:
            diff = "".join(
                difflib.unified_diff(
                    golden[fname].splitlines(keepends=True),
                    files[fname].splitlines(keepends=True),
                    f"golden/{name}/{fname}",
                    f"generated/{name}/{fname}",
                )
            )
            pytest.fail(f"{fname} differs from its golden copy:\n{diff}")


def test_generation_is_deterministic() -> None:
    assert generated_files("all_types") == generated_files("all_types")


def test_every_golden_folder_has_a_schema() -> None:
    """A stale golden folder (its schema renamed or removed) is an error, not dead weight."""
    folders = {p.name for p in GOLDEN.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))}
    assert folders | set(ELSEWHERE) == set(SCHEMAS)
    assert not folders & set(ELSEWHERE), "a golden copy kept twice"
