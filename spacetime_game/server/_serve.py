"""``spacetime-game serve``: run the dev server until Ctrl-C / SIGTERM, then shut down cleanly.

If the database fails (its commit log cannot write or flush: disk full, I/O error), the server has
already logged one error line saying why; it then shuts down and ``run_server`` returns 1. Start-up
failures (a corrupt or locked commit log, a bad signing key, a port in use) raise, for the command to
report as one line."""

from __future__ import annotations

import asyncio
import gc
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..sdk.sats import SchemaError
from ._devserver import DevServer
from ._lan import reachable_address
from ._logsafe import server_logger
from ._migrate import IncompatibleSchema
from ._module import ModuleDef, load_module

__all__ = ["run_server", "watch_module"]

#: How often :func:`watch_module` looks at the module file (seconds).
WATCH_INTERVAL = 0.25

log = server_logger("spacetime_game.server")


def run_server(
    module_path: str | Path,
    database: str,
    host: str = "127.0.0.1",
    port: int = 3000,
    data_dir: str | Path | None = None,
    limits: Mapping[str, Any] | None = None,
    *,
    watch: bool = False,
    on_update: Callable[[ModuleDef], None] | None = None,
    protocols: Sequence[str] | None = None,
) -> int:
    """Serve ``module_path`` as ``database`` until interrupted (SIGINT/SIGTERM: exit code 0) or until
    the database fails (1), logging where it listens and the owner's token; what
    ``spacetime-game serve`` runs. ``limits`` are :class:`ServerLimits` keywords (``max_query_bytes``,
    ``max_queued_bytes``, ...: see docs/limits.md). A start-up failure (a bad module, a corrupt or
    locked commit log, a port in use) raises.

    With ``watch`` the module file is watched and served again whenever it is saved
    (:func:`watch_module`; ``spacetime-game dev``); ``on_update`` then runs (on a worker thread) after
    each update that was applied, with the new module. ``protocols`` limits the subprotocols served
    (:class:`DevServer`)."""
    t0 = time.perf_counter()

    async def main() -> int:
        server = DevServer(module_path, database, host, port, data_dir, protocols=protocols, **(limits or {}))
        bound = await server.start()
        # what is loaded by now (the module, the SQL parser, the replayed rows) lives as long as the
        # process: keep it out of the collector's full passes, which otherwise stall every client
        # for tens of milliseconds whenever they run (and run more often under load)
        gc.collect()
        gc.freeze()
        log.info(
            "ready in %.0f ms: ws://%s:%d/v1/database/%s/subscribe (%s)",
            (time.perf_counter() - t0) * 1000,
            host,
            bound,
            database,
            f"data in {data_dir}" if data_dir is not None else "in memory",
        )
        if server.data_dir is not None:
            log.info(
                "database owner: %s (token in %s; `spacetime-game sql --owner --data-dir %s` uses it)",
                server.owner_identity,
                server.data_dir / "owner.token",
                server.data_dir,
            )
        else:  # the key dies with the process, so the token is only good while this server runs
            log.info(
                "database owner: %s; token (valid until this in-memory server stops): %s",
                server.owner_identity,
                server.owner_token,
            )
        shared = reachable_address(host)  # (after the owner line, which ends the ready lines)
        if shared is not None:
            log.info(
                "reachable from other machines: a teammate's client joins with --server %s:%d --database %s"
                " (listening on %s; check that the firewall lets port %d in)",
                shared,
                bound,
                database,
                host,
                bound,
            )
        log.info("dev console (for you only: the link signs you in): %s", server.console_url)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        waits = [loop.create_task(stop.wait()), loop.create_task(server.wait_failed())]
        if watch:
            waits.append(loop.create_task(watch_module(server, module_path, on_update)))
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for task in waits:
            task.cancel()
        if server.failed is None:
            log.info("shutting down: disconnecting clients and flushing data")
        else:
            log.info("shutting down: the database failed (see the error above)")
        await server.stop()
        log.info("stopped")
        return 0 if server.failed is None else 1

    return asyncio.run(main())


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None  # (an editor that saves by renaming: the file is back a moment later)
    return st.st_mtime_ns, st.st_size


async def watch_module(
    server: DevServer,
    path: str | Path,
    on_update: Callable[[ModuleDef], None] | None = None,
    interval: float = WATCH_INTERVAL,
) -> None:
    """Serve the module at ``path`` again each time the file changes, until cancelled (the server runs in
    this event loop).

    Each outcome is logged as one readable line: what changed in the tables (or that only reducers
    did); an error in the saved file (``file:line`` and the message) or a change the stored data cannot
    follow, while the previous version keeps serving. ``on_update(module)`` runs on a worker thread
    after each applied update (``spacetime-game dev`` regenerates the client bindings there)."""
    p = Path(path)
    loop = asyncio.get_running_loop()
    seen = _stamp(p)
    while True:
        await asyncio.sleep(interval)
        now = _stamp(p)
        if now is None or now == seen:
            continue
        await asyncio.sleep(interval / 2)  # an editor may write in pieces: settle, then read
        now = _stamp(p)
        if now is None:
            continue
        seen = now
        try:
            module = await loop.run_in_executor(None, load_module, p)
        except Exception as exc:  # the user's file: any error in it is theirs to see, and we keep going
            text = (
                f"{exc.path}: {exc.reason}"
                if isinstance(exc, SchemaError)
                else f"{type(exc).__name__}: {exc}"
            )
            log.error("%s; still serving the previous version", " ".join(text.splitlines()))
            continue
        if module.declared_database is not None and module.declared_database != server.database:
            log.warning(
                "the module now declares DATABASE = %r; it keeps serving as %r until the server restarts",
                module.declared_database,
                server.database,
            )
        try:
            update = server.reload(module)
        except IncompatibleSchema as exc:
            log.error("%s cannot take over the stored data; still serving the previous version:", p.name)
            for problem in exc.problems:
                log.error("  %s", problem)
            log.error(
                "undo that change, or restart with `spacetime-game dev --clear` to start over with an empty"
                " database"
            )
            continue
        except Exception as exc:  # e.g. the init of a new table's codec refused a default
            log.error(
                "%s could not be served (%s: %s); still serving the previous version",
                p.name,
                type(exc).__name__,
                exc,
            )
            continue
        if update.tables_changed:
            log.info(
                "reloaded %s: %s; clients reconnect to the new tables",
                p.name,
                "; ".join(update.changes) or "tables changed",
            )
        else:
            log.info("reloaded %s: reducers updated, data and clients kept", p.name)
        if on_update is not None:
            try:
                await loop.run_in_executor(None, on_update, module)
            except Exception as exc:
                log.error("after reloading %s: %s: %s", p.name, type(exc).__name__, exc)
