"""W7 in the bench table: the simulated nights' figures, the recompute cost, and their targets."""

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

from bench import nights, nights_engine
from bench.stats import Results
from evman.engine.foresight import Graph, Occurrence, Standing, build_graph, occurrence, project
from evman.engine.foresight.rules import judge as judge_alerts
from evman.engine.model import RunState

SYSTEM: Final = "evman foresight"
LEAD_GOAL_MIN: Final = 60.0
SHARE_GOAL: Final = 90.0
DELAY_GOAL_S: Final = 60.0
FALSE_GOAL_PER_30: Final = 1.0
RECOMPUTE_GOAL_MS: Final = 5.0


@dataclass(frozen=True)
class Sizes:
    nights: nights.NightSizes = nights.NightSizes()
    recompute_events: int = 1000
    recompute_runs: int = 300


FULL: Final = Sizes()
QUICK: Final = Sizes(nights.NightSizes(fault_free_nights=10, factors=(2.0, 4.0)), recompute_runs=100)
SMOKE: Final = Sizes(
    nights.NightSizes(history_nights=6, fault_free_nights=1, factors=(3.0,)), recompute_events=200, recompute_runs=10
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
    for rep in range(reps):
        say(f"  W7 recompute of {sizes.recompute_events:,} events, repetition {rep + 1}")
        wall, cpu = recompute_times(sizes.recompute_events, sizes.recompute_runs)
        label = f"{SYSTEM} @{sizes.recompute_events:,}"
        results.add_samples("W7", label, "recompute", "ms", [t * 1000 for t in wall])
        results.add_samples("W7", label, "recompute, CPU time", "ms", [t * 1000 for t in cpu])


def _nights_rows(results: Results, simulated: list[nights.Night]) -> None:
    found = nights.misses(simulated)
    for miss in found:
        if miss.lead_min is not None:
            results.add("W7", SYSTEM, "lead: deadline - first page, per injected miss", "min", miss.lead_min)
        if miss.delay_s is not None:
            results.add("W7", SYSTEM, "projected_late after p50 crossed the deadline", "s", miss.delay_s)
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
        f"projected_late <= {DELAY_GOAL_S:.0f} s after the p50 finish crossed the deadline",
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
    """The recompute targets (the nights' are judged as they are measured): its median and
    its p99, each of CPU time (the wall clock of this shared machine also counts others' work;
    it is printed beside it)."""
    label = f"{SYSTEM} @{sizes.recompute_events:,}"
    cpu, wall = results.get("W7", label, "recompute, CPU time"), results.get("W7", label, "recompute")
    if cpu is None or wall is None or not cpu.values:
        return
    for q, mine, theirs in (("median", cpu.median, wall.median), ("p99", cpu.p99, wall.p99)):
        if mine is None or theirs is None:
            continue
        results.target(
            "W7",
            f"recompute of {sizes.recompute_events:,} events <= {RECOMPUTE_GOAL_MS:g} ms, {q} of CPU time",
            f"{mine:.2f} ms (wall clock {theirs:.2f} ms)",
            mine <= RECOMPUTE_GOAL_MS,
        )


def recompute_times(events: int, runs: int, seed: int = 11) -> tuple[list[float], list[float]]:
    """(wall, CPU) seconds per recompute (projection + alert rules for every deadline) of
    `events` events in chains of ten, mid-night: three in ten finished, one running, the rest
    waiting. Occurrences and their estimates are reused between recomputes, as the stage
    reuses them (an occurrence changes only when its run does)."""
    graph, occs = big_plan(events, seed)
    now = nights.FIRST_NIGHT + timedelta(hours=2)
    standings: dict[str, dict[str, Standing]] = {}
    deadlines = [n for n, o in occs.items() if o.deadline_ts is not None]
    gc.collect()
    gc.freeze()  # as every other workload's measurement (bench/run.py fresh_heap): the heap so far is not walked
    try:
        return _timed(graph, occs, now, runs, standings, deadlines)
    finally:
        gc.unfreeze()


def _timed(
    graph: Graph,
    occs: dict[str, Occurrence],
    now: datetime,
    runs: int,
    standings: dict[str, dict[str, Standing]],
    deadlines: list[str],
) -> tuple[list[float], list[float]]:
    wall, cpu = [], []
    for i in range(runs):
        at = now + timedelta(seconds=60 * i)
        started, started_cpu = time.perf_counter(), time.thread_time()
        plan = project(graph, occs, at, nights.TICK_S)
        for event in deadlines:
            _, standings[event] = judge_alerts(
                plan[event], "night", nights.MARGIN_S, standings.get(event, {}), plan.now_ts
            )
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
