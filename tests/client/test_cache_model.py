"""The cache against a model of the server, over random histories (hypothesis).

The model holds each table's rows on the server and the active query sets (a predicate over some
tables). Every step changes the server (a transaction) or the subscriptions, sends the client exactly
the messages a server would (per-set deltas, initial rows, unsubscribe), and checks that the client's
cache shows the union of what its active sets match, and that its callbacks report exactly the
difference: inserts and deletes, and updates for rows whose primary key stays.

The tables cover every way the cache finds a row's key: a ``u32`` key cut straight from fixed-width rows
(``a``), an identity key at an offset (``b``), a key after a variable-width column (``c``, decoded),
rows without a key (``d``, keyed by their bytes) and a key plus a second unique column (``e``).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spacetime_game.sdk.protocol import Subscribe, SubscribeApplied, Unsubscribe, UnsubscribeApplied
from spacetime_game.sdk.schema import ModuleSchema

from ._support import IDENTITY_TYPE, Script, _el, _product, _t, _table, forget, ident, import_generated

TABLES = ("a", "b", "c", "d", "e")


def _schema_json() -> dict[str, Any]:
    types = [
        _product(_el("id", _t("U32")), _el("v", _t("U32"))),
        _product(_el("tag", _t("U8")), _el("owner", IDENTITY_TYPE), _el("hp", _t("F32"))),
        _product(_el("name", _t("String")), _el("id", _t("U64")), _el("v", _t("U32"))),
        _product(_el("id", _t("U32")), _el("v", _t("U32"))),
        _product(_el("id", _t("U32")), _el("handle", _t("String")), _el("v", _t("U32"))),
    ]
    return {
        "sections": [
            {"Typespace": {"types": types}},
            {
                "Types": [
                    {"source_name": {"scope": [], "source_name": n}, "ty": i, "custom_ordering": True}
                    for i, n in enumerate(["RowA", "RowB", "RowC", "RowD", "RowE"])
                ]
            },
            {
                "Tables": [
                    _table("a", 0, [0], [[0]]),
                    _table("b", 1, [1], [[1]]),
                    _table("c", 2, [1], [[1]]),
                    _table("d", 3, [], []),
                    _table("e", 4, [0], [[0], [1]]),
                ]
            },
            {"Reducers": []},
            {"Schedules": []},
            {"LifeCycleReducers": []},
            {"RowLevelSecurity": []},
            {"CaseConversionPolicy": {"SnakeCase": []}},
            {"ExplicitNames": {"entries": []}},
        ]
    }


@pytest.fixture(scope="module")
def model_pkg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    schema = ModuleSchema.from_text(json.dumps(_schema_json()), "model.schema.json")
    pkg = import_generated(schema, Path(tmp_path_factory.mktemp("model")), "model.schema.json")
    yield pkg
    forget(pkg)


def make_row(pkg: ModuleType, table: str, key: int, v: int) -> Any:
    """The row of ``table`` with key ``key`` and contents ``v`` (``d`` has no key: ``key`` is a field)."""
    if table == "a":
        return pkg.A(key, v)
    if table == "b":
        return pkg.B(v, ident(key + 1), float(v) / 2)
    if table == "c":
        return pkg.C("x" * v, key, v)
    if table == "d":
        return pkg.D(key, v)
    return pkg.E(key, f"h{key}-{v}", v)


def key_of(table: str, row: Any) -> Any:
    if table == "b":
        return row.owner
    if table == "d":
        return row  # no primary key: the row is its own key
    return row.id


def number_of(table: str, row: Any) -> int:
    """The ``key`` that :func:`make_row` made ``row`` with."""
    return int(bytes(row.owner)[0]) - 1 if table == "b" else int(row.id)


PREDICATES: dict[str, Callable[[Any], bool]] = {
    "all": lambda row: True,
    "even": lambda row: row[-1] % 2 == 0 if not isinstance(row[-1], float) else int(row[-1] * 2) % 2 == 0,
    "low": lambda row: row[0] % 3 != 1 if isinstance(row[0], int) else row[1] % 3 != 1,
}

KEYS = range(4)


@st.composite
def histories(draw: st.DrawFn) -> list[Any]:
    """Steps over one or two tables (so that rows meet often): transactions (``(table, key, v)``
    upserts, deletes with ``v`` None, or with ``v`` -1 a row written again unchanged, which the
    server sends as a delete and an insert of the same row), subscriptions and unsubscriptions."""
    used = draw(st.lists(st.sampled_from(TABLES), min_size=1, max_size=2, unique=True))
    tx = st.tuples(
        st.just("tx"),
        st.lists(
            st.tuples(st.sampled_from(used), st.sampled_from(list(KEYS)), st.integers(-1, 3) | st.none()),
            min_size=1,
            max_size=6,
        ),
    )
    sub = st.tuples(
        st.just("subscribe"),
        st.sampled_from(sorted(PREDICATES)),
        st.lists(st.sampled_from(used), min_size=1, max_size=2, unique=True),
    )
    step = st.one_of(tx, tx, sub, st.tuples(st.just("unsubscribe"), st.integers(0, 5)))
    first = draw(st.lists(tx | sub, min_size=2, max_size=4))
    return first + draw(st.lists(step, min_size=1, max_size=25))


class Model:
    """The server's tables and the client's active query sets, and what the client should show."""

    def __init__(self, pkg: ModuleType) -> None:
        self.pkg = pkg
        # table -> key -> row (``d``: row -> row, a set)
        self.server: dict[str, dict[Any, Any]] = {t: {} for t in TABLES}
        self.sets: dict[int, tuple[str, tuple[str, ...], Any]] = {}  # qsid -> (predicate, tables, handle)

    def matching(self, qsid: int, table: str) -> dict[Any, Any]:
        pred, tables, _ = self.sets[qsid]
        if table not in tables:
            return {}
        return {k: r for k, r in self.server[table].items() if PREDICATES[pred](r)}

    def visible(self) -> dict[str, dict[Any, Any]]:
        out: dict[str, dict[Any, Any]] = {t: {} for t in TABLES}
        for qsid in self.sets:
            for t in TABLES:
                out[t].update(self.matching(qsid, t))
        return out


def expected_events(before: dict[str, dict[Any, Any]], after: dict[str, dict[Any, Any]]) -> Counter[Any]:
    ev: Counter[Any] = Counter()
    for t in TABLES:
        b, a = before[t], after[t]
        for k in b.keys() - a.keys():
            ev[(t, "-", b[k])] += 1
        for k in a.keys() - b.keys():
            ev[(t, "+", a[k])] += 1
        for k in a.keys() & b.keys():
            if a[k] != b[k]:
                ev[(t, "~", b[k], a[k])] += 1
    return ev


@settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(history=histories())
def test_cache_follows_the_server(model_pkg: ModuleType, history: list[Any]) -> None:
    pkg = model_pkg
    s = Script(pkg).connect()
    got: Counter[Any] = Counter()
    for t in TABLES:
        s.conn.on_row(t, "insert", lambda row, ev, t=t: got.update([(t, "+", row)]))
        s.conn.on_row(t, "delete", lambda row, ev, t=t: got.update([(t, "-", row)]))
        s.conn.on_row(t, "update", lambda old, new, ev, t=t: got.update([(t, "~", old, new)]))
    m = Model(pkg)

    for step in history:
        before = m.visible()
        if step[0] == "tx":
            old_match = {q: {t: m.matching(q, t) for t in TABLES} for q in m.sets}
            touched: dict[str, set[Any]] = {t: set() for t in TABLES}
            for table, key, v in step[1]:
                rows = m.server[table]
                if v == -1:  # written again as it is
                    touched[table].update(k for k, r in rows.items() if number_of(table, r) == key)
                elif table == "d":  # keyed by contents: add or remove the row (key, v)
                    row = make_row(pkg, table, key, v or 0)  # (v is not -1 here)
                    if v is None or row in rows:
                        rows.pop(row, None)
                    else:
                        rows[row] = row
                elif v is None:
                    rows.pop(key, None)
                else:
                    row = make_row(pkg, table, key, v)
                    rows[key_of(table, row)] = row
            updates = []
            for q in m.sets:
                tables = {}
                for t in TABLES:
                    was, now = old_match[q][t], m.matching(q, t)
                    dels = [r for k, r in was.items() if now.get(k) != r or k in touched[t]]
                    ins = [r for k, r in now.items() if was.get(k) != r or k in touched[t]]
                    if ins or dels:
                        tables[t] = (ins, dels)
                if tables:
                    updates.append(s.set_update(q, tables))
            if updates:
                s.feed(s.tx(*updates))
        elif step[0] == "subscribe":
            _, pred, tables = step
            h = s.conn.subscribe_multi([f"SELECT * FROM {t}" for t in tables])
            sub = s.t.of_type(Subscribe)[-1]
            m.sets[h.query_set_id] = (pred, tuple(tables), h)
            rows = {t: list(m.matching(h.query_set_id, t).values()) for t in tables}
            s.feed(SubscribeApplied(sub.request_id, h.query_set_id, s.query_rows(rows)))
            assert h.is_active
        else:
            if not m.sets:
                continue
            qsid = sorted(m.sets)[step[1] % len(m.sets)]
            h = m.sets.pop(qsid)[2]
            h.unsubscribe()
            unsub = s.t.of_type(Unsubscribe)[-1]
            s.feed(UnsubscribeApplied(unsub.request_id, qsid, None))
        after = m.visible()
        assert got == expected_events(before, after), step
        got.clear()
        s.check_counts()
        for t in TABLES:
            cached = list(s.conn.iter_rows(t))
            assert Counter(cached) == Counter(after[t].values()), t
            tc = s.conn.cache.table(t)
            if t != "d":
                pk = tc.pk_column
                assert pk is not None
                for k, row in after[t].items():
                    assert s.conn.find_row(t, pk, k) == row
                assert s.conn.find_row(t, pk, key_of(t, make_row(pkg, t, 99, 0))) is None
            if t == "e":
                for row in after[t].values():
                    assert s.conn.find_row(t, "handle", row.handle) == row
    assert not s.errors
    s.conn.close()


@pytest.mark.parametrize("table", ["a", "b", "c"])
def test_a_big_update_under_a_budget(model_pkg: ModuleType, table: str) -> None:
    """3,000 rows loaded, then one transaction that updates 2,000 of them, deletes 500 and inserts 500
    new ones, applied under a tiny budget: decoded over many update() calls, then applied at once."""
    pkg = model_pkg
    s = Script(pkg).connect()
    got: Counter[Any] = Counter()
    s.conn.on_row(table, "insert", lambda row, ev: got.update(["+"]))
    s.conn.on_row(table, "delete", lambda row, ev: got.update(["-"]))
    s.conn.on_row(table, "update", lambda old, new, ev: got.update(["~"]))
    first = [make_row(pkg, table, k, 1) for k in range(3000)]
    h = s.conn.subscribe_multi([f"SELECT * FROM {table}"])
    s.t.feed(SubscribeApplied(s.last_subscribe().request_id, h.query_set_id, s.query_rows({table: first})))
    calls = 0
    while s.conn.count_rows(table) < 3000 or s.conn.progress < 1.0 or s.conn._work:
        s.conn.update(budget=0.0005)
        calls += 1
        assert calls < 10_000
    assert got == Counter({"+": 3000})
    got.clear()
    updated = [make_row(pkg, table, k, 2) for k in range(2000)]
    new = [make_row(pkg, table, k, 3) for k in range(3000, 3500)]
    tx = s.tx(s.set_update(h.query_set_id, {table: (updated + new, first[:2500])}))
    s.t.feed(tx)
    calls = 0
    seen_partial = False
    while True:
        s.conn.update(budget=0.0005)
        calls += 1
        if not s.conn._work:
            break
        seen_partial = seen_partial or 0.0 < s.conn.progress < 1.0
        assert calls < 10_000
    assert got == Counter({"~": 2000, "-": 500, "+": 500})
    assert sorted(s.conn.iter_rows(table), key=lambda r: key_of(table, r)) == sorted(
        updated + first[2500:] + new, key=lambda r: key_of(table, r)
    )
    assert calls > 1 and seen_partial  # the budget spread the work over several calls
    s.check_counts()
    s.conn.close()
