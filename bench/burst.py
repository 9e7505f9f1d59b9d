"""W1 and W2: a burst of one-shot events due at the same instant, in evman and in the peers."""
from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from bench import jobs
from bench.evman_side import (BENCH_DIR, EngineThread, at_schedule, due_in, load, read_runs,
                              wait_finished)
from bench.stats import percentile
from engine.model import EventSpec
from engine.store import Store


@dataclass
class Burst:
    completed: int
    expected: int
    throughput: float
    """completed / (last finished - due), per second."""
    late_p50_ms: float
    late_p99_ms: float
    late_max_ms: float
    exactly_once: bool
    seen_late_p99_ms: float | None = None
    """evman only: lateness as the callable itself saw it (when it really began)."""


def summarise(due: float, expected: int, starts: Sequence[float], ends: Sequence[float],
              keys: Sequence[str]) -> Burst:
    counts = Counter(keys)
    once = len(counts) == expected and all(c == 1 for c in counts.values())
    if not starts:
        return Burst(0, expected, 0.0, float("nan"), float("nan"), float("nan"), False)
    late = [max(0.0, s - due) * 1000 for s in starts]
    span = max(ends) - due
    return Burst(len(starts), expected, len(starts) / span if span > 0 else float("inf"),
                 percentile(late, 50), percentile(late, 99), max(late), once)


def _spec(name: str, when: datetime, kind: str) -> EventSpec:
    if kind == "call":
        return EventSpec(name=name, call="bench.jobs:noop", cwd=BENCH_DIR, schedule=at_schedule(when))
    return EventSpec(name=name, run=("true",), cwd=BENCH_DIR, schedule=at_schedule(when))


def evman_burst(tmp: Path, n: int, kind: str = "call", lead_s: float = 1.5) -> Burst:
    """n one-shot events ("call": bench.jobs:noop; "true": the command) due together, one engine."""
    path = tmp / f"evman-{kind}.db"
    store = Store(path)
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
    rows = [r for r in read_runs(path) if r.state == "succeeded"]
    due = when.timestamp()
    result = summarise(due, n, [r.started_at.timestamp() for r in rows if r.started_at],
                       [r.ended_at.timestamp() for r in rows if r.ended_at], [r.event for r in rows])
    if done < n:
        result.exactly_once = False
    if kind == "call":
        keys = [k for k, _, _ in jobs.calls]
        result.exactly_once = result.exactly_once and Counter(keys) == Counter(r.event for r in rows)
        seen = [max(0.0, s - due) * 1000 for _, s, _ in jobs.calls]
        result.seen_late_p99_ms = percentile(seen, 99) if seen else None
    return result


def wait_calls(expected: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while len(jobs.calls) < expected and time.monotonic() < deadline:
        time.sleep(0.02)


def from_calls(due: float, expected: int) -> Burst:
    calls = list(jobs.calls)
    return summarise(due, expected, [s for _, s, _ in calls], [e for _, _, e in calls],
                     [k for k, _, _ in calls])
