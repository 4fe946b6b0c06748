"""Entry point of the ``spacetime-game`` command. Subcommands import their packages lazily."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .. import __version__


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="spacetime-game",
        description="Multiplayer PyGame and Arcade games on SpacetimeDB.",
    )
    parser.add_argument("--version", action="version", version=f"spacetime-game {__version__}")
    parser.add_subparsers(dest="command", metavar="COMMAND")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    return 0  # pragma: no cover - no subcommands yet


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
