"""The dev server's SQL layer: the subscription subset, literals and types, joins, incremental deltas
(checked as a property against a brute-force oracle), the /sql endpoint, and a fuzz test."""

from __future__ import annotations

import random
import struct
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spacetime_game.sdk import ConnectionId, Identity, SpacetimeError, Timestamp
from spacetime_game.sdk.sats import PrimitiveType, Some
from spacetime_game.sdk.schema import load_schema
from spacetime_game.server._sql import (
    Query,
    RowDelta,
    SqlError,
    SqlLimits,
    SqlResult,
    compile_query,
    execute_sql,
)
from tests._support import DATA, JAN_1_2024_MICROS

BH = load_schema(DATA / "blackholio.schema.json")
QC = load_schema(DATA / "quickstart_chat.schema.json")
AT = load_schema(DATA / "all_types.schema.json")

Row = tuple[Any, ...]
ME = Identity.from_int(0xC0FFEE)
YOU = Identity.from_int(0xBEEF)
THEM = Identity.from_int(0xF00D)
IDS = [ME, YOU, THEM, Identity.from_int(1)]


class MemView:
    """An in-memory ReadView: table name -> list of rows; lookup scans. Counts its calls."""

    def __init__(self, tables: Mapping[str, Iterable[Row]]) -> None:
        self.tables = {k: list(v) for k, v in tables.items()}
        self.rows_calls: Counter[str] = Counter()
        self.lookup_calls: Counter[str] = Counter()

    def rows(self, table: str) -> Iterable[Row]:
        self.rows_calls[table] += 1
        return list(self.tables.get(table, []))

    def lookup(self, table: str, column: int, value: Any) -> Iterable[Row]:
        self.lookup_calls[table] += 1
        return [r for r in self.tables.get(table, []) if r[column] == value]


def vec(x: float = 0.0, y: float = 0.0) -> dict[str, float]:
    return {"x": x, "y": y}


def entity(eid: int, mass: int) -> Row:
    return (eid, vec(float(eid), 0.0), mass)


def circle(eid: int, pid: int, speed: float = 1.0) -> Row:
    return (eid, pid, vec(), speed, Timestamp(JAN_1_2024_MICROS + eid))


def player(ident: Identity, pid: int, name: str = "p") -> Row:
    return (ident, pid, name)


def f32(x: float) -> float:
    return float(struct.unpack("<f", struct.pack("<f", x))[0])


def blackholio_view() -> MemView:
    return MemView(
        {
            "entity": [entity(1, 5), entity(2, 20), entity(3, 30), entity(4, 10)],
            "circle": [circle(1, 10, 0.5), circle(2, 10, 2.0), circle(3, 11, 1.0)],
            "player": [player(ME, 10, "me"), player(YOU, 11, "you"), player(THEM, 12, "them")],
            "food": [(4,)],
            "config": [(0, 1000)],
        }
    )


def chat_view() -> MemView:
    return MemView(
        {
            "user": [(ME, "alice", True), (YOU, None, False), (THEM, "carol", True)],
            "message": [
                (ME, Timestamp(JAN_1_2024_MICROS), "hi"),
                (YOU, Timestamp(JAN_1_2024_MICROS + 10), "it's me"),
                (ME, Timestamp(JAN_1_2024_MICROS - 10), "older"),
            ],
        }
    )


def ids(rows: Iterable[Row]) -> list[Any]:
    return sorted(r[0] if not isinstance(r[0], Identity) else r[0].to_int() for r in rows)


def run(sql: str, view: MemView | None = None, schema: Any = BH, sender: Identity = ME) -> list[Row]:
    q = compile_query(sql, schema, sender)
    return q.evaluate(view if view is not None else blackholio_view())


# ---- accepted forms ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("sql", "table", "reads", "expected"),
    [
        ("SELECT * FROM entity", "entity", {"entity"}, [1, 2, 3, 4]),
        ("select * from entity", "entity", {"entity"}, [1, 2, 3, 4]),
        ('SELECT * FROM "entity"', "entity", {"entity"}, [1, 2, 3, 4]),
        ("SELECT * FROM entity;", "entity", {"entity"}, [1, 2, 3, 4]),
        ("  SELECT *\n FROM entity\n WHERE mass > 10  ", "entity", {"entity"}, [2, 3]),
        ("SELECT entity.* FROM entity", "entity", {"entity"}, [1, 2, 3, 4]),
        ("SELECT e.* FROM entity e WHERE e.mass >= 20", "entity", {"entity"}, [2, 3]),
        ("SELECT e.* FROM entity AS e WHERE mass < 10", "entity", {"entity"}, [1]),
        ("SELECT * FROM entity WHERE entity.mass = 10", "entity", {"entity"}, [4]),
        ('SELECT * FROM entity WHERE "mass" = 10', "entity", {"entity"}, [4]),
        (
            "SELECT c.* FROM circle c JOIN entity e ON c.entity_id = e.entity_id WHERE e.mass > 10",
            "circle",
            {"circle", "entity"},
            [2, 3],
        ),
        (
            "SELECT c.* FROM circle AS c INNER JOIN entity AS e ON e.entity_id = c.entity_id",
            "circle",
            {"circle", "entity"},
            [1, 2, 3],
        ),
        (
            "SELECT e.* FROM circle c JOIN entity e ON (c.entity_id = e.entity_id) WHERE c.speed > 0.5",
            "entity",
            {"circle", "entity"},
            [2, 3],
        ),
        (
            "SELECT circle.* FROM circle JOIN player ON circle.player_id = player.player_id "
            "WHERE player.identity = :sender",
            "circle",
            {"circle", "player"},
            [1, 2],
        ),
        (
            "SELECT a.* FROM circle a JOIN circle b ON a.player_id = b.player_id "
            "WHERE a.entity_id != b.entity_id",
            "circle",
            {"circle"},
            [1, 2],
        ),
        (
            "SELECT p.* FROM player p JOIN circle c ON p.player_id = c.player_id",
            "player",
            {"player", "circle"},
            sorted([ME.to_int(), YOU.to_int()]),
        ),
    ],
)
def test_accepted_forms(sql: str, table: str, reads: set[str], expected: list[Any]) -> None:
    q = compile_query(sql, BH, ME)
    assert isinstance(q, Query)
    assert q.sql == sql
    assert q.table == table
    assert q.reads == frozenset(reads)
    rows = q.evaluate(blackholio_view())
    assert ids(rows) == expected
    assert len(rows) == len({repr(r) for r in rows}), "a row appears once"


# ---- rejected forms ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("SELECT * FROM foo", "no such table: `foo`"),
        (
            "SELECT * FROM Entity",
            "no such table: `Entity` (names are case-sensitive: did you mean `entity`?)",
        ),
        ('SELECT * FROM "Entity"', "no such table: `Entity`"),
        ("SELECT * FROM entity WHERE Mass = 1", "no such column: `Mass`"),
        ("SELECT * FROM entity WHERE nope = 1", "no such column: `nope`"),
        ("SELECT * FROM entity e WHERE e.nope = 1", "no such column: `e.nope`"),
        ("SELECT * FROM entity e WHERE entity.mass = 1", "unknown table or alias `entity`"),
        ("SELECT x.* FROM entity", "unknown table or alias `x`"),
        ("SELECT entity_id FROM entity", "subscriptions may only select whole rows (`*` or `t.*`)"),
        ("SELECT entity_id, mass FROM entity", "subscriptions may only select whole rows (`*` or `t.*`)"),
        ("SELECT *, * FROM entity", "subscriptions may only select whole rows"),
        ("SELECT 1 FROM entity", "subscriptions may only select whole rows"),
        ("SELECT COUNT(*) AS n FROM entity", "unsupported: COUNT in a subscription"),
        ("SELECT * FROM entity LIMIT 5", "unsupported: LIMIT in a subscription"),
        ("SELECT * FROM entity ORDER BY mass", "unsupported: ORDER BY"),
        ("SELECT DISTINCT * FROM entity", "unsupported: DISTINCT"),
        ("SELECT * FROM entity GROUP BY mass", "unsupported: GROUP BY"),
        ("SELECT * FROM entity LIMIT 5 OFFSET 1", "unsupported: OFFSET"),
        ("WITH x AS (SELECT * FROM entity) SELECT * FROM x", "unsupported: WITH"),
        ("SELECT * FROM entity UNION SELECT * FROM entity", "unsupported: UNION"),
        ("SELECT * FROM entity; SELECT * FROM food", "exactly one SELECT statement, got 2"),
        ("", "empty query"),
        (" ; ", "empty query"),
        ("SELECT", "a query needs FROM <table>"),
        (
            "SELECT * FROM",
            "syntax error at line 1, column 13 near `FROM`: Expected table name but got the end",
        ),
        ("SELEKT * FROM entity", "syntax error"),
        ("SELECT * FROM entity WHERE", "syntax error"),
        ("INSERT INTO entity VALUES (1, 2, 3)", "only SELECT is supported, got INSERT"),
        ("UPDATE entity SET mass = 1", "only SELECT is supported, got UPDATE"),
        ("DELETE FROM entity", "only SELECT is supported, got DELETE"),
        ("DROP TABLE entity", "only SELECT is supported"),
        ("SELECT * FROM (SELECT * FROM entity) s", "unsupported: subqueries"),
        ("SELECT * FROM entity WHERE mass IN (SELECT mass FROM entity)", "unsupported: subqueries"),
        ("SELECT * FROM entity WHERE EXISTS (SELECT * FROM food)", "unsupported: subqueries"),
        ("SELECT * FROM entity WHERE abs(mass) = 1", "unsupported: function calls"),
        ("SELECT * FROM entity WHERE mass + 1 = 2", "unsupported: arithmetic"),
        ("SELECT * FROM entity WHERE mass = 1 + 1", "unsupported: arithmetic"),
        ("SELECT * FROM entity WHERE mass = -(entity_id)", "unsupported: arithmetic"),
        ("SELECT * FROM entity WHERE NOT mass = 1", "unsupported: NOT"),
        ("SELECT * FROM entity WHERE mass IN (1, 2)", "unsupported expression in WHERE"),
        ("SELECT * FROM entity WHERE mass BETWEEN 1 AND 2", "unsupported expression in WHERE"),
        ("SELECT * FROM entity WHERE mass IS NULL", "unsupported expression in WHERE"),
        ("SELECT * FROM entity WHERE mass = NULL", "unsupported: NULL"),
        ("SELECT * FROM entity WHERE mass = 1::int", "unsupported: casts"),
        ("SELECT * FROM entity WHERE mass", "`mass` is not a Bool column"),
        ("SELECT * FROM entity WHERE 1 = 1", "a comparison needs a column on at least one side"),
        ("SELECT * FROM entity WHERE mass = $1", "unsupported parameter `$1`"),
        ("SELECT * FROM entity WHERE mass = ?", "unsupported parameter"),
        ("SELECT * FROM player WHERE identity = :caller", "unknown parameter `:caller`"),
        ("SELECT * FROM public.entity", "unsupported: qualified table names"),
        ("SELECT * FROM entity AS e(a, b, c)", "unsupported: column aliases in FROM"),
        # joins
        ("SELECT * FROM circle c JOIN entity e ON c.entity_id = e.entity_id", "a join must select the rows"),
        ("SELECT c.* FROM circle c, entity e", "joins need ON a.x = b.y"),
        ("SELECT c.* FROM circle c JOIN entity e", "joins need ON a.x = b.y"),
        ("SELECT c.* FROM circle c CROSS JOIN entity e", "unsupported: CROSS JOIN"),
        (
            "SELECT c.* FROM circle c LEFT JOIN entity e ON c.entity_id = e.entity_id",
            "unsupported: LEFT OUTER",
        ),
        (
            "SELECT c.* FROM circle c RIGHT JOIN entity e ON c.entity_id = e.entity_id",
            "unsupported: RIGHT OUTER",
        ),
        (
            "SELECT c.* FROM circle c FULL OUTER JOIN entity e ON c.entity_id = e.entity_id",
            "unsupported: FULL OUTER",
        ),
        ("SELECT c.* FROM circle c NATURAL JOIN entity e", "unsupported: NATURAL JOIN"),
        ("SELECT c.* FROM circle c JOIN entity e USING (entity_id)", "unsupported: JOIN ... USING"),
        (
            "SELECT c.* FROM circle c JOIN entity e ON c.entity_id = e.entity_id "
            "JOIN food f ON f.entity_id = e.entity_id",
            "at most two tables may be joined",
        ),
        ("SELECT c.* FROM circle c JOIN entity e ON c.entity_id = 1", "the ON clause must be one equality"),
        ("SELECT c.* FROM circle c JOIN entity e ON c.entity_id < e.entity_id", "the ON clause must be one"),
        (
            "SELECT c.* FROM circle c JOIN entity e ON c.entity_id = e.entity_id AND e.mass = 1",
            "the ON clause must be one equality",
        ),
        ("SELECT c.* FROM circle c JOIN entity e ON entity_id = entity_id", "the ON clause must be one"),
        ("SELECT c.* FROM circle c JOIN entity e ON c.entity_id = c.player_id", "the ON clause must be one"),
        ("SELECT c.* FROM circle c JOIN entity e ON c.speed = e.mass", "the types differ"),
        (
            "SELECT c.* FROM circle c JOIN entity e ON c.player_id = e.mass",
            "joins must be on indexed columns",
        ),
        (
            "SELECT e.* FROM entity e JOIN circle c ON e.mass = c.player_id",
            "joins must be on indexed columns",
        ),
        ("SELECT c.* FROM circle c JOIN circle c ON c.entity_id = c.entity_id", "is used twice"),
        ("SELECT c.* FROM circle c JOIN entity e ON c.x = e.entity_id", "no such column: `c.x`"),
        (
            "SELECT c.* FROM circle c JOIN entity e ON c.entity_id = e.entity_id WHERE entity_id = 1",
            "ambiguous column `entity_id`",
        ),
        ("SELECT c.* FROM circle c JOIN (SELECT * FROM entity) e ON c.entity_id = e.entity_id", "subqueries"),
        # types
        (
            "SELECT * FROM entity WHERE mass = 'heavy'",
            "type mismatch: cannot compare `mass` (I32) with the string",
        ),
        ("SELECT * FROM entity WHERE mass = true", "type mismatch"),
        ("SELECT * FROM entity WHERE mass = 1.5", "1.5 is not an integer"),
        ("SELECT * FROM entity WHERE mass = 3000000000", "out of range for `mass` (I32)"),
        ("SELECT * FROM entity WHERE mass = 1e100", "out of range"),
        ("SELECT * FROM entity WHERE mass = 0xAB", "type mismatch"),
        ("SELECT * FROM entity WHERE mass = 0xZZ", "invalid literal `0xZZ`"),
        (
            "SELECT * FROM entity WHERE mass = :sender",
            "type mismatch: cannot compare `mass` (I32) with :sender",
        ),
        ("SELECT * FROM entity WHERE position = 1", "which SQL cannot compare"),
        ("SELECT * FROM entity WHERE mass = entity_id OR mass = position", "which SQL cannot compare"),
        ("SELECT * FROM circle WHERE speed = mass", "no such column: `mass`"),
        ("SELECT * FROM circle WHERE speed = player_id", "type mismatch: cannot compare `speed` (F32)"),
        ("SELECT * FROM player WHERE name = 1", "type mismatch"),
        ("SELECT * FROM player WHERE identity = 'bob'", "is not a hex value"),
        ("SELECT * FROM player WHERE identity = 0xABCD", "an Identity literal needs 64 hex digits, got 4"),
        ("SELECT * FROM player WHERE identity = 1", "type mismatch"),
        ("SELECT * FROM circle WHERE last_split_time > 'yesterday'", "is not a timestamp"),
        ("SELECT * FROM circle WHERE last_split_time > 5", "type mismatch"),
        ("SELECT * FROM entity WHERE mass = 1e", "invalid number `1e`"),
        # access
        ("SELECT * FROM spawn_food_timer", "table `spawn_food_timer` is private"),
        ("SELECT * FROM logged_out_player", "table `logged_out_player` is private"),
        (
            "SELECT c.* FROM circle c JOIN logged_out_player p ON c.player_id = p.player_id",
            "table `logged_out_player` is private",
        ),
    ],
)
def test_rejected_forms(sql: str, message: str) -> None:
    with pytest.raises(SqlError) as info:
        compile_query(sql, BH, ME)
    assert message in str(info.value)
    assert isinstance(info.value, SpacetimeError)


def test_private_tables_are_visible_to_the_owner() -> None:
    q = compile_query("SELECT * FROM spawn_food_timer", BH, ME, owner=True)
    assert q.table == "spawn_food_timer"
    q = compile_query(
        "SELECT c.* FROM circle c JOIN logged_out_player p ON c.player_id = p.player_id", BH, ME, owner=True
    )
    assert q.reads == {"circle", "logged_out_player"}
    view = MemView({"secret": [(ME, "mine", 1, 2)]})
    with pytest.raises(SqlError, match="table `secret` is private"):
        execute_sql("SELECT * FROM secret", AT, view, ME)
    assert execute_sql("SELECT * FROM secret", AT, view, ME, owner=True)[0].rows == [(ME, "mine", 1, 2)]


def test_too_deep_nesting_is_an_sql_error() -> None:
    deep = "SELECT * FROM entity WHERE " + "(" * 2000 + "mass = 1" + ")" * 2000
    with pytest.raises(SqlError, match="nested too deeply"):
        compile_query(deep, BH, ME, limits=SqlLimits(max_bytes=1 << 16))
    alternating = "mass = 1"
    for i in range(100):
        alternating = f"(entity_id = {i} {'AND' if i % 2 else 'OR'} ({alternating}))"
    with pytest.raises(SqlError, match="nested too deeply"):
        compile_query("SELECT * FROM entity WHERE " + alternating, BH, ME)


def test_long_flat_conditions_compile_and_run() -> None:
    big = SqlLimits(max_bytes=1 << 16, max_terms=2000)  # far over the defaults: no recursion limit
    view = blackholio_view()
    where = " OR ".join(f"mass = {i}" for i in range(2000))
    q = compile_query(f"SELECT * FROM entity WHERE {where}", BH, ME, limits=big)
    assert ids(q.evaluate(view)) == [1, 2, 3, 4]
    where = " AND ".join(f"mass != {i}" for i in range(1000, 3000))
    q = compile_query(f"SELECT * FROM entity WHERE {where}", BH, ME, limits=big)
    assert ids(q.evaluate(view)) == [1, 2, 3, 4]


# ---- WHERE semantics -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("mass > 10", [2, 3]),
        ("10 < mass", [2, 3]),
        ("mass >= 20", [2, 3]),
        ("20 <= mass", [2, 3]),
        ("mass < 10", [1]),
        ("10 > mass", [1]),
        ("mass <= 10", [1, 4]),
        ("mass = 20", [2]),
        ("20 = mass", [2]),
        ("mass != 20", [1, 3, 4]),
        ("mass <> 20", [1, 3, 4]),
        ("mass = 1e1", [4]),
        ("mass = 10.0", [4]),
        ("mass = 2E+1", [2]),
        ("mass > -1", [1, 2, 3, 4]),
        ("mass > -(1)", [1, 2, 3, 4]),
        ("entity_id = mass", []),
        ("entity_id < mass", [1, 2, 3, 4]),
        ("true", [1, 2, 3, 4]),
        ("false", []),
        ("true AND mass = 5", [1]),
        ("false OR mass = 5", [1]),
        ("mass = 5 OR true", [1, 2, 3, 4]),
        # AND binds tighter than OR
        ("entity_id = 1 OR entity_id = 2 AND mass > 100", [1]),
        ("entity_id = 2 AND mass > 100 OR entity_id = 1", [1]),
        ("(entity_id = 1 OR entity_id = 2) AND mass > 100", []),
        ("(entity_id = 1 OR entity_id = 2) AND mass > 10", [2]),
        ("entity_id = 1 OR (entity_id = 2 AND mass > 10)", [1, 2]),
        ("((mass = 5)) OR (((mass = 30)))", [1, 3]),
        ("mass > 1 AND mass < 30 AND entity_id != 2", [1, 4]),
        ("mass = 5 OR mass = 10 OR mass = 30", [1, 3, 4]),
    ],
)
def test_where(where: str, expected: list[int]) -> None:
    assert ids(run(f"SELECT * FROM entity WHERE {where}")) == expected
    q = compile_query(f"SELECT * FROM entity WHERE {where}", BH, ME)
    assert [r[0] for r in blackholio_view().tables["entity"] if q.matches(r)] == expected


def test_floats_compare_as_f32() -> None:
    view = MemView({"circle": [circle(1, 1, f32(0.1)), circle(2, 1, f32(0.2)), circle(3, 1, 1.5)]})
    assert ids(run("SELECT * FROM circle WHERE speed = 0.1", view)) == [1]
    assert ids(run("SELECT * FROM circle WHERE speed > 0.1", view)) == [2, 3]
    assert ids(run("SELECT * FROM circle WHERE speed = 1.5e0", view)) == [3]
    assert ids(run("SELECT * FROM circle WHERE speed < 2", view)) == [1, 2, 3]
    with pytest.raises(SqlError, match="out of range"):
        compile_query("SELECT * FROM circle WHERE speed > 1e39", BH, ME)


def test_strings_and_escapes() -> None:
    view = chat_view()
    assert [r[2] for r in run("SELECT * FROM message WHERE text = 'it''s me'", view, QC)] == ["it's me"]
    assert [r[2] for r in run("SELECT * FROM message WHERE text > 'i'", view, QC)] == ["it's me", "older"]
    assert run("SELECT * FROM message WHERE text = 'Hi'", view, QC) == []


def test_timestamps_compare_with_rfc3339_strings() -> None:
    view = chat_view()
    rows = run("SELECT * FROM message WHERE sent >= '2024-01-01T00:00:00Z'", view, QC)
    assert [r[2] for r in rows] == ["hi", "it's me"]
    rows = run("SELECT * FROM message WHERE sent < '2024-01-01T00:00:00+00:00'", view, QC)
    assert [r[2] for r in rows] == ["older"]
    rows = run("SELECT * FROM message WHERE sent = '2024-01-01T00:00:00.000010'", view, QC)
    assert [r[2] for r in rows] == ["it's me"]


def test_sender() -> None:
    view = chat_view()
    assert ids(run("SELECT * FROM user WHERE identity = :sender", view, QC, ME)) == [ME.to_int()]
    assert ids(run("SELECT * FROM user WHERE identity = :sender", view, QC, YOU)) == [YOU.to_int()]
    assert ids(run("SELECT * FROM user WHERE :sender = identity", view, QC, THEM)) == [THEM.to_int()]
    assert ids(run("SELECT * FROM user WHERE identity != :sender", view, QC, ME)) == sorted(
        [YOU.to_int(), THEM.to_int()]
    )
    mine = run("SELECT * FROM message WHERE sender = :sender", view, QC, ME)
    assert sorted(r[2] for r in mine) == ["hi", "older"]
    assert run("SELECT * FROM message WHERE sender = :sender", view, QC, Identity.from_int(5)) == []
    with pytest.raises(SqlError, match=r"cannot compare `text` \(String\) with :sender"):
        compile_query("SELECT * FROM message WHERE text = :sender", QC, ME)
    with pytest.raises(SqlError, match="cannot compare `online`"):
        compile_query("SELECT * FROM user WHERE online = :sender", QC, ME)


def test_hex_literals_for_identity() -> None:
    view = chat_view()
    hex_you = YOU.to_hex()
    assert len(hex_you) == 64
    for lit in (f"0x{hex_you}", f"0X{hex_you.upper()}", f"X'{hex_you}'", f"x'{hex_you}'", f"'{hex_you}'"):
        rows = run(f"SELECT * FROM user WHERE identity = {lit}", view, QC)
        assert ids(rows) == [YOU.to_int()], lit
    # identities order by their numeric value
    rows = run(f"SELECT * FROM user WHERE identity > 0x{hex_you}", view, QC)
    assert ids(rows) == sorted(i.to_int() for i in (ME, THEM) if i.to_int() > YOU.to_int())
    with pytest.raises(SqlError, match="needs 64 hex digits, got 63"):
        compile_query(f"SELECT * FROM user WHERE identity = 0x{hex_you[1:]}", QC, ME)
    with pytest.raises(SqlError, match="type mismatch"):
        compile_query(f"SELECT * FROM user WHERE name = 0x{hex_you}", QC, ME)


def test_option_columns_compare_their_inner_value() -> None:
    view = chat_view()  # YOU has name None
    assert ids(run("SELECT * FROM user WHERE name = 'alice'", view, QC)) == [ME.to_int()]
    assert ids(run("SELECT * FROM user WHERE name != 'alice'", view, QC)) == [THEM.to_int()]
    assert ids(run("SELECT * FROM user WHERE name > 'a'", view, QC)) == sorted([ME.to_int(), THEM.to_int()])
    assert ids(run("SELECT * FROM user WHERE name != 'zzz' OR online = false", view, QC)) == sorted(
        i.to_int() for i in (ME, YOU, THEM)
    )
    with pytest.raises(SqlError, match="type mismatch"):
        compile_query("SELECT * FROM user WHERE name = 3", QC, ME)
    with pytest.raises(SqlError, match="unsupported: NULL"):
        compile_query("SELECT * FROM user WHERE name = NULL", QC, ME)


def test_bool_columns() -> None:
    view = chat_view()
    assert ids(run("SELECT * FROM user WHERE online", view, QC)) == sorted([ME.to_int(), THEM.to_int()])
    assert ids(run("SELECT * FROM user WHERE online = false", view, QC)) == [YOU.to_int()]
    assert ids(run("SELECT * FROM user WHERE online = TRUE AND name = 'carol'", view, QC)) == [THEM.to_int()]
    with pytest.raises(SqlError, match="type mismatch"):
        compile_query("SELECT * FROM user WHERE online = 1", QC, ME)
    with pytest.raises(SqlError, match="type mismatch"):
        compile_query("SELECT * FROM user WHERE online = 'true'", QC, ME)


def prim(pk: int, **kw: Any) -> Row:
    names = [c.name for c in AT.table("AllPrims").columns]
    base: dict[str, Any] = dict.fromkeys(names, 0)
    base.update(id=pk, flag=False, f32=0.0, f64=0.0, text="", blob=b"", **{"class": "c", "iter": False})
    base.update(kw)
    return tuple(base[n] for n in names)


def test_literal_types_and_ranges() -> None:
    rows = [
        prim(1, u8=255, i8=-128, u256=(1 << 256) - 1, i64=1000, blob=b"\xab\xcd", f64=0.1),
        prim(2, u8=0, i8=127, i128=-(1 << 127), text="x", **{"from": 7, "count": 3}),
    ]
    view = MemView({"AllPrims": rows})

    def q(where: str) -> list[Any]:
        return ids(run(f'SELECT * FROM "AllPrims" WHERE {where}', view, AT))

    assert q("u8 = 255") == [1]
    assert q("i8 = -128") == [1]
    assert q("i8 = 127") == [2]
    assert q(f"u256 = {(1 << 256) - 1}") == [1]
    assert q(f"i128 = {-(1 << 127)}") == [2]
    assert q("i64 = 1e3") == [1]
    assert q("f64 = 0.1") == [1]
    assert q("blob = 0xABCD") == [1]
    assert q("blob = X'abcd'") == [1]
    assert q("blob = 'abcd'") == [1]
    assert q('"from" = 7 AND "count" = 3') == [2]
    assert q("\"class\" = 'c'") == [1, 2]
    for where, message in [
        ("u8 = 300", "300 is out of range for `u8` (U8)"),
        ("u8 = -1", "-1 is out of range for `u8` (U8)"),
        ("i8 = -129", "out of range"),
        ("u64 = 18446744073709551616", "out of range"),
        (f"u256 = {1 << 256}", "out of range"),
        ("i32 = 1e999999", "out of range"),
        ("u8 = 2.5", "not an integer"),
        ("text = 5", "type mismatch: cannot compare `text` (String) with the number 5"),
        ("text = true", "type mismatch"),
        ("flag = 1", "type mismatch"),
        ("f32 = 'x'", "type mismatch"),
        ("blob = 0xABC", "odd number of hex digits"),
        ("blob = 5", "type mismatch"),
        ("i32 = i64", "type mismatch: cannot compare `i32` (I32) with `i64` (I64)"),
    ]:
        with pytest.raises(SqlError) as info:
            compile_query(f'SELECT * FROM "AllPrims" WHERE {where}', AT, ME)
        assert message in str(info.value), where


def test_connection_id_and_unsupported_column_types() -> None:
    conn = ConnectionId.from_int(0x1234)
    cols = [c.name for c in AT.table("compound").columns]
    row = tuple(
        {"key": 1, "conn": conn, "who": ME, "created": Timestamp(5), "maybe_text": Some("x")}.get(n)
        for n in cols
    )
    view = MemView({"compound": [row]})
    assert len(run(f"SELECT * FROM compound WHERE conn = 0x{conn.to_hex()}", view, AT)) == 1
    assert run(f"SELECT * FROM compound WHERE conn != 0x{conn.to_hex()}", view, AT) == []
    with pytest.raises(SqlError, match="needs 32 hex digits"):
        compile_query(f"SELECT * FROM compound WHERE conn = 0x{ME.to_hex()}", AT, ME)
    for col in ("lasted", "uid", "when", "ints", "point", "color", "maybe_maybe", "pair"):
        with pytest.raises(SqlError, match="which SQL cannot compare"):
            compile_query(f'SELECT * FROM compound WHERE "{col}" = 1', AT, ME)


# ---- joins -----------------------------------------------------------------------------------------------
def test_join_evaluate() -> None:
    view = blackholio_view()
    q = compile_query(
        "SELECT c.* FROM circle c JOIN entity e ON c.entity_id = e.entity_id WHERE e.mass > 10", BH, ME
    )
    assert q.evaluate(view) == [circle(2, 10, 2.0), circle(3, 11, 1.0)]
    # conditions on both sides, and across them
    q = compile_query(
        "SELECT c.* FROM circle c JOIN entity e ON c.entity_id = e.entity_id "
        "WHERE e.mass > 10 AND c.speed < 1.5 OR e.mass = 5",
        BH,
        ME,
    )
    assert ids(q.evaluate(view)) == [1, 3]


def test_join_returns_each_row_once() -> None:
    """A player with two circles appears once (set semantics on the returned table)."""
    view = blackholio_view()
    q = compile_query("SELECT p.* FROM player p JOIN circle c ON p.player_id = c.player_id", BH, ME)
    rows = q.evaluate(view)
    assert sorted(rows, key=repr) == sorted([player(ME, 10, "me"), player(YOU, 11, "you")], key=repr)
    q = compile_query(
        "SELECT p.* FROM player p JOIN circle c ON p.player_id = c.player_id WHERE c.speed > 1", BH, ME
    )
    assert q.evaluate(view) == [player(ME, 10, "me")]


def test_matches_is_for_single_table_queries() -> None:
    q = compile_query("SELECT * FROM entity WHERE mass > 10", BH, ME)
    assert q.matches(entity(9, 11)) and not q.matches(entity(9, 10))
    j = compile_query("SELECT c.* FROM circle c JOIN entity e ON c.entity_id = e.entity_id", BH, ME)
    with pytest.raises(SqlError, match="single-table"):
        j.matches(circle(1, 1))


# ---- delta -----------------------------------------------------------------------------------------------
def rkey(row: Row) -> str:
    return repr(row)


def as_set(rows: Iterable[Row]) -> set[str]:
    return {rkey(r) for r in rows}


def no_duplicates(rows: Iterable[Row]) -> bool:
    keys = [rkey(r) for r in rows]
    return len(keys) == len(set(keys))


def join_oracle(
    a: str, b: str, on: Callable[[Row, Row], bool]
) -> Callable[[dict[str, list[Row]]], list[Row]]:
    def run_(t: dict[str, list[Row]]) -> list[Row]:
        return [r for r in t[a] if any(on(r, u) for u in t[b])]

    return run_


def table_oracle(a: str, pred: Callable[[Row], bool]) -> Callable[[dict[str, list[Row]]], list[Row]]:
    return lambda t: [r for r in t[a] if pred(r)]


DELTA_QUERIES: list[tuple[str, Callable[[dict[str, list[Row]]], list[Row]]]] = [
    (
        "SELECT * FROM entity WHERE mass > 10 OR entity_id = 1",
        table_oracle("entity", lambda e: e[2] > 10 or e[0] == 1),
    ),
    (
        "SELECT * FROM circle WHERE speed >= 1.5 AND player_id != 2",
        table_oracle("circle", lambda c: c[3] >= 1.5 and c[1] != 2),
    ),
    (
        "SELECT c.* FROM circle c JOIN entity e ON c.entity_id = e.entity_id WHERE e.mass > 10",
        join_oracle("circle", "entity", lambda c, e: c[0] == e[0] and e[2] > 10),
    ),
    (
        "SELECT c.* FROM circle c JOIN entity e ON c.entity_id = e.entity_id",
        join_oracle("circle", "entity", lambda c, e: c[0] == e[0]),
    ),
    (
        "SELECT e.* FROM entity e JOIN circle c ON c.entity_id = e.entity_id WHERE c.speed < 1.5 OR e.mass < 5",
        join_oracle("entity", "circle", lambda e, c: c[0] == e[0] and (c[3] < 1.5 or e[2] < 5)),
    ),
    (
        "SELECT p.* FROM player p JOIN circle c ON p.player_id = c.player_id WHERE c.speed > 0.5",
        join_oracle("player", "circle", lambda p, c: p[1] == c[1] and c[3] > 0.5),
    ),
    (
        "SELECT c.* FROM circle c JOIN player p ON c.player_id = p.player_id WHERE p.identity = :sender",
        join_oracle("circle", "player", lambda c, p: c[1] == p[1] and p[0] == ME),
    ),
    (
        "SELECT a.* FROM circle a JOIN circle b ON a.player_id = b.player_id "
        "WHERE a.entity_id != b.entity_id AND b.speed > 1",
        join_oracle("circle", "circle", lambda a, b: a[1] == b[1] and a[0] != b[0] and b[3] > 1),
    ),
]

SPEEDS = [0.5, 1.0, 1.5, 2.0]
MASSES = [1, 5, 10, 11, 20]

entity_rows = st.dictionaries(st.integers(1, 6), st.sampled_from(MASSES), max_size=6).map(
    lambda d: {k: entity(k, m) for k, m in d.items()}
)
circle_rows = st.dictionaries(
    st.integers(1, 6), st.tuples(st.integers(1, 3), st.sampled_from(SPEEDS)), max_size=6
).map(lambda d: {k: circle(k, p, s) for k, (p, s) in d.items()})
player_rows = st.dictionaries(st.integers(0, 3), st.sampled_from(["a", "b"]), max_size=4).map(
    lambda d: {k: player(IDS[k], k, n) for k, n in d.items()}
)
TABLES = {"entity": entity_rows, "circle": circle_rows, "player": player_rows}


@st.composite
def transactions(
    draw: st.DrawFn,
) -> tuple[dict[str, list[Row]], dict[str, list[Row]], dict[str, RowDelta]]:
    """A before state, an after state, and the transaction's changes between them."""
    before = {name: draw(strat) for name, strat in TABLES.items()}
    after = {name: dict(rows) for name, rows in before.items()}
    touched: dict[str, set[int]] = {name: set() for name in TABLES}
    for _ in range(draw(st.integers(0, 6))):
        name = draw(st.sampled_from(sorted(TABLES)))
        action = draw(st.sampled_from(["upsert", "delete", "touch"]))
        fresh = draw(TABLES[name])
        if action == "upsert" and fresh:
            key = draw(st.sampled_from(sorted(fresh)))
            after[name][key] = fresh[key]
        elif action == "delete" and after[name]:
            del after[name][draw(st.sampled_from(sorted(after[name])))]
        elif action == "touch" and after[name]:
            touched[name].add(draw(st.sampled_from(sorted(after[name]))))
    changes = {}
    for name in TABLES:
        b = list(before[name].values())
        a = list(after[name].values())
        bk, ak = as_set(b), as_set(a)
        # rows deleted and inserted again unchanged are in both lists
        same = [r for k, r in after[name].items() if k in touched[name] and before[name].get(k) == r]
        ins = [r for r in a if rkey(r) not in bk] + same
        dels = [r for r in b if rkey(r) not in ak] + same
        listed_anyway: bool = draw(st.booleans())  # a table may be listed with no changes
        if ins or dels or listed_anyway:
            changes[name] = RowDelta(ins, dels)
    return (
        {k: list(v.values()) for k, v in before.items()},
        {k: list(v.values()) for k, v in after.items()},
        changes,
    )


COMPILED = {sql: compile_query(sql, BH, ME) for sql, _ in DELTA_QUERIES}


@pytest.mark.parametrize(("sql", "oracle"), DELTA_QUERIES, ids=[f"q{i}" for i in range(len(DELTA_QUERIES))])
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tx=transactions())
def test_delta_is_the_difference_of_evaluations(
    sql: str,
    oracle: Callable[[dict[str, list[Row]]], list[Row]],
    tx: tuple[dict[str, list[Row]], dict[str, list[Row]], dict[str, RowDelta]],
) -> None:
    before, after, changes = tx
    q = COMPILED[sql]
    ev_before = q.evaluate(MemView(before))
    ev_after = q.evaluate(MemView(after))
    assert no_duplicates(ev_before) and no_duplicates(ev_after)
    assert as_set(ev_before) == as_set(oracle(before))
    assert as_set(ev_after) == as_set(oracle(after))
    view = MemView(after)
    d = q.delta(view, changes)
    assert no_duplicates(d.inserts) and no_duplicates(d.deletes)
    assert as_set(d.inserts) == as_set(ev_after) - as_set(ev_before)
    assert as_set(d.deletes) == as_set(ev_before) - as_set(ev_after)
    assert sum(view.rows_calls.values()) == 0, "delta must not scan tables"


def test_delta_cancels_rows_deleted_and_reinserted() -> None:
    q = compile_query("SELECT * FROM entity WHERE mass > 1", BH, ME)
    e = entity(1, 5)
    assert q.delta(MemView({}), {"entity": RowDelta([e], [e])}) == RowDelta([], [])
    j = compile_query("SELECT c.* FROM circle c JOIN entity e ON c.entity_id = e.entity_id", BH, ME)
    view = MemView({"entity": [e], "circle": [circle(1, 1)]})
    assert j.delta(view, {"entity": RowDelta([e], [e])}) == RowDelta([], [])
    assert j.delta(view, {"circle": RowDelta([circle(1, 1)], [circle(1, 1)])}) == RowDelta([], [])
    # an update that keeps the row in the result: one delete and one insert of the new version
    e2 = entity(1, 6)
    view = MemView({"entity": [e2], "circle": [circle(1, 1)]})
    assert j.delta(view, {"entity": RowDelta([e2], [e])}) == RowDelta([], [])
    assert q.delta(view, {"entity": RowDelta([e2], [e])}) == RowDelta([e2], [e])


def test_delta_ignores_unrelated_tables() -> None:
    q = compile_query("SELECT c.* FROM circle c JOIN entity e ON c.entity_id = e.entity_id", BH, ME)
    view = MemView({})
    assert q.delta(view, {"food": RowDelta([(1,)], [])}) == RowDelta([], [])
    assert not view.lookup_calls and not view.rows_calls


def test_delta_does_not_scan_whole_tables() -> None:
    n = 2000
    before = {
        "entity": [entity(i, 5) for i in range(n)],
        "circle": [circle(i, i % 50, 1.0) for i in range(n)],
    }
    q = compile_query(
        "SELECT c.* FROM circle c JOIN entity e ON c.entity_id = e.entity_id WHERE e.mass > 10", BH, ME
    )
    old, new = entity(7, 5), entity(7, 50)
    after = {"entity": [new if r == old else r for r in before["entity"]], "circle": before["circle"]}
    view = MemView(after)
    d = q.delta(view, {"entity": RowDelta([new], [old])})
    assert d == RowDelta([circle(7, 7, 1.0)], [])
    assert sum(view.rows_calls.values()) == 0
    assert sum(view.lookup_calls.values()) <= 4  # the changed key, on each side
    # a new circle joining an existing heavy entity
    view = MemView(after)
    d = q.delta(view, {"circle": RowDelta([circle(n + 1, 1)], [])})
    assert d == RowDelta([], [])  # no entity n + 1
    assert sum(view.rows_calls.values()) == 0 and sum(view.lookup_calls.values()) <= 2
    # a single-table query looks only at the changes
    s = compile_query("SELECT * FROM entity WHERE mass > 10", BH, ME)
    view = MemView(after)
    assert s.delta(view, {"entity": RowDelta([new], [old])}) == RowDelta([new], [])
    assert not view.rows_calls and not view.lookup_calls


def test_evaluate_uses_lookups_for_joins() -> None:
    view = blackholio_view()
    q = compile_query("SELECT c.* FROM circle c JOIN entity e ON c.entity_id = e.entity_id", BH, ME)
    q.evaluate(view)
    assert view.rows_calls == Counter({"circle": 1})
    assert view.lookup_calls["entity"] == 3


# ---- /sql --------------------------------------------------------------------------------------------------
def test_execute_sql_star_and_where() -> None:
    (res,) = execute_sql("SELECT * FROM entity WHERE mass >= 20", BH, blackholio_view(), ME)
    assert isinstance(res, SqlResult)
    assert res.schema.names == ("entity_id", "position", "mass")
    assert res.schema == BH.table("entity").row_type
    assert ids(res.rows) == [2, 3]


def test_execute_sql_column_lists() -> None:
    view = blackholio_view()
    (res,) = execute_sql("SELECT mass, entity_id AS id FROM entity WHERE mass > 5", BH, view, ME)
    assert res.schema.names == ("mass", "id")
    assert [e.type for e in res.schema.elements] == [PrimitiveType("I32"), PrimitiveType("I32")]
    assert sorted(res.rows) == [(10, 4), (20, 2), (30, 3)]
    (res,) = execute_sql('SELECT "e"."mass" FROM entity e WHERE e.entity_id = 1', BH, view, ME)
    assert res.rows == [(5,)]
    with pytest.raises(SqlError, match="duplicate output column `mass`"):
        execute_sql("SELECT mass, mass FROM entity", BH, view, ME)
    with pytest.raises(SqlError, match="select either"):
        execute_sql("SELECT *, mass FROM entity", BH, view, ME)
    with pytest.raises(SqlError, match="unsupported select item"):
        execute_sql("SELECT mass + 1 FROM entity", BH, view, ME)


def test_execute_sql_count_and_limit() -> None:
    view = blackholio_view()
    (res,) = execute_sql("SELECT COUNT(*) AS n FROM entity", BH, view, ME)
    assert res.schema.names == ("n",) and res.schema.elements[0].type == PrimitiveType("U64")
    assert res.rows == [(4,)]
    (res,) = execute_sql("SELECT count(*) FROM entity WHERE mass > 10", BH, view, ME)
    assert res.schema.names == ("count",) and res.rows == [(2,)]
    (res,) = execute_sql("SELECT * FROM entity LIMIT 2", BH, view, ME)
    assert len(res.rows) == 2
    (res,) = execute_sql("SELECT entity_id FROM entity WHERE mass > 5 LIMIT 0", BH, view, ME)
    assert res.rows == []
    (res,) = execute_sql("SELECT entity_id FROM entity LIMIT 100", BH, view, ME)
    assert len(res.rows) == 4
    for bad, message in [
        ("SELECT COUNT(mass) AS n FROM entity", "only COUNT(*) is supported"),
        ("SELECT COUNT(*) AS n, mass FROM entity", "COUNT(*) cannot be combined"),
        ("SELECT * FROM entity LIMIT -1", "LIMIT must be a non-negative integer"),
        ("SELECT * FROM entity LIMIT 1.5", "LIMIT must be a non-negative integer"),
        ("SELECT * FROM entity LIMIT 'a'", "LIMIT must be a non-negative integer"),
        ("SELECT * FROM entity LIMIT 5 OFFSET 2", "unsupported: OFFSET"),
        ("SELECT * FROM entity ORDER BY mass", "unsupported: ORDER BY"),
    ]:
        with pytest.raises(SqlError) as info:
            execute_sql(bad, BH, view, ME)
        assert message in str(info.value), bad


def test_execute_sql_several_statements() -> None:
    view = blackholio_view()
    results = execute_sql(
        "SELECT COUNT(*) AS n FROM entity; SELECT name FROM player WHERE identity = :sender;;"
        "SELECT * FROM config;",
        BH,
        view,
        ME,
    )
    assert [r.rows for r in results] == [[(4,)], [("me",)], [(0, 1000)]]
    with pytest.raises(SqlError, match="only SELECT is supported, got INSERT"):
        execute_sql("SELECT * FROM entity; INSERT INTO entity VALUES (9, 9, 9)", BH, view, ME)
    assert view.rows_calls["entity"] == 1, "nothing runs unless every statement compiles"
    with pytest.raises(SqlError, match="only SELECT is supported"):
        execute_sql("DELETE FROM entity WHERE mass > 1", BH, view, ME)
    with pytest.raises(SqlError, match="empty query"):
        execute_sql(" ;; ", BH, view, ME)


def test_execute_sql_joins() -> None:
    view = blackholio_view()
    (res,) = execute_sql(
        "SELECT c.entity_id, e.mass AS m FROM circle c JOIN entity e ON c.entity_id = e.entity_id "
        "WHERE e.mass > 5",
        BH,
        view,
        ME,
    )
    assert res.schema.names == ("entity_id", "m")
    assert sorted(res.rows) == [(2, 20), (3, 30)]
    # plain SQL multiplicity: one row per matching pair
    (res,) = execute_sql("SELECT p.* FROM player p JOIN circle c ON p.player_id = c.player_id", BH, view, ME)
    assert Counter(r[2] for r in res.rows) == Counter({"me": 2, "you": 1})
    (res,) = execute_sql(
        "SELECT COUNT(*) AS n FROM player p JOIN circle c ON p.player_id = c.player_id", BH, view, ME
    )
    assert res.rows == [(3,)]
    # /sql may join on columns without an index
    (res,) = execute_sql(
        "SELECT e.entity_id FROM entity e JOIN circle c ON e.mass = c.player_id", BH, view, ME
    )
    assert sorted(res.rows) == [(4,), (4,)]
    with pytest.raises(SqlError, match="a join must select the rows of one table"):
        execute_sql("SELECT * FROM player p JOIN circle c ON p.player_id = c.player_id", BH, view, ME)


# ---- fuzz --------------------------------------------------------------------------------------------------
VALID = [
    "SELECT * FROM entity WHERE mass > 10 OR entity_id = 1",
    "SELECT c.* FROM circle c JOIN entity e ON c.entity_id = e.entity_id WHERE e.mass > 10",
    "SELECT p.* FROM player AS p INNER JOIN circle AS c ON p.player_id = c.player_id WHERE p.identity = :sender",
    "SELECT * FROM player WHERE identity = 0x" + ME.to_hex() + " AND name != 'it''s'",
    "SELECT * FROM circle WHERE (speed >= 1.5e0 AND player_id <> 2) OR last_split_time > '2024-01-01T00:00:00Z'",
    "SELECT entity_id , mass AS m FROM entity WHERE mass > 1 LIMIT 3",
    "SELECT COUNT(*) AS n FROM circle ; SELECT * FROM config",
]
VOCAB = [
    "SELECT",
    "*",
    "FROM",
    "WHERE",
    "JOIN",
    "INNER",
    "LEFT",
    "ON",
    "AND",
    "OR",
    "NOT",
    "(",
    ")",
    "=",
    "<",
    ">",
    "<=",
    ">=",
    "!=",
    "<>",
    ",",
    ";",
    ".",
    "'x'",
    "''",
    "0x",
    "0xAB",
    "X'AB'",
    ":sender",
    ":who",
    "$1",
    "?",
    "1e3",
    "-1",
    "1.5",
    "1e999",
    "NULL",
    "true",
    "false",
    "c.*",
    "e.*",
    "e",
    "c",
    "p",
    "LIMIT",
    "5",
    "COUNT(*)",
    "AS",
    "ORDER",
    "BY",
    "GROUP",
    "UNION",
    "SELECT",
    '"x"',
    "entity",
    "circle",
    "player",
    "food",
    "mass",
    "entity_id",
    "identity",
    "speed",
    "position",
    "::",
    "+",
    "-",
    "/",
    "IN",
    "IS",
]


@st.composite
def mangled(draw: st.DrawFn) -> str:
    tokens = draw(st.sampled_from(VALID)).split()
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["drop", "dup", "swap", "insert", "replace", "chop"]))
        i = draw(st.integers(0, max(len(tokens) - 1, 0)))
        if op == "drop" and tokens:
            del tokens[i]
        elif op == "dup" and tokens:
            tokens.insert(i, tokens[i])
        elif op == "swap" and len(tokens) > 1:
            j = draw(st.integers(0, len(tokens) - 1))
            tokens[i], tokens[j] = tokens[j], tokens[i]
        elif op == "insert":
            tokens.insert(i, draw(st.sampled_from(VOCAB)))
        elif op == "replace" and tokens:
            tokens[i] = draw(st.sampled_from(VOCAB))
        elif op == "chop" and tokens and tokens[i]:
            cut = draw(st.integers(0, len(tokens[i])))
            tokens[i] = tokens[i][:cut]
    return " ".join(tokens)


SQL_CHARS = st.sampled_from(
    list("SELECTFROMWHEREJOINselectfromwhere*().,;:'\"=<>!-+0123456789xX_ \n\t$?e\\\x00é")
)


def assert_clean_message(sql: str, exc: SqlError) -> None:
    message = str(exc)
    assert message and "internal error" not in message, (sql, message)
    assert "<Token" not in message and "<class" not in message, (sql, message)
    assert "\x1b" not in message or "\x1b" in sql, (sql, message)  # no terminal underlining


def check_only_sql_errors(sql: str) -> None:
    view = blackholio_view()
    try:
        q = compile_query(sql, BH, ME)
    except SqlError as exc:
        assert_clean_message(sql, exc)
    else:
        q.evaluate(view)
        q.delta(view, {"entity": RowDelta([entity(1, 5)], []), "circle": RowDelta([], [circle(1, 10)])})
    try:
        execute_sql(sql, BH, view, ME)
    except SqlError as exc:
        assert_clean_message(sql, exc)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sql=mangled())
def test_fuzz_mangled_queries_raise_only_sql_error(sql: str) -> None:
    check_only_sql_errors(sql)


@settings(max_examples=300, deadline=None)
@given(sql=st.one_of(st.text(max_size=60), st.lists(SQL_CHARS, max_size=60).map("".join)))
def test_fuzz_random_text_raises_only_sql_error(sql: str) -> None:
    check_only_sql_errors(sql)


def test_fuzz_seeded_token_soup() -> None:
    rng = random.Random(1234)
    for _ in range(300):
        sql = " ".join(rng.choice(VOCAB) for _ in range(rng.randint(1, 14)))
        check_only_sql_errors(sql)
    for bad in [
        "SELECT * FROM entity WHERE mass = 0x",
        "SELECT * FROM \x00",
        "SELECT * FROM entity WHERE e.* = 1",
    ]:
        with pytest.raises(SqlError):
            compile_query(bad, BH, ME)
