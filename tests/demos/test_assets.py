"""The arena's assets (``assets/``): ``make_assets.py`` makes exactly the checked-in files, the font
covers printable ASCII and renders in both engines' font loaders, the sounds are short 16-bit WAVs, and
the demos find them (in the repository, or installed as ``spacetime_game_demos.assets``)."""

from __future__ import annotations

import subprocess
import sys
import wave
from pathlib import Path

from demos.arena import assets

ROOT = Path(__file__).resolve().parents[2]
FILES = ["arena-sans.ttf", "eat.wav", "eaten.wav", "icon.png", "spawn.wav", "split.wav"]


def test_the_script_makes_exactly_the_checked_in_files(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "assets" / "make_assets.py"), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    for name in FILES:
        assert (tmp_path / name).read_bytes() == (ROOT / "assets" / name).read_bytes(), (
            f"run make_assets.py: {name}"
        )
    assert (ROOT / "assets" / "LICENSE").is_file()


def test_the_font_covers_printable_ascii() -> None:
    from fontTools.ttLib import TTFont

    font = TTFont(str(ROOT / "assets" / "arena-sans.ttf"))
    cmap = font.getBestCmap()
    assert set(range(32, 127)) <= set(cmap), sorted(set(range(32, 127)) - set(cmap))
    names = {str(n) for n in font["name"].names if n.nameID == 1}
    assert names == {"Arena Sans"}
    glyf = font["glyf"]
    for code in range(33, 127):  # every visible character has ink
        assert glyf[cmap[code]].numberOfContours > 0, chr(code)


def test_the_sounds_are_short_mono_16_bit() -> None:
    for name in ("eat.wav", "eaten.wav", "spawn.wav", "split.wav"):
        with wave.open(str(ROOT / "assets" / name)) as w:
            assert (w.getnchannels(), w.getsampwidth()) == (1, 2)
            assert 0.05 < w.getnframes() / w.getframerate() < 1.0


def test_the_demos_find_them() -> None:
    assert assets.folder() == ROOT / "assets" or (assets.folder() / "__init__.py").is_file()
    for name in FILES:
        assert assets.path(name).is_file()
