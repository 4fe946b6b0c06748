"""The commit log: round trips, sequence numbers, group commit, torn tails, corruption, and kill -9."""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import selectors
import signal
import struct
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from spacetime_game.sdk import SpacetimeError
from spacetime_game.server import _wal
from spacetime_game.server._wal import CommitLog, CommitLogError

ROOT = Path(__file__).resolve().parents[2]
MAGIC_SIZE = 8
HEADER = struct.Struct("<IIQ")  # the documented frame header: length, crc32(payload), seq

pytestmark = pytest.mark.timeout(60)


def payload(seq: int) -> bytes:
    """A record whose content and length (32..224 bytes) follow from its seq."""
    return hashlib.sha256(b"%d" % seq).digest() * (1 + seq % 7)


def open_log(path: Path, **options: Any) -> tuple[CommitLog, list[tuple[int, bytes]]]:
    log = CommitLog(path, **options)
    return log, list(log.replay())


def read_log(path: Path) -> list[tuple[int, bytes]]:
    with CommitLog(path) as log:
        return list(log.replay())


def write_log(path: Path, records: list[bytes]) -> list[int]:
    """Write ``records`` through a CommitLog and return the byte offset of each frame (from the format)."""
    log, replayed = open_log(path)
    assert replayed == []
    for i, record in enumerate(records, 1):
        assert log.append(record) == i
    log.close()
    offsets = []
    offset = MAGIC_SIZE
    for record in records:
        offsets.append(offset)
        offset += HEADER.size + len(record)
    assert path.stat().st_size == offset
    return offsets


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "db" / "commit.log"


@pytest.fixture(autouse=True)
def no_writer_thread_left() -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 2
    while set(threading.enumerate()) - before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert set(threading.enumerate()) - before == set()


def test_is_a_spacetime_error() -> None:
    assert issubclass(CommitLogError, SpacetimeError)


# -- round trips and sequence numbers ----------------------------------------------------------------


def test_round_trip_across_reopen(path: Path) -> None:
    records = [b"", b"x", b"\x00" * 1000, os.urandom(70_000), *(payload(i) for i in range(50))]
    log, replayed = open_log(path)
    assert replayed == [] and log.durable_seq == 0
    for record in records:
        log.append(record)
    log.close()
    assert path.read_bytes()[:MAGIC_SIZE] == b"STG-WAL\x01"

    log, replayed = open_log(path)
    assert replayed == list(enumerate(records, 1))
    assert log.durable_seq == len(records)
    log.close()


def test_frames_follow_the_documented_format(path: Path) -> None:
    write_log(path, [b"hello", b"", b"world!"])
    data = path.read_bytes()
    offset = MAGIC_SIZE
    for seq, record in enumerate([b"hello", b"", b"world!"], 1):
        assert HEADER.unpack_from(data, offset) == (len(record), zlib.crc32(record), seq)
        assert data[offset + HEADER.size : offset + HEADER.size + len(record)] == record
        offset += HEADER.size + len(record)
    assert offset == len(data)


def test_sequence_numbers_continue_across_reopens(path: Path) -> None:
    expected: list[tuple[int, bytes]] = []
    for round_ in range(3):
        log, replayed = open_log(path)
        assert replayed == expected
        for i in range(10):
            record = b"round %d record %d" % (round_, i)
            seq = log.append(record)
            assert seq == len(expected) + 1
            expected.append((seq, record))
        log.close()
    assert [seq for seq, _ in expected] == list(range(1, 31))


def test_parent_directories_are_created_and_a_new_log_is_created_whole(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "c.log"
    log, replayed = open_log(path)
    assert replayed == [] and path.read_bytes() == b"STG-WAL\x01"
    assert sorted(p.name for p in path.parent.iterdir()) == ["c.log"]  # no temporary file left
    log.close()
    # a log shorter than its header is never created, so one found is refused (tests/server/test_startup_errors.py)


def test_not_a_commit_log(tmp_path: Path) -> None:
    path = tmp_path / "other.bin"
    path.write_bytes(b"SQLite format 3\x00" + b"\x00" * 100)
    with pytest.raises(CommitLogError, match="not a spacetime_game commit log"):
        CommitLog(path)
    assert path.read_bytes() == b"SQLite format 3\x00" + b"\x00" * 100


def test_append_needs_a_finished_replay(path: Path) -> None:
    write_log(path, [b"a", b"b", b"c"])
    log = CommitLog(path)
    with pytest.raises(CommitLogError, match="replay"):
        log.append(b"x")
    abandoned = log.replay()
    assert next(abandoned) == (1, b"a")  # and no further: not open for appends
    with pytest.raises(CommitLogError, match="replay"):
        log.append(b"x")
    assert list(log.replay()) == [(1, b"a"), (2, b"b"), (3, b"c")]  # a replay may start again
    assert log.append(b"x") == 4
    with pytest.raises(CommitLogError, match="once"):
        log.replay()
    with pytest.raises(CommitLogError, match="replayed twice"):
        list(abandoned)
    log.close()
    assert read_log(path)[-1] == (4, b"x")


@pytest.mark.skipif(sys.platform == "win32", reason="file locking is POSIX only")
def test_a_second_owner_is_refused(path: Path) -> None:
    log, _ = open_log(path)
    with pytest.raises(CommitLogError, match="in use"):
        CommitLog(path)
    log.close()
    second, _ = open_log(path)
    second.close()


# -- durability notifications and group commit -------------------------------------------------------


def test_on_durable_fires_once_per_record_in_order_after_the_record_is_durable(path: Path) -> None:
    log, _ = open_log(path)
    seen: list[tuple[int, bool, bool]] = []

    def on_durable(seq: int) -> None:
        seen.append((seq, log.durable_seq >= seq, threading.current_thread() is threading.main_thread()))

    seqs = []
    for i in range(300):
        seqs.append(log.append(payload(i), on_durable if i % 10 else None))
        if i % 37 == 0:
            time.sleep(0.002)  # let batches of different sizes form
    log.flush()
    assert log.durable_seq == 300
    expected = [seq for i, seq in enumerate(seqs) if i % 10]
    assert [seq for seq, _, _ in seen] == expected
    assert all(durable for _, durable, _ in seen)
    assert not any(on_main for _, _, on_main in seen)
    log.close()
    assert len(seen) == len(expected)  # nothing fired twice, not even on close


def test_a_failing_callback_is_logged_and_does_not_stop_the_log(
    path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    log, _ = open_log(path)
    seen: list[int] = []

    def bad(seq: int) -> None:
        raise RuntimeError("boom")

    log.append(b"a", bad)
    log.append(b"b", seen.append)
    log.flush()
    log.append(b"c", seen.append)
    log.close()
    assert seen == [2, 3]
    assert any("on_durable callback for seq 1" in r.getMessage() for r in caplog.records)


def test_wait_durable_and_callbacks_may_be_used_from_a_callback(path: Path) -> None:
    log, _ = open_log(path)
    results: list[bool] = []
    log.append(b"a", lambda seq: results.append(log.wait_durable(seq, timeout=0)))
    log.append(b"b", lambda seq: results.append(log.append(b"from callback") == 3))
    log.flush()
    log.flush()
    log.close()
    assert results == [True, True]
    assert read_log(path) == [(1, b"a"), (2, b"b"), (3, b"from callback")]


def test_many_threads_appending_at_once(path: Path) -> None:
    n_threads, per_thread = 16, 300
    log, _ = open_log(path)
    barrier = threading.Barrier(n_threads)
    appended: list[list[tuple[int, bytes]]] = [[] for _ in range(n_threads)]
    durable_order: list[int] = []

    def worker(t: int) -> None:
        barrier.wait()
        for i in range(per_thread):
            record = b"thread %d record %d " % (t, i) + bytes(i % 50)
            appended[t].append((log.append(record, durable_order.append), record))

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(n_threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    log.flush()
    assert log.durable_seq == n_threads * per_thread
    assert durable_order == list(range(1, n_threads * per_thread + 1))
    log.close()

    for mine in appended:  # each thread's records got increasing seqs
        assert [seq for seq, _ in mine] == sorted(seq for seq, _ in mine)
    by_seq = dict(pair for mine in appended for pair in mine)
    assert sorted(by_seq) == list(range(1, n_threads * per_thread + 1))
    assert read_log(path) == sorted(by_seq.items())


class SyncCounter:
    def __init__(self, real: Callable[[int], None]) -> None:
        self.real = real
        self.calls = 0

    def __call__(self, fd: int) -> None:
        self.calls += 1
        self.real(fd)


def stall_writer(log: CommitLog) -> threading.Event:
    """Append a record whose on_durable callback holds the writer thread until the returned event is set."""
    release, entered = threading.Event(), threading.Event()

    def hold(seq: int) -> None:
        entered.set()
        release.wait(10)

    log.append(b"stall", hold)
    assert entered.wait(5)
    return release


def test_records_appended_together_share_one_fsync(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log, _ = open_log(path)
    counter = SyncCounter(_wal._sync)
    monkeypatch.setattr(_wal, "_sync", counter)
    release = stall_writer(log)  # 1 fsync
    assert counter.calls == 1
    for i in range(500):
        log.append(payload(i))
    release.set()
    log.flush()
    assert counter.calls == 2  # the 500 records queued meanwhile: one write, one fsync
    log.close()
    assert len(read_log(path)) == 501


def test_a_batch_holds_at_most_max_batch_bytes(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    frame = HEADER.size + 10
    log, _ = open_log(path, max_batch_delay=30.0, max_batch_bytes=3 * frame)
    counter = SyncCounter(_wal._sync)
    monkeypatch.setattr(_wal, "_sync", counter)
    release = stall_writer(log)
    for _ in range(99):
        log.append(b"0123456789")
    release.set()
    assert log.wait_durable(100, timeout=10)  # full batches go at once, whatever max_batch_delay says
    assert counter.calls == 1 + 33
    for _ in range(3):  # a batch fills up while the writer holds it open: it goes at once
        seq = log.append(b"0123456789")
        time.sleep(0.02)
    assert log.wait_durable(seq, timeout=10)  # not held for 30 s
    assert counter.calls == 1 + 33 + 1
    log.append(os.urandom(10 * frame))  # a record bigger than a batch still goes through
    log.close()
    assert counter.calls == 1 + 33 + 1 + 1
    assert len(read_log(path)) == 104


def test_max_batch_delay_holds_records_back_under_concurrency(path: Path) -> None:
    log, _ = open_log(path, max_batch_delay=30.0)
    release = stall_writer(log)
    for _ in range(3):  # these queue up and go as one batch of 3: appends are concurrent
        log.append(b"queued")
    release.set()
    assert log.wait_durable(4, timeout=10)
    seq = log.append(b"x")
    assert log.wait_durable(seq, timeout=0.1) is False  # held back to gather a batch
    assert log.durable_seq == 4
    start = time.monotonic()
    log.flush()  # but not when someone asks for it
    assert time.monotonic() - start < 10.0
    assert log.durable_seq == seq and log.wait_durable(seq, timeout=0)
    with pytest.raises(ValueError, match="not been appended"):
        log.wait_durable(seq + 1, timeout=0)
    log.close()


def test_a_lone_committer_is_not_held_back(path: Path) -> None:
    log, _ = open_log(path, max_batch_delay=30.0)
    for i in range(20):
        assert log.wait_durable(log.append(payload(i)), timeout=10)  # not held for 30 s
    log.close()


def test_fsync_off_still_writes_in_batches(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    counter = SyncCounter(_wal._sync)
    monkeypatch.setattr(_wal, "_sync", counter)
    log, _ = open_log(path, fsync=False)
    for i in range(100):
        log.append(payload(i))
    log.close()
    monkeypatch.undo()
    assert counter.calls == 1  # the new file's header only
    assert read_log(path) == [(i + 1, payload(i)) for i in range(100)]


def test_a_failed_fsync_stops_the_log(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log, _ = open_log(path)
    for i in range(3):
        log.append(payload(i))
    log.flush()
    fired: list[int] = []

    def broken(fd: int) -> None:
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(_wal, "_sync", broken)
    seq = log.append(b"lost", fired.append)
    with pytest.raises(CommitLogError, match="not durable"):
        log.wait_durable(seq, timeout=5)
    assert log.durable_seq == 3 and log.wait_durable(3)
    with pytest.raises(CommitLogError, match="failed"):
        log.append(b"more")
    with pytest.raises(CommitLogError, match="failed"):
        log.close()
    log.close()  # idempotent: the failure is reported once
    monkeypatch.undo()
    assert fired == []
    assert read_log(path) == [(i + 1, payload(i)) for i in range(3)]  # the failed batch was cut off


# -- close ------------------------------------------------------------------------------------------


def test_close_stops_the_writer_thread_and_is_idempotent(path: Path) -> None:
    before = set(threading.enumerate())
    log, _ = open_log(path)
    assert len(set(threading.enumerate()) - before) == 1  # the writer
    seqs = [log.append(payload(i)) for i in range(100)]
    log.close()
    assert set(threading.enumerate()) == before
    assert log.durable_seq == seqs[-1]  # close flushed
    log.close()
    with pytest.raises(CommitLogError, match="closed"):
        log.append(b"late")
    with CommitLog(path) as again:
        assert len(list(again.replay())) == 100
    assert set(threading.enumerate()) == before


def test_close_while_other_threads_append(path: Path) -> None:
    log, _ = open_log(path)
    accepted: list[int] = []
    stop = threading.Event()

    def worker() -> None:
        while not stop.is_set():
            try:
                accepted.append(log.append(b"r"))
            except CommitLogError:
                return

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(0.05)
    log.close()
    stop.set()
    for thread in threads:
        thread.join()
    assert sorted(accepted) == list(range(1, len(accepted) + 1))
    assert log.durable_seq == len(accepted)  # everything accepted before close is durable
    reopened, replayed = open_log(path)
    reopened.close()
    assert len(replayed) == len(accepted)


# -- torn tails and corruption ----------------------------------------------------------------------

RECORDS = [payload(i) for i in range(20)]


def _cut(cut_from_end: int) -> Callable[[Path, list[int]], int]:
    def damage(path: Path, offsets: list[int]) -> int:
        with open(path, "r+b") as f:
            f.truncate(path.stat().st_size - cut_from_end)
        return 19  # records that survive

    return damage


def _cut_inside_last_header(path: Path, offsets: list[int]) -> int:
    with open(path, "r+b") as f:
        f.truncate(offsets[-1] + 5)
    return 19


def _cut_after_last_header(path: Path, offsets: list[int]) -> int:
    with open(path, "r+b") as f:
        f.truncate(offsets[-1] + HEADER.size)
    return 19


def _append(garbage: bytes) -> Callable[[Path, list[int]], int]:
    def damage(path: Path, offsets: list[int]) -> int:
        with open(path, "ab") as f:
            f.write(garbage)
        return 20

    return damage


def _torn_last_payload(path: Path, offsets: list[int]) -> int:
    with open(path, "r+b") as f:  # the last sector of the last write never made it
        f.seek(-8, os.SEEK_END)
        f.write(b"\x00" * 8)
    return 19


@pytest.mark.parametrize(
    "damage",
    [
        _cut(1),
        _cut(40),
        _cut_inside_last_header,
        _cut_after_last_header,
        _append(b"\x07"),
        _append(os.urandom(3000)),
        _append(b"\x00" * 4096),  # zero-filled space, as some file systems leave after a crash
        _append(HEADER.pack(1000, 12345, 21) + b"partial record"),  # a frame whose write was cut short
        _append(HEADER.pack(3, zlib.crc32(b"abc"), 21) + b"abd"),  # a complete frame with a bad checksum
        _torn_last_payload,
    ],
    ids=[
        "cut-1",
        "cut-40",
        "cut-inside-header",
        "cut-after-header",
        "garbage-1",
        "garbage-random",
        "zeros",
        "partial-frame",
        "bad-crc-frame",
        "torn-last-payload",
    ],
)
def test_a_torn_tail_is_cut_off_and_appends_continue(
    path: Path, damage: Callable[[Path, list[int]], int], caplog: pytest.LogCaptureFixture
) -> None:
    offsets = write_log(path, RECORDS)
    survivors = damage(path, offsets)
    caplog.set_level(logging.WARNING, logger="spacetime_game.server.wal")

    log, replayed = open_log(path)
    assert replayed == list(enumerate(RECORDS[:survivors], 1))
    assert any("torn tail" in r.getMessage() for r in caplog.records)
    expected_size = (
        offsets[survivors] if survivors < len(RECORDS) else offsets[-1] + HEADER.size + len(RECORDS[-1])
    )
    assert path.stat().st_size == expected_size
    assert log.append(b"after the crash") == survivors + 1
    assert log.append(b"and more") == survivors + 2
    log.close()

    caplog.clear()
    log, replayed = open_log(path)
    assert replayed == [
        *enumerate(RECORDS[:survivors], 1),
        (survivors + 1, b"after the crash"),
        (survivors + 2, b"and more"),
    ]
    assert not any("torn tail" in r.getMessage() for r in caplog.records)
    log.close()


def _flip_payload_byte(data: bytearray, offsets: list[int]) -> int:
    data[offsets[4] + HEADER.size + 3] ^= 0x01
    return offsets[4]


def _bad_length(data: bytearray, offsets: list[int]) -> int:
    struct.pack_into("<I", data, offsets[4], 0x7FFFFFFF)
    return offsets[4]


def _short_length(data: bytearray, offsets: list[int]) -> int:
    struct.pack_into("<I", data, offsets[4], 1)
    return offsets[4]


def _bad_seq(data: bytearray, offsets: list[int]) -> int:
    struct.pack_into("<Q", data, offsets[4] + 8, 99)
    return offsets[4]


def _zeroed_sector(data: bytearray, offsets: list[int]) -> int:
    start = offsets[4] + 10
    data[start : start + 512] = bytes(512)  # spans several frames
    return offsets[4]


def _last_but_one(data: bytearray, offsets: list[int]) -> int:
    data[offsets[-2] + HEADER.size] ^= 0xFF
    return offsets[-2]


@pytest.mark.parametrize(
    "corrupt", [_flip_payload_byte, _bad_length, _short_length, _bad_seq, _zeroed_sector, _last_but_one]
)
def test_corruption_followed_by_valid_records_is_an_error(
    path: Path, corrupt: Callable[[bytearray, list[int]], int]
) -> None:
    offsets = write_log(path, RECORDS)
    data = bytearray(path.read_bytes())
    bad_offset = corrupt(data, offsets)
    path.write_bytes(bytes(data))

    log = CommitLog(path)
    replayed = []
    with pytest.raises(CommitLogError, match=f"corrupt at byte offset {bad_offset} ") as info:
        for item in log.replay():
            replayed.append(item)
    assert "refusing to drop" in str(info.value)
    assert replayed == list(enumerate(RECORDS, 1))[: offsets.index(bad_offset)]
    with pytest.raises(CommitLogError, match="replay"):
        log.append(b"x")
    log.close()
    assert path.read_bytes() == bytes(data)  # nothing was cut off


# -- kill -9 ----------------------------------------------------------------------------------------

CHILD = r"""
import hashlib, sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from spacetime_game.server._wal import CommitLog

def payload(seq):
    return hashlib.sha256(b"%d" % seq).digest() * (1 + seq % 7)

log = CommitLog(Path(sys.argv[2]))
seq = 0
for seq, record in log.replay():
    assert record == payload(seq), seq
out = sys.stdout

def acknowledge(seq):
    out.write("%d\n" % seq)
    out.flush()

while True:
    seq += 1
    assert log.append(payload(seq), acknowledge) == seq
    if seq > 200:
        log.wait_durable(seq - 200)  # keep a bounded number of records in flight
"""


def _read_acknowledged(proc: subprocess.Popen[bytes], want: int, timeout: float) -> list[int]:
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    acked: list[int] = []
    buffer = b""
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while len(acked) < want:
            left = deadline - time.monotonic()
            if left <= 0 or not selector.select(left):
                break
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            acked.extend(int(line) for line in lines)
    return acked


@pytest.mark.skipif(sys.platform == "win32", reason="needs SIGKILL")
def test_every_acknowledged_record_survives_kill_9(path: Path) -> None:
    path.parent.mkdir(parents=True)
    acknowledged: list[int] = []
    for _ in range(3):  # each round replays what the killed one left, then appends more
        proc = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(ROOT), str(path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            acked = _read_acknowledged(proc, want=300, timeout=20)
        finally:
            proc.send_signal(signal.SIGKILL)
            _, stderr = proc.communicate()
        assert proc.returncode == -signal.SIGKILL, stderr.decode()
        assert len(acked) >= 300, stderr.decode()
        assert acked == list(range(acked[0], acked[-1] + 1))  # acknowledged in order, none skipped
        if acknowledged:
            assert acked[0] > acknowledged[-1]
        acknowledged.extend(acked)

    log, replayed = open_log(path)
    seqs = [seq for seq, _ in replayed]
    assert seqs == list(range(1, len(seqs) + 1))
    assert set(acknowledged) <= set(seqs)
    for seq, record in replayed:
        assert record == payload(seq), seq
    assert log.append(b"after") == len(seqs) + 1
    log.close()


def test_syncs_counts_the_flushes_to_stable_storage(tmp_path: Path) -> None:
    log = CommitLog(tmp_path / "a.log", max_batch_delay=0)
    list(log.replay())
    opened = log.syncs
    assert opened == 1  # the new file
    for i in range(5):  # one at a time: a batch, and a flush, each
        log.wait_durable(log.append(b"r%d" % i))
    assert log.syncs == opened + 5
    # many at once: fewer flushes than records (the group commit)
    seqs = [log.append(b"x" * 100) for _ in range(2000)]
    log.wait_durable(seqs[-1])
    assert opened + 5 < log.syncs < opened + 5 + 2000
    log.close()
    quick = CommitLog(tmp_path / "b.log", fsync=False)
    list(quick.replay())
    quick.wait_durable(quick.append(b"r"))
    quick.close()
    assert quick.syncs == 0
