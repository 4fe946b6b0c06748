"""The churn harness of the fault suite: real SDK clients (``DbConnection`` with reconnect on) behind the
fault proxy, driven from one thread that calls ``update()`` on each in turn; each records every row
callback from the start, calls reducers of ``churn_module.py`` and remembers their outcomes; a seeded chaos
loop delays, drops, cuts and resets their connections; and the checks run at the end.

Knobs (environment variables, for longer or different runs):

- ``FAULTS_SECONDS``: seconds of chaos per phase (default: each test's own, a few seconds);
- ``FAULTS_SEED``: the random seed (default: a fixed one, so a failure can be replayed);
- ``FAULTS_CLIENTS``: how many clients (default 16).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import websocket

from spacetime_game.sdk import DbConnection, ReducerCall, WebSocketTransport

from .proxy import FaultProxy

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
MODULE = HERE / "churn_module.py"
#: The line `spacetime-game serve` logs once it accepts connections, with the port it bound.
READY = re.compile(rb"ready in \d+ ms: ws://[\d.]+:(\d+)/")
DB = "churn"
TABLES = ("item", "note", "ledger")
QUERIES = [f"SELECT * FROM {t}" for t in TABLES]
ITEM_IDS = 48  # the clients share this many item ids, so they change each other's rows


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


def env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value else default


def seconds(default: float) -> float:
    """How long a chaos phase runs: ``FAULTS_SECONDS`` or the test's default."""
    return env_float("FAULTS_SECONDS", default)


def seed(default: int) -> int:
    return env_int("FAULTS_SEED", default)


def n_clients() -> int:
    return env_int("FAULTS_CLIENTS", 16)


def key_of(table: str, row: tuple[Any, ...]) -> Any:
    """The cache key of a row: its primary key, or the whole row for ``note`` (no primary key)."""
    return tuple(row) if table == "note" else row[0]


def call_id_of(table: str, row: tuple[Any, ...]) -> str:
    """The call that wrote the row."""
    return str(row[2] if table == "item" else row[0])


State = dict[str, dict[Any, tuple[Any, ...]]]  # table -> key -> row (as a plain tuple)


# ---- the server in a child process ----------------------------------------------------------------------
_SERVE = """
import os, resource, sys
limit = os.environ.get("FAULTS_FSIZE_LIMIT")
if limit:  # a small disk: writes past this size fail with EFBIG (CPython ignores SIGXFSZ)
    resource.setrlimit(resource.RLIMIT_FSIZE, (int(limit), int(limit)))
from spacetime_game.cli import main
sys.exit(main(sys.argv[1:]))
"""


class FaultServer:
    """``spacetime-game serve churn_module.py`` as a child process, restartable on the same port; its log
    (stderr) is collected across restarts in ``log``."""

    def __init__(self, data_dir: Path | None, port: int = 0) -> None:
        self.data_dir = data_dir
        self.port = port
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = b""
        self._drain: threading.Thread | None = None
        self.starts = 0

    def start(self, fsize_limit: int | None = None, timeout: float = 30.0) -> FaultServer:
        where = ["--data-dir", str(self.data_dir)] if self.data_dir is not None else ["--in-memory"]
        cmd = [sys.executable, "-c", _SERVE, "serve", str(MODULE), "--database", DB]
        cmd += ["--port", str(self.port), *where, "--log-level", "INFO"]
        env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
        env.pop("FAULTS_FSIZE_LIMIT", None)
        if fsize_limit is not None:
            env["FAULTS_FSIZE_LIMIT"] = str(fsize_limit)
        self.proc = proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, env=env)
        self.starts += 1
        assert proc.stderr is not None
        ready = threading.Event()
        start = len(self.log)

        def drain() -> None:
            assert proc.stderr is not None
            with contextlib.suppress(OSError, ValueError):
                for chunk in iter(lambda: proc.stderr.read1(65536), b""):  # type: ignore[union-attr]
                    self.log += chunk
                    if not ready.is_set():
                        m = READY.search(self.log, start)
                        if m:
                            self.port = int(m.group(1))
                            ready.set()
            ready.set()

        self._drain = threading.Thread(target=drain, name="fault-server-log", daemon=True)
        self._drain.start()
        if not ready.wait(timeout) or proc.poll() is not None:
            self.kill()
            raise AssertionError(f"the server did not start:\n{self.log[start:].decode(errors='replace')}")
        return self

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: no clean shutdown, no close frames, nothing flushed."""
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(20)
            self._end()

    def stop(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(20)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(20)
            self._end()

    def _end(self) -> None:
        if self._drain is not None:
            self._drain.join(10)
            self._drain = None
        if self.proc is not None and self.proc.stderr is not None:
            self.proc.stderr.close()

    def log_text(self) -> str:
        return self.log.decode(errors="replace")

    def http(self, path: str, body: bytes | None = None, timeout: float = 10.0) -> tuple[int, bytes]:
        """A request straight to the server (not through the proxy): (status, body)."""
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}", data=body, method="POST" if body is not None else "GET"
        )
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def state(self, timeout: float = 10.0) -> State:
        """Every table's rows, read with the owner-less ``/sql`` (the tables are public)."""
        status, body = self.http(f"/v1/database/{DB}/sql", ";".join(QUERIES).encode(), timeout)
        if status != 200:
            raise AssertionError(f"/sql answered {status}: {body[:300]!r}")
        results = json.loads(body)
        assert len(results) == len(TABLES), results
        out: State = {}
        for table, res in zip(TABLES, results, strict=True):
            rows = [tuple(r) for r in res["rows"]]
            out[table] = {key_of(table, r): r for r in rows}
        return out


# ---- the clients ------------------------------------------------------------------------------------------
@dataclass
class Call:
    call_id: str
    reducer: str
    handle: ReducerCall
    refused: bool  # put_item(value=0): must never commit


@dataclass
class ChurnClient:
    """One client: its connection, everything its callbacks said (in order), and its calls."""

    index: int
    conn: DbConnection
    log: list[tuple[Any, ...]] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    seq: itertools.count[int] = field(default_factory=itertools.count)
    next_call: float = 0.0
    errors: list[BaseException] = field(default_factory=list)

    def pending(self) -> int:
        return sum(1 for c in self.calls if not c.handle.done)

    def cache(self) -> State:
        return {t: {key_of(t, tuple(r)): tuple(r) for r in self.conn.iter_rows(t)} for t in TABLES}


class Churn:
    """Clients, proxy and chaos of one test."""

    def __init__(
        self,
        bindings: ModuleType,
        proxy: FaultProxy,
        *,
        clients: int,
        rng_seed: int,
        run: str,
        call_interval: tuple[float, float] = (0.15, 0.5),
        max_pending: int = 6,
    ) -> None:
        self.b = bindings
        self.proxy = proxy
        self.rng = random.Random(rng_seed)
        self.run = run
        self.call_interval = call_interval
        self.max_pending = max_pending
        self.clients: list[ChurnClient] = []
        self.faults: Counter[str] = Counter()
        self.calling = True
        #: rows shown by /sql while the server was failing (checked like rows seen by clients)
        self.sql_seen: list[tuple[str, tuple[Any, ...]]] = []
        for i in range(clients):
            port = proxy.add_listener(f"c{i}")
            self.clients.append(self._client(i, port))

    def _client(self, i: int, port: int) -> ChurnClient:
        def transport(url: str, token: str | None) -> WebSocketTransport:
            # a dead line is noticed after 3 s without a byte, and a hung handshake after 3 s
            return WebSocketTransport(url, token, ping_interval=1.0, ping_timeout=2.0, connect_timeout=3.0)

        errors: list[BaseException] = []
        conn = DbConnection(
            self.b.MODULE,
            f"127.0.0.1:{port}",
            DB,
            reconnect_min_delay=0.05,
            reconnect_max_delay=1.0,
            transport_factory=transport,
            on_error=errors.append,
        )
        c = ChurnClient(i, conn, errors=errors)
        log = c.log
        for cls, table in ((self.b.Item, "item"), (self.b.Note, "note"), (self.b.Ledger, "ledger")):
            cls.on_insert(lambda row, ev, t=table: log.append(("insert", t, tuple(row), ev)), client=conn)
            cls.on_delete(lambda row, ev, t=table: log.append(("delete", t, tuple(row), ev)), client=conn)
            cls.on_update(
                lambda old, new, ev, t=table: log.append(("update", t, tuple(old), tuple(new), ev)),
                client=conn,
            )
        handle = conn.subscribe_multi(QUERIES)
        handle.on_applied(lambda h: log.append(("applied",)))
        handle.on_error(lambda h, msg: errors.append(AssertionError(f"subscription error: {msg}")))
        return c

    def connect(self) -> None:
        for c in self.clients:
            c.conn.connect()

    def close(self) -> None:
        for c in self.clients:
            c.conn.close()

    # -- driving --
    def update_all(self) -> None:
        for c in self.clients:
            c.conn.update()

    def maybe_call(self, c: ChurnClient, now: float) -> None:
        if not self.calling or now < c.next_call or c.pending() >= self.max_pending:
            return
        c.next_call = now + self.rng.uniform(*self.call_interval)
        b, rng, conn = self.b, self.rng, c.conn
        call_id = f"{self.run}-{c.index}-{next(c.seq)}"
        r = rng.random()
        refused = False
        if r < 0.35:
            value = 0 if rng.random() < 0.05 else rng.randrange(1, 1_000_000)
            refused = value == 0
            h = b.put_item(call_id, c.index, rng.randrange(ITEM_IDS), value, client=conn)
            name = "put_item"
        elif r < 0.5:
            h = b.del_item(call_id, c.index, rng.randrange(ITEM_IDS), client=conn)
            name = "del_item"
        elif r < 0.75:
            h = b.add_note(call_id, c.index, client=conn)
            name = "add_note"
        else:
            notes = [n.tag for n in itertools.islice(b.Note.iter(client=conn), 64)]
            tag = rng.choice(notes) if notes else f"{self.run}-none"
            h = b.del_note(call_id, c.index, tag, client=conn)
            name = "del_note"
        c.calls.append(Call(call_id, name, h, refused))

    def drive(
        self, duration: float, chaos: Chaos | None, tick: Callable[[float], None] | None = None
    ) -> None:
        """Run the clients (and the chaos) for ``duration`` seconds."""
        end = time.monotonic() + duration
        while (now := time.monotonic()) < end:
            self.update_all()
            for c in self.clients:
                self.maybe_call(c, now)
            if chaos is not None:
                chaos.step(now)
            if tick is not None:
                tick(now)
            time.sleep(0.003)

    def pump_until(self, cond: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while True:
            self.update_all()
            if cond():
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
            time.sleep(0.01)

    def settle(self, server: FaultServer, timeout: float) -> State:
        """Stop calling, heal the network, and wait until every call has its outcome and every client's
        cache equals the server's tables; returns those tables. AssertionError (with the differences) when
        that does not happen within ``timeout``."""
        self.calling = False
        self.proxy.heal()
        deadline = time.monotonic() + timeout
        self.pump_until(
            lambda: all(c.pending() == 0 for c in self.clients),
            max(1.0, deadline - time.monotonic()),
            "every reducer call to get an outcome",
        )
        state: State = {}
        next_read = 0.0
        while True:
            self.update_all()
            now = time.monotonic()
            if now >= next_read:
                state = server.state()
                next_read = now + 0.5
                if all(c.cache() == state for c in self.clients) and all(
                    c.conn.is_connected for c in self.clients
                ):
                    return state
            if now > deadline:
                diffs = [
                    f"client {c.index} ({c.conn.state}): {describe_diff(c.cache(), state)}"
                    for c in self.clients
                    if c.cache() != state
                ]
                raise AssertionError(
                    f"the caches did not converge within {timeout:g} s after the chaos stopped:\n"
                    + "\n".join(diffs[:8])
                )
            time.sleep(0.01)


class Chaos:
    """Seeded random faults on the proxy's live connections, one every ``interval`` seconds."""

    ACTIONS = (("delay", 3), ("drop", 3), ("drop_reset", 1), ("cut", 3), ("reset", 3), ("calm", 1))

    def __init__(self, churn: Churn, rng_seed: int, interval: tuple[float, float] = (0.08, 0.35)) -> None:
        self.churn = churn
        self.proxy = churn.proxy
        self.rng = random.Random(rng_seed)
        self.interval = interval
        self.next_at = 0.0
        self.enabled = True
        self.names = [a for a, _ in self.ACTIONS]
        self.weights = [w for _, w in self.ACTIONS]

    def step(self, now: float) -> None:
        if not self.enabled or now < self.next_at:
            return
        self.next_at = now + self.rng.uniform(*self.interval)
        conns = self.proxy.connections()
        if not conns:
            return
        target = self.rng.choice(conns)
        action = self.rng.choices(self.names, self.weights)[0]
        rng = self.rng
        done = False
        if action == "delay":
            done = self.proxy.set_delay(target.id, rng.uniform(0.0, 0.15), rng.uniform(0.0, 0.1))
        elif action == "drop":  # short ones heal by themselves; long ones outlast the client's 3 s ping
            done = self.proxy.drop(target.id, rng.choice((rng.uniform(0.1, 1.5), rng.uniform(3.5, 5.0))))
        elif action == "drop_reset":
            done = self.proxy.drop(target.id, rng.uniform(0.2, 2.0), then="reset")
        elif action == "cut":
            done = self.proxy.cut(target.id)
        elif action == "reset":
            done = self.proxy.reset(target.id)
        else:
            done = self.proxy.set_delay(target.id, 0.0) and self.proxy.resume(target.id)
        if done:
            self.churn.faults[action] += 1


def sdk_threads() -> list[threading.Thread]:
    """Threads of the SDK (readers) and of this suite (proxy, server log readers) still running."""
    return [t for t in threading.enumerate() if t.name.startswith(("spacetime-game", "fault-"))]


@contextlib.contextmanager
def churn_through_proxy(bindings: ModuleType, server: FaultServer, *, seed: int, run: str) -> Iterator[Churn]:
    """The fault proxy in front of ``server`` (already started) and ``n_clients()`` churn clients behind it,
    connected and with their first subscription applied. On leaving, the clients are closed and the proxy
    and the server stopped; after a clean exit no SDK or suite thread may be left running."""
    with contextlib.ExitStack() as stack:
        stack.callback(server.stop)
        proxy = FaultProxy(("127.0.0.1", server.port), seed=seed).start()
        stack.callback(proxy.stop)
        churn = Churn(bindings, proxy, clients=n_clients(), rng_seed=seed, run=run)
        stack.callback(churn.close)
        churn.connect()
        churn.pump_until(
            lambda: all(any(e[0] == "applied" for e in c.log) for c in churn.clients),
            60,
            "every client's first subscription",
        )
        yield churn
    assert sdk_threads() == []


def committed(churn: Churn) -> int:
    """How many calls the clients have seen acknowledged as committed so far."""
    return sum(1 for c in churn.clients for call in c.calls if call.handle.committed)


def reconnects(churn: Churn) -> int:
    """How many times the clients reconnected, all together."""
    return sum(c.conn.stats.reconnects for c in churn.clients)


def final_rows(final: State) -> dict[str, int]:
    """How many rows each table holds (for a summary)."""
    return {t: len(r) for t, r in final.items()}


# ---- the checks -----------------------------------------------------------------------------------------
def describe_diff(cache: State, server: State) -> str:
    parts = []
    for t in TABLES:
        a, b = cache.get(t, {}), server.get(t, {})
        missing = [b[k] for k in b.keys() - a.keys()]
        extra = [a[k] for k in a.keys() - b.keys()]
        wrong = [(a[k], b[k]) for k in a.keys() & b.keys() if a[k] != b[k]]
        if missing or extra or wrong:
            parts.append(
                f"{t}: {len(missing)} missing {missing[:3]}, {len(extra)} extra {extra[:3]}, "
                f"{len(wrong)} stale (cache, server) {wrong[:3]}"
            )
    return "; ".join(parts) or "equal"


def replay(log: Iterable[tuple[Any, ...]]) -> tuple[State, list[str]]:
    """Apply a client's recorded callbacks, in order, to an empty cache. Returns the result and every
    inconsistency: an insert of a key already there (a duplicate), a delete or update of a row that is not
    there as the callback says (a missing or out-of-order callback), an update that changes nothing, and,
    within one re-subscription (the callbacks of one SubscribeApplied, which carry no event), a row touched
    twice or deleted and inserted back unchanged (a callback for a row that did not change)."""
    state: State = {t: {} for t in TABLES}
    problems: list[str] = []
    batch: dict[tuple[str, Any], list[tuple[Any, ...]]] = {}  # the current SubscribeApplied's callbacks
    n_applied = 0

    def bad(i: int, entry: tuple[Any, ...], why: str) -> None:
        if len(problems) < 20:
            problems.append(f"callback #{i} {entry[:-1] if entry[0] != 'applied' else entry}: {why}")

    for i, entry in enumerate(log):
        kind = entry[0]
        if kind == "applied":
            n_applied += 1
            batch = {}
            continue
        table = entry[1]
        rows = state[table]
        ev = entry[-1]
        if kind == "insert":
            row = entry[2]
            k = key_of(table, row)
            if k in rows:
                bad(i, entry, f"insert of a key already cached (as {rows[k]}): a duplicate callback")
            rows[k] = row
        elif kind == "delete":
            row = entry[2]
            k = key_of(table, row)
            if rows.get(k) != row:
                bad(i, entry, f"delete of a row the cache does not hold (it holds {rows.get(k)})")
            rows.pop(k, None)
        else:
            old, new = entry[2], entry[3]
            k = key_of(table, old)
            if key_of(table, new) != k:
                bad(i, entry, "update that changes the key")
            if rows.get(k) != old:
                bad(i, entry, f"update from a row the cache does not hold (it holds {rows.get(k)})")
            if old == new:
                bad(i, entry, "update that changes nothing")
            rows[k] = new
        if ev is None and n_applied > 0:  # part of a re-subscription's reconcile
            touched = batch.setdefault((table, key_of(table, entry[2])), [])
            touched.append(entry[:-1])
            if len(touched) > 1:
                bad(i, entry, f"the same row touched twice by one re-subscription: {touched}")
    return state, problems


def check_client(c: ChurnClient, final: State, problems: list[str]) -> None:
    """The client's cache equals the server's tables, and replaying its callbacks gives its cache."""
    cache = c.cache()
    if cache != final:
        problems.append(f"client {c.index}: cache != server: {describe_diff(cache, final)}")
    replayed, bad = replay(c.log)
    problems.extend(f"client {c.index}: {p}" for p in bad)
    if replayed != cache:
        problems.append(
            f"client {c.index}: its callbacks replayed do not give its cache: {describe_diff(replayed, cache)}"
        )
    if not any(e[0] == "applied" for e in c.log):
        problems.append(f"client {c.index}: its subscription was never applied")
    network = (ConnectionError, OSError, websocket.WebSocketException)
    odd = [e for e in c.errors if not isinstance(e, network)]
    if odd:
        problems.append(f"client {c.index}: on_error heard more than network errors: {odd[:3]}")


def seen_rows(c: ChurnClient) -> Iterable[tuple[str, tuple[Any, ...]]]:
    """Every row the client was ever shown: in an insert or update callback, or in its cache now."""
    for e in c.log:
        if e[0] == "insert":
            yield e[1], e[2]
        elif e[0] == "update":
            yield e[1], e[3]
    for t, rows in c.cache().items():
        for r in rows.values():
            yield t, r


def check_durability(
    churn: Churn, final: State, problems: list[str], *, errors_allowed: bool = False
) -> dict[str, int]:
    """Every acknowledged call is in the final ledger, no refused call ever committed or was seen, and
    every row any client saw (or /sql showed while the server was failing) was written by a call in the
    final ledger. Unless ``errors_allowed`` (a server whose disk failed answers with errors), a call
    other than the refused ones must never fail. Returns counts of the outcomes."""
    ledger = set(final["ledger"])
    outcomes: Counter[str] = Counter()
    refused = set()
    for c in churn.clients:
        for call in c.calls:
            status = call.handle.status
            outcomes[status] += 1
            if call.refused:
                refused.add(call.call_id)
                if status == "committed":
                    problems.append(f"{call.call_id}: put_item(value=0) was acknowledged as committed")
            elif status == "committed" and call.call_id not in ledger:
                problems.append(
                    f"{call.call_id} ({call.reducer}): acknowledged, but lost (not in the ledger)"
                )
            elif status in ("failed", "internal_error"):
                if not errors_allowed:
                    problems.append(f"{call.call_id} ({call.reducer}): {status}: {call.handle.message}")
                elif call.call_id in ledger:
                    outcomes["error_but_committed"] += 1
            if status == "disconnected" and call.call_id in ledger:
                outcomes["disconnected_but_committed"] += 1
    if refused & ledger:
        problems.append(f"refused calls in the ledger: {sorted(refused & ledger)[:5]}")
    unexplained: list[str] = []
    for c in churn.clients:
        for table, row in seen_rows(c):
            cid = call_id_of(table, row)
            if cid not in ledger:
                unexplained.append(f"client {c.index} saw {table} {row}")
    for table, row in churn.sql_seen:
        if call_id_of(table, row) not in ledger:
            unexplained.append(f"/sql showed {table} {row}")
    if unexplained:
        problems.append(
            f"{len(unexplained)} rows were shown that no durable transaction explains (written by a call "
            f"not in the final ledger), e.g. {unexplained[:5]}"
        )
    return dict(outcomes)


def settle_and_check(
    churn: Churn, server: FaultServer, timeout: float, problems: list[str], *, errors_allowed: bool = False
) -> tuple[State, dict[str, int]]:
    """Settle (``Churn.settle``), then run every check: each client's cache and callbacks
    (``check_client``) and durability (``check_durability``). What is wrong is appended to ``problems``;
    returns the server's final tables and the counts of the calls' outcomes."""
    final = churn.settle(server, timeout)
    for c in churn.clients:
        check_client(c, final, problems)
    return final, check_durability(churn, final, problems, errors_allowed=errors_allowed)
