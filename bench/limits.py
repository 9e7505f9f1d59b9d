"""The machine's limits, measured in the same run: SQLite commit rate and process spawn rate."""
from __future__ import annotations

import sqlite3
import subprocess
import threading
import time
from pathlib import Path


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
    per_thread = total // parallel

    def spawn() -> None:
        for _ in range(per_thread):
            subprocess.run(["true"], check=True)

    threads = [threading.Thread(target=spawn) for _ in range(parallel)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return per_thread * parallel / (time.perf_counter() - started)
