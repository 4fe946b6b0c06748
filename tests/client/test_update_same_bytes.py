"""A keyed table's update transaction (each deleted key inserted again): the old and new rows compare by
their bytes. A row sent again unchanged keeps its object and fires nothing; the changed ones are updates;
with an Identity key (whose equality is Python-level) as with any other."""

from __future__ import annotations

from types import ModuleType

from ._support import Recorder, Script, ident


def test_rows_sent_again_unchanged_fire_nothing_and_changed_ones_are_updates(chat: ModuleType) -> None:
    User = chat.User
    s = Script(chat).connect()
    rec = Recorder()
    s.conn.on_row("user", "update", rec("update"))
    s.conn.on_row("user", "insert", rec("insert"))
    s.conn.on_row("user", "delete", rec("delete"))
    s.conn.subscribe_multi(["SELECT * FROM user"])
    q = s.last_subscribe().query_set_id
    users = [User(ident(10 + i), f"u{i}", True) for i in range(5)]
    from spacetime_game.sdk.protocol import SubscribeApplied

    s.feed(SubscribeApplied(1, q, s.query_rows({"user": users})))
    rec.take()
    kept = s.conn.find_row("user", "identity", ident(11))
    # users 0..4 deleted and inserted again in order: 1 and 3 unchanged, the others renamed
    again = [User(u.identity, u.name if i in (1, 3) else u.name + "!", u.online) for i, u in enumerate(users)]
    s.feed(s.tx(s.set_update(q, {"user": (again, users)})))
    log = rec.take()
    assert [(tag, new.name) for tag, old, new, *_ in log] == [
        ("update", "u0!"),
        ("update", "u2!"),
        ("update", "u4!"),
    ]
    assert s.conn.find_row("user", "identity", ident(11)) is kept  # unchanged: the same object stays
    assert sorted(u.name for u in s.conn.iter_rows("user")) == ["u0!", "u1", "u2!", "u3", "u4!"]
    s.check_counts()
