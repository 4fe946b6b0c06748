"""The arena's assets, through one small helper for both engines: the font, the discs, the sounds.

The files live in the repository's ``assets/`` folder (made by ``assets/make_assets.py``); an installed
package carries them as ``spacetime_game_demos.assets``.
"""

from __future__ import annotations

import importlib.util
from functools import cache
from pathlib import Path
from typing import Any


@cache
def folder() -> Path:
    """Where the asset files are: the installed copy, else the repository's ``assets/``."""
    try:
        spec = importlib.util.find_spec("spacetime_game_demos.assets")
    except ModuleNotFoundError:  # running from the repository
        spec = None
    if spec is not None and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    return Path(__file__).resolve().parents[2] / "assets"


def path(name: str) -> Path:
    """The file ``name`` among the assets (FileNotFoundError, naming the folder, if it is missing)."""
    p = folder() / name
    if not p.is_file():
        raise FileNotFoundError(f"asset {name!r} is missing from {folder()} (run assets/make_assets.py)")
    return p


class Assets:
    """The pygame side: fonts by size, anti-aliased discs and rendered text."""

    def __init__(self) -> None:
        import pygame

        from spacetime_game.pygame import circle_image

        self.pg = pygame
        self._circle_image = circle_image
        pygame.font.init()
        self._fonts: dict[int, Any] = {}

    def pygame_font(self, size: int) -> Any:
        font = self._fonts.get(size)
        if font is None:
            try:
                font = self.pg.font.Font(str(path(FONT)), size)
            except FileNotFoundError:  # (the default font is smaller at the same size)
                font = self.pg.font.Font(None, round(size * 1.3))
            self._fonts[size] = font
        return font

    def pygame_disc(self, r: int, color: tuple[int, int, int], outline: bool) -> Any:
        """A disc of radius ``r`` pixels; a player's has a lighter rim."""
        if outline and r >= 6:
            rim = tuple(min(255, c + (255 - c) // 2) for c in color)
            return self._circle_image(r, color, outline=rim, width=max(1, r // 10))
        return self._circle_image(r, color)

    def pygame_sounds(self, names: dict[str, str]) -> dict[str, Any]:
        """The sounds of ``names`` (cue -> file), loaded; empty if there is no audio here (or a file is
        missing): the game then plays silently."""
        try:
            if not self.pg.mixer.get_init():
                self.pg.mixer.init()
            sounds = {cue: self.pg.mixer.Sound(str(path(file))) for cue, file in names.items()}
        except (self.pg.error, FileNotFoundError, OSError):
            return {}
        for sound in sounds.values():
            sound.set_volume(0.35)
        return sounds

    def pygame_text(self, text: str, size: int, color: tuple[int, int, int]) -> Any:
        """``text`` rendered (anti-aliased) with a soft dark shadow, for labels over anything."""
        font = self.pygame_font(size)
        face = font.render(text, True, color)
        shadow = font.render(text, True, (0, 0, 0))
        shadow.set_alpha(150)
        out = self.pg.Surface((face.get_width() + 2, face.get_height() + 2), self.pg.SRCALPHA)
        out.blit(shadow, (2, 2))
        out.blit(face, (0, 0))
        return out


#: The game's font file (in the assets folder).
FONT = "arena-sans.ttf"
