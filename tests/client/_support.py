"""Shared material of the client tests: generated bindings, a scripted (fake) transport, message builders
and a callback recorder."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from spacetime_game.sdk import ConnectionId, DbConnection, Identity, Timestamp
from spacetime_game.sdk.protocol import (
    BsatnRowList,
    EventTableRows,
    InitialConnection,
    PersistentTableRows,
    QueryRows,
    QuerySetUpdate,
    ServerMessage,
    SingleTableRows,
    Subscribe,
    TableUpdate,
    TransactionUpdate,
)
from spacetime_game.sdk.schema import ModuleSchema, load_schema
from spacetime_game.sdk.testing import ScriptedServer, ScriptedTransport
from spacetime_game.server import DevServerProcess

from .._support import forget, import_generated, sdk_threads, sdk_threads_after_close  # noqa: F401  (used by the tests here)  # noqa: F401  (used by the tests here)

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
DATA = ROOT / "tests" / "data"
CHAT_SCHEMA = DATA / "quickstart_chat.schema.json"
CHAT_MODULE = ROOT / "demos" / "chat" / "module.py"


def chat_schema() -> ModuleSchema:
    return load_schema(CHAT_SCHEMA)


def _t(name: str) -> dict[str, list[Any]]:
    return {name: []}


def _el(name: str, ty: Any) -> dict[str, Any]:
    return {"name": {"some": name}, "algebraic_type": ty}


def _product(*els: dict[str, Any]) -> dict[str, Any]:
    return {"Product": {"elements": list(els)}}


IDENTITY_TYPE = _product(_el("__identity__", _t("U256")))


def _table(
    name: str, ref: int, pk: list[int], unique: list[list[int]], *, is_event: bool = False
) -> dict[str, Any]:
    return {
        "source_name": name,
        "product_type_ref": ref,
        "primary_key": pk,
        "indexes": [
            {
                "source_name": {"some": f"{name}_{'_'.join(map(str, cols))}_idx_btree"},
                "accessor_name": {"none": []},
                "algorithm": {"BTree": {"columns": cols}},
            }
            for cols in unique
        ],
        "constraints": [
            {
                "source_name": {"some": f"{name}_{'_'.join(map(str, cols))}_key"},
                "data": {"Unique": {"columns": cols}},
            }
            for cols in unique
        ],
        "sequences": [],
        "table_type": {"User": []},
        "table_access": {"Public": []},
        "default_values": [],
        "is_event": is_event,
    }


def game_schema_json() -> dict[str, Any]:
    """A small RawModuleDefV10 written for these tests:

    - ``player {id: u32 (PK), handle: String (unique), score: u32}``: a PK and a second unique column;
    - ``point {id: u32, x: f32, y: f32}``: no key, a fixed-width 12-byte row (the big-subscription test);
    - ``hit {target: u32, damage: u32}``: an **event table** (rows are never stored);
    - reducers ``attack(target: u32, damage: u32)`` and ``rename(id: u32, handle: String)``.
    """
    types = [
        _product(_el("id", _t("U32")), _el("handle", _t("String")), _el("score", _t("U32"))),
        _product(_el("id", _t("U32")), _el("x", _t("F32")), _el("y", _t("F32"))),
        _product(_el("target", _t("U32")), _el("damage", _t("U32"))),
    ]
    reducer = lambda name, *els: {  # noqa: E731
        "source_name": name,
        "params": {"elements": list(els)},
        "visibility": {"ClientCallable": []},
        "ok_return_type": {"Product": {"elements": []}},
        "err_return_type": {"String": []},
    }
    return {
        "sections": [
            {"Typespace": {"types": types}},
            {
                "Types": [
                    {"source_name": {"scope": [], "source_name": n}, "ty": i, "custom_ordering": True}
                    for i, n in enumerate(["Player", "Point", "Hit"])
                ]
            },
            {
                "Tables": [
                    _table("player", 0, [0], [[0], [1]]),
                    _table("point", 1, [], []),
                    _table("hit", 2, [], [], is_event=True),
                ]
            },
            {
                "Reducers": [
                    reducer("attack", _el("target", _t("U32")), _el("damage", _t("U32"))),
                    reducer("rename", _el("id", _t("U32")), _el("handle", _t("String"))),
                ]
            },
            {"Schedules": []},
            {"LifeCycleReducers": []},
            {"RowLevelSecurity": []},
            {"CaseConversionPolicy": {"SnakeCase": []}},
            {"ExplicitNames": {"entries": []}},
        ]
    }


def game_schema() -> ModuleSchema:
    return ModuleSchema.from_text(json.dumps(game_schema_json()), "game.schema.json")


# ---- values ------------------------------------------------------------------------------------------
def ident(n: int) -> Identity:
    """A distinct, readable identity."""
    return Identity.from_string(f"c200{n:060x}")


def conn_id(n: int) -> ConnectionId:
    return ConnectionId.from_string(f"{n:032x}")


TS = Timestamp(1_704_067_200_000_000)


# ---- a scripted transport ----------------------------------------------------------------------------
#: An in-memory transport: the test feeds server messages; what the client sends is recorded (the
#: library's own, which games use in their tests too).
FakeTransport = ScriptedTransport


class Script:
    """A :class:`DbConnection` on fake transports (one per connection attempt), with helpers that build
    the server's messages from rows encoded with the generated codecs."""

    def __init__(self, package: ModuleType, **kwargs: Any) -> None:
        self.package = package
        self.module = package.MODULE
        self.server = ScriptedServer()
        self.transports = self.server.transports
        self.errors: list[BaseException] = []
        kwargs.setdefault("on_error", self.errors.append)
        self.conn = DbConnection(self.module, "localhost:3000", "db", transport_factory=self.server, **kwargs)
        self.identity = ident(1)
        self.connection_id = conn_id(1)

    @property
    def t(self) -> FakeTransport:
        return self.transports[-1]

    def connect(self, token: str = "token-1") -> Script:
        self.conn.connect()
        self.t.feed(InitialConnection(self.identity, self.connection_id, token))
        self.conn.update()
        assert self.conn.is_connected
        return self

    def feed(self, *messages: ServerMessage, update: bool = True) -> int:
        self.t.feed(*messages)
        return self.conn.update() if update else 0

    def last_subscribe(self) -> Subscribe:
        subs = self.t.of_type(Subscribe)
        assert subs, f"no Subscribe sent: {self.t.sent}"
        return subs[-1]

    # -- rows --
    def enc(self, table: str, row: Any) -> bytes:
        return bytes(self.module.table(table).codec.encode(row))

    def rowlist(self, table: str, rows: Iterable[Any]) -> BsatnRowList:
        return BsatnRowList.from_rows([self.enc(table, r) for r in rows])

    def query_rows(self, tables: Mapping[str, Sequence[Any]]) -> QueryRows:
        return QueryRows(tuple(SingleTableRows(t, self.rowlist(t, rows)) for t, rows in tables.items()))

    def set_update(
        self,
        query_set_id: int,
        tables: Mapping[str, tuple[Sequence[Any], Sequence[Any]]],
        events: Mapping[str, Sequence[Any]] | None = None,
    ) -> QuerySetUpdate:
        """One query set's changes: ``{table: (inserts, deletes)}`` and event rows ``{table: rows}``."""
        tus = [
            TableUpdate(t, (PersistentTableRows(self.rowlist(t, ins), self.rowlist(t, dels)),))
            for t, (ins, dels) in tables.items()
        ]
        tus += [
            TableUpdate(t, (EventTableRows(self.rowlist(t, rows)),)) for t, rows in (events or {}).items()
        ]
        return QuerySetUpdate(query_set_id, tuple(tus))

    def tx(self, *sets: QuerySetUpdate) -> TransactionUpdate:
        return TransactionUpdate(tuple(sets))

    def check_counts(self) -> None:
        """The cache's invariants: every table's total count is the sum of the per-set counts, every
        cached row has a positive count (stored only when above 1), a table's counts are shared with a set
        only while that set alone holds it, every unique index points at exactly the cached rows, and every
        row is stored under its key (its primary key's value, or else its BSATN bytes)."""
        cache = self.conn.cache
        for name, tc in cache.tables.items():
            per_set: dict[bytes, int] = {}
            for sets in cache.sets.values():
                for k, n in sets.get(name, {}).items():
                    assert n > 0, f"{name}: a per-set count of {n}"
                    per_set[k] = per_set.get(k, 0) + n
            # the totals: every cached row once, rows held more than once with their count in ``multi``
            assert set(tc.multi) <= set(tc.rows), f"{name}: counts of rows not cached {tc.multi}"
            assert all(n > 1 for n in tc.multi.values()), f"{name}: a stored total <= 1 {tc.multi}"
            totals = {k: tc.multi.get(k, 1) for k in tc.rows}
            assert per_set == totals, f"{name}: per-set counts {per_set} != totals {totals}"
            holders = [q for q, sets in cache.sets.items() if name in sets]
            if tc.alias is not None:  # one set alone holds the table: its counts are the totals
                assert holders == [tc.alias], f"{name}: aliased to {tc.alias} but held by {holders}"
            for col, index in tc.unique.items():
                i = tc.binding.column_index(col)
                assert {r[i]: k for k, r in tc.rows.items()} == index, f"{name}.{col}: stale unique index"
            if tc.by_pk:  # keyed by the primary key: every row under its own key, and no index for it
                assert tc.pk_getter is not None and tc.pk_column not in tc.unique
                assert all(tc.pk_getter(r) == k for k, r in tc.rows.items()), (
                    f"{name}: a row under a wrong key"
                )
            else:  # keyed by the row bytes
                codec = tc.binding.codec
                assert all(codec.encode(r) == k for k, r in tc.rows.items()), (
                    f"{name}: a row under a wrong key"
                )


class Recorder:
    """Records every callback, in order, as tuples."""

    def __init__(self) -> None:
        self.log: list[tuple[Any, ...]] = []

    def __call__(self, tag: str) -> Callable[..., None]:
        def cb(*args: Any) -> None:
            self.log.append((tag, *args))

        return cb

    def take(self) -> list[tuple[Any, ...]]:
        out, self.log = self.log, []
        return out


# ---- a dev server in a subprocess --------------------------------------------------------------------
class ServerProcess:
    """``spacetime-game serve`` as a child process: the public ``DevServerProcess``, with ``host`` the
    ``host:port`` that the SDK takes (port 0 picks a free port the first time)."""

    def __init__(
        self,
        module: Path,
        database: str,
        data_dir: Path | None,
        port: int = 0,
        protocols: list[str] | None = None,
    ) -> None:
        self.server = DevServerProcess(
            module, database, port=port, data_dir=data_dir, env={"PYTHONPATH": str(ROOT)}, protocols=protocols
        )
        self.protocol = ""  # (what a client gets, for tests that say)

    def start(self, timeout: float = 20.0) -> ServerProcess:
        self.server.start(timeout)
        return self

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def host(self) -> str:
        return self.server.address

    @property
    def database(self) -> str:
        return self.server.database

    @property
    def data_dir(self) -> Path | None:
        return self.server.data_dir

    @property
    def stderr(self) -> str:
        return self.server.log

    def kill(self) -> None:
        """SIGKILL: no clean shutdown, no close frames."""
        self.server.kill()

    def stop(self) -> None:
        self.server.stop()


def pump(conns: Sequence[Any], until: Callable[[], bool], timeout: float = 10.0, what: str = "") -> None:
    """Call ``update()`` on every connection until ``until()`` holds (AssertionError after ``timeout``)."""
    deadline = time.monotonic() + timeout
    while True:
        for c in conns:
            c.update()
        if until():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or until}")
        time.sleep(0.005)
