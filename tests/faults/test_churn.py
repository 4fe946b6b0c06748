"""Sixteen real clients under network chaos: each subscribes to the churn module's tables and calls its
reducers through the fault proxy while a seeded chaos loop delays, drops, cuts and resets their
connections. When the chaos stops and everything has reconnected and settled, every client's cache equals
the server's tables, and replaying each client's recorded callbacks gives exactly its cache: no duplicate
or missing callback, and none for a row that did not change (a reconnect's reconcile reports only what
changed while the client was away).

``FAULTS_SECONDS`` (default 20) and ``FAULTS_SEED`` (default 9001) set the length and the seed.
"""

from __future__ import annotations

import sys
import time
from types import ModuleType

import pytest

from ._churn import (
    Chaos,
    FaultServer,
    churn_through_proxy,
    final_rows,
    reconnects,
    replay,
    seconds,
    seed,
    settle_and_check,
)

SECONDS = seconds(20.0)
SEED = seed(9001)

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX only")


@pytest.mark.timeout(150 + 3 * SECONDS)
def test_sixteen_clients_converge_after_network_chaos(churn_bindings: ModuleType) -> None:
    t0 = time.monotonic()
    server = FaultServer(None).start()
    with churn_through_proxy(churn_bindings, server, seed=SEED, run="churn") as churn:
        chaos = Chaos(churn, SEED + 1)
        churn.drive(SECONDS, chaos)
        chaos.enabled = False
        problems: list[str] = []
        final, outcomes = settle_and_check(churn, server, 90, problems)
        n_reconnects = reconnects(churn)
        summary = (
            f"seed {SEED}, {SECONDS:g} s of chaos, {len(churn.clients)} clients, "
            f"{time.monotonic() - t0:.1f} s in all; faults {dict(churn.faults)}; reconnects {n_reconnects}; "
            f"calls {outcomes}; final rows {final_rows(final)}"
        )
        print(summary)
        # the run did what it says: faults of every kind, reconnects, committed calls
        assert set(churn.faults) >= {"delay", "drop", "cut", "reset"}, summary
        assert n_reconnects >= len(churn.clients), summary
        assert outcomes.get("committed", 0) >= 50, summary
        assert not problems, "\n".join(problems[:40]) + "\n" + summary


# ---- the check itself catches what it is meant to catch ---------------------------------------------------
def _item(k: int, v: int) -> tuple[int, int, str]:
    return (k, v, f"call-{k}-{v}")


def test_replay_accepts_a_consistent_history() -> None:
    log = [
        ("insert", "item", _item(1, 1), None),
        ("insert", "note", ("n1",), None),
        ("applied",),
        ("update", "item", _item(1, 1), _item(1, 2), "tx"),
        ("insert", "item", _item(2, 1), "tx"),
        # a reconnect's reconcile: one row changed, one deleted, one new
        ("update", "item", _item(1, 2), _item(1, 3), None),
        ("delete", "note", ("n1",), None),
        ("insert", "note", ("n2",), None),
        ("applied",),
    ]
    state, problems = replay(log)
    assert problems == []
    assert state == {"item": {1: _item(1, 3), 2: _item(2, 1)}, "note": {("n2",): ("n2",)}, "ledger": {}}


@pytest.mark.parametrize(
    ("entries", "why"),
    [
        ([("insert", "item", _item(1, 1), "tx")], "duplicate"),
        ([("delete", "item", _item(2, 1), "tx")], "does not hold"),
        ([("update", "item", _item(1, 9), _item(1, 2), "tx")], "does not hold"),
        ([("update", "item", _item(1, 1), _item(1, 1), "tx")], "changes nothing"),
        # a reconcile that reports an unchanged row as deleted and inserted again
        ([("delete", "item", _item(1, 1), None), ("insert", "item", _item(1, 1), None)], "touched twice"),
    ],
)
def test_replay_catches_bad_callbacks(entries: list[tuple[object, ...]], why: str) -> None:
    log = [("insert", "item", _item(1, 1), None), ("applied",), *entries]
    _, problems = replay(log)
    assert problems and why in problems[0], problems
