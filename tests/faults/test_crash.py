"""The churn of ``test_churn`` against a dev server with a data directory that is killed with SIGKILL and
restarted on the same port in the middle of the load (three times), behind the fault proxy and its chaos.

At the end: every call a client saw acknowledged (committed) is in the ledger (nothing acknowledged is
lost); no refused call ever committed; no client ever saw a row that the final state does not explain
(every row carries the call that wrote it, and that call must be in the final ledger: a client shown a row
that a crash then took back would fail this); and the caches converge as in ``test_churn``.

``FAULTS_SECONDS`` (default 18) and ``FAULTS_SEED`` (default 4242) set the length and the seed.
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest

from .._support import free_port
from ._churn import (
    Chaos,
    Churn,
    FaultServer,
    churn_through_proxy,
    committed,
    final_rows,
    reconnects,
    seconds,
    seed,
    settle_and_check,
)

SECONDS = seconds(18.0)
SEED = seed(4242)
KILLS = 3

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs SIGKILL")


def in_flight(churn: Churn) -> int:
    return sum(c.pending() for c in churn.clients)


@pytest.mark.timeout(180 + 3 * SECONDS)
def test_acknowledged_calls_survive_sigkill_and_restart(churn_bindings: ModuleType, tmp_path: Path) -> None:
    t0 = time.monotonic()
    rng = random.Random(SEED)
    server = FaultServer(tmp_path / "data", port=free_port()).start()
    kills: list[str] = []
    with churn_through_proxy(churn_bindings, server, seed=SEED, run="crash") as churn:
        chaos = Chaos(churn, SEED + 1, interval=(0.15, 0.6))
        phase = SECONDS / (KILLS + 1)
        for k in range(KILLS):
            before = committed(churn)
            churn.drive(rng.uniform(0.6, 1.4) * phase, chaos)
            assert committed(churn) > before, f"no call committed before kill {k + 1}"
            flying = in_flight(churn)
            server.kill()
            kills.append(f"kill {k + 1}: {flying} calls in flight, {committed(churn)} committed so far")
            churn.drive(rng.uniform(0.2, 1.0), chaos)  # the clients find the server gone
            server.start()  # the same port and data directory
        churn.drive(phase, chaos)
        chaos.enabled = False
        problems: list[str] = []
        final, outcomes = settle_and_check(churn, server, 120, problems)
        n_reconnects = reconnects(churn)
        summary = (
            f"seed {SEED}, {SECONDS:g} s, {len(churn.clients)} clients, {time.monotonic() - t0:.1f} s in all; "
            f"{'; '.join(kills)}; faults {dict(churn.faults)}; reconnects {n_reconnects}; calls {outcomes}; "
            f"final rows {final_rows(final)}"
        )
        print(summary)
        assert server.starts == KILLS + 1, summary
        assert n_reconnects >= KILLS * len(churn.clients), summary  # every client lived through every crash
        assert not problems, "\n".join(problems[:40]) + "\n" + summary
