"""W1 and W2: a burst of one-shot events due at the same instant, in evman and in the peers."""

from __future__ import annotations

import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from bench import jobs
from bench.evman_side import BENCH_DIR, EngineThread, at_schedule, due_in, load, read_runs, wait_finished
from bench.stats import percentile
from evman.engine.model import EventSpec, RunState
from evman.engine.running.supervisor_client import read_exit
from evman.engine.store import open_store


@dataclass
class Burst:
    completed: int
    expected: int
    throughput: float
    """completed / (last finished - due), per second."""
    late_ms: list[float]
    """Each run's lateness (its start - due) in ms, by the job's own clock: when the callable
    or command really began. Empty when nothing tells that (never the tick's own time)."""
    exactly_once: bool
    dropped: int = 0
    """Jobs the system itself dropped (APScheduler: missed its misfire grace time)."""

    @property
    def late_p50_ms(self) -> float:
        return percentile(self.late_ms, 50) if self.late_ms else float("nan")

    @property
    def late_p99_ms(self) -> float:
        return percentile(self.late_ms, 99) if self.late_ms else float("nan")


def summarise(
    due: float, expected: int, starts: Sequence[float] | None, ends: Sequence[float], keys: Sequence[str]
) -> Burst:
    """`starts`: when each job really began, by its own clock; None when nothing says."""
    counts = Counter(keys)
    once = len(counts) == expected and all(c == 1 for c in counts.values())
    if not ends:
        return Burst(0, expected, 0.0, [], False)
    late = [max(0.0, s - due) * 1000 for s in starts] if starts is not None else []
    span = max(ends) - due
    return Burst(len(ends), expected, len(ends) / span if span > 0 else float("inf"), late, once)


def _spec(name: str, when: datetime, kind: str) -> EventSpec:
    if kind == "call":
        return EventSpec(name=name, call="bench.jobs:noop", cwd=BENCH_DIR, schedule=at_schedule(when))
    return EventSpec(name=name, run=("true",), cwd=BENCH_DIR, schedule=at_schedule(when))


def evman_burst(tmp: Path, n: int, kind: str = "call", lead_s: float = 1.5) -> Burst:
    """n one-shot events ("call": bench.jobs:noop; "true": the command) due together, one engine."""
    path = tmp / f"evman-{kind}.db"
    store = open_store(path)
    when = due_in(lead_s + n / 4000)  # loading 2,000 definitions takes about half a second
    load(store, [_spec(f"b{i:05d}", when, kind) for i in range(n)])
    store.close()
    jobs.reset()
    engine = EngineThread(path)
    engine.start()
    try:
        done = wait_finished(path, n, timeout_s=60 + n / 20)
    finally:
        engine.stop()
    assert datetime.now().timestamp() > when.timestamp(), "the burst finished before it was due?"
    rows = [r for r in read_runs(path) if r.state == RunState.SUCCEEDED]
    due = when.timestamp()
    # runs.started_at is the tick's time for every run it starts, before any of them begins:
    # it says nothing of lateness. A callable's lateness is its own clock's; a command's, when
    # its supervisor saw it running (exec done), from the exit record beside its log.
    starts = [s for _, s, _ in jobs.calls] if kind == "call" else _command_starts(path)
    result = summarise(due, n, starts, [r.ended_at.timestamp() for r in rows if r.ended_at], [r.event for r in rows])
    if done < n:
        result.exactly_once = False
    if kind == "call":
        keys = [k for k, _, _ in jobs.calls]
        result.exactly_once = result.exactly_once and Counter(keys) == Counter(r.event for r in rows)
    return result


def _command_starts(db: Path) -> list[float] | None:
    """When each command really began, by its exit record; None if any run has none."""
    conn = sqlite3.connect(db)
    try:
        logs = [row[0] for row in conn.execute("SELECT log_path FROM runs")]
    finally:
        conn.close()
    records = [read_exit(log) for log in logs]
    return [r.started_at for r in records if r is not None] if all(records) else None


def wait_calls(expected: int, timeout_s: float, dropped: Callable[[], int] = lambda: 0) -> None:
    """Until `expected` jobs ran or were dropped (`dropped()` counts those)."""
    deadline = time.monotonic() + timeout_s
    while len(jobs.calls) + dropped() < expected and time.monotonic() < deadline:
        time.sleep(0.02)


def from_calls(due: float, expected: int, dropped: int = 0) -> Burst:
    calls = list(jobs.calls)
    result = summarise(due, expected, [s for _, s, _ in calls], [e for _, _, e in calls], [k for k, _, _ in calls])
    result.dropped = dropped
    return result
