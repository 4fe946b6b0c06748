"""Entry point of the ``spacetime-game`` command. Subcommands import their packages lazily."""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from collections.abc import Sequence
from typing import Any

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
    source.add_argument(
        "--project-path",
        metavar="PATH",
        help="a Python module: its file, or a folder holding module.py (no server needed)",
    )
    gen.add_argument("--database", metavar="NAME", help="the database name or identity (with --server)")
    gen.add_argument(
        "--lang", default="python", metavar="LANG", help="the bindings' language: python (the only one)"
    )
    gen.add_argument("--out-dir", metavar="DIR", required=True, help="where to write the package")
    gen.add_argument("--token", metavar="JWT", help="a token for the server (optional)")

    serve = sub.add_parser(
        "serve",
        help="run the embedded development server for a Python module",
        description="Host a Python module over the SpacetimeDB 2.x protocol (HTTP and WebSocket).",
    )
    serve.add_argument("module", help="path to the module file (tables and reducers)")
    serve.add_argument(
        "--database",
        help="the database name (default: the module's DATABASE, else its file's name, or its folder's "
        "for a module.py)",
    )
    serve.add_argument(
        "--listen",
        "--host",
        dest="host",
        default="127.0.0.1",
        metavar="ADDRESS",
        help="the address to listen on (default 127.0.0.1: this machine only); for LAN play, 0.0.0.0 (every "
        "interface) or this machine's LAN address, and the server prints what teammates give their clients",
    )
    serve.add_argument(
        "--port", type=int, default=3000, help="port (default: 3000, like SpacetimeDB standalone)"
    )
    where = serve.add_mutually_exclusive_group()
    where.add_argument("--data-dir", metavar="DIR", help="where data lives (default: ./spacetime-data)")
    where.add_argument("--in-memory", action="store_true", help="keep nothing on disk (for tests)")
    serve.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    serve.add_argument(
        "--protocol",
        dest="protocols",
        action="append",
        choices=["v1", "v2", "v3"],
        help="serve only this WebSocket protocol (repeatable; default: all, v3 and v2 preferred); v1 is the "
        "protocol of SpacetimeDB 1.x servers",
    )
    serve.add_argument(
        "--limit",
        action="append",
        default=[],
        type=_limit,
        metavar="NAME=VALUE",
        help="change one of the server's limits (repeatable), e.g. --limit max_query_bytes=8192; "
        f"names: {', '.join(SERVER_LIMITS)} (docs/limits.md)",
    )

    new = sub.add_parser(
        "new",
        help="make a new game project (module, client, test, assets) ready to run",
        description="Make a new multiplayer game project in the folder NAME: module.py (the server side), "
        "client.py (the game window), test_game.py (headless tests), assets/, README.md and .gitignore. "
        "Then `cd NAME && spacetime-game dev`, and `python client.py` in another terminal.",
    )
    new.add_argument("name", help="the project's folder (and, in lower case, its database name)")
    new.add_argument(
        "--engine", choices=["pygame", "arcade"], default="pygame", help="the game engine (default: pygame)"
    )

    dev = sub.add_parser(
        "dev",
        help="serve a module, write its client bindings, and reload both whenever the module is saved",
        description="Serve a Python module for development: the client bindings are written next to it "
        "(module_bindings/), and each time the module file is saved it is served again with the data kept. "
        "Reducer changes apply at once with clients connected; compatible table changes (new tables, new "
        "indexes, new columns at the end with a default) migrate the stored rows; anything else is refused "
        "with the reason while the previous version keeps running (docs/dev.md).",
    )
    dev.add_argument(
        "module",
        nargs="?",
        default="module.py",
        help="the module file, or a folder holding module.py (default: ./module.py)",
    )
    dev.add_argument("--database", help="the database name (default: the module's DATABASE, else its name)")
    dev.add_argument(
        "--listen",
        "--host",
        dest="host",
        default="127.0.0.1",
        metavar="ADDRESS",
        help="the address to listen on (default 127.0.0.1: this machine only; 0.0.0.0 for LAN play)",
    )
    dev.add_argument("--port", type=int, default=3000, help="port (default: 3000)")
    dev_where = dev.add_mutually_exclusive_group()
    dev_where.add_argument(
        "--data-dir", metavar="DIR", help="where data lives (default: spacetime-data next to the module)"
    )
    dev_where.add_argument("--in-memory", action="store_true", help="keep nothing on disk")
    dev.add_argument(
        "--clear", action="store_true", help="start over with an empty database (deletes the stored data)"
    )
    dev.add_argument(
        "--bindings",
        metavar="DIR",
        help="where to write the client bindings (default: module_bindings next to the module)",
    )
    dev.add_argument("--no-bindings", action="store_true", help="do not write client bindings")
    dev.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])

    def remote(p: argparse.ArgumentParser, owner: bool = True) -> None:
        p.add_argument("--server", default="localhost:3000", help="the server (default: localhost:3000)")
        p.add_argument("--token", metavar="JWT", help="call as this identity (default: anonymous)")
        if owner:
            p.add_argument(
                "--owner",
                action="store_true",
                help="act as the database owner, with the token that `spacetime-game serve` wrote to "
                "DATA_DIR/owner.token (the owner may read private tables)",
            )
            p.add_argument(
                "--data-dir",
                metavar="DIR",
                default="spacetime-data",
                help="the server's data folder, for --owner (default: ./spacetime-data)",
            )

    def on_database(name: str, help: str, description: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=description)
        p.add_argument("database", help="the database name")
        return p

    call = on_database(
        "call",
        "call a reducer over HTTP",
        'Call a reducer over HTTP. Each argument is a JSON value (5, true, null, "text", [1, 2], '
        '{"x": 1}); a word that is not JSON is taken as a string (Alice is "Alice"), so quote a string that '
        "reads as a number, true, false or null ('\"42\"'). The arguments are checked against the reducer's "
        "parameters before the call.",
    )
    call.add_argument("reducer", help="the reducer name")
    call.add_argument("args", nargs="*", help="the arguments, one per parameter (see above)")
    remote(call)

    sql = on_database(
        "sql",
        "run SQL queries over HTTP",
        "Run SELECT queries over HTTP and print each result as a table (identities in hex, "
        "timestamps in ISO 8601 UTC, an empty option as NULL).",
    )
    sql.add_argument("query", help="the SQL (several statements separated by ';')")
    sql.add_argument("--json", action="store_true", help="print the server's JSON answer instead")
    remote(sql)

    describe = on_database(
        "describe",
        "list a database's tables and reducers",
        "Print a database's tables (columns, types, keys, public or private) and its reducers "
        "with their parameters.",
    )
    remote(describe, owner=False)

    ident = sub.add_parser("identity", help="get a new identity and token", description="POST /v1/identity.")
    remote(ident, owner=False)

    demo = sub.add_parser(
        "demo",
        help="play a demo: the arena (default) or the terminal chat",
        description="Play a demo on the embedded dev server (or --server): `spacetime-game demo arena "
        "--help` and `spacetime-game demo chat --help` list each demo's options.",
    )
    demo.add_argument("demo", nargs="?", choices=DEMOS, default="arena", help="which demo (default arena)")
    demo.add_argument("options", nargs=argparse.REMAINDER, help="the demo's options")
    return parser


#: The demos ``spacetime-game demo`` runs: name -> the module (in the demos package) whose main() runs it.
DEMOS = {"arena": "arena.launch", "chat": "chat.client"}


def _demos_package() -> str | None:
    """The importable package of the demos: installed (``spacetime_game_demos``), or the ``demos``
    folder of the repository checkout that is the current directory."""
    import importlib.util
    from pathlib import Path

    if importlib.util.find_spec("spacetime_game_demos") is not None:
        return "spacetime_game_demos"
    here = Path.cwd()
    if (here / "demos" / "arena" / "__init__.py").is_file():
        sys.path.insert(0, str(here))
        return "demos"
    return None


def _demo(argv: Sequence[str]) -> int:
    """``spacetime-game demo [arena|chat] [options]``: the demo's own command line."""
    import importlib

    rest = list(argv)
    name = "arena"
    if rest and not rest[0].startswith("-"):
        name = rest.pop(0)
    if name not in DEMOS:
        print(f"spacetime-game demo: no demo {name!r} (there are: {', '.join(DEMOS)})", file=sys.stderr)
        return 2
    package = _demos_package()
    if package is None:
        print(
            "spacetime-game demo: the demos are not installed here; install spacetime-game from its "
            "repository (pip install .) or run this from the repository's folder",
            file=sys.stderr,
        )
        return 2
    module = importlib.import_module(f"{package}.{DEMOS[name]}")
    code: int = module.main(rest)
    return code


def _remote(args: argparse.Namespace) -> int:
    import json
    import urllib.parse

    from ..sdk.sats import SpacetimeError
    from ._http import request

    db = urllib.parse.quote(getattr(args, "database", ""), safe="")
    if getattr(args, "owner", False):
        if args.token:
            print(f"spacetime-game {args.command}: give --owner or --token, not both", file=sys.stderr)
            return 2
        try:
            args.token = _owner_token(args.data_dir)
        except OSError as exc:
            print(f"spacetime-game {args.command}: {exc}", file=sys.stderr)
            return 2
    try:
        if args.command == "describe":
            from ._display import describe

            print(describe(_schema(args), args.database))
            return 0
        if args.command == "call":
            values = _call_arguments(args)
            if values is None:
                return 2
            status, body = request(
                "POST",
                args.server,
                f"/v1/database/{db}/call/{urllib.parse.quote(args.reducer)}",
                json.dumps(values).encode(),
                args.token,
            )
            if status == 200:
                print("ok")
                return 0
            message = body.decode(errors="replace").strip()
            if status == 530:  # (SpacetimeDB's status for a reducer that returned an error)
                message = f"{args.reducer} failed: {message or 'the reducer gave no message'}"
            else:
                message = f"HTTP {status}: {message}"
            print(f"spacetime-game call: {message}", file=sys.stderr)
            return 1
        if args.command == "sql":
            status, body = request(
                "POST",
                args.server,
                f"/v1/database/{db}/sql",
                args.query.encode(),
                args.token,
                content_type="text/plain",
            )
            if status != 200:
                message = body.decode(errors="replace")
                if status == 400 and message.startswith("no such table"):
                    with contextlib.suppress(OSError, SpacetimeError):
                        names = ", ".join(t.name for t in _schema(args).tables if not t.is_system)
                        message += f"; the tables of {args.database}: {names}"
                print(f"spacetime-game sql: {message}", file=sys.stderr)
                return 1
            if args.json:
                print(body.decode())
                return 0
            print(_sql_tables(json.loads(body), args))
            return 0
        status, body = request("POST", args.server, "/v1/identity", b"", None)
        if status != 200:
            print(f"spacetime-game identity: HTTP {status}: {body.decode(errors='replace')}", file=sys.stderr)
            return 1
        data = json.loads(body)
        print(f"identity {data['identity']}\ntoken    {data['token']}")
        return 0
    except (OSError, SpacetimeError) as exc:
        print(f"spacetime-game {args.command}: {exc}", file=sys.stderr)
        return 2


def _schema(args: argparse.Namespace) -> Any:
    """The database's schema (``GET .../schema``); OSError when it cannot be had."""
    from ..sdk.schema import ModuleSchema
    from ._http import fetch_schema

    text, _ = fetch_schema(args.server, args.database, args.token)
    return ModuleSchema.from_text(text, f"{args.server} {args.database}")


def _call_arguments(args: argparse.Namespace) -> list[Any] | None:
    """``call``'s arguments, read as JSON (a word that is not JSON is a string) and checked against the
    reducer's parameters; None after printing why they do not fit."""
    import json

    from ..sdk.sats import EncodeError, from_json
    from ._display import params_text, reason_without_value, reducer_list, type_label

    values = []
    for raw in args.args:
        try:
            values.append(json.loads(raw))
        except json.JSONDecodeError:
            values.append(raw)  # a bare word is a string
    schema = _schema(args)
    reducer = next((r for r in schema.reducers if r.name == args.reducer), None)
    if reducer is None or reducer.lifecycle is not None:
        what = "no reducer" if reducer is None else "no reducer that clients may call named"
        print(
            f"spacetime-game call: {what} {args.reducer!r} in {args.database}; its reducers: "
            f"{reducer_list(schema) or '(none)'}",
            file=sys.stderr,
        )
        return None
    params = reducer.params.elements
    if len(values) != len(params):
        print(
            f"spacetime-game call: {reducer.name}({params_text(reducer.params, schema)}) takes "
            f"{len(params)} argument{'s' if len(params) != 1 else ''}, got {len(values)}",
            file=sys.stderr,
        )
        return None
    for param, value in zip(params, values, strict=True):
        try:
            from_json(value, param.type, schema.typespace)
        except EncodeError as exc:
            where = exc.path.removeprefix("value").lstrip(".")
            print(
                f"spacetime-game call: {reducer.name}: parameter {param.name} "
                f"({type_label(param.type, schema.type_name)}){' at ' + where if where else ''}: "
                f"{reason_without_value(exc.reason)}; received {json.dumps(value)}",
                file=sys.stderr,
            )
            return None
    return values


def _sql_tables(results: list[Any], args: argparse.Namespace) -> str:
    """The results of ``/sql`` as aligned tables, each value as a person reads it."""
    from ..sdk.sats import AlgebraicType, SpacetimeError
    from ._display import aligned, value_text

    schema: list[Any] = []  # fetched at the first Ref type met, if any

    def resolve(ref: int) -> AlgebraicType | None:
        if not schema:
            try:
                schema.append(_schema(args))
            except (OSError, SpacetimeError):
                schema.append(None)
        types = schema[0].typespace.types if schema[0] is not None else ()
        return types[ref] if 0 <= ref < len(types) else None

    out = []
    for result in results:
        elements = result["schema"]["elements"]
        header = [(e.get("name") or {}).get("some", "?") for e in elements]
        types = [AlgebraicType.from_json(e["algebraic_type"]) for e in elements]
        rows = [
            [value_text(v, t, resolve) for v, t in zip(row, types, strict=True)] for row in result["rows"]
        ]
        n = len(rows)
        out.append(f"{aligned(header, rows)}\n({n} row{'s' if n != 1 else ''})")
    return "\n\n".join(out)


def _owner_token(data_dir: str) -> str:
    """The owner's token from ``<data_dir>/owner.token`` (see docs/owner.md); OSError with a hint."""
    from pathlib import Path

    path = Path(data_dir) / "owner.token"
    try:
        token = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise OSError(
            f"--owner: cannot read the owner token {path} ({reason}); `spacetime-game serve --data-dir "
            f"{data_dir}` writes it at start (an --in-memory server writes none: pass --token instead)"
        ) from None
    if not token:
        raise OSError(f"--owner: the owner token file {path} is empty")
    return token


def _generate(args: argparse.Namespace) -> int:
    from ..codegen import write_package
    from ..sdk.sats import SchemaError
    from ..sdk.schema import ModuleSchema, load_schema

    if args.lang.lower() != "python":
        print(
            f"spacetime-game generate: --lang {args.lang}: this tool writes Python bindings only (--lang"
            " python); SpacetimeDB's own `spacetime generate` writes Rust, C#, TypeScript and Unreal C++",
            file=sys.stderr,
        )
        return 2
    try:
        if args.schema:
            schema = load_schema(args.schema)
            source = args.schema.replace("\\", "/").rsplit("/", 1)[-1]
        elif args.project_path:
            schema, source = _project_schema(args.project_path)
        else:
            if not args.database:
                print("spacetime-game generate: --server needs --database NAME", file=sys.stderr)
                return 2
            from ._http import fetch_schema

            text, version = fetch_schema(args.server, args.database, args.token)
            schema = ModuleSchema.from_text(text, f"{args.server} {args.database}")
            source = f"database {args.database} (schema version {version})"
        written = write_package(schema, args.out_dir, source)
    except SchemaError as exc:
        print(f"spacetime-game generate: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"spacetime-game generate: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {len(written)} files to {args.out_dir}")
    return 0


def _project_schema(path: str) -> tuple[Any, str]:
    """The schema of the Python module at ``path`` (its file, or a folder holding ``module.py``), loaded
    here with no server; and the name the bindings cite as their source."""
    import json
    from pathlib import Path

    from ..sdk.schema import ModuleSchema
    from ..server import load_module

    p = Path(path)
    if p.is_dir():
        if not (p / "module.py").is_file():
            raise OSError(
                f"--project-path {path}: the folder holds no module.py (give the module's file instead)"
            )
        p = p / "module.py"
    elif not p.exists():
        raise OSError(f"--project-path {path}: no such file or folder")
    module = load_module(p)
    schema = ModuleSchema.from_text(json.dumps(module.schema_json()), str(p))
    return schema, f"{p.name} (database {module.database_name})"


#: The limits ``serve --limit NAME=VALUE`` may change: the DevServer keywords of the same names (the keys
#: of ``spacetime_game.server.ServerLimits``: not imported here, the CLI loads the server lazily), and
#: whether their values are whole numbers (bytes, counts) or seconds.
SERVER_LIMITS: dict[str, type] = {
    "max_queued_bytes": int,
    "pause_reading_bytes": int,
    "max_query_bytes": int,
    "max_query_terms": int,
    "max_query_depth": int,
    "max_query_sets_per_connection": int,
    "max_queries_per_connection": int,
    "ping_interval": float,
    "idle_timeout": float,
}
_UNITS = {"": 1, "k": 1000, "kib": 1024, "m": 1000**2, "mib": 1024**2, "g": 1000**3, "gib": 1024**3}


def _limit(text: str) -> tuple[str, int | float]:
    """``NAME=VALUE`` of ``serve --limit``: a known name and a positive value (sizes may end in KiB, MiB,
    GiB)."""
    name, sep, raw = text.partition("=")
    name = name.strip().replace("-", "_")
    if not sep or name not in SERVER_LIMITS:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected NAME=VALUE with NAME one of {', '.join(SERVER_LIMITS)}"
        )
    value = raw.strip().lower()
    try:
        if SERVER_LIMITS[name] is float:
            number: int | float = float(value.removesuffix("s"))
        else:
            digits = value.rstrip("kmgib")
            number = int(digits) * _UNITS[value[len(digits) :]]
    except (ValueError, KeyError):
        raise argparse.ArgumentTypeError(f"{text!r}: {raw!r} is not a valid value for {name}") from None
    if not number > 0 and name != "pause_reading_bytes":
        raise argparse.ArgumentTypeError(f"{text!r}: {name} must be positive")
    return name, number


def _server_logging(args: argparse.Namespace) -> bool:
    """Log as `serve` and `dev` do (escaping control characters: a module logs text from clients); False,
    having said why, when the server extra is not installed."""
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    try:
        from ..server import EscapeControlFilter
    except ImportError as exc:
        print(
            f"spacetime-game {args.command} needs the server extra: pip install 'spacetime-game[server]' ({exc})",
            file=sys.stderr,
        )
        return False
    for handler in logging.getLogger().handlers:
        handler.addFilter(EscapeControlFilter())
    return True


def _serve(args: argparse.Namespace) -> int:
    if not _server_logging(args):
        return 2
    from ..sdk.sats import SpacetimeError
    from ..server import run_server

    data_dir = None if args.in_memory else (args.data_dir or "spacetime-data")
    try:
        if args.database is None:
            from ..server import load_module

            args.database = load_module(args.module).database_name
        return run_server(
            args.module,
            args.database,
            args.host,
            args.port,
            data_dir,
            dict(args.limit),
            protocols=args.protocols,
        )
    except (SpacetimeError, OSError, ValueError) as exc:
        # a start-up failure (a bad module, a corrupt or locked commit log, a bad signing key, a port in
        # use): the message names the file and where; one line, no traceback
        message = " ".join(str(exc).splitlines())
        print(f"spacetime-game serve: {message}", file=sys.stderr)
        return 2


def _new(args: argparse.Namespace) -> int:
    """``spacetime-game new NAME``: write the project, then say what to run."""
    import importlib.util

    from ._scaffold import ENGINES, create_project

    try:
        folder = create_project(args.name, args.engine)
    except (ValueError, OSError) as exc:
        print(f"spacetime-game new: {exc}", file=sys.stderr)
        return 2
    print(
        f"made {folder}/, a {ENGINES[args.engine]} game: module.py, client.py, test_game.py, assets/, README.md"
    )
    if importlib.util.find_spec(args.engine) is None:
        extra = "pygame" if args.engine == "pygame" else "arcade"
        print(f"{args.engine} is not installed here: pip install 'spacetime-game[server,{extra}]'")
    print("next:")
    print(f"  cd {folder}")
    print("  spacetime-game dev       # serves module.py, writes module_bindings/, reloads on save")
    print("  python client.py         # in another terminal (again in a third: a second player)")
    print("  python -m unittest       # the game's tests, headless")
    return 0


def _dev(args: argparse.Namespace) -> int:
    """``spacetime-game dev``: bindings first (so a client can start at once), then serve and watch."""
    import shutil
    from pathlib import Path

    if not _server_logging(args):
        return 2
    from ..sdk.sats import SpacetimeError
    from ..server import ModuleDef, load_module, run_server

    path = Path(args.module)
    if path.is_dir():
        path = path / "module.py"
    if not path.is_file():
        where = "here" if args.module == "module.py" else args.module
        print(
            f"spacetime-game dev: no module at {path}: give the module file (`spacetime-game dev game.py`), or"
            f" run it in a project folder that holds module.py (found none {where}); `spacetime-game new NAME`"
            " makes one",
            file=sys.stderr,
        )
        return 2
    project = path.resolve().parent
    out = None if args.no_bindings else Path(args.bindings) if args.bindings else project / "module_bindings"
    data_dir = (
        None if args.in_memory else Path(args.data_dir) if args.data_dir else project / "spacetime-data"
    )
    log = logging.getLogger("spacetime_game.dev")

    def write_bindings(module: ModuleDef) -> None:
        if out is None:
            return
        import json

        from ..codegen import write_package
        from ..sdk.schema import ModuleSchema

        schema = ModuleSchema.from_text(json.dumps(module.schema_json()), str(path))
        written = write_package(schema, out, f"{path.name} (database {module.database_name})")
        log.info("client bindings written to %s (%d files)", out, len(written))

    try:
        module = load_module(path)
        database = args.database or module.database_name
        if args.clear and data_dir is not None:
            stored = data_dir / "databases" / database
            if stored.exists():
                shutil.rmtree(stored)
                log.info("cleared the stored data of %s (%s)", database, stored)
        write_bindings(module)
        return run_server(
            path, database, args.host, args.port, data_dir, watch=True, on_update=write_bindings
        )
    except (SpacetimeError, OSError, ValueError) as exc:
        message = " ".join(str(exc).splitlines())
        print(f"spacetime-game dev: {message}", file=sys.stderr)
        return 2


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "demo":  # (the demo parses its own options)
        if argv[1:2] in (["-h"], ["--help"]):
            _parser().parse_args(argv)
        return _demo(argv[1:])
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    if args.command == "generate":
        return _generate(args)
    if args.command == "serve":
        return _serve(args)
    if args.command == "dev":
        return _dev(args)
    if args.command == "new":
        return _new(args)
    if args.command in ("call", "sql", "identity", "describe"):
        return _remote(args)
    parser.error(f"unknown command {args.command}")  # pragma: no cover
    return 2  # pragma: no cover


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
