"""Commit log benchmark: group commit against one fsync per record, measured in the same run.

    python -m benchmarks.bench_wal                 # about 15 s
    python -m benchmarks.bench_wal --quick         # shorter runs, for a smoke test
    python -m benchmarks.bench_wal --dir /some/disk --max-batch-delay 0.002

Every record is 200 bytes and every durable record has been fsynced (fdatasync on Linux). Scenarios:

* ``1 writer thread, pipelined``: one thread appends without waiting, with at most 256 records not yet
  durable; ``on_durable`` reports each record. This is the dev server's event loop, which keeps executing
  reducers while earlier commits are flushed.
* ``32 writer threads, each append+wait``: each thread appends a record and waits until it is durable, in
  a loop (transactions that answer their caller only once committed).
* ``1 writer thread, append+wait``: a lone synchronous committer, where no batching is possible; it shows
  what the writer thread hand-off costs.

The baseline writes and fsyncs each record itself, under a lock, on the appending thread: the same frames
and the same fsync call, with no writer thread and no batching. Both run in alternating slices, so drift
in the disk's fsync time hits both alike. Latency is from just before ``append`` to the moment the record
is known durable; rec/fsync is records per fsync. The files go to a temporary directory in ``--dir``
(default: the current directory - a tmpfs would make fsync free and the figures meaningless).
"""

from __future__ import annotations

import argparse
import os
import struct
import sys
import tempfile
import threading
import time
import zlib
from collections.abc import Callable
from pathlib import Path

from spacetime_game.server import CommitLog

RECORD_SIZE = 200
WINDOW = 256
SLICES = 8


class Result:
    def __init__(self, records: int, seconds: float, latencies: list[float], fsyncs: int) -> None:
        self.records = records
        self.seconds = seconds
        self.latencies = sorted(latencies)
        self.fsyncs = fsyncs

    @staticmethod
    def merge(parts: list[Result]) -> Result:
        return Result(
            sum(p.records for p in parts),
            sum(p.seconds for p in parts),
            [x for p in parts for x in p.latencies],
            sum(p.fsyncs for p in parts),
        )

    @property
    def rate(self) -> float:
        return self.records / self.seconds

    def percentile(self, p: float) -> float:
        lat = self.latencies
        return lat[min(len(lat) - 1, int(p / 100 * len(lat)))]

    def row(self, label: str) -> str:
        per_fsync = self.records / self.fsyncs if self.fsyncs else float("nan")
        return (
            f"    {label:<14} {self.rate:>11,.0f} {self.percentile(50) * 1e3:>9.3f} "
            f"{self.percentile(99) * 1e3:>9.3f} {per_fsync:>10.1f}"
        )


class NaiveLog:
    """The baseline: one write and one fsync per record, on the caller's thread, with frames as large as
    the commit log's (length, CRC and seq before each record) and the same flush to stable storage."""

    FRAME = struct.Struct("<IIQ")

    def __init__(self, path: Path) -> None:
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        self.sync = getattr(os, "fdatasync", os.fsync)
        os.write(self.fd, b"NAIVELOG")
        self.sync(self.fd)
        self.lock = threading.Lock()
        self.seq = 0
        self.fsyncs = 0

    def append_durable(self, record: bytes) -> int:
        crc = zlib.crc32(record)
        with self.lock:
            self.seq += 1
            os.write(self.fd, self.FRAME.pack(len(record), crc, self.seq) + record)
            self.sync(self.fd)
            self.fsyncs += 1
            return self.seq

    def close(self) -> None:
        os.close(self.fd)


def _run_threads(n_threads: int, duration: float, body: Callable[[list[float], bytes], None]) -> Result:
    """Run ``body(latencies, record)`` in a loop on each of ``n_threads`` threads for ``duration`` s."""
    stop = threading.Event()
    barrier = threading.Barrier(n_threads + 1)
    all_latencies: list[list[float]] = [[] for _ in range(n_threads)]
    record = os.urandom(RECORD_SIZE)

    def worker(latencies: list[float]) -> None:
        barrier.wait()
        while not stop.is_set():
            body(latencies, record)

    threads = [threading.Thread(target=worker, args=(lat,)) for lat in all_latencies]
    for thread in threads:
        thread.start()
    barrier.wait()
    start = time.perf_counter()
    time.sleep(duration)
    stop.set()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - start
    latencies = [x for lat in all_latencies for x in lat]
    return Result(len(latencies), seconds, latencies, 0)


def append_and_wait_group(path: Path, n_threads: int, duration: float, delay: float) -> Result:
    log = CommitLog(path, max_batch_delay=delay)
    list(log.replay())
    clock = time.perf_counter

    def body(latencies: list[float], record: bytes) -> None:
        t0 = clock()
        log.wait_durable(log.append(record))
        latencies.append(clock() - t0)

    before = log.syncs
    result = _run_threads(n_threads, duration, body)
    log.close()
    result.fsyncs = log.syncs - before
    return result


def append_and_wait_naive(path: Path, n_threads: int, duration: float) -> Result:
    log = NaiveLog(path)
    clock = time.perf_counter

    def body(latencies: list[float], record: bytes) -> None:
        t0 = clock()
        log.append_durable(record)
        latencies.append(clock() - t0)

    result = _run_threads(n_threads, duration, body)
    log.close()
    result.fsyncs = log.fsyncs
    return result


def pipelined_group(path: Path, window: int, duration: float, delay: float) -> Result:
    log = CommitLog(path, max_batch_delay=delay)
    list(log.replay())
    record = os.urandom(RECORD_SIZE)
    clock = time.perf_counter
    appended: dict[int, float] = {}
    latencies: list[float] = []

    def on_durable(seq: int) -> None:
        latencies.append(clock() - appended.pop(seq))

    before = log.syncs
    start = clock()
    seq = 0
    while clock() - start < duration:
        appended[seq + 1] = clock()
        seq = log.append(record, on_durable)
        if seq > window:
            log.wait_durable(seq - window)
    log.flush()
    seconds = clock() - start
    log.close()
    return Result(seq, seconds, latencies, log.syncs - before)


def interleaved(
    slices: int, group: Callable[[], Result], naive: Callable[[], Result]
) -> tuple[Result, Result]:
    """Alternate short runs of both, so that drift in the disk's fsync time affects both alike."""
    results: tuple[list[Result], list[Result]] = ([], [])
    for _ in range(slices):
        results[0].append(group())
        results[1].append(naive())
    return Result.merge(results[0]), Result.merge(results[1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="0.5 s runs instead of 2 s")
    parser.add_argument("--dir", type=Path, default=Path.cwd(), help="where to put the log files")
    parser.add_argument(
        "--max-batch-delay", type=float, default=0.001, help="CommitLog max_batch_delay (default 0.001)"
    )
    args = parser.parse_args(argv)
    part = (0.5 if args.quick else 2.0) / SLICES
    delay = args.max_batch_delay

    with tempfile.TemporaryDirectory(prefix="bench_wal-", dir=args.dir) as tmp:
        files = iter(Path(tmp) / f"{i}.log" for i in range(1000))
        print(
            f"commit log: {RECORD_SIZE}-byte records, fsync on, max_batch_delay={delay * 1e3:g} ms, "
            f"files in {tmp}"
        )
        print(f"    {'':<14} {'records/s':>11} {'p50 ms':>9} {'p99 ms':>9} {'rec/fsync':>10}")
        scenarios: list[tuple[str, Callable[[], Result], Callable[[], Result]]] = [
            (
                f"1 writer thread, pipelined (<= {WINDOW} records in flight)",
                lambda: pipelined_group(next(files), WINDOW, part, delay),
                lambda: append_and_wait_naive(next(files), 1, part),
            ),
            (
                "32 writer threads, each append+wait",
                lambda: append_and_wait_group(next(files), 32, part, delay),
                lambda: append_and_wait_naive(next(files), 32, part),
            ),
            (
                "1 writer thread, append+wait (a lone synchronous committer)",
                lambda: append_and_wait_group(next(files), 1, part, delay),
                lambda: append_and_wait_naive(next(files), 1, part),
            ),
        ]
        for title, group_run, naive_run in scenarios:
            group, naive = interleaved(SLICES, group_run, naive_run)
            print(title)
            print(group.row("group commit"))
            print(naive.row("fsync/record"))
            print(f"    {'ratio':<14} {group.rate / naive.rate:>10.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
