"""``spacetime-game serve``: run the dev server until Ctrl-C / SIGTERM, then shut down cleanly."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import time
from pathlib import Path

from ._app import DevServer

__all__ = ["run_server"]

log = logging.getLogger("spacetime_game.server")


def run_server(
    module_path: str | Path,
    database: str,
    host: str = "127.0.0.1",
    port: int = 3000,
    data_dir: str | Path | None = None,
) -> int:
    """Serve until interrupted; returns the exit code."""
    t0 = time.perf_counter()

    async def main() -> None:
        server = DevServer(module_path, database, host, port, data_dir)
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
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        log.info("shutting down: disconnecting clients and flushing data")
        await server.stop()
        log.info("stopped")

    asyncio.run(main())
    return 0
