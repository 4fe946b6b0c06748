"""The arena demo: the embedded dev server with the arena module, bots, and a client window.

    python -m demos.arena                                   # pygame, 8 bots, the embedded server
    python -m demos.arena --engine arcade --bots 20 --name Ada
    python -m demos.arena --server localhost:3000 --database blackholio   # a running server (or a real one)
    python -m demos.arena --headless --frames 300 --screenshot arena.png  # no window: a summary and a picture

With no ``--server`` it starts the embedded dev server (in memory) with ``module.py``, waits until it
is ready, starts the bots in a process of their own, opens the client and stops everything when the
window closes. Where there is no display it says so and runs headless instead of failing.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
MODULE = HERE / "module.py"
DATABASE = "blackholio"


def has_display() -> bool:
    """Whether a window can open here (on Linux: an X or Wayland display; elsewhere assumed)."""
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


def parser() -> argparse.ArgumentParser:
    from .pygame_client import arguments

    p = argparse.ArgumentParser(
        prog="spacetime-game demo arena",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--engine", choices=("pygame", "arcade"), default="pygame", help="the client (default pygame)"
    )
    p.add_argument("--bots", type=int, default=8, metavar="N", help="bot players (default %(default)s)")
    arguments(p)
    p.set_defaults(server=None, database=DATABASE)
    return p


#: How much lower the bots' process runs than the game's (``nice``).
BOTS_NICENESS = 10


def start_bots(count: int, server: str, database: str) -> subprocess.Popen[bytes]:
    """The bots, in a process of their own at a lower priority: they stand in for players on other
    machines, so on this one the player's own window (and the server) come first when the CPU is short."""
    package = __package__ or "demos.arena"
    cmd = [sys.executable, "-m", f"{package}.bots", "--count", str(count), "--server", server]
    cmd += ["--database", database]
    env = dict(os.environ)
    root = str(HERE.parents[1])
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    with contextlib.suppress(AttributeError, OSError):  # (POSIX only; a lower priority is a nicety)
        os.setpriority(os.PRIO_PROCESS, proc.pid, os.getpriority(os.PRIO_PROCESS, 0) + BOTS_NICENESS)
    return proc


def stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("SPACETIME_GAME_T0", str(time.time()))  # (see pygame_client.START_ENV)
    args = parser().parse_args(argv)
    if not args.headless and not has_display():
        args.headless = True
        args.frames = args.frames or 300
        args.screenshot = args.screenshot or f"arena-{args.engine}.png"
        print(
            f"No display here (DISPLAY is not set): running the arena headless for {args.frames} frames;"
            f" the last frame goes to {args.screenshot}."
        )
    server = None
    bots = None
    try:
        if args.server is None:
            from spacetime_game.server import DevServerProcess

            started = time.perf_counter()
            server = DevServerProcess(MODULE, database=args.database)
            server.start()
            args.server = server.address
            if not args.headless:
                print(
                    f"The embedded dev server is up at {server.url} ({time.perf_counter() - started:.1f} s)."
                )
        if args.bots > 0:
            bots = start_bots(args.bots, args.server, args.database)
        if args.engine == "arcade":
            from .arcade_client import run
        else:
            from .pygame_client import run
        return run(args)
    except KeyboardInterrupt:
        return 130
    finally:
        stop(bots)
        if server is not None:
            server.stop()


if __name__ == "__main__":
    sys.exit(main())
