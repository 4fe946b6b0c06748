"""The quickstart chat module (the official ``chat-console-rs`` template), written for the dev server.

Serve it with ``spacetime-game serve demos/chat/module.py --database quickstart-chat``.
"""

from __future__ import annotations

import logging
from typing import Annotated

from spacetime_game.server import (
    Identity,
    ReducerContext,
    ReducerError,
    Timestamp,
    client_connected,
    client_disconnected,
    init,
    primary_key,
    reducer,
    table,
)

#: The database's name when served (``spacetime-game serve`` uses it unless ``--database`` is given).
DATABASE = "quickstart-chat"

log = logging.getLogger("quickstart_chat")


@table(public=True)
class Message:
    sender: Identity
    sent: Timestamp
    text: str


@table(public=True)
class User:
    identity: Annotated[Identity, primary_key]
    name: str | None
    online: bool


@reducer
def set_name(ctx: ReducerContext, name: str) -> None:
    if not name:
        raise ReducerError("Names must not be empty")
    user = ctx.db.user.identity.find(ctx.sender)
    if user is None:
        raise ReducerError("Cannot set name for unknown user")
    log.info("User %s sets name to %s", ctx.sender, name)
    user.name = name
    ctx.db.user.identity.update(user)


@reducer
def send_message(ctx: ReducerContext, text: str) -> None:
    if not text:
        raise ReducerError("Messages must not be empty")
    log.info("User %s: %s", ctx.sender, text)
    ctx.db.message.insert(Message(sender=ctx.sender, sent=ctx.timestamp, text=text))


@init
def init_(ctx: ReducerContext) -> None:
    pass


@client_connected
def identity_connected(ctx: ReducerContext) -> None:
    user = ctx.db.user.identity.find(ctx.sender)
    if user is not None:
        user.online = True
        ctx.db.user.identity.update(user)
    else:
        ctx.db.user.insert(User(identity=ctx.sender, name=None, online=True))


@client_disconnected
def identity_disconnected(ctx: ReducerContext) -> None:
    user = ctx.db.user.identity.find(ctx.sender)
    if user is not None:
        user.online = False
        ctx.db.user.identity.update(user)
    else:
        log.warning("Disconnect event for unknown user with identity %s", ctx.sender)
