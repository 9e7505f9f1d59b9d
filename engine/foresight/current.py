"""Which occurrence of each event a plan is about, from plain facts (its spec, runs, next fire).

- An active run (waiting or running) is always the current occurrence.
- A scheduled event otherwise has its next occurrence when that falls due within the horizon
  (12 h after now), else its last finished run when that fell due within the horizon before now.
- An event without a schedule follows what it waits for: its run that fell due after they
  did, else an expected occurrence (waiting) of the same chain; with nothing it waits for in
  the plan, its last finished run within the horizon.

Each occurrence has an anchor, when it fell (or falls) due: deadlines resolve from it, and
an expected follower takes its chain's anchor (the latest of what it waits for).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final, NamedTuple

from evman.engine.clock import iso
from evman.engine.foresight.estimate import Estimate, estimate
from evman.engine.foresight.graph import Graph, build_graph
from evman.engine.foresight.projection import Occurrence
from evman.engine.model import ACTIVE_STATES, Blackout, EventSpec, OnBlackout, RunState
from evman.engine.timing.blackouts import clear_at, inside, names_event
from evman.engine.timing.windows import bounds_for, resolve_deadline

HORIZON: Final = timedelta(hours=12)


class RunFacts(NamedTuple):
    id: int
    state: RunState
    scheduled_for: datetime
    started_at: datetime | None = None
    ended_at: datetime | None = None
    not_before: datetime | None = None
    window_open: datetime | None = None


@dataclass(frozen=True)
class EventFacts:
    spec: EventSpec
    held: bool = False
    next_fire_at: datetime | None = None
    runs: Sequence[RunFacts] = ()
    """Its active runs and those that ended within the horizon, oldest first."""
    durations_s: Sequence[float] = ()
    """Its last succeeded runs' durations, newest first."""
    estimated: Estimate | None = None
    """estimate() of the above, when the reader made it once (it is the same for every recompute)."""
    blackouts: tuple[Blackout, ...] = ()
    """The blackouts that name it: an occurrence opens after them (or is skipped, on_blackout = skip)."""


@dataclass(frozen=True)
class Current:
    occurrence: Occurrence
    anchor: datetime
    """When it fell due (or falls due, expected)."""
    run_id: int | None
    """None: expected, not created yet."""
    timezone: str

    @property
    def key(self) -> str:
        """Which occurrence this is, stable from expected to finished: its deadline, else its anchor."""
        deadline = self.occurrence.deadline_ts
        at = self.anchor if deadline is None else datetime.fromtimestamp(deadline, UTC)
        return str(iso(at))


def facts_of(
    spec: EventSpec,
    *,
    held: bool,
    next_fire_at: datetime | None,
    runs: Sequence[RunFacts],
    durations_s: Sequence[float],
    blackouts: Sequence[Blackout] = (),
) -> EventFacts:
    """EventFacts with its estimate made once; `blackouts`: all there are (those naming it are kept)."""
    est = estimate(durations_s, expect_s=spec.expect_s, runtime_max_s=spec.runtime.max_s)
    mine = tuple(b for b in blackouts if names_event(b, spec))
    return EventFacts(spec, held, next_fire_at, tuple(sorted(runs, key=lambda r: r.id)), tuple(durations_s), est, mine)


def has_deadline(spec: EventSpec) -> bool:
    """A deadline of its own, or a window latest standing in for one."""
    return spec.deadline is not None or spec.window.latest is not None


def graph_of(specs: Mapping[str, EventSpec], requires: Mapping[str, Iterable[str]]) -> Graph:
    """The graph of the events of `specs`: `requires` (event -> the events its condition
    names) and each spec's on_success."""
    return build_graph(specs, requires, {name: spec.on_success for name, spec in specs.items()})


def current_occurrences(
    facts: Mapping[str, EventFacts], graph: Graph, now: datetime, horizon: timedelta = HORIZON
) -> dict[str, Current]:
    """The current occurrence of every event of `facts` that has one, in the graph's order."""
    out: dict[str, Current] = {}
    for name in graph.order:
        f = facts.get(name)
        if f is None:
            continue
        ups = [out[u] for u in graph.waits_for.get(name, ()) if u in out]
        found = _current(f, ups, now, horizon)
        if found is not None:
            out[name] = found
    return out


def _current(f: EventFacts, ups: Sequence[Current], now: datetime, horizon: timedelta) -> Current | None:
    active = [r for r in f.runs if r.state in ACTIVE_STATES]
    if active:
        return _from_run(f, active[-1])
    if f.spec.schedule is not None and f.spec.schedule != "@reboot":
        if f.next_fire_at is not None and f.next_fire_at <= now + horizon and not _blacked_out(f, f.next_fire_at):
            return _expected(f, f.next_fire_at, scheduled=True)
        return _last_within(f, now - horizon)
    if not ups:
        return _last_within(f, now - horizon)
    anchor = max(u.anchor for u in ups)
    mine = [r for r in f.runs if r.scheduled_for >= anchor and r.state is not RunState.SKIPPED]
    return _from_run(f, mine[-1]) if mine else _expected(f, anchor, scheduled=False)


def _last_within(f: EventFacts, since: datetime) -> Current | None:
    done = [r for r in f.runs if r.state is not RunState.SKIPPED and r.scheduled_for >= since]
    return _from_run(f, done[-1]) if done else None


def _ts(at: datetime | None) -> float | None:
    return None if at is None else at.timestamp()


def _occurrence(
    f: EventFacts,
    state: RunState,
    anchor: datetime,
    *,
    opens: datetime | None = None,
    started: datetime | None = None,
    ended: datetime | None = None,
) -> Occurrence:
    spec = f.spec
    est = f.estimated or estimate(f.durations_s, expect_s=spec.expect_s, runtime_max_s=spec.runtime.max_s)
    deadline = resolve_deadline(spec.deadline, spec, anchor)
    return Occurrence(
        spec.name,
        state,
        est,
        opens_ts=_ts(opens),
        started_ts=_ts(started),
        ended_ts=_ts(ended),
        held=f.held,
        deadline_ts=_ts(deadline),
    )


def _blacked_out(f: EventFacts, anchor: datetime) -> bool:
    """on_blackout = skip: an occurrence that falls due inside a blackout will not run."""
    return bool(f.blackouts) and f.spec.on_blackout is OnBlackout.SKIP and inside(f.blackouts, anchor) is not None


def _after_blackouts(f: EventFacts, opens: datetime | None, anchor: datetime) -> datetime | None:
    """When the occurrence may open, past any blackout that covers it then."""
    if not f.blackouts:
        return opens
    start = opens or anchor
    cleared = clear_at(f.blackouts, start)
    return cleared if cleared != start else opens


def _from_run(f: EventFacts, run: RunFacts) -> Current:
    opens = max((t for t in (run.not_before, run.window_open) if t is not None), default=None)
    if run.state is RunState.WAITING:
        opens = _after_blackouts(f, opens, run.scheduled_for)
    occ = _occurrence(
        f,
        run.state,
        run.scheduled_for,
        opens=opens if run.state is RunState.WAITING else None,
        started=run.started_at,
        ended=run.ended_at,
    )
    return Current(occ, run.scheduled_for, run.id, f.spec.timezone)


def _expected(f: EventFacts, anchor: datetime, *, scheduled: bool) -> Current:
    """A waiting occurrence not created yet: a scheduled one opens when it falls due (or its
    window opens, if later); a follower when its window opens (it falls due when what it
    waits for finishes)."""
    window_open = bounds_for(f.spec, anchor).open_at
    opens = window_open
    if scheduled:
        opens = anchor if window_open is None else max(anchor, window_open)
    opens = _after_blackouts(f, opens, anchor)
    return Current(_occurrence(f, RunState.WAITING, anchor, opens=opens), anchor, None, f.spec.timezone)
