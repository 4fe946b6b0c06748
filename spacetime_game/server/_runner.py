"""A module's database in this process, with no server: for unit tests of a module's rules and for
measuring its reducers."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..sdk import Identity, Timestamp
from ._context import Database
from ._host import CallResult, Host
from ._module import ModuleDef, load_module

__all__ = ["ModuleRunner"]


class ModuleRunner:
    """Runs a module's reducers here, each as one transaction, as the dev server runs them, but with no
    network, no timers and no clock of its own: the caller says who calls and when.

    - ``module``: a module file (loaded as ``spacetime-game serve`` loads it) or a loaded
      :class:`ModuleDef`. ``init`` runs at once; ``owner`` is the database's identity (the sender of
      scheduled reducers).
    - :meth:`connect` / :meth:`disconnect` run the lifecycle reducers for an identity.
    - :meth:`call` runs any reducer (scheduled ones too, as their timer would: pass the row) as
      ``sender`` at ``at``; :meth:`run_timer` runs the scheduled reducer of a timer table's row and, for a
      one-shot row, deletes it afterwards, as the server's scheduler does.
    - :meth:`rows` reads a table (row objects of the module's classes); :meth:`transaction` changes
      rows directly (``with runner.transaction() as db: db.entity.entity_id.update(...)``).

    Every call returns a :class:`CallResult`: ``status`` ``ok`` (committed), ``err`` (the reducer failed
    on purpose: ``message``) or ``internal`` (it crashed, or may not be called); ``record`` holds what an
    ``ok`` call changed. A failed call changes nothing.

    Example (a rule of the arena)::

        runner = ModuleRunner("demos/arena/module.py")
        runner.connect(alice)
        runner.call("enter_game", "Ada", sender=alice)
        runner.run_timer("move_all_players_timer")
        assert runner.rows("circle")
    """

    def __init__(self, module: str | Path | ModuleDef, *, owner: Identity | None = None) -> None:
        self.module: ModuleDef = module if isinstance(module, ModuleDef) else load_module(module)
        self._host = Host(self.module, owner if owner is not None else Identity.from_int(1))
        #: What ``init`` did (None if the module has no ``init``).
        self.init: CallResult | None = self._host.lifecycle("init", self._host.identity, None)

    @property
    def owner(self) -> Identity:
        """The database's identity: the sender of scheduled reducers and of :meth:`call` by default."""
        return self._host.identity

    def connect(self, identity: Identity) -> CallResult | None:
        """A client with ``identity`` connects (the module's ``client_connected``; None if it has none).
        A failed result means the server would refuse the connection."""
        return self._host.lifecycle("client_connected", identity, None)

    def disconnect(self, identity: Identity) -> CallResult | None:
        """The client with ``identity`` disconnects (``client_disconnected``; None if there is none)."""
        return self._host.lifecycle("client_disconnected", identity, None)

    def call(
        self, reducer: str, *args: Any, sender: Identity | None = None, at: Timestamp | None = None
    ) -> CallResult:
        """Run ``reducer(*args)`` as ``sender`` (the owner by default) at ``at`` (now by default). The
        owner may call any reducer, scheduled ones included; other senders only what a client may call."""
        who = self.owner if sender is None else sender
        return self._host.call(reducer, args, who, None, at, internal=who == self.owner)

    def run_timer(self, table: str, *, at: Timestamp | None = None, key: Any = None) -> CallResult:
        """Run the scheduled reducer of a row of the timer table ``table`` (its only row, or the one whose
        first column is ``key``) as the scheduler does: with the row as its argument, as the owner, and a
        one-shot row (``ScheduleAt.time``) deleted after the call, whatever its outcome."""
        spec = self.module.table_spec(table)
        if spec.scheduled is None:
            raise ValueError(f"table {table!r} schedules no reducer")
        stored = self._host.store.tables[table].rows
        matches = [(k, r) for k, r in stored.items() if key is None or r[0] == key]
        if len(matches) != 1:
            which = "rows" if key is None else f"rows with key {key!r}"
            raise ValueError(f"table {table!r} has {len(matches)} {which}; say which one (key=...)")
        ((stored_key, row),) = matches
        result = self._host.call(spec.scheduled, (spec.from_row(row),), self.owner, None, at, internal=True)
        at_col = [n for n, _ in spec.columns].index(spec.scheduled_at or "scheduled_at")
        if not row[at_col].is_interval and stored_key in stored:
            tx = self._host.store.begin()
            tx.delete_key(table, stored_key)
            self._host.store.commit(tx)
        return result

    def rows(self, table: str) -> list[Any]:
        """Every row of ``table``, as objects of the module's class for it."""
        ts = self._host.store.tables[table]
        return [ts.spec.from_row(r) for r in ts.rows.values()]

    @contextmanager
    def transaction(self) -> Iterator[Database]:
        """Change rows directly, as one transaction committed at the end of the ``with`` (rolled back if
        it raises): ``ctx.db`` of a reducer, without the reducer."""
        store = self._host.store
        tx = store.begin()
        try:
            yield Database(store, tx)
        except BaseException:
            store.rollback(tx)
            raise
        store.commit(tx)
