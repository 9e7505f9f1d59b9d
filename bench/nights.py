"""W7: simulated nights. Does foresight page a coming miss early, and stay quiet otherwise?

Three chains of ten events (30 events, one deadline each), 6 hours of median work per
chain, lognormal run times. 20 nights of history first; then fault-free nights and nights
with one injected fault each (an event in the first half of a chain slowed 2x, 3x or 4x, or
hung), shuffled. Each night a fake clock steps through the night: the projection and the
alert rules are evaluated at every run start and end and every 60 s, as the engine does.
Each finished night's successes join the history (the last 20 count).

Measured: the lead (deadline - first page) of every injected fault that really missed its
deadline, how long after the stage first found the miss at least LATE_OPEN likely
projected_late paged (the rules hold it HOLD_S first), the pages on fault-free nights (all
of them false: those chains finished in time), and the time of one recompute over 1,000
events.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final

from evman.engine.foresight import PROJECTED_LATE, Graph, build_graph

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
    """chain -> the first recompute at which the stage found the miss at least LATE_OPEN likely."""
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


# -- what W7 reports ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Miss:
    fault: str
    lead_min: float | None
    """deadline - first page (at_risk or projected_late) in minutes; None: never paged before it."""
    delay_s: float | None
    """first projected_late page - the first recompute that found the miss at least LATE_OPEN likely."""
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
