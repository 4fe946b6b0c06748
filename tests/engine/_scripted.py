"""A FrameDriver over a scripted server (no network): the test builds the server's messages from rows
encoded with the generated codecs and feeds them; ``tick()`` then delivers them."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from types import ModuleType
from typing import Any

from spacetime_game.engine import Change, FrameDriver
from spacetime_game.sdk import ConnectionId, DbConnection, Identity, Timestamp
from spacetime_game.sdk.protocol import (
    BsatnRowList,
    EventTableRows,
    PersistentTableRows,
    QueryRows,
    QuerySetUpdate,
    ReducerOk,
    ReducerResult,
    SingleTableRows,
    Subscribe,
    SubscribeApplied,
    TableUpdate,
    TransactionUpdate,
)
from spacetime_game.sdk.testing import ScriptedServer, ScriptedTransport

TS = Timestamp(1_704_067_200_000_000)


def ident(n: int) -> Identity:
    return Identity.from_string(f"c200{n:060x}")


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Log:
    """Records hook calls as tuples; ``change`` arguments are shown as their origin."""

    def __init__(self) -> None:
        self.log: list[tuple[Any, ...]] = []

    def __call__(self, tag: str, result: Callable[..., Any] | None = None) -> Callable[..., Any]:
        def hook(*args: Any) -> Any:
            self.log.append((tag, *(a.origin if isinstance(a, Change) else a for a in args)))
            return result(*args) if result is not None else None

        return hook

    def take(self) -> list[tuple[Any, ...]]:
        out, self.log = self.log, []
        return out


class Net:
    """One connection to a scripted server, driven by a FrameDriver with a hand-moved clock."""

    def __init__(self, mb: ModuleType, *, n: int = 1, client: DbConnection | None = None, **driver: Any):
        self.mb = mb
        self.module = mb.MODULE
        self.server = ScriptedServer()
        self.clock = Clock()
        self.errors: list[BaseException] = []
        self.conn = client or DbConnection(
            self.module,
            "localhost:3000",
            "db",
            transport_factory=self.server,
            on_error=self.errors.append,
            reconnect_min_delay=0.001,
            reconnect_max_delay=0.002,
        )
        # no budget unless a test asks for one: a scripted tick then applies all that was fed, whatever
        # the CPU load (a budget measured on a loaded machine could leave a message for the next tick)
        driver.setdefault("budget", None)
        self.driver = FrameDriver(self.conn, clock=self.clock, **driver)
        self.identity = ident(n)
        self.connection_id = ConnectionId.from_int(n)

    @property
    def t(self) -> ScriptedTransport:
        return self.server.transport

    def connect(self) -> Net:
        """Tick (the driver connects), greet, tick."""
        self.driver.tick()
        self.server.greet(self.identity, self.connection_id, "token")
        self.driver.tick()
        assert self.conn.is_connected
        return self

    def tick(self, dt: float = 1 / 60) -> int:
        self.clock.now += dt
        return self.driver.tick(dt)

    # -- messages --
    def rowlist(self, table: str, rows: Sequence[Any]) -> BsatnRowList:
        codec = self.module.table(table).codec
        return BsatnRowList.from_rows([bytes(codec.encode(r)) for r in rows])

    def subscribe(self, tables: Mapping[str, Sequence[Any]], queries: Sequence[str] | None = None) -> Any:
        """Subscribe and answer with ``tables`` (fed, not yet ticked); returns the handle."""
        h = self.conn.subscribe_multi(list(queries or [f"SELECT * FROM {t}" for t in tables]))
        self.driver.tick()  # nothing to apply; sends the Subscribe
        self.applied(h, tables)
        return h

    def applied(self, h: Any, tables: Mapping[str, Sequence[Any]]) -> None:
        rid = next(
            m.request_id for m in reversed(self.t.of_type(Subscribe)) if m.query_set_id == h.query_set_id
        )
        rows = QueryRows(tuple(SingleTableRows(t, self.rowlist(t, r)) for t, r in tables.items()))
        self.t.feed(SubscribeApplied(rid, h.query_set_id, rows))

    def update(
        self,
        h: Any,
        tables: Mapping[str, tuple[Sequence[Any], Sequence[Any]]] | None = None,
        events: Mapping[str, Sequence[Any]] | None = None,
    ) -> QuerySetUpdate:
        """One query set's changes: ``{table: (inserts, deletes)}`` and event rows."""
        tus = [
            TableUpdate(t, (PersistentTableRows(self.rowlist(t, ins), self.rowlist(t, dels)),))
            for t, (ins, dels) in (tables or {}).items()
        ]
        tus += [
            TableUpdate(t, (EventTableRows(self.rowlist(t, rows)),)) for t, rows in (events or {}).items()
        ]
        return QuerySetUpdate(h.query_set_id, tuple(tus))

    def tx(self, *sets: QuerySetUpdate) -> None:
        """Another client's transaction (fed)."""
        self.t.feed(TransactionUpdate(tuple(sets)))

    def own(self, call: Any, *sets: QuerySetUpdate) -> None:
        """The result of this client's own ``call``, with its rows (fed)."""
        self.t.feed(ReducerResult(call.request_id, TS, ReducerOk(b"", TransactionUpdate(tuple(sets)))))
