"""The dev-server module of the fault suite.

Every reducer takes a ``call_id`` that is unique per call and inserts it into ``ledger`` in the same
transaction, so the ledger says exactly which calls committed (and stayed committed). Every row a reducer
writes carries the ``call_id`` of the call that wrote it, so any row a client ever sees names the
transaction that must explain it.

- ``item``: keyed by ``id`` (inserted, updated and deleted);
- ``note``: no primary key (inserted and deleted; each row is unique because it holds its call id);
- ``ledger``: one row per committed call, never deleted.

``put_item`` with ``value == 0`` writes its rows and then fails, so they are rolled back: neither its
ledger row nor its item may ever be seen.
"""

from __future__ import annotations

from typing import Annotated

from spacetime_game.server import ReducerContext, ReducerError, primary_key, reducer, table, u32


@table(public=True)
class Item:
    id: Annotated[u32, primary_key]
    value: u32
    call_id: str


@table(public=True)
class Note:
    tag: str


@table(public=True)
class Ledger:
    call_id: Annotated[str, primary_key]
    client: u32


@reducer
def put_item(ctx: ReducerContext, call_id: str, client: u32, id: u32, value: u32) -> None:
    ctx.db.ledger.insert(Ledger(call_id, client))
    row = Item(id, value, call_id)
    if ctx.db.item.id.find(id) is None:
        ctx.db.item.insert(row)
    else:
        ctx.db.item.id.update(row)
    if value == 0:
        raise ReducerError("value 0 is refused (after writing: the writes must roll back)")


@reducer
def del_item(ctx: ReducerContext, call_id: str, client: u32, id: u32) -> None:
    ctx.db.ledger.insert(Ledger(call_id, client))
    ctx.db.item.id.delete(id)


@reducer
def add_note(ctx: ReducerContext, call_id: str, client: u32) -> None:
    ctx.db.ledger.insert(Ledger(call_id, client))
    ctx.db.note.insert(Note(call_id))


@reducer
def del_note(ctx: ReducerContext, call_id: str, client: u32, tag: str) -> None:
    ctx.db.ledger.insert(Ledger(call_id, client))
    ctx.db.note.delete(Note(tag))
