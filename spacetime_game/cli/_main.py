"""Entry point of the ``spacetime-game`` command. Subcommands import their packages lazily."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from .. import __version__

log = logging.getLogger("spacetime_game.cli")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="spacetime-game",
        description="Multiplayer PyGame and Arcade games on SpacetimeDB.",
    )
    parser.add_argument("--version", action="version", version=f"spacetime-game {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    gen = sub.add_parser(
        "generate",
        help="write a module_bindings package from a schema file or a live server",
        description="Write a Python module_bindings package for a SpacetimeDB module.",
    )
    source = gen.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--schema", metavar="FILE", help="a schema JSON file (RawModuleDefV9/V10, bare or wrapped)"
    )
    source.add_argument("--server", metavar="URL", help="a server to ask, e.g. http://localhost:3000")
    gen.add_argument("--database", metavar="NAME", help="the database name or identity (with --server)")
    gen.add_argument("--out-dir", metavar="DIR", required=True, help="where to write the package")
    gen.add_argument("--token", metavar="JWT", help="a token for the server (optional)")
    return parser


def _generate(args: argparse.Namespace) -> int:
    from ..codegen import write_package
    from ..sdk.sats import SchemaError
    from ..sdk.schema import ModuleSchema, load_schema

    try:
        if args.schema:
            schema = load_schema(args.schema)
            source = args.schema.replace("\\", "/").rsplit("/", 1)[-1]
        else:
            if not args.database:
                print("spacetime-game generate: --server needs --database NAME", file=sys.stderr)
                return 2
            from ._http import fetch_schema

            text, version = fetch_schema(args.server, args.database, args.token)
            schema = ModuleSchema.from_text(text, f"{args.server} {args.database}")
            source = f"database {args.database} (schema version {version})"
    except SchemaError as exc:
        print(f"spacetime-game generate: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"spacetime-game generate: {exc}", file=sys.stderr)
        return 2
    written = write_package(schema, args.out_dir, source)
    print(f"wrote {len(written)} files to {args.out_dir}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    if args.command == "generate":
        return _generate(args)
    parser.error(f"unknown command {args.command}")  # pragma: no cover
    return 2  # pragma: no cover


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
