"""A disk that fills up under load: the dev server runs with ``RLIMIT_FSIZE`` (a few KiB above an empty
commit log), so part-way through the churn a commit-log write fails with a real ``EFBIG`` from the kernel
(CPython ignores SIGXFSZ). Then the server is restarted on the same port without the limit.

Checks (issue #9, defect 5):

- the failure happened, and the server says why in its log;
- once the log has failed, every call in flight gets an outcome (an error, or the connection closes)
  within a bounded time, and ``/v1/ping`` no longer answers 200 (or the server has stopped);
- nothing acknowledged is lost: every call acknowledged as committed is in the restarted server's ledger;
- no client was ever shown a row (in a callback or its cache) that the restarted server does not explain,
  and neither was ``/sql`` while the server was failing: no non-durable data is ever shown;
- after the restart the clients converge, and their callbacks replay to their caches (as in test_churn).

Every wait is bounded: when the server never answers, the test fails with a message, it does not hang.
``FAULTS_SECONDS`` (default 4, the churn after the restart), ``FAULTS_SEED`` (default 777) and
``FAULTS_FSIZE_LIMIT`` (default 20 KiB) change the run.
"""

from __future__ import annotations

import random
import re
import sys
import time
import urllib.error
from pathlib import Path
from types import ModuleType

import pytest

from .._support import free_port
from ._churn import (
    DB,
    TABLES,
    Chaos,
    Churn,
    FaultServer,
    churn_through_proxy,
    committed,
    env_int,
    final_rows,
    seconds,
    seed,
    settle_and_check,
)

SECONDS = seconds(4.0)
SEED = seed(777)
LIMIT = env_int("FAULTS_FSIZE_LIMIT", 20 * 1024)
FAULT_TIMEOUT = 60.0  # the commit log must hit the limit within this
ANSWER_TIMEOUT = 15.0  # calls in flight on the failed server must have an outcome within this
EFBIG = re.compile(r"File too large|EFBIG|Errno 27", re.IGNORECASE)

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs RLIMIT_FSIZE")


@pytest.mark.timeout(240 + 3 * SECONDS)
def test_a_full_disk_loses_nothing_acknowledged_and_shows_nothing_non_durable(
    churn_bindings: ModuleType, tmp_path: Path
) -> None:
    t0 = time.monotonic()
    rng = random.Random(SEED)
    data = tmp_path / "data"
    server = FaultServer(data, port=free_port()).start(fsize_limit=LIMIT)
    problems: list[str] = []
    notes: list[str] = []
    with churn_through_proxy(churn_bindings, server, seed=SEED, run="full") as churn:
        chaos = Chaos(churn, SEED + 1, interval=(0.2, 0.8))

        # 1. churn until the commit log hits the limit
        deadline = time.monotonic() + FAULT_TIMEOUT
        while not (EFBIG.search(server.log_text()) or not server.alive):
            if time.monotonic() > deadline:
                log = data / "databases" / DB / "commitlog.bin"
                size = log.stat().st_size if log.exists() else None
                pytest.fail(
                    f"the commit log did not hit the {LIMIT}-byte limit within {FAULT_TIMEOUT:g} s "
                    f"(it holds {size} bytes); server log:\n{server.log_text()[-2000:]}"
                )
            churn.drive(0.25, chaos)
        failed_at = time.monotonic()
        at_failure = committed(churn)
        assert EFBIG.search(server.log_text()), (
            f"the server stopped, but its log does not say that a write failed (EFBIG):\n"
            f"{server.log_text()[-2000:]}"
        )
        notes.append(f"EFBIG after {failed_at - t0:.1f} s, {at_failure} calls committed")

        # 2. the failed server: a little more load (no chaos), then every call must get an outcome
        chaos.enabled = False
        churn.proxy.heal()
        churn.drive(1.5, None, tick=lambda now: sample_sql(server, churn))
        churn.calling = False
        end = time.monotonic() + ANSWER_TIMEOUT
        while time.monotonic() < end and any(c.pending() for c in churn.clients):
            churn.update_all()
            sample_sql(server, churn)
            time.sleep(0.02)
        unanswered = [call.call_id for c in churn.clients for call in c.calls if not call.handle.done]
        if unanswered:
            problems.append(
                f"defect 5: {len(unanswered)} calls sent to the server after its commit log failed got no "
                f"outcome within {ANSWER_TIMEOUT:g} s (neither an error nor a closed connection), "
                f"e.g. {unanswered[:5]}"
            )
        if server.alive:
            try:
                status, _ = server.http("/v1/ping", timeout=5)
            except (OSError, urllib.error.URLError) as exc:
                status = -1
                notes.append(f"/v1/ping after the failure: {exc}")
            if status == 200:
                problems.append("defect 5: /v1/ping still answers 200 after the commit log failed")
        notes.append(f"server {'still running' if server.alive else 'stopped by itself'} after the failure")

        # 3. restart without the limit; the clients come back and churn on
        server.kill()
        server.start()
        churn.calling = True
        chaos.enabled = True
        churn.drive(SECONDS * rng.uniform(0.9, 1.1), chaos)
        chaos.enabled = False
        final, outcomes = settle_and_check(churn, server, 120, problems, errors_allowed=True)
        summary = (
            f"seed {SEED}, limit {LIMIT} bytes, {len(churn.clients)} clients, {time.monotonic() - t0:.1f} s in "
            f"all; {'; '.join(notes)}; faults {dict(churn.faults)}; calls {outcomes}; /sql samples "
            f"{len(churn.sql_seen)} rows; final rows {final_rows(final)}"
        )
        print(summary)
        assert not problems, "\n".join(problems[:40]) + "\n" + summary


_last_sample = [0.0]


def sample_sql(server: FaultServer, churn: Churn) -> None:
    """Read the tables with /sql (at most every 0.3 s) while the server is failing, and remember every row
    it shows: each must be explained by the durable state after the restart."""
    now = time.monotonic()
    if now - _last_sample[0] < 0.3 or not server.alive:
        return
    _last_sample[0] = now
    try:
        state = server.state(timeout=3)
    except (AssertionError, OSError, urllib.error.URLError, ValueError):
        return  # refusing to answer is fine
    for t in TABLES:
        churn.sql_seen.extend((t, row) for row in state[t].values())
