"""W7 at scale: the foresight stage's own recompute over 1,000 and 10,000 events.

The events are copies of the nightly DAG of bench/dag.py (13 events: fan-out 3, fan-ins of
2, a diamond), and a third of the heads also wait for an event of one of the three groups
before them, so the graph is one web of realistic fan-in and fan-out (depth ~40 at 10,000),
two deadlines per group. Definitions go through the real loader into a real SQLite file,
with 20 succeeded runs of history per event; tonight every head falls due at 22:00 and each
group runs as its own run times take it (lognormal, sigma 0.3): each minute the runs that
start or end are written to the store and the engine's active runs, as the engine would.

Timed: the stage itself (engine/stages/foresight.py `Foresight.run` on a real Tick), from
00:00 on, once a minute: the tick after one whose changes were that minute's starts and
ends (~50 at 10,000 events): their facts read again from the store, their occurrences and
what follows them found again, everything projected, the deadlines judged. CPU time of
the thread; the wall clock is printed beside it. After each tick the driver does what the
engine's loop does while it waits for the next (`Pace.between_ticks`, engine/tick/pace.py:
the middle GC generation is collected then when the next automatic collection would include
it), as bench W3 does."""

from __future__ import annotations

import gc
import math
import random
import textwrap
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

from bench import dag
from evman.engine.clock import FakeClock, iso
from evman.engine.definitions import catalog, parse_definitions
from evman.engine.model import RunState
from evman.engine.stages.foresight import Foresight
from evman.engine.store import Store, open_store
from evman.engine.tick.active import ActiveRun, ActiveRuns, Change
from evman.engine.tick.context import Tick
from evman.engine.tick.pace import Pace
from evman.engine.tick.readview import ReadView

HISTORY: Final = 20
NOW: Final = dag.FIRST_NIGHT + timedelta(days=30)
START: Final = timedelta(hours=2)
"""Tonight's groups are measured from 00:00 on: each as far as its own run times took it."""
_INSERT: Final = (
    "INSERT INTO runs (event, state, trigger, attempt, scheduled_for, created_at, started_at, ended_at) "
    "VALUES (?, ?, 'schedule', 1, ?, ?, ?, ?)"
)
_ENDED: Final = "UPDATE runs SET state = 'succeeded', ended_at = ? WHERE id = ?"


def _name(group: int, step: str) -> str:
    return f"g{group:04d}-{step}"


def definitions(groups: int, seed: int = 3) -> str:
    rng = random.Random(seed)
    parts = ['[defaults]\ntimezone = "UTC"\n']
    for g in range(groups):
        for step in dag.STEPS:
            lines = [f'[[event]]\nname = "{_name(g, step.name)}"\ncall = "bench.simjobs:job"']
            needs = [f'success({_name(g, a)}, "12h")' for a in step.after]
            if not step.after:
                lines.append('schedule = "every day at 22:00"')
                if g >= 3 and rng.random() < 1 / 3:
                    other = rng.randrange(g - 3, g)
                    needs.append(f'success({_name(other, rng.choice(("report", "audit", "enrich")))}, "12h")')
            if needs:
                lines.append(f"requires = '{' and '.join(needs)}'")
            if step.name == "publish":
                lines.append('deadline = "05:30"')
            if step.name == "notify":
                lines.append('deadline = "+8h30m"')
            parts.append("\n".join(lines) + "\n")
    return "\n".join(parts)


@dataclass
class Scale:
    """The store and tonight's runs as the engine would hold them, moved on minute by minute."""

    store: Store
    runs: ActiveRuns
    tonight: dict[str, tuple[float, float]]
    """event -> (start, end) tonight, epoch seconds."""
    state: dict[str, tuple[str, int]]
    """event -> (its run's state, run id) so far tonight."""

    def reset(self) -> None:
        with self.store.transaction() as conn:
            conn.execute("DELETE FROM runs WHERE scheduled_for >= ?", (iso(NOW),))
        for run_id in list(self.runs):
            del self.runs[run_id]
        self.state = {}

    def advance(self, now: datetime) -> list[Change]:
        """Start and end tonight's runs up to `now` (in the store and the active runs); what changed."""
        at = now.timestamp()
        changed = []
        with self.store.transaction() as conn:
            for name, (start, end) in self.tonight.items():
                want = "succeeded" if end <= at else "running" if start <= at else ""
                have, run_id = self.state.get(name, ("", 0))
                if want == have:
                    continue
                began = datetime.fromtimestamp(start, UTC)
                if not have:
                    cur = conn.execute(_INSERT, (name, "running", iso(NOW), iso(NOW), iso(began), None))
                    run_id = int(cur.lastrowid or 0)
                    self.runs[run_id] = ActiveRun(run_id, name, RunState.RUNNING, "schedule", 1, NOW, started_at=began)
                if want == "succeeded":
                    conn.execute(_ENDED, (iso(datetime.fromtimestamp(end, UTC)), run_id))
                    del self.runs[run_id]
                self.state[name] = (want, run_id)
                changed.append(Change("run", name, run_id, want))
        return changed


def build(path: Path, events: int, seed: int = 3) -> Scale:
    groups = max(1, events // len(dag.STEPS))
    store = open_store(path)
    defs = parse_definitions(
        textwrap.dedent(definitions(groups, seed)), source=str(path.with_suffix(".toml")), base_dir=path.parent
    )
    catalog.save(store, defs, now=NOW)  # next fires: tomorrow 22:00
    rng = random.Random(seed)
    with store.transaction() as conn:
        conn.executemany(_INSERT, _history(rng, groups))
    tonight = {}
    for g in range(groups):
        took = {s.name: rng.lognormvariate(math.log(s.median_min * 60), 0.3) for s in dag.STEPS}
        for name, end in dag.ends_of(took).items():
            tonight[_name(g, name)] = (NOW.timestamp() + end - took[name], NOW.timestamp() + end)
    return Scale(store, ActiveRuns(), tonight, {})


def _history(rng: random.Random, groups: int) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for night in range(HISTORY):
        base = NOW - timedelta(days=HISTORY - night)
        for g in range(groups):
            for step in dag.STEPS:
                took = rng.lognormvariate(math.log(step.median_min * 60), 0.3)
                begin = base + timedelta(minutes=rng.uniform(0, 300))
                ended = begin + timedelta(seconds=took)
                rows.append((_name(g, step.name), "succeeded", iso(base), iso(base), iso(begin), iso(ended)))
    return rows


def recompute_times(scale: Scale, count: int, seed: int = 5) -> tuple[list[float], list[float]]:
    """(wall, CPU) seconds of `count` recomputes, one a minute from 00:00: the runs that
    started or ended in that minute are a tick's changes, and the next tick (a second
    later, as a live engine ticks) recomputes."""
    del seed  # the night is the same each repetition: its times come from build()
    scale.reset()
    stage, view = Foresight(), ReadView(scale.store)
    stage.prepare(scale.store)
    now = NOW + START
    scale.advance(now)
    stage.run(_tick(now, scale, view, []))  # the first: every event read once (the engine's start)
    wall, cpu = [], []
    pace = Pace(FakeClock(now), 1.0)  # between ticks, as the engine's loop
    gc.collect()
    gc.freeze()
    try:
        for _ in range(count):
            now += timedelta(seconds=60)
            stage.run(_tick(now, scale, view, scale.advance(now)))
            pace.between_ticks()
            tick = _tick(now + timedelta(seconds=1), scale, view, [])
            started, started_cpu = time.perf_counter(), time.thread_time()
            stage.run(tick)
            cpu.append(time.thread_time() - started_cpu)
            wall.append(time.perf_counter() - started)
            pace.between_ticks()
    finally:
        gc.unfreeze()
    return wall, cpu


def _tick(now: object, scale: Scale, view: ReadView, changes: list[Change]) -> Tick:
    tick = Tick(now, scale.runs, view, None, lambda: 0, "bench")  # type: ignore[arg-type]
    tick.changes = list(changes)
    return tick
