"""W7 on the real engine: the same nights as bench/nights.py (same seed, same run times),
run by an Engine on a FakeClock with simulated jobs (bench/simjobs.py), its foresight stage
deciding the pages. The driver ticks it at every run start and end and every 60 s, as a
live engine would tick (every second) as far as foresight can tell.

A night's pages are the at_risk / projected_late alert changes its ticks returned (opened
or paged again). The moment the p50 finish first crossed the deadline is found as in
bench/nights.py: the pure projection over the night's runs as the database recorded them."""

from __future__ import annotations

import math
import textwrap
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Final

from bench import nights
from bench.simjobs import Driver, SimJobs
from evman.engine.clock import FakeClock, parse_iso
from evman.engine.definitions import catalog, parse_definitions
from evman.engine.engine import Engine
from evman.engine.foresight.rules import KINDS, LATE_OPEN
from evman.engine.model import RunState
from evman.engine.store import Store, open_store

ROOT: Final = Path(__file__).resolve().parent.parent
NIGHT_END_S: Final = max(c.deadline_s for c in nights.CHAINS) + 1800
"""After 22:00: each night is driven until half an hour after the last deadline."""


def definitions() -> str:
    """The 30 events as TOML: each chain's first event at its time, the rest on_success, a
    deadline (time of day) on each chain's last event."""
    parts = ['[defaults]\ntimezone = "UTC"\nat_risk_margin = "10m"\n']
    for chain in nights.CHAINS:
        events = chain.events()
        for i, name in enumerate(events):
            lines = [f'[[event]]\nname = "{name}"\ncall = "bench.simjobs:job"\ncwd = "{ROOT}"']
            if i == 0:
                lines.append(f'schedule = "every day at {_clock(chain.start_s)}"')
            if i + 1 < len(events):
                lines.append(f'on_success = ["{events[i + 1]}"]')
            else:
                lines.append(f'deadline = "{_clock(chain.deadline_s)}"')
            parts.append("\n".join(lines) + "\n")
    return "\n".join(parts)


def _clock(after_22_s: float) -> str:
    at = nights.FIRST_NIGHT + timedelta(seconds=after_22_s)
    return at.strftime("%H:%M")


class EngineNights(nights.Nights):
    def __init__(self, sizes: nights.NightSizes, tmp: Path, seed: int = 7) -> None:
        super().__init__(sizes, seed)
        self.tmp = tmp
        self.took: dict[str, float] = {}
        self.ticks = 0

    def run(self, say: Callable[[str], None] = lambda _t: None) -> list[nights.Night]:
        db = self.tmp / "w7-engine.db"
        clock = FakeClock(nights.FIRST_NIGHT - timedelta(hours=1))
        store = open_store(db)
        defs = parse_definitions(textwrap.dedent(definitions()), source=str(self.tmp / "w7.toml"), base_dir=self.tmp)
        catalog.save(store, defs, now=clock.now())
        engine = Engine(store, clock=clock, logs_dir=self.tmp / "w7-logs")
        engine.start()
        out: list[nights.Night] = []
        try:
            with SimJobs(clock, lambda event, _attempt: self.took[event]) as sim:
                driver = Driver(engine, sim, step_s=None)
                for night in range(self.sizes.history_nights):
                    self._history_night(driver, nights.FIRST_NIGHT + timedelta(days=night))
                plan = self._schedule()
                for i, fault in enumerate(plan):
                    start = nights.FIRST_NIGHT + timedelta(days=self.sizes.history_nights + i)
                    out.append(self._test_night(driver, store, start, fault))
                    if i % 10 == 9:
                        say(f"  W7 engine night {i + 1} of {len(plan)}")
                self.ticks = driver.ticks
        finally:
            engine.executors.shutdown(wait_s=0)
            store.close()
        return out

    def _history_night(self, driver: Driver, start: datetime) -> None:
        timeline = self._timeline(start, None)
        self.took = {name: end - begin for name, (begin, end) in timeline.runs.items()}
        driver.step_s = None
        driver.run_until(start + timedelta(days=1, hours=-1))
        self._remember(timeline)

    def _test_night(self, driver: Driver, store: Store, start: datetime, fault: nights.Fault | None) -> nights.Night:
        timeline = self._timeline(start, fault)
        self.took = {name: end - begin for name, (begin, end) in timeline.runs.items()}
        mark = len(driver.alerts)
        driver.step_s = nights.STEP_S
        crossings: dict[str, float] = {}
        driver.run_until(start + timedelta(seconds=NIGHT_END_S), lambda _now: self._watch(driver.engine, crossings))
        hung = {
            r.id
            for r in driver.engine.active_runs()
            if r.state is RunState.RUNNING
            and fault is not None
            and fault.factor == nights.HANG
            and r.event == f"{fault.chain}{fault.position:02d}"
        }
        if hung:  # the hang: fail it, so that the next night's chain runs (slow ones finish)
            driver.sim.abort(hung)
        driver.step_s = None
        driver.run_until(start + timedelta(days=1, hours=-1))
        recorded = self._recorded(store, timeline, start)
        night = nights.Night(start, fault)
        for chain in nights.CHAINS:
            last = chain.events()[-1]
            night.finishes[chain.name] = recorded.runs[last][1]
            night.deadlines[chain.name] = recorded.deadlines[last]
        night.pages = [
            nights.Page(at.timestamp(), c.event, str(c.state), "page")
            for at, c in driver.alerts[mark:]
            if c.state in KINDS and not (c.detail or "").startswith("resolved")
        ]
        night.crossings = crossings
        self._remember(timeline)
        return night

    def _watch(self, engine: Engine, crossings: dict[str, float]) -> None:
        """The first recompute at which each chain's miss was at least LATE_OPEN likely."""
        plan = engine.foresight.plan
        if plan is None:
            return
        for chain in nights.CHAINS:
            last = chain.events()[-1]
            if chain.name in crossings or last not in plan:
                continue
            row = plan[last]
            odds = 1.0 if row.p50_ts is None or row.miss_probability is None else row.miss_probability
            if odds >= LATE_OPEN and row.state is not RunState.SUCCEEDED:
                crossings[chain.name] = plan.now_ts

    def _recorded(self, store: Store, planned: nights.Timeline, start: datetime) -> nights.Timeline:
        """The night's runs as the database has them (start, end; a run that never succeeded: inf)."""
        runs: dict[str, tuple[float, float]] = {}
        for row in store.runs_ended_since(sorted(planned.runs), start - timedelta(hours=1)):
            began, ended = parse_iso(row["started_at"]), parse_iso(row["ended_at"])
            if began is None or ended is None or began < start:
                continue
            end = ended.timestamp() if row["state"] == RunState.SUCCEEDED else math.inf
            runs[row["event"]] = (began.timestamp(), end)
        for name in planned.runs:
            runs.setdefault(name, (math.inf, math.inf))  # never started (after a hang)
        return nights.Timeline(runs, planned.opens, planned.deadlines)
