"""The machine's limits, measured in the same run: SQLite commit rate and process spawn rate."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

from evman.engine.running.supervisor_process import SPAWN_THREADS as SPAWN_THREADS

TRUE = shutil.which("true") or "/bin/true"


def commit_rate(path: Path, seconds: float = 1.5) -> float:
    """Single-row transactions per second, WAL + synchronous NORMAL, as the engine's store opens."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, at REAL, note TEXT)")
    done = 0
    end = time.perf_counter() + seconds
    started = time.perf_counter()
    while time.perf_counter() < end:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO t (at, note) VALUES (?, ?)", (time.time(), "commit"))
        conn.execute("COMMIT")
        done += 1
    elapsed = time.perf_counter() - started
    conn.close()
    return done / elapsed


def spawn_rate(total: int = 300, parallel: int = 2) -> float:
    """subprocess.run(["true"]) per second, `parallel` at a time."""
    return _spawned_per_s(["true"], total, parallel)


def spawn_limit(total: int = 500, parallel: int = SPAWN_THREADS) -> float:
    """The machine's limit for W2: `true` (by its full path: one exec) started and waited for
    by `parallel` threads at once, the number of starts evman's command supervisor runs at
    once, the fastest way Python 3.11 offers here: subprocess lets go of the GIL around its
    vfork and exec, so the threads' children start side by side; os.posix_spawn holds it, and
    reached half the rate (1.2k/s against 2.4-2.8k/s on this 2-core machine)."""
    return _spawned_per_s([TRUE], total, parallel)


def _spawned_per_s(argv: list[str], total: int, parallel: int) -> float:
    """`argv` run to its end `total` times by `parallel` threads at once, per second."""
    per_thread = total // parallel

    def spawn() -> None:
        for _ in range(per_thread):
            subprocess.run(argv, check=True)

    threads = [threading.Thread(target=spawn) for _ in range(parallel)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return per_thread * parallel / (time.perf_counter() - started)


def spawn_rate_logged(folder: Path, total: int = 300, parallel: int = 2) -> float:
    """As spawn_rate, each `true` with its output in a new log file in a new folder: the file
    system work every evman command run of W2 needs (a fresh event's log folder, the run's
    log). On ext4 both are inode allocations, which cost more than the spawn itself on a
    busy machine."""
    per_thread = total // parallel
    folder.mkdir(parents=True, exist_ok=True)

    def spawn(k: int) -> None:
        for i in range(per_thread):
            where = folder / f"e{k}-{i}"
            where.mkdir()
            fd = os.open(where / "1.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                subprocess.run(["true"], stdout=fd, stderr=fd, check=True)
            finally:
                os.close(fd)

    threads = [threading.Thread(target=spawn, args=(k,)) for k in range(parallel)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return per_thread * parallel / (time.perf_counter() - started)
