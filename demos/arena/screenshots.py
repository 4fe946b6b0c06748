"""Refresh the README's pictures of the arena: each client, headless, with bots, on the embedded server.

python -m demos.arena.screenshots            # writes docs/arena-pygame.png and docs/arena-arcade.png
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parents[2] / "docs"


def main() -> int:
    env = dict(os.environ, SDL_VIDEODRIVER="dummy", SDL_AUDIODRIVER="dummy", ARCADE_HEADLESS="1")
    for engine in ("pygame", "arcade"):
        shot = DOCS / f"arena-{engine}.png"
        cmd = [sys.executable, "-m", "demos.arena", "--engine", engine, "--headless", "--frames", "900"]
        cmd += ["--bots", "12", "--name", "You", "--screenshot", str(shot)]
        done = subprocess.run(cmd, env=env, cwd=DOCS.parent, check=False)
        if done.returncode != 0:
            return done.returncode
        print(f"wrote {shot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
