"""Simulated work on a fake clock: callables (call = "bench.simjobs:job") that take the time
their driver picks, and a driver that walks a real Engine through the night.

A job starts when the engine starts its run, asks `duration(event, attempt)` how long it
takes (inf: it hangs), and returns once the FakeClock has reached its end. The driver moves
the clock from one thing to the next (a job's end, an occurrence falling due, the next step)
and ticks the engine at each, so a night of runs takes a second of real time, and every run's
started_at and ended_at are exactly the simulated ones."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from evman.engine.clock import FakeClock, parse_iso
from evman.engine.engine import Change, Engine
from evman.engine.model import RunState

Duration = Callable[[str, int], float]
"""(event, attempt) -> seconds the run takes; math.inf: it never finishes by itself."""
Fails = Callable[[str, int], bool]
"""(event, attempt) -> whether the run fails (raises) when its time is up."""

_current: SimJobs | None = None


class SimJobs:
    def __init__(self, clock: FakeClock, duration: Duration, fails: Fails | None = None) -> None:
        self.clock = clock
        self.duration = duration
        self.fails = fails
        self.ends: dict[int, datetime | None] = {}
        """Running jobs by run id -> when they end (None: never)."""
        self.stopped = False
        self.aborted: set[int] = set()
        self.cond = threading.Condition()

    def __enter__(self) -> SimJobs:
        global _current
        _current = self
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Let every job still waiting return (a hung one too)."""
        global _current
        with self.cond:
            self.stopped = True
            self.cond.notify_all()
        if _current is self:
            _current = None

    def run(self, ctx: Any) -> None:
        took = self.duration(ctx.event, ctx.attempt)
        with self.cond:
            end = None if math.isinf(took) else self.clock.now() + timedelta(seconds=took)
            self.ends[ctx.run_id] = end
            self.cond.notify_all()
            while not self.stopped and ctx.run_id not in self.aborted and (end is None or self.clock.now() < end):
                self.cond.wait(0.5)
            del self.ends[ctx.run_id]
            self.cond.notify_all()
            if ctx.run_id in self.aborted:
                raise RuntimeError("aborted by the simulation's driver")
        if self.fails is not None and self.fails(ctx.event, ctx.attempt):
            raise RuntimeError("failed, as the simulation's driver asked")

    def abort(self, run_ids: set[int]) -> None:
        """Make these running jobs fail now (a hung job at the end of its night)."""
        with self.cond:
            self.aborted |= run_ids
            self.cond.notify_all()
            while run_ids & set(self.ends):
                self.cond.wait(0.05)

    def next_end(self) -> datetime | None:
        with self.cond:
            return min((e for e in self.ends.values() if e is not None), default=None)

    def move_to(self, at: datetime) -> None:
        """Set the clock to `at` and wait until every job that ends by then has returned."""
        with self.cond:
            self.clock.set(at)
            self.cond.notify_all()
            deadline = time.monotonic() + 10
            while any(e is not None and e <= at for e in self.ends.values()):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"simulated jobs ending by {at} did not return")
                self.cond.wait(0.05)


def job(ctx: Any) -> None:
    """The callable events name: call = "bench.simjobs:job"."""
    if _current is None:
        raise RuntimeError("bench.simjobs.job runs only inside a SimJobs driver (with SimJobs(...):)")
    _current.run(ctx)


class Driver:
    """Walks `engine` through time: each step moves the fake clock to the next job end, due
    occurrence or step, then ticks until every run whose job has returned is reaped."""

    def __init__(self, engine: Engine, sim: SimJobs, *, step_s: float | None = 60.0) -> None:
        self.engine, self.sim, self.step_s = engine, sim, step_s
        self.ticks = 0
        self.alerts: list[tuple[datetime, Change]] = []
        """Every alert change a tick returned, with the tick's time."""

    def run_until(self, end: datetime, on_tick: Callable[[datetime], None] | None = None) -> None:
        now = self.sim.clock.now()
        self._tick_until_reaped(now)  # what was asked for meanwhile starts now, not at the next stop
        while now < end:
            now = self._next(now, end)
            self.sim.move_to(now)
            self._tick_until_reaped(now)
            if on_tick is not None:
                on_tick(now)

    def _next(self, now: datetime, end: datetime) -> datetime:
        candidates = [end]
        if self.step_s is not None:
            candidates.append(now + timedelta(seconds=self.step_s))
        job_end = self.sim.next_end()
        if job_end is not None:
            candidates.append(job_end)
        due = parse_iso(self.engine.store.next_due_at())
        if due is not None and due > now:
            candidates.append(due)
        recompute = self.engine.foresight.next_recompute_ts()
        if self.step_s is not None and recompute is not None and recompute > now.timestamp():
            # a live engine ticks every second: foresight recomputes within one of this
            candidates.append(datetime.fromtimestamp(recompute, UTC))
        return max(now + timedelta(microseconds=1), min(candidates))

    def _tick_until_reaped(self, now: datetime) -> None:
        """Tick at `now`; again while a run whose job has returned is still running (its
        outcome reaches the engine just after the job returns), while runs started by this
        tick have not yet reported when they end, and until a tick changes nothing (what one
        tick starts or ends, the next judges: followers, foresight)."""
        deadline = time.monotonic() + 10
        quiet = 0
        while True:
            changed = self.engine.tick(now)
            self.ticks += 1
            self.alerts += [(now, c) for c in changed if c.kind == "alert"]
            with self.sim.cond:
                running = {r.id for r in self.engine.active_runs() if r.state is RunState.RUNNING}
                pending = running - set(self.sim.ends)
            quiet = 0 if changed else quiet + 1
            if not pending and quiet:
                return  # the engine's next tick (within a second, on the system clock) came too
            if time.monotonic() > deadline:
                raise TimeoutError(f"runs {sorted(pending)} neither ended nor reported their end")
            time.sleep(0.002)
