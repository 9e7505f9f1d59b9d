"""W7 at scale: the foresight stage's own recompute over 1,000 and 10,000 events.

The events are copies of the nightly DAG of bench/dag.py (13 events: fan-out 3, fan-ins of
2, a diamond), and a third of the heads also wait for an event of one of the three groups
before them, so the graph is one web of realistic fan-in and fan-out (depth ~40 at 10,000),
two deadlines per group. Definitions go through the real loader into a real SQLite file,
with 20 succeeded runs of history per event; tonight every head fell due at 22:00 and each
group is where its own run times took it by 00:00: what has ended is in the store, what
runs is in the engine's active runs, the rest is not created yet.

Timed: the stage itself (engine/stages/foresight.py `Foresight.run` on a real Tick), once a
minute of the fake clock, each recompute after two running events changed on the tick
before (their facts are read again from the store, their occurrences and everything after
them found again), then projected and judged. CPU time of the thread; the wall clock is
printed beside it."""

from __future__ import annotations

import gc
import math
import random
import textwrap
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Final

from bench import dag
from evman.engine.clock import iso
from evman.engine.definitions import catalog, parse_definitions
from evman.engine.model import RunState
from evman.engine.stages.foresight import Foresight
from evman.engine.store import Store
from evman.engine.tick.active import ActiveRun, ActiveRuns, Change
from evman.engine.tick.context import Tick
from evman.engine.tick.readview import ReadView

HISTORY: Final = 20
NOW: Final = dag.FIRST_NIGHT + timedelta(days=30)
START: Final = timedelta(hours=2)
"""Tonight's groups are measured from 00:00 on: each as far as its own run times took it."""
_INSERT: Final = (
    "INSERT INTO runs (event, state, trigger, attempt, scheduled_for, created_at, started_at, ended_at) "
    "VALUES (?, ?, 'schedule', 1, ?, ?, ?, ?)"
)


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
    store: Store
    runs: ActiveRuns
    running: list[str]


def build(path: Path, events: int, seed: int = 3) -> Scale:
    groups = max(1, events // len(dag.STEPS))
    store = Store(path)
    defs = parse_definitions(
        textwrap.dedent(definitions(groups, seed)), source=str(path.with_suffix(".toml")), base_dir=path.parent
    )
    catalog.save(store, defs, now=NOW)  # next fires: tomorrow 22:00
    rng = random.Random(seed)
    rows, runs, running = _history(rng, groups), ActiveRuns(), []
    position = START.total_seconds()
    for g in range(groups):
        took = {s.name: rng.lognormvariate(math.log(s.median_min * 60), 0.3) for s in dag.STEPS}
        ends = dag.ends_of(took)
        for step in dag.STEPS:
            name, end = _name(g, step.name), ends[step.name]
            start = end - took[step.name]
            at = NOW + timedelta(seconds=start)
            if end <= position:
                rows.append((name, "succeeded", iso(at), iso(at), iso(at), iso(NOW + timedelta(seconds=end))))
            elif start <= position:
                run_id = len(rows) + 1_000_000
                runs[run_id] = ActiveRun(run_id, name, RunState.RUNNING, "schedule", 1, at, started_at=at)
                running.append(name)
    with store.transaction() as conn:
        conn.executemany(_INSERT, rows)
    return Scale(store, runs, running)


def _history(rng: random.Random, groups: int) -> list[tuple[str, ...]]:
    rows = []
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
    """(wall, CPU) seconds of `count` recomputes, one a minute, each after two runs changed."""
    rng = random.Random(seed)
    stage, view = Foresight(), ReadView(scale.store)
    stage.prepare(scale.store)
    now = NOW + START
    stage.run(_tick(now, scale, view, []))  # the first: every event read once (the engine's start)
    wall, cpu = [], []
    gc.collect()
    gc.freeze()
    try:
        for _ in range(count):
            now += timedelta(seconds=30)
            touched = [Change("run", e) for e in rng.sample(scale.running, min(2, len(scale.running)))]
            stage.run(_tick(now, scale, view, touched))
            now += timedelta(seconds=30)
            tick = _tick(now, scale, view, [])
            started, started_cpu = time.perf_counter(), time.thread_time()
            stage.run(tick)
            cpu.append(time.thread_time() - started_cpu)
            wall.append(time.perf_counter() - started)
    finally:
        gc.unfreeze()
    return wall, cpu


def _tick(now: object, scale: Scale, view: ReadView, changes: list[Change]) -> Tick:
    tick = Tick(now, scale.runs, view, None, lambda: 0, "bench")  # type: ignore[arg-type]
    tick.changes = list(changes)
    return tick
