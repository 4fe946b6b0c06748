"""The tables of `python -m benchmarks.compare`, as a dev-server module (its bindings are generated from
it). They match the tables that benchmarks/ts_apply.mjs declares for the TypeScript SDK."""

from __future__ import annotations

from typing import Annotated

from spacetime_game.server import Identity, f32, primary_key, table, u32


@table(public=True)
class Entity:
    id: Annotated[u32, primary_key]
    owner: Identity
    x: f32
    y: f32
    hp: u32


@table(public=True)
class Item:
    id: Annotated[u32, primary_key]
    name: str
    nick: str | None
    tags: list[u32]
