"""The module host: runs reducers as transactions over the store (one at a time)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ..sdk import ConnectionId, Identity, Timestamp
from ..sdk.sats import (
    Codec,
    DecodeError,
    ProductBinding,
    ProductElement,
    ProductType,
    Typespace,
    compile_codec,
)
from ._context import Database, ReducerContext
from ._errors import ReducerError
from ._logsafe import server_logger
from ._module import ModuleDef, ReducerDef
from ._store import Store, TxRecord

__all__ = ["CallInfo", "CallResult", "Host"]

log = server_logger("spacetime_game.server.host")


@dataclass
class CallResult:
    """The outcome of one reducer call: committed (``ok``), failed on purpose (``err``) or crashed /
    refused (``internal``); ``record`` holds the committed changes."""

    status: Literal["ok", "err", "internal"]
    message: str
    timestamp: Timestamp
    record: TxRecord | None = None


@dataclass(slots=True)
class CallInfo:
    """One reducer call as the host ran it (for the dev console: :attr:`Host.observer`)."""

    at: float  # time.time() when it ended
    reducer: str
    caller: Identity
    connection: ConnectionId | None
    args: tuple[Any, ...]
    status: str  # "ok", "err" or "internal"
    message: str
    duration: float  # seconds
    rows_changed: int
    scheduled: bool  # run by the server (a scheduled or lifecycle reducer), not called by a client


class Host:
    """Runs a module's reducers over its store."""

    #: Called with a :class:`CallInfo` after each reducer ran, while a dev console is open (else None).
    observer: Callable[[CallInfo], None] | None = None

    def __init__(self, module: ModuleDef, identity: Identity) -> None:
        module.finalize()
        self.module = module
        self.identity = identity
        self.store = Store(module)
        ts = Typespace(tuple(module.typespace))
        self._args: dict[str, Codec] = {}
        for rd in module.reducers:
            ptype = ProductType(tuple(ProductElement(n, t) for n, t in rd.params))
            self._args[rd.name] = compile_codec(
                ptype,
                ts,
                {**module.bindings, ptype: ProductBinding(tuple, _seq, tuple)},
                name=f"{rd.name}(args)",
            )
        self._scheduled = {t.scheduled for t in module.tables if t.scheduled}

    def args_codec(self, reducer: str) -> Codec:
        """The codec of a reducer's argument product (values are tuples)."""
        return self._args[reducer]

    def is_callable(self, reducer: str) -> bool:
        """Whether clients may call ``reducer`` (not lifecycle, not scheduled)."""
        rd = self.module.reducer_def(reducer)
        return rd is not None and rd.lifecycle is None and reducer not in self._scheduled

    def call(
        self,
        reducer: str,
        args: bytes | Sequence[Any],
        sender: Identity,
        connection_id: ConnectionId | None,
        timestamp: Timestamp | None = None,
        *,
        internal: bool = False,
    ) -> CallResult:
        """Run ``reducer`` as one transaction. ``internal`` allows lifecycle and scheduled reducers."""
        ts = timestamp or Timestamp.now()
        rd = self.module.reducer_def(reducer)
        if rd is None or (not internal and not self.is_callable(reducer)):
            return CallResult("internal", f"No such reducer: {reducer!r}", ts)
        if isinstance(args, bytes | bytearray | memoryview):
            try:
                values = self._args[reducer].decode(bytes(args))
            except DecodeError as exc:
                return CallResult("internal", f"invalid arguments for reducer {reducer}: {exc}", ts)
        else:
            values = tuple(args)
        if self.observer is None:
            return self._run(rd, values, sender, connection_id, ts)
        return self._observed(rd, values, sender, connection_id, ts, internal)

    def _observed(
        self,
        rd: ReducerDef,
        values: Sequence[Any],
        sender: Identity,
        conn: ConnectionId | None,
        ts: Timestamp,
        internal: bool,
    ) -> CallResult:
        t0 = time.perf_counter()
        result = self._run(rd, values, sender, conn, ts)
        observer = self.observer
        if observer is not None:
            record = result.record
            changed = sum(len(c.inserts) + len(c.deletes) for c in record.changes.values()) if record else 0
            info = CallInfo(
                time.time(),
                rd.name,
                sender,
                conn,
                tuple(values),
                result.status,
                result.message,
                time.perf_counter() - t0,
                changed,
                internal,
            )
            try:
                observer(info)
            except Exception:  # the console must never break a call
                log.exception("the dev console's call observer failed")
        return result

    def _run(
        self,
        rd: ReducerDef,
        values: Sequence[Any],
        sender: Identity,
        conn: ConnectionId | None,
        ts: Timestamp,
    ) -> CallResult:
        tx = self.store.begin()
        ctx = ReducerContext(Database(self.store, tx), sender, conn, ts, self.identity)
        try:
            rd.func(ctx, *values)
        except ReducerError as exc:
            self.store.rollback(tx)
            return CallResult("err", str(exc), ts)
        except Exception as exc:  # a crashing module must not take the server down
            self.store.rollback(tx)
            log.warning("reducer %s crashed: %s: %s", rd.name, type(exc).__name__, exc)
            return CallResult("internal", f"{type(exc).__name__}: {exc}", ts)
        return CallResult("ok", "", ts, self.store.commit(tx))

    def lifecycle(
        self,
        kind: Literal["init", "client_connected", "client_disconnected"],
        sender: Identity,
        connection_id: ConnectionId | None,
    ) -> CallResult | None:
        """Run the module's lifecycle reducer for ``kind``, if it has one."""
        rd = self.module.lifecycle(kind)
        if rd is None:
            return None
        if self.observer is None:
            return self._run(rd, (), sender, connection_id, Timestamp.now())
        return self._observed(rd, (), sender, connection_id, Timestamp.now(), True)


def _seq(v: Any) -> Any:
    if not isinstance(v, tuple | list):
        raise TypeError("expected the argument tuple")
    return v
