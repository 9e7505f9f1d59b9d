"""W3: the cost of a tick when the catalogue is huge, and 10 events are due."""

from __future__ import annotations

import json
import queue
import resource
import statistics
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.evman_side import BENCH_DIR
from bench.stats import percentile
from evman.engine.clock import FakeClock, iso
from evman.engine.engine import Engine
from evman.engine.store import open_store

DUE_PER_TICK = 10
SPREAD_S = 86_000.0
"""Fire times spread over (base, base + SPREAD_S]: a day, less a margin, so the next fire of
every materialised event (the schedule's 00:00 tomorrow) lies beyond all of them."""
BASE = datetime(2026, 1, 5, 0, 0, 1, tzinfo=UTC)
SCHEDULE = "0 0 * * *"


def spec_json(name: str) -> str:
    """The one spec every catalogue event shares, bar its name (missing keys take defaults)."""
    return json.dumps(
        {"name": name, "call": "bench.jobs:noop", "cwd": BENCH_DIR, "schedule": SCHEDULE, "timezone": "UTC"}
    )


def build(path: Path, n: int, base: datetime = BASE) -> list[datetime]:
    """n events straight into the `events` table, DUE_PER_TICK sharing each fire instant;
    returns the instants in order."""
    slots = n // DUE_PER_TICK
    step = SPREAD_S / slots
    instants = [base + timedelta(seconds=step * (k + 1)) for k in range(slots)]
    stamps = [iso(at) for at in instants]
    template = spec_json("@NAME@")
    created = iso(datetime.now(UTC))
    store = open_store(path)
    rows = (
        (
            f"e{i:07d}",
            template.replace("@NAME@", f"e{i:07d}"),
            "call",
            SCHEDULE,
            "UTC",
            stamps[i // DUE_PER_TICK],
            "bench",
            created,
            created,
        )
        for i in range(slots * DUE_PER_TICK)
    )
    with store.transaction() as conn:
        conn.executemany(
            "INSERT INTO events (name, spec, kind, schedule, timezone, next_fire_at, source, "
            "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        conn.execute("UPDATE settings SET value = CAST(value AS INTEGER) + 1 WHERE key = 'defs_version'")
    store.close()
    return instants


FLOOR_CPU_S = 0.001
"""The machine's own floor, sampled between the ticks: a pure Python loop calibrated to this
much CPU time. Its wall time over its CPU time is what the operating system adds (another
process on this core, an interrupt): no tick can be steadier than it."""


class TickTimes:
    def __init__(self) -> None:
        self.due: list[float] = []
        self.due_cpu: list[float] = []
        """The due tick's own CPU time (the engine thread's): its wall time less the time it
        was not running (preempted, waiting for a disk write or for the GIL)."""
        self.due_preempted = 0
        """Due ticks during which the kernel switched the engine thread out (involuntarily)."""
        self.reap: list[float] = []
        self.idle: list[float] = []
        self.floor: list[float] = []
        self.floor_preempted = 0
        self.woken: list[float] = []
        """The floor of a tick that hands work to a thread: the same loop, waking an idle
        thread halfway (as a due tick wakes a worker for its callables)."""
        self.woken_preempted = 0

    def summary(self) -> dict[str, float]:
        ms = 1000.0
        out = {}
        for name in ("due", "due_cpu", "reap", "idle", "floor", "woken"):
            samples = getattr(self, name)
            out[f"{name}_median"] = statistics.median(samples) * ms
            out[f"{name}_p99"] = percentile(samples, 99) * ms
        out["due_preempted"] = self.due_preempted
        out["floor_preempted"] = self.floor_preempted
        out["woken_preempted"] = self.woken_preempted
        return out


def _spin(n: int) -> int:
    total = 0
    for i in range(n):
        total += i
    return total


def floor_loop() -> int:
    """Loop iterations that take FLOOR_CPU_S of CPU here (the best of a few tries)."""
    n = 20_000
    best = min(_cpu(n) for _ in range(5))
    return max(1, int(n * FLOOR_CPU_S / best))


def _cpu(n: int) -> float:
    started = time.thread_time()
    _spin(n)
    return time.thread_time() - started


def _timed_floor(spins: int, times: TickTimes) -> None:
    switched = resource.getrusage(resource.RUSAGE_THREAD).ru_nivcsw
    t0 = time.perf_counter()
    _spin(spins)
    times.floor.append(time.perf_counter() - t0)
    times.floor_preempted += resource.getrusage(resource.RUSAGE_THREAD).ru_nivcsw > switched


class Sleeper:
    """An idle thread, blocked on a queue as the engine's workers are, that a floor loop wakes."""

    def __init__(self) -> None:
        self.inbox: queue.SimpleQueue[bool] = queue.SimpleQueue()
        self.done: queue.SimpleQueue[bool] = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._run, name="bench-sleeper", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while self.inbox.get():
            self.done.put(True)

    def close(self) -> None:
        self.inbox.put(False)
        self.thread.join()


def _timed_woken_floor(spins: int, times: TickTimes, sleeper: Sleeper) -> None:
    switched = resource.getrusage(resource.RUSAGE_THREAD).ru_nivcsw
    t0 = time.perf_counter()
    _spin(spins // 2)
    sleeper.inbox.put(True)
    _spin(spins - spins // 2)
    times.woken.append(time.perf_counter() - t0)
    times.woken_preempted += resource.getrusage(resource.RUSAGE_THREAD).ru_nivcsw > switched
    sleeper.done.get()


def timed_tick(engine: Engine, at: datetime, times: TickTimes) -> None:
    switched = resource.getrusage(resource.RUSAGE_THREAD).ru_nivcsw
    cpu, t0 = time.thread_time(), time.perf_counter()
    engine.tick(at)
    times.due.append(time.perf_counter() - t0)
    times.due_cpu.append(time.thread_time() - cpu)
    times.due_preempted += resource.getrusage(resource.RUSAGE_THREAD).ru_nivcsw > switched


def measure(path: Path, instants: list[datetime], first: int, ticks: int) -> TickTimes:
    """Drive a fresh engine on a fake clock through `ticks` fire instants from `first`:
    time the tick that materialises and starts 10 runs, the tick that reaps them, and an idle tick."""
    clock = FakeClock(instants[first] - timedelta(seconds=0.001))
    store = open_store(path)
    engine = Engine(store, clock=clock, logs_dir=path.parent / f"{path.name}.logs")
    engine.start()
    times = TickTimes()
    spins = floor_loop()
    sleeper = Sleeper()
    try:
        engine.tick(clock.now())
        engine.between_ticks()
        for k in range(first, first + ticks):
            clock.set(instants[k])
            timed_tick(engine, instants[k], times)
            _wait_outcomes(engine, DUE_PER_TICK)
            t0 = time.perf_counter()
            engine.tick(instants[k])
            times.reap.append(time.perf_counter() - t0)
            if engine.active_runs():
                raise RuntimeError(f"runs still active after the reaping tick: {engine.active_runs()}")
            t0 = time.perf_counter()
            engine.tick(instants[k])
            times.idle.append(time.perf_counter() - t0)
            engine.between_ticks()  # as the engine's loop does while it waits for the next tick
            _timed_floor(spins, times)
            _timed_woken_floor(spins, times, sleeper)
    finally:
        sleeper.close()
        engine.executors.shutdown(wait_s=0)
        store.close()
    return times


def _wait_outcomes(engine: Engine, n: int, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while engine._outcomes.qsize() < n:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{n} callables did not finish in {timeout_s} s")
        time.sleep(0.0005)
