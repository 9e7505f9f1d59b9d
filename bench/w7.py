"""W7 in the bench table: the simulated nights' figures (three chains, bench/nights.py; the
13-event DAG with five kinds of fault, bench/dag.py), the recompute cost (the pure projection
at 1,000 events; the stage itself at 1,000 and 10,000, bench/w7_scale.py), their targets."""

from __future__ import annotations

import gc
import itertools
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Final

from bench import dag_engine, nights, nights_engine, w7_dag, w7_replay, w7_scale
from bench.stats import Results
from evman.engine.foresight import Graph, Occurrence, Plan, build_graph, occurrence
from evman.engine.foresight.rules import HOLD_S, LATE_OPEN, Watch
from evman.engine.foresight.rules import judge as judge_alerts
from evman.engine.foresight.sampling import Projector
from evman.engine.model import RunState

SYSTEM: Final = "evman foresight"
LEAD_GOAL_MIN: Final = 60.0
SHARE_GOAL: Final = 90.0
DELAY_GOAL_S: Final = HOLD_S + 60.0
FALSE_GOAL_PER_30: Final = 1.0
RECOMPUTE_GOAL_MS: Final = 5.0
STAGE_GOALS_MS: Final = {1000: (None, 5.0), 10000: (15.0, 15.0)}
"""Events -> (median, p99) goal of the stage's recompute, CPU ms: issue 20 asks p99 <= 5 ms
at 1,000; issue 25 <= 15 ms at 10,000."""


@dataclass(frozen=True)
class Sizes:
    nights: nights.NightSizes = nights.NightSizes()
    recompute_events: int = 1000
    recompute_runs: int = 300
    dag: dag_engine.Sizes = dag_engine.Sizes()
    stage_events: tuple[int, ...] = (1000, 10000)
    stage_runs: int = 200


FULL: Final = Sizes()
QUICK: Final = Sizes(
    nights.NightSizes(fault_free_nights=10, factors=(2.0, 4.0)),
    recompute_runs=100,
    dag=dag_engine.Sizes(per_fault=10, normal=20),
    stage_runs=60,
)
SMOKE: Final = Sizes(
    nights.NightSizes(history_nights=6, fault_free_nights=1, factors=(3.0,)),
    recompute_events=200,
    recompute_runs=10,
    dag=dag_engine.Sizes(history=5, per_fault=1, normal=1),
    stage_events=(200,),
    stage_runs=5,
)


def measure(results: Results, sizes: Sizes, reps: int, tmp: Path, say: Callable[[str], None]) -> None:
    """The nights once, on the real engine (they are seeded: every repetition would give the
    same figures), the recompute once per repetition."""
    n = sizes.nights
    say(
        f"W7 foresight on the engine: {n.history_nights} nights of history, {n.fault_free_nights} "
        f"fault-free nights, {len(n.factors) * len(nights.CHAINS) + n.hangs} with a fault"
    )
    started = time.perf_counter()
    driven = nights_engine.EngineNights(n, tmp)
    simulated = driven.run(say)
    results.note(
        f"W7: {len(simulated) + n.history_nights} nights on the engine in "
        f"{time.perf_counter() - started:.0f} s ({driven.ticks:,} ticks)"
    )
    _nights_rows(results, simulated)
    _dag(results, sizes, tmp, say)
    stages = {events: w7_scale.build(tmp / f"w7-stage-{events}.db", events) for events in sizes.stage_events}
    for rep in range(reps):
        for events, scale in stages.items():
            say(f"  W7 the stage's recompute at {events:,} events, repetition {rep + 1}")
            wall, cpu = w7_scale.recompute_times(scale, sizes.stage_runs)
            label = f"{SYSTEM}, the stage @{events:,}"
            results.add_samples("W7", label, "recompute", "ms", [t * 1000 for t in wall])
            results.add_samples("W7", label, "recompute, CPU time", "ms", [t * 1000 for t in cpu])
        say(f"  W7 recompute of {sizes.recompute_events:,} events, repetition {rep + 1}")
        wall, cpu = recompute_times(sizes.recompute_events, sizes.recompute_runs)
        label = f"{SYSTEM} @{sizes.recompute_events:,}"
        results.add_samples("W7", label, "recompute", "ms", [t * 1000 for t in wall])
        results.add_samples("W7", label, "recompute, CPU time", "ms", [t * 1000 for t in cpu])


def _dag(results: Results, sizes: Sizes, tmp: Path, say: Callable[[str], None]) -> None:
    d = sizes.dag
    say(f"W7 DAG nights on the engine: {d.history} of history, {d.normal} normal, {d.per_fault} of each fault")
    started = time.perf_counter()
    driven = dag_engine.DagNights(d, tmp)
    records = driven.run(say)
    results.note(
        f"W7 DAG: {len(records) + d.history} nights on the engine in {time.perf_counter() - started:.0f} s "
        f"({driven.ticks:,} ticks); deadlines {driven.shape.deadlines_min} min after 22:00"
    )
    w7_dag.rows(results, records, driven.shape)
    w7_replay.rows(results, records)


def _nights_rows(results: Results, simulated: list[nights.Night]) -> None:
    found = nights.misses(simulated)
    for miss in found:
        if miss.lead_min is not None:
            results.add("W7", SYSTEM, "lead: deadline - first page, per injected miss", "min", miss.lead_min)
        if miss.delay_s is not None:
            results.add("W7", SYSTEM, f"projected_late after the miss was {LATE_OPEN:.0%} likely", "s", miss.delay_s)
        results.add("W7", SYSTEM, "pages per injected miss (none acknowledged)", "pages", float(miss.pages))
    pages, count, real = nights.false_pages(simulated)
    results.add("W7", SYSTEM, f"pages on {count} fault-free nights", "pages", float(pages))
    results.note(
        "W7 leads (min): "
        + (
            ", ".join(f"{m.fault} {'never paged' if m.lead_min is None else f'{m.lead_min:.0f}'}" for m in found)
            or "no misses"
        )
    )
    unmissed = nights.unmissed_faults(simulated)
    if unmissed:
        results.note(f"W7: injected but finished in time anyway (not counted as misses): {', '.join(unmissed)}")
    if real:
        results.note(
            f"W7: {real} chain(s) of fault-free nights missed on their own; their pages are not counted as false"
        )
    _judge_nights(results, found, pages, count)


def _judge_nights(results: Results, found: list[nights.Miss], pages: int, count: int) -> None:
    r = results
    ahead = [m for m in found if m.lead_min is not None and m.lead_min >= LEAD_GOAL_MIN]
    share = 100.0 * len(ahead) / len(found) if found else 0.0
    r.add("W7", SYSTEM, f"misses paged >= {LEAD_GOAL_MIN:.0f} min ahead", "%", share)
    leads = [m.lead_min for m in found if m.lead_min is not None]
    spread = f"; leads {min(leads):.0f}–{max(leads):.0f} min" if leads else ""
    r.target(
        "W7",
        f"misses paged >= {LEAD_GOAL_MIN:.0f} min before the deadline >= {SHARE_GOAL:.0f} %",
        f"{share:.0f} % ({len(ahead)} of {len(found)}{spread})",
        bool(found) and share >= SHARE_GOAL,
    )
    delays = [m.delay_s for m in found]
    worst = max((d for d in delays if d is not None), default=None)
    never = sum(d is None for d in delays)
    text = (
        "no misses"
        if not found
        else f"{worst:.0f} s (worst of {len(found)})"
        if never == 0
        else f"{never} of {len(found)} never paged projected_late"
    )
    r.target(
        "W7",
        f"projected_late <= {DELAY_GOAL_S:.0f} s (the hold + 60 s) after the miss was {LATE_OPEN:.0%} likely",
        text,
        bool(found) and never == 0 and worst is not None and worst <= DELAY_GOAL_S,
    )
    per_30 = pages * 30 / count if count else math.inf
    r.target(
        "W7",
        f"false pages <= {FALSE_GOAL_PER_30:g} per 30 fault-free nights",
        f"{pages} in {count} nights ({per_30:.1f} per 30)",
        count > 0 and per_30 <= FALSE_GOAL_PER_30,
    )


def judge(results: Results, sizes: Sizes) -> None:
    """The recompute targets (the nights' are judged as they are measured): median and p99,
    each of CPU time (the wall clock of this shared machine also counts others' work; it is
    printed beside it)."""
    _judge_recompute(results, f"{SYSTEM} @{sizes.recompute_events:,}", "recompute of", sizes.recompute_events,
                     (RECOMPUTE_GOAL_MS, RECOMPUTE_GOAL_MS), "the pure projection")  # fmt: skip
    for n in sizes.stage_events:
        goals = STAGE_GOALS_MS.get(n, (None, RECOMPUTE_GOAL_MS))
        _judge_recompute(results, f"{SYSTEM}, the stage @{n:,}", "the stage's recompute of", n, goals, "")


def _judge_recompute(
    results: Results, label: str, what: str, events: int, goals: tuple[float | None, float | None], how: str
) -> None:
    cpu, wall = results.get("W7", label, "recompute, CPU time"), results.get("W7", label, "recompute")
    if cpu is None or wall is None or not cpu.values:
        return
    for (q, mine, theirs), goal in zip(
        (("median", cpu.median, wall.median), ("p99", cpu.p99, wall.p99)), goals, strict=True
    ):
        if mine is None or theirs is None or goal is None:
            continue
        results.target(
            "W7",
            f"{what} {events:,} events{f' ({how})' if how else ''} <= {goal:g} ms, {q} of CPU time",
            f"{mine:.2f} ms (wall clock {theirs:.2f} ms)",
            mine <= goal,
        )


def recompute_times(events: int, runs: int, seed: int = 11) -> tuple[list[float], list[float]]:
    """(wall, CPU) seconds per recompute (projection + alert rules for every deadline) of
    `events` events in chains of ten, mid-night: three in ten finished, one running, the rest
    waiting. The projector keeps its rows between recomputes, as the stage keeps them (an
    occurrence changes only when its run does)."""
    graph, occs = big_plan(events, seed)
    now = nights.FIRST_NIGHT + timedelta(hours=2)
    watches: dict[str, Watch | None] = {}
    deadlines = [n for n, o in occs.items() if o.deadline_ts is not None]
    gc.collect()
    gc.freeze()  # as every other workload's measurement (bench/run.py fresh_heap): the heap so far is not walked
    try:
        return _timed(graph, occs, now, runs, watches, deadlines)
    finally:
        gc.unfreeze()


def _timed(
    graph: Graph,
    occs: dict[str, Occurrence],
    now: datetime,
    runs: int,
    watches: dict[str, Watch | None],
    deadlines: list[str],
) -> tuple[list[float], list[float]]:
    wall, cpu = [], []
    projector = Projector(graph, nights.TICK_S).load(occs)  # as the stage keeps it between recomputes
    for i in range(runs):
        at = now + timedelta(seconds=60 * i)
        started, started_cpu = time.perf_counter(), time.thread_time()
        projector.project(at.timestamp())
        plan = Plan(projector, at.timestamp())
        for event, row in plan.brief(deadlines).items():
            _, watches[event] = judge_alerts(row, "night", watches.get(event), plan.now_ts)
        cpu.append(time.thread_time() - started_cpu)
        wall.append(time.perf_counter() - started)
    return wall, cpu


def big_plan(events: int, seed: int) -> tuple[Graph, dict[str, Occurrence]]:
    rng = random.Random(seed)
    now = nights.FIRST_NIGHT + timedelta(hours=2)
    names = [f"e{i:05d}" for i in range(events)]
    on_success = {a: [b] for i, (a, b) in enumerate(itertools.pairwise(names)) if (i + 1) % 10}
    graph = build_graph(names, {}, on_success)
    occs = {}
    for i, name in enumerate(names):
        history = [rng.lognormvariate(math.log(1800), nights.SIGMA) for _ in range(20)]
        place = i % 10
        state = RunState.SUCCEEDED if place < 3 else RunState.RUNNING if place == 3 else RunState.WAITING
        started = now - timedelta(minutes=40 if state is RunState.SUCCEEDED else 10)
        occs[name] = occurrence(
            name,
            state,
            history,
            started_at=None if state is RunState.WAITING else started,
            ended_at=now - timedelta(minutes=10) if state is RunState.SUCCEEDED else None,
            deadline=now + timedelta(hours=4) if place == 9 else None,
        )
    return graph, occs
