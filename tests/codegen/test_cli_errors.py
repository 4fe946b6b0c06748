"""``spacetime-game generate`` with bad input: one clear line on stderr and exit code 2, never a traceback;
and ``--server``, against a small local HTTP server (version=10 first, version=9 on a 4xx)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from spacetime_game.cli import main
from spacetime_game.codegen import generate_package
from spacetime_game.sdk.schema import load_schema
from tests._support import free_port

from ._helpers import ROOT, SCHEMAS, subprocess_env


def generate(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["generate", *args])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_clear_error(code: int, err: str, *fragments: str) -> None:
    assert code == 2
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("spacetime-game generate: ")
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def schema_file(tmp_path: Path, change: Callable[[dict[str, Any]], None], name: str = "broken.json") -> Path:
    """The example schema with one thing broken by ``change``."""
    doc = json.loads(SCHEMAS["example"].read_text(encoding="utf-8"))
    change(doc)
    path = tmp_path / name
    path.write_text(json.dumps(doc, indent=2), encoding="utf-8")
    return path


def test_bad_json_names_line_and_column(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{"typespace": {"types": []},\n  "tables": [}\n', encoding="utf-8")
    code, out, err = generate(capsys, "--schema", str(path), "--out-dir", str(tmp_path / "out"))
    assert_one_clear_error(code, err, f"{path}:2:14:", "invalid JSON")
    assert out == ""
    assert not (tmp_path / "out").exists()


def test_bad_json_in_a_real_process(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text("{\n\n   nope", encoding="utf-8")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "spacetime_game.cli",
            "generate",
            "--schema",
            "bad.json",
            "--out-dir",
            "out",
        ],
        cwd=tmp_path,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert_one_clear_error(proc.returncode, proc.stderr, "bad.json:3:4:", "invalid JSON")
    assert proc.stdout == ""


@pytest.mark.parametrize(
    ("change", "fragments"),
    [
        (
            lambda d: d["reducers"][0]["params"]["elements"][0].update(algebraic_type={"Ref": 9}),
            ["V9.reducers[0](add).params", "dangling Ref 9"],
        ),
        (
            lambda d: d["tables"][0].update(product_type_ref=4),
            ["product_type_ref", "dangling type reference 4"],
        ),
        (
            lambda d: d["typespace"]["types"].append({"Array": {"Ref": 7}}),
            ["typespace.types[1]", "dangling Ref 7"],
        ),
        (
            lambda d: d["tables"][0].pop("product_type_ref"),
            ["V9.tables[0].product_type_ref", "Field required"],
        ),
        (lambda d: d.pop("typespace"), ["not a module schema"]),
        (lambda d: d["reducers"][0].pop("params"), ["V9.reducers[0].params", "Field required"]),
        (lambda d: d["tables"][0].update(primary_key=[3]), ["primary_key", "column id 3 is out of range"]),
        (
            lambda d: d["tables"][0].update(
                indexes=[{"name": None, "algorithm": {"BTree": {"columns": [0, 1]}}}]
            ),
            ["indexes[0]", "column id 1 is out of range"],
        ),
        (lambda d: d["tables"][0].update(table_access={"Protected": []}), ["table_access"]),
        (lambda d: d["typespace"]["types"].__setitem__(0, {"Float": []}), ["unknown type tag 'Float'"]),
    ],
    ids=[
        "dangling-ref-in-params",
        "dangling-table-ref",
        "dangling-ref-in-typespace",
        "missing-field",
        "no-typespace",
        "missing-params",
        "column-out-of-range",
        "index-column-out-of-range",
        "bad-enum",
        "bad-type",
    ],
)
def test_malformed_schema_gives_one_clear_error(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    change: Callable[[dict[str, Any]], None],
    fragments: list[str],
) -> None:
    path = schema_file(tmp_path, change)
    code, out, err = generate(capsys, "--schema", str(path), "--out-dir", str(tmp_path / "out"))
    assert_one_clear_error(code, err, "invalid schema at", *fragments)
    assert out == ""
    assert not (tmp_path / "out").exists()


def test_not_utf8(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "latin1.json"
    path.write_bytes(b'{"typespace": {"types": []}, "tables": [{"name": "caf\xe9"}]}')
    code, _, err = generate(capsys, "--schema", str(path), "--out-dir", str(tmp_path / "out"))
    assert_one_clear_error(code, err, str(path), "invalid JSON: not utf-8 text")


def test_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = generate(
        capsys, "--schema", str(tmp_path / "nope.json"), "--out-dir", str(tmp_path / "out")
    )
    assert_one_clear_error(code, err, "nope.json", "cannot read the file")


def test_unwritable_out_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("", encoding="utf-8")
    code, _, err = generate(capsys, "--schema", str(SCHEMAS["example"]), "--out-dir", str(blocker / "out"))
    assert_one_clear_error(code, err, str(blocker))


def test_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = generate(capsys, "--server", "127.0.0.1:1", "--out-dir", str(tmp_path))
    assert_one_clear_error(code, err, "--server needs --database")
    with pytest.raises(SystemExit) as info:
        main(["generate", "--out-dir", str(tmp_path)])
    assert info.value.code == 2
    assert "one of the arguments --schema --server --project-path is required" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main(["generate", "--schema", str(SCHEMAS["example"]), "--server", "x", "--out-dir", str(tmp_path)])
    assert info.value.code == 2


def test_server_unreachable(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()  # nothing listens there
    code, out, err = generate(
        capsys, "--server", f"http://127.0.0.1:{port}", "--database", "x", "--out-dir", str(tmp_path / "o")
    )
    assert_one_clear_error(code, err, f"cannot reach http://127.0.0.1:{port}")
    assert out == "" and not (tmp_path / "o").exists()


# ---- a local schema server -------------------------------------------------------------------------------
class SchemaServer:
    """Answers ``GET /v1/database/<db>/schema?version=N`` from ``answers[N]`` = (status, body)."""

    def __init__(self, answers: dict[str, tuple[int, bytes]]) -> None:
        self.answers = answers
        self.requests: list[tuple[str, str | None]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.requests.append((self.path, self.headers.get("Authorization")))
                m = re.fullmatch(r"/v1/database/([^/?]+)/schema\?version=(\d+)", self.path)
                status, body = outer.answers.get(m.group(2), (404, b"")) if m else (404, b"")
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> SchemaServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def serve() -> Iterator[Callable[[dict[str, tuple[int, bytes]]], SchemaServer]]:
    servers: list[SchemaServer] = []

    def start(answers: dict[str, tuple[int, bytes]]) -> SchemaServer:
        server = SchemaServer(answers).__enter__()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.__exit__()


def test_server_falls_back_to_version_9_on_a_4xx(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], serve: Callable[..., SchemaServer]
) -> None:
    body = SCHEMAS["blackholio"].read_bytes()
    server = serve({"10": (404, b"no such version"), "9": (200, body)})
    out_dir = tmp_path / "gen" / "mb"
    code, out, err = generate(
        capsys,
        "--server",
        f"http://127.0.0.1:{server.port}",
        "--database",
        "blackholio",
        "--out-dir",
        str(out_dir),
    )
    assert (code, err) == (0, "")
    assert out.startswith("wrote 22 files")
    assert server.requests == [
        ("/v1/database/blackholio/schema?version=10", None),
        ("/v1/database/blackholio/schema?version=9", None),
    ]
    expected = generate_package(load_schema(SCHEMAS["blackholio"]), "database blackholio (schema version 9)")
    assert {p.name: p.read_text(encoding="utf-8") for p in out_dir.iterdir()} == expected
    assert "(RawModuleDefV9)" in expected["__init__.py"].splitlines()[0]


def test_server_answering_version_10_is_used_directly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], serve: Callable[..., SchemaServer]
) -> None:
    server = serve({"10": (200, SCHEMAS["v10"].read_bytes()), "9": (500, b"")})
    code, _, err = generate(
        capsys,
        "--server",
        f"ws://127.0.0.1:{server.port}/",
        "--database",
        "my db",
        "--token",
        "tok",
        "--out-dir",
        str(tmp_path / "v10"),
    )
    assert (code, err) == (0, "")
    assert server.requests == [("/v1/database/my%20db/schema?version=10", "Bearer tok")]
    assert (tmp_path / "v10" / "players.py").exists()
    assert "schema version 10" in (tmp_path / "v10" / "__init__.py").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("answers", "fragments"),
    [
        ({"10": (500, b"oops")}, ["HTTP 500"]),
        ({"10": (404, b""), "9": (404, b"")}, ["HTTP 404", "'blackholio'"]),
        ({"10": (404, b""), "9": (200, b"{not json")}, ["invalid JSON", ":1:2:"]),
        ({"10": (200, b'{"sections": [{"Tables": []}]}')}, ["no Typespace section"]),
    ],
    ids=["server-error", "not-found", "bad-json", "bad-schema"],
)
def test_server_errors_give_one_clear_error(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    serve: Callable[..., SchemaServer],
    answers: dict[str, tuple[int, bytes]],
    fragments: list[str],
) -> None:
    server = serve(answers)
    code, out, err = generate(
        capsys,
        "--server",
        f"127.0.0.1:{server.port}",
        "--database",
        "blackholio",
        "--out-dir",
        str(tmp_path / "o"),
    )
    assert_one_clear_error(code, err, *fragments)
    assert out == "" and not (tmp_path / "o").exists()
    assert len(server.requests) == (1 if answers["10"][0] != 404 else 2)


def test_repository_root_is_importable() -> None:
    """The subprocess tests above run the CLI of this checkout."""
    assert (ROOT / "spacetime_game" / "cli" / "_main.py").exists()
