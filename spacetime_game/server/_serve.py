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
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ._devserver import DevServer
from ._lan import reachable_address
from ._logsafe import server_logger

__all__ = ["run_server"]

log = server_logger("spacetime_game.server")


def run_server(
    module_path: str | Path,
    database: str,
    host: str = "127.0.0.1",
    port: int = 3000,
    data_dir: str | Path | None = None,
    limits: Mapping[str, Any] | None = None,
) -> int:
    """Serve ``module_path`` as ``database`` until interrupted (SIGINT/SIGTERM: exit code 0) or until
    the database fails (1), logging where it listens and the owner's token; what
    ``spacetime-game serve`` runs. ``limits`` are :class:`ServerLimits` keywords (``max_query_bytes``,
    ``max_queued_bytes``, ...: see docs/limits.md). A start-up failure (a bad module, a corrupt or
    locked commit log, a port in use) raises."""
    t0 = time.perf_counter()

    async def main() -> int:
        server = DevServer(module_path, database, host, port, data_dir, **(limits or {}))
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
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        waits = [loop.create_task(stop.wait()), loop.create_task(server.wait_failed())]
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
