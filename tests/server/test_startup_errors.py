"""Start-up failures of ``spacetime-game serve``: one clear line on stderr and exit status 2, never a
traceback and never a silently empty database.

Each test prepares a data folder (a real database written by a dev server: the ``init`` record and a few
reducer calls), damages it the way the failure happens in the field, and runs the command in a child
process.
"""

from __future__ import annotations

import errno
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

pytest.importorskip("aiohttp")

from spacetime_game.server import _wal
from spacetime_game.server._wal import CommitLog, CommitLogError
from tests._support import free_port

from .conftest import ServerThread

pytestmark = pytest.mark.timeout(90)

ROOT = Path(__file__).resolve().parents[2]
MODULE = ROOT / "benchmarks" / "load_module.py"
DATABASE = "db"
CALLS = 5


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data folder holding a database with ``1 + CALLS`` records and a signing key."""
    data = tmp_path_factory.mktemp("template") / "data"
    server = ServerThread(MODULE, data, DATABASE)
    try:
        for _ in range(CALLS):
            request = urllib.request.Request(
                f"{server.http}/v1/database/{DATABASE}/call/bump", data=b"[1]", method="POST"
            )
            with urllib.request.urlopen(request, timeout=10) as response:
                assert response.status == 200
    finally:
        server.stop()
    return data


@pytest.fixture
def data(template: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "data"
    shutil.copytree(template, copy)
    return copy


def log_file(data: Path) -> Path:
    return data / "databases" / DATABASE / "commitlog.bin"


def serve(data: Path, timeout: float = 20.0) -> subprocess.CompletedProcess[str]:
    """Run ``spacetime-game serve`` on ``data``; it must give up on its own (a server that starts is
    reported as such instead of hanging the test)."""
    command = [
        sys.executable,
        "-m",
        "spacetime_game.cli",
        "serve",
        str(MODULE),
        "--database",
        DATABASE,
        "--port",
        str(free_port()),
        "--data-dir",
        str(data),
    ]
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    except subprocess.TimeoutExpired as exc:
        err = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else exc.stderr
        pytest.fail(f"the server started instead of refusing the data folder:\n{err}")


def single_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    """The one line the command printed; asserts exit status 2 and no traceback."""
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("spacetime-game serve: "), lines[0]
    return lines[0]


@pytest.mark.parametrize("size", [0, 3, 7])
def test_a_log_shorter_than_its_header_is_refused(data: Path, size: int) -> None:
    path = log_file(data)
    with open(path, "r+b") as f:
        f.truncate(size)
    line = single_error_line(serve(data))
    assert str(path) in line
    assert f"{size} byte" in line
    assert "backup" in line and "delete" in line
    assert path.stat().st_size == size  # left as found


def test_corruption_in_the_middle_names_file_offset_and_seq(data: Path) -> None:
    path = log_file(data)
    raw = bytearray(path.read_bytes())
    raw[8 + 16 + 10] ^= 0xFF  # a payload byte of the first record (seq 1, at byte offset 8)
    path.write_bytes(bytes(raw))
    line = single_error_line(serve(data))
    assert str(path) in line
    assert "byte offset 8 " in line
    assert "seq 1" in line and "seq 2" in line
    assert path.read_bytes() == bytes(raw)  # untouched


def test_a_bad_signing_key_is_one_line(data: Path) -> None:
    key = data / "auth" / "id_ecdsa"
    key.write_bytes(b"-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")
    line = single_error_line(serve(data))
    assert str(key) in line
    assert "signing key" in line


def test_an_unreadable_signing_key_is_one_line(data: Path) -> None:
    key = data / "auth" / "id_ecdsa"
    key.unlink()
    key.mkdir()  # unreadable as a file, even for root
    line = single_error_line(serve(data))
    assert str(key) in line
    assert "signing key" in line


def test_a_data_folder_in_use_by_another_server_is_one_line(data: Path) -> None:
    other = ServerThread(MODULE, data, DATABASE)
    try:
        line = single_error_line(serve(data))
    finally:
        other.stop()
    assert str(log_file(data)) in line
    assert "another" in line


# -- the commit log itself ----------------------------------------------------------------------------------


@pytest.mark.parametrize("size", range(8))
def test_commit_log_refuses_a_file_shorter_than_its_header(tmp_path: Path, size: int) -> None:
    path = tmp_path / "commitlog.bin"
    path.write_bytes(b"STG-WAL\x01"[:size])
    with pytest.raises(CommitLogError, match=f"is {size} byte\\(s\\) long") as info:
        CommitLog(path)
    assert str(path) in str(info.value) and "backup" in str(info.value)
    assert path.read_bytes() == b"STG-WAL\x01"[:size]


def test_a_new_commit_log_appears_whole_or_not_at_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "db" / "commitlog.bin"

    def broken(fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(_wal, "_sync", broken)  # the header of the new log cannot be flushed
    with pytest.raises(OSError, match="Input/output error"):
        CommitLog(path)
    assert list(path.parent.iterdir()) == []  # no empty or partial log (nor a temporary file) left
    monkeypatch.undo()
    with CommitLog(path) as log:
        assert list(log.replay()) == []
    assert path.read_bytes() == b"STG-WAL\x01"
