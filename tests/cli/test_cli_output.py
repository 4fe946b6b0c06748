"""A command line that reads well (issue: the game-jam workflow): ``sql`` prints aligned tables with
identities in hex, timestamps in ISO 8601 and empty options as NULL (``--json`` for machines); ``call``
reads its arguments as JSON (a bare word is a string) and its errors name the parameter, its type and the
value received as JSON; an unknown reducer or table lists the ones there are; ``describe`` prints the
module's tables and reducers."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from spacetime_game.cli._display import aligned, timestamp_text, type_label, value_text
from spacetime_game.cli._main import main
from spacetime_game.sdk import sats
from spacetime_game.server import DevServer

DEMOS = Path(__file__).resolve().parents[2] / "demos"
CHAT, ARENA = DEMOS / "chat" / "module.py", DEMOS / "arena" / "module.py"

I32 = sats.PrimitiveType("I32")
STRING = sats.PrimitiveType("String")
UNIT = sats.ProductType(())
OPTION_STRING = sats.SumType((sats.SumVariant("some", STRING), sats.SumVariant("none", UNIT)))
VECTOR = sats.ProductType(
    (sats.ProductElement("x", sats.PrimitiveType("F32")), sats.ProductElement("y", sats.PrimitiveType("F32")))
)


def _no_refs(ref: int) -> sats.AlgebraicType | None:
    return None


def test_values_read_as_people_read_them() -> None:
    ident = sats.AlgebraicType.special("identity")
    assert value_text(["0xc2001234"], ident, _no_refs) == "0xc2001234"
    assert value_text([0xAB], ident, _no_refs) == "0x" + "0" * 62 + "ab"
    assert value_text([1_796_182_600_342_603], sats.AlgebraicType.special("timestamp"), _no_refs) == (
        "2026-12-02T03:36:40.342603Z"  # (date -u -d @1796182600)
    )
    assert timestamp_text(0) == "1970-01-01T00:00:00.000000Z"
    assert value_text([0, "alice"], OPTION_STRING, _no_refs) == "alice"
    assert value_text([1, []], OPTION_STRING, _no_refs) == "NULL"
    assert value_text({"none": []}, OPTION_STRING, _no_refs) == "NULL"
    assert value_text("text with spaces", STRING, _no_refs) == "text with spaces"
    assert value_text(True, sats.PrimitiveType("Bool"), _no_refs) == "true"
    assert value_text([1.5, -2.0], VECTOR, _no_refs) == "(x=1.5, y=-2.0)"
    assert (
        value_text([1.5, -2.0], sats.RefType(0), lambda ref: VECTOR if ref == 0 else None)
        == "(x=1.5, y=-2.0)"
    )
    color = sats.SumType((sats.SumVariant("Red", UNIT), sats.SumVariant("Rgb", sats.ArrayType(I32))))
    assert value_text([0, []], color, _no_refs) == "Red"
    assert value_text([1, [1, 2, 3]], color, _no_refs) == "Rgb([1, 2, 3])"
    assert value_text([0, [1_500_000]], sats.AlgebraicType.special("schedule_at"), _no_refs) == "every 1.5 s"
    assert type_label(OPTION_STRING) == "Option<String>"
    assert (
        type_label(sats.ArrayType(sats.RefType(3)), lambda ref: "DbVector2" if ref == 3 else None)
        == "Array<DbVector2>"
    )


def test_tables_are_aligned() -> None:
    text = aligned(["id", "name"], [["1", "Alice"], ["22", "Bo"]])
    assert text.splitlines() == ["id | name", "---+------", "1  | Alice", "22 | Bo"]


@pytest.fixture(scope="module")
def chat() -> Iterator[DevServer]:
    with DevServer(CHAT, database="quickstart-chat") as server:
        yield server


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_call_reads_json_and_bare_words_and_names_what_does_not_fit(
    chat: DevServer, capsys: pytest.CaptureFixture[str]
) -> None:
    s = ("--server", chat.address)
    code, out, _ = _run(capsys, "call", chat.database, "send_message", "hello there", *s)
    assert (code, out.strip()) == (0, "ok")
    code, _, err = _run(capsys, "call", chat.database, "send_message", *s)
    assert code == 2 and "send_message(text: String) takes 1 argument, got 0" in err
    code, _, err = _run(capsys, "call", chat.database, "send_message", "[1, true]", *s)
    assert code == 2
    assert "parameter text (String): expected a string; received [1, true]" in err, err
    code, _, err = _run(capsys, "call", chat.database, "send_mesage", "hi", *s)
    assert code == 2 and "no reducer 'send_mesage'" in err
    assert "send_message(text: String)" in err and "set_name(name: String)" in err
    code, _, err = _run(capsys, "call", chat.database, "set_name", "Alice", *s)
    assert code == 1 and "set_name failed: Cannot set name for unknown user" in err  # (the reducer's error)


def test_sql_prints_tables_and_json_and_lists_the_tables(
    chat: DevServer, capsys: pytest.CaptureFixture[str]
) -> None:
    s = ("--server", chat.address)
    assert _run(capsys, "call", chat.database, "send_message", "second", *s)[0] == 0
    code, out, _ = _run(capsys, "sql", chat.database, "SELECT * FROM message WHERE text = 'second'", *s)
    assert code == 0
    lines = out.splitlines()
    assert re.fullmatch(r"sender +\| sent +\| text", lines[0]), lines[0]
    sender, sent, text = (cell.strip() for cell in lines[2].split("|"))
    assert re.fullmatch(r"0x[0-9a-f]{64}", sender) and text == "second"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", sent), sent
    assert lines[-1] == "(1 row)"
    code, out, _ = _run(
        capsys, "sql", chat.database, "SELECT * FROM message WHERE text = 'second'", "--json", *s
    )
    assert code == 0 and json.loads(out)[0]["rows"][0][2] == "second"
    code, _, err = _run(capsys, "sql", chat.database, "SELECT * FROM mesage", *s)
    assert code == 1 and "no such table" in err and "the tables of quickstart-chat: message, user" in err


def test_describe_prints_tables_and_reducers(capsys: pytest.CaptureFixture[str]) -> None:
    with DevServer(ARENA, database="blackholio") as arena:
        code, out, _ = _run(capsys, "describe", arena.database, "--server", arena.address)
    assert code == 0
    assert "  circle  (public)" in out
    assert re.search(r"entity_id +\| I32 +\| primary key", out)
    assert re.search(r"direction +\| DbVector2 +\|", out)
    assert "logged_out_player  (private: the owner only)" in out
    assert "move_all_players_timer  (private: the owner only; schedules move_all_players)" in out
    assert "  enter_game(name: String)" in out
    assert "  update_player_input(direction: DbVector2)" in out
    assert "  connect()  (when a client connects)" in out
