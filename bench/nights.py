"""W7: simulated nights. Does foresight page a coming miss early, and stay quiet otherwise?

Three chains of ten events (30 events, one deadline each), 6 hours of median work per
chain, lognormal run times. 20 nights of history first; then fault-free nights and nights
with one injected fault each (an event in the first half of a chain slowed 2x, 3x or 4x, or
hung), shuffled. Each night a fake clock steps through the night: the projection and the
alert rules are evaluated at every run start and end and every 60 s, as the engine does.
Each finished night's successes join the history (the last 20 count).

Measured: the lead (deadline - first page) of every injected fault that really missed its
deadline, how long after the p50 finish first crossed the deadline projected_late paged
(the crossing is found by bisection to 1 ms between evaluations), the pages on fault-free
nights (all of them false: those chains finished in time), and the time of one recompute
over 1,000 events.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final

from evman.engine.foresight import (
    PROJECTED_LATE,
    Estimate,
    Graph,
    Occurrence,
    Plan,
    Standing,
    build_graph,
    estimate,
    judge,
    project,
)
from evman.engine.model import RunState

SIGMA: Final = 0.1
"""Spread of each event's run time (lognormal sigma): a run is within +-13 % of its median 80 % of nights."""
STEP_S: Final = 60.0
"""The engine recomputes at least this often, and at every run start and end."""
MARGIN_S: Final = 600.0
TICK_S: Final = 1.0
FIRST_NIGHT: Final = datetime(2026, 3, 1, 22, 0, tzinfo=UTC)
HANG: Final = math.inf


@dataclass(frozen=True)
class Chain:
    name: str
    start_s: float
    """After 22:00."""
    deadline_s: float
    """After 22:00: its last event must have finished by then."""
    medians_min: tuple[float, ...]

    def events(self) -> list[str]:
        return [f"{self.name}{i:02d}" for i in range(len(self.medians_min))]


CHAINS: Final = (
    Chain("load", 0.0, 7.5 * 3600, (20, 100, 60, 20, 40, 30, 30, 20, 20, 20)),
    Chain("bill", 1800.0, 8.0 * 3600, (30, 90, 45, 45, 30, 30, 30, 20, 20, 20)),
    Chain("post", 3600.0, 8.5 * 3600, (15, 45, 120, 30, 30, 40, 20, 20, 20, 20)),
)
"""Deadlines 05:30, 06:30, 07:30: 90 min after each chain's median finish."""


@dataclass(frozen=True)
class Fault:
    chain: str
    position: int
    factor: float
    """HANG: it never finishes."""

    @property
    def label(self) -> str:
        what = "hang" if self.factor == HANG else f"{self.factor:g}x"
        return f"{self.chain}{self.position:02d} {what}"


@dataclass(frozen=True)
class NightSizes:
    history_nights: int = 20
    fault_free_nights: int = 30
    factors: tuple[float, ...] = (2.0, 3.0, 4.0)
    hangs: int = 1
    recompute_events: int = 1000
    recompute_runs: int = 300


@dataclass(frozen=True)
class Page:
    at_s: float
    event: str
    kind: str
    action: str


@dataclass
class Night:
    start: datetime
    fault: Fault | None
    finishes: dict[str, float] = field(default_factory=dict)
    """chain -> when its last event finished (inf: never)."""
    deadlines: dict[str, float] = field(default_factory=dict)
    pages: list[Page] = field(default_factory=list)
    crossings: dict[str, float] = field(default_factory=dict)
    """chain -> when its p50 finish first passed the deadline (found to 1 ms)."""
    evaluations: int = 0

    def missed(self, chain: str) -> bool:
        return self.finishes[chain] > self.deadlines[chain]

    def pages_of(self, chain: str, kind: str | None = None) -> list[Page]:
        last = _last_event(chain)
        return [p for p in self.pages if p.event == last and (kind is None or p.kind == kind)]


def _last_event(chain: str) -> str:
    found = next(c for c in CHAINS if c.name == chain)
    return found.events()[-1]


@dataclass
class Timeline:
    """One night's actual runs: event -> (start, end) in epoch seconds (end inf: hung)."""

    runs: dict[str, tuple[float, float]]
    opens: dict[str, float]
    deadlines: dict[str, float]

    def occurrences(self, at_s: float, estimates: Mapping[str, Estimate]) -> dict[str, Occurrence]:
        """Every event's occurrence as the engine would see it at `at_s`."""
        out: dict[str, Occurrence] = {}
        for name, (start, end) in self.runs.items():
            est, deadline = estimates[name], self.deadlines.get(name)
            if end <= at_s:
                occ = Occurrence(name, RunState.SUCCEEDED, est, started_ts=start, ended_ts=end, deadline_ts=deadline)
            elif start <= at_s:
                occ = Occurrence(name, RunState.RUNNING, est, started_ts=start, deadline_ts=deadline)
            else:
                occ = Occurrence(name, RunState.WAITING, est, opens_ts=self.opens.get(name), deadline_ts=deadline)
            out[name] = occ
        return out


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def workload_graph() -> Graph:
    names, on_success = [], {}
    for chain in CHAINS:
        events = chain.events()
        names += events
        on_success.update({a: [b] for a, b in itertools.pairwise(events)})
    return build_graph(names, {}, on_success)


class Nights:
    """The simulation: history, the nights in a seeded order, what each night paged."""

    def __init__(self, sizes: NightSizes, seed: int = 7) -> None:
        self.sizes = sizes
        self.rng = random.Random(seed)
        self.graph = workload_graph()
        self.history: dict[str, list[float]] = {n: [] for c in CHAINS for n in c.events()}

    def run(self, say: Callable[[str], None] = lambda _t: None) -> list[Night]:
        for night in range(self.sizes.history_nights):
            self._remember(self._timeline(FIRST_NIGHT + timedelta(days=night), None))
        plan = self._schedule()
        nights = []
        for i, fault in enumerate(plan):
            start = FIRST_NIGHT + timedelta(days=self.sizes.history_nights + i)
            nights.append(self._night(start, fault))
            if i % 10 == 9:
                say(f"  W7 night {i + 1} of {len(plan)}")
        return nights

    def _schedule(self) -> list[Fault | None]:
        faults: list[Fault | None] = [None] * self.sizes.fault_free_nights
        for factor in self.sizes.factors:
            for chain in CHAINS:
                faults.append(Fault(chain.name, self._position(chain, factor), factor))
        for _ in range(self.sizes.hangs):
            chain = self.rng.choice(CHAINS)
            faults.append(Fault(chain.name, self.rng.randrange(len(chain.medians_min) // 2), HANG))
        self.rng.shuffle(faults)
        return faults

    def _position(self, chain: Chain, factor: float) -> int:
        """An event of the chain's first half whose slowdown must miss the deadline: the
        lost time exceeds the chain's median slack (a fault that cannot miss is not a miss
        to foresee)."""
        slack_min = (chain.deadline_s - chain.start_s) / 60 - sum(chain.medians_min)
        half = chain.medians_min[: len(chain.medians_min) // 2]
        able = [i for i, m in enumerate(half) if (factor - 1) * m > slack_min + 10]
        return self.rng.choice(able or [max(range(len(half)), key=half.__getitem__)])

    def _timeline(self, night: datetime, fault: Fault | None) -> Timeline:
        base = night.timestamp()
        runs: dict[str, tuple[float, float]] = {}
        opens: dict[str, float] = {}
        deadlines: dict[str, float] = {}
        for chain in CHAINS:
            at = base + chain.start_s
            events = chain.events()
            opens[events[0]] = at
            deadlines[events[-1]] = base + chain.deadline_s
            for i, (name, median) in enumerate(zip(events, chain.medians_min, strict=True)):
                took = self.rng.lognormvariate(math.log(median * 60), SIGMA)
                if fault is not None and fault.chain == chain.name and fault.position == i:
                    took *= fault.factor
                runs[name] = (at, at + took)
                at += took
        return Timeline(runs, opens, deadlines)

    def _remember(self, timeline: Timeline) -> None:
        for name, (start, end) in timeline.runs.items():
            if end != HANG:
                self.history[name].insert(0, end - start)
                del self.history[name][20:]

    def _night(self, start: datetime, fault: Fault | None) -> Night:
        timeline = self._timeline(start, fault)
        estimates = {n: estimate(d) for n, d in self.history.items()}
        night = Night(start, fault)
        for chain in CHAINS:
            last = chain.events()[-1]
            night.finishes[chain.name] = timeline.runs[last][1]
            night.deadlines[chain.name] = timeline.deadlines[last]
        self._evaluate(night, timeline, estimates)
        self._remember(timeline)
        return night

    def _moments(self, timeline: Timeline) -> list[float]:
        first = min(s for s, _ in timeline.runs.values())
        end = max(timeline.deadlines.values()) + 1800
        ticks = [first + i * STEP_S for i in range(int((end - first) // STEP_S) + 1)]
        changes = [t for run in timeline.runs.values() for t in run if t <= end]
        return sorted(set(ticks) | set(changes))

    def _evaluate(self, night: Night, timeline: Timeline, estimates: Mapping[str, Estimate]) -> None:
        standings: dict[str, dict[str, Standing]] = {}
        last_on_time: dict[str, float] = {}
        chain_of = {c.events()[-1]: c.name for c in CHAINS}
        for at_s in self._moments(timeline):
            plan = project(self.graph, timeline.occurrences(at_s, estimates), _dt(at_s), TICK_S)
            night.evaluations += 1
            for event, chain in chain_of.items():
                row = plan[event]
                verdicts, standings[event] = judge(row, str(row.deadline_ts), MARGIN_S, standings.get(event, {}), at_s)
                night.pages += [Page(at_s, event, v.kind, v.action) for v in verdicts if v.action != "resolve"]
                self._watch_crossing(night, timeline, estimates, chain, plan, at_s, last_on_time)

    def _watch_crossing(
        self,
        night: Night,
        timeline: Timeline,
        estimates: Mapping[str, Estimate],
        chain: str,
        plan: Plan,
        at_s: float,
        last_on_time: dict[str, float],
    ) -> None:
        if chain in night.crossings:
            return
        row = plan[_last_event(chain)]
        if row.state is RunState.SUCCEEDED:
            return
        slack = row.slack_s
        if slack is not None and slack >= 0:
            last_on_time[chain] = at_s
            return
        lo = last_on_time.get(chain, at_s)
        night.crossings[chain] = self._bisect(timeline, estimates, _last_event(chain), lo, at_s)

    def _bisect(self, timeline: Timeline, estimates: Mapping[str, Estimate], event: str, lo: float, hi: float) -> float:
        """The first moment in (lo, hi] (to a millisecond) at which `event`'s p50 finish is
        past its deadline."""
        while hi - lo > 0.001:
            mid = (lo + hi) / 2
            row = project(self.graph, timeline.occurrences(mid, estimates), _dt(mid), TICK_S)[event]
            if row.slack_s is None or row.slack_s < 0:
                hi = mid
            else:
                lo = mid
        return hi


# -- what W7 reports ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Miss:
    fault: str
    lead_min: float | None
    """deadline - first page (at_risk or projected_late) in minutes; None: never paged before it."""
    delay_s: float | None
    """first projected_late page - the moment its p50 finish crossed the deadline."""
    pages: int


def misses(nights: Iterable[Night]) -> list[Miss]:
    out = []
    for night in nights:
        if night.fault is None or not night.missed(night.fault.chain):
            continue
        chain = night.fault.chain
        deadline = night.deadlines[chain]
        before = [p for p in night.pages_of(chain) if p.at_s <= deadline]
        lead = (deadline - before[0].at_s) / 60 if before else None
        late = night.pages_of(chain, PROJECTED_LATE)
        crossing = night.crossings.get(chain)
        delay = late[0].at_s - crossing if late and crossing is not None else None
        out.append(Miss(night.fault.label, lead, delay, len(night.pages_of(chain))))
    return out


def unmissed_faults(nights: Iterable[Night]) -> list[str]:
    return [n.fault.label for n in nights if n.fault is not None and not n.missed(n.fault.chain)]


def false_pages(nights: Iterable[Night]) -> tuple[int, int, int]:
    """(pages on fault-free nights' chains that finished in time, fault-free nights, chains
    of fault-free nights that missed anyway: their pages were true and are not counted)."""
    pages = count = real_misses = 0
    for night in nights:
        if night.fault is not None:
            continue
        count += 1
        for chain in CHAINS:
            if night.missed(chain.name):
                real_misses += 1
            else:
                pages += len(night.pages_of(chain.name))
    return pages, count, real_misses
