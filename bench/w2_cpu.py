"""Where W2's CPU goes, by process: `uv run python -m bench.w2_cpu [bursts] [commands]`.

Each burst is bench W2's (500 `true` commands due together, one engine thread in this
process); for each it prints the throughput as W2 counts it, when the first and last command
started (after due), and the CPU each command cost: the engine's process (this one: the
engine thread, its reaper, the bench's polling; from 50 ms before due to the last end), the
command supervisor (its /proc stat, the same span) and the commands themselves (their exit
records' user + system time). CPU moves less with the machine's load than the wall clock."""

from __future__ import annotations

import os
import resource
import sqlite3
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.evman_side import BENCH_DIR, EngineThread, at_schedule, due_in, load, read_runs, wait_finished
from evman.engine.model import EventSpec, RunState
from evman.engine.running.supervisor_client import read_exit
from evman.engine.store import open_store

TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu_s(pid: int) -> float:
    """utime + stime of `pid` (not its children's), from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def own_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def one_burst(tmp: Path, n: int) -> str:
    path = tmp / "w2.db"
    store = open_store(path)
    when = due_in(1.5 + n / 4000)
    load(
        store, [EventSpec(name=f"b{i:05d}", run=("true",), cwd=BENCH_DIR, schedule=at_schedule(when)) for i in range(n)]
    )
    store.close()
    engine = EngineThread(path)
    engine.start()
    at_due: list[float] = []

    def mark() -> None:  # just before due: the supervisor runs by then (started with the specs)
        time.sleep(max(0.0, when.timestamp() - time.time() - 0.05))
        pid = engine.engine.executors.supervisor.pid or 0
        at_due.extend([own_cpu_s(), process_cpu_s(pid), pid])

    marker = threading.Thread(target=mark)
    marker.start()
    try:
        wait_finished(path, n, 60)
        marker.join()
        engine_s, supervisor_s = own_cpu_s() - at_due[0], process_cpu_s(int(at_due[2])) - at_due[1]
    finally:
        engine.stop()
    due = when.timestamp()
    ends = [r.ended_at.timestamp() for r in read_runs(path) if r.state == RunState.SUCCEEDED and r.ended_at]
    conn = sqlite3.connect(path)
    records = [read_exit(row[0]) for row in conn.execute("SELECT log_path FROM runs")]
    conn.close()
    starts = sorted(r.started_at - due for r in records if r)
    commands_s = sum(r.utime_s + r.stime_s for r in records if r)
    return (
        f"{len(ends)} runs, {len(ends) / (max(ends) - due):,.0f}/s, first start {starts[0] * 1000:.0f} ms, "
        f"last {starts[-1] * 1000:.0f} ms; CPU per command: engine process {engine_s / n * 1e6:.0f} µs, "
        f"supervisor {supervisor_s / n * 1e6:.0f} µs, the command {commands_s / n * 1e6:.0f} µs"
    )


def main(argv: list[str]) -> int:
    bursts = int(argv[0]) if argv else 3
    n = int(argv[1]) if len(argv) > 1 else 500
    for _ in range(bursts):
        with tempfile.TemporaryDirectory(prefix="evman-w2cpu-") as tmp:
            print(one_burst(Path(tmp), n), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
