"""A small dev-server module for the faulty-network test: a keyed table whose rows can be inserted,
changed and deleted, and an unkeyed one with inserts and deletes (the chat module never deletes)."""

from __future__ import annotations

from typing import Annotated

from spacetime_game.server import ReducerContext, ReducerError, primary_key, reducer, table, u32


@table(public=True)
class Item:
    id: Annotated[u32, primary_key]
    label: str


@table(public=True)
class Note:
    text: str


@reducer
def put_item(ctx: ReducerContext, id: u32, label: str) -> None:
    ctx.db.item.insert(Item(id, label))


@reducer
def relabel_item(ctx: ReducerContext, id: u32, label: str) -> None:
    item = ctx.db.item.id.find(id)
    if item is None:
        raise ReducerError(f"no item {id}")
    item.label = label
    ctx.db.item.id.update(item)


@reducer
def delete_item(ctx: ReducerContext, id: u32) -> None:
    if not ctx.db.item.id.delete(id):
        raise ReducerError(f"no item {id}")


@reducer
def add_note(ctx: ReducerContext, text: str) -> None:
    ctx.db.note.insert(Note(text))


@reducer
def delete_note(ctx: ReducerContext, text: str) -> None:
    if not ctx.db.note.delete(Note(text)):
        raise ReducerError(f"no note {text!r}")
