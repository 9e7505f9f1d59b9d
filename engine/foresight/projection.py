"""The projection: when each event of tonight's graph starts and finishes, at p50 and at p90.

A pure function of plain values on the injected clock: no store, no engine. Times are UTC
epoch seconds inside (a recompute of 1,000 events must take under 5 ms, and datetime
arithmetic was a third of it); the rows give datetimes on demand. The records are
NamedTuples, not frozen dataclasses, for the same reason: one is built per event per
recompute, and a frozen dataclass costs four times as much to build."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Final, NamedTuple

from evman.engine.foresight.estimate import Estimate, estimate
from evman.engine.foresight.graph import Graph
from evman.engine.model import RunState


class Occurrence(NamedTuple):
    """One event's current occurrence, as the projection needs it (build it with occurrence()).

    Times are UTC epoch seconds: the stage builds an occurrence when its run changes and
    reuses it for every recompute in between, so each time is converted once."""

    event: str
    state: RunState
    """WAITING also for an occurrence not created yet but expected (a follower in tonight's chain)."""
    estimate: Estimate
    opens_ts: float | None = None
    """No start before this: when it falls due, its window opens or its retry's backoff ends."""
    started_ts: float | None = None
    ended_ts: float | None = None
    retries_left: int = 0
    backoff_s: float = 0.0
    """Wait before the next retry of a failed occurrence."""
    held: bool = False
    deadline_ts: float | None = None
    """Must have finished by this (see engine.windows.resolve_deadline)."""
    factor: float = 1.0
    """What-if: its durations times this."""
    delay_s: float = 0.0
    """What-if: it starts (or, running, finishes) this much later."""


def occurrence(
    event: str,
    state: RunState,
    durations_s: Sequence[float] = (),
    *,
    expect_s: float | None = None,
    runtime_max_s: float | None = None,
    opens_at: datetime | None = None,
    started_at: datetime | None = None,
    ended_at: datetime | None = None,
    retries_left: int = 0,
    backoff_s: float = 0.0,
    held: bool = False,
    deadline: datetime | None = None,
    estimated: Estimate | None = None,
) -> Occurrence:
    """An Occurrence from datetimes and the event's history: `durations_s` are its last
    succeeded runs' durations, newest first (only the first 20 count); `estimated`, when
    the caller already has it, stands for estimate(durations_s, expect_s, runtime_max_s)."""
    est = estimated or estimate(durations_s, expect_s=expect_s, runtime_max_s=runtime_max_s)
    return Occurrence(
        event, state, est, _ts(opens_at), _ts(started_at), _ts(ended_at), retries_left, backoff_s, held, _ts(deadline)
    )


def _ts(at: datetime | None) -> float | None:
    return None if at is None else at.timestamp()


def _dt(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC)


class Projection(NamedTuple):
    """One event's row of the plan. *_ts are UTC epoch seconds; None is unbounded (or no deadline)."""

    event: str
    state: RunState
    held: bool
    estimate: Estimate
    """p50/p90 durations, after any what-if factor."""
    start_ts: float | None
    p50_ts: float | None
    p90_ts: float | None
    deadline_ts: float | None
    via: str | None
    """The event it waits for that finishes last (p50): the step before it on its critical path."""
    elapsed_s: float | None = None
    """Running: how long it has run."""
    retries_left: int = 0

    @property
    def projected_start(self) -> datetime | None:
        return _dt(self.start_ts)

    @property
    def finish_p50(self) -> datetime | None:
        return _dt(self.p50_ts)

    @property
    def finish_p90(self) -> datetime | None:
        return _dt(self.p90_ts)

    @property
    def deadline(self) -> datetime | None:
        return _dt(self.deadline_ts)

    @property
    def is_unbounded(self) -> bool:
        return self.p50_ts is None

    @property
    def slack_s(self) -> float | None:
        """deadline - p50 finish (negative: projected late); None without a deadline or a bound."""
        if self.deadline_ts is None or self.p50_ts is None:
            return None
        return self.deadline_ts - self.p50_ts

    @property
    def slack_p90_s(self) -> float | None:
        """deadline - p90 finish; None without a deadline or a bound."""
        if self.deadline_ts is None or self.p90_ts is None:
            return None
        return self.deadline_ts - self.p90_ts


class Plan(Mapping[str, Projection]):
    """The projection of every occurrence given, by event, in topological order."""

    def __init__(self, rows: dict[str, Projection], now_ts: float) -> None:
        self.rows = rows
        self.now_ts = now_ts

    def __getitem__(self, event: str) -> Projection:
        return self.rows[event]

    def __iter__(self) -> Iterator[str]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def now(self) -> datetime:
        return datetime.fromtimestamp(self.now_ts, UTC)

    def critical_path(self, event: str) -> tuple[str, ...]:
        """The chain of events that sets `event`'s start, first to last, ending with `event`.

        Each step is the event the next one waits for that finishes last, whether or not it
        is still the binding constraint (a finished upstream stays on the path: it is why its
        follower started when it did)."""
        path = [event]
        step = self.rows[event].via
        while step is not None and step in self.rows and len(path) <= len(self.rows):
            path.append(step)
            step = self.rows[step].via
        return tuple(reversed(path))


def project(graph: Graph, occurrences: Mapping[str, Occurrence], now: datetime, tick_s: float = 1.0) -> Plan:
    """Projected start and finishes of every occurrence, in `graph`'s order.

    Remaining time, once with p50 and once with p90: finished 0; running max(p - elapsed,
    one tick); waiting p; failed with retries left backoff + p; failed with none left, held
    or waiting for an unbounded event: unbounded. A waiting occurrence starts at the latest
    of now, its opening and the finishes of everything it waits for. Events of the graph
    without an occurrence hold nobody up."""
    now_ts = now.timestamp()
    rows: dict[str, Projection] = {}
    occurrence_of, waits_for = occurrences.get, graph.waits_for.get
    for name in graph.order:
        occ = occurrence_of(name)
        if occ is None:
            continue
        est = occ.estimate
        if occ.factor != 1.0:
            est = Estimate(est.p50_s * occ.factor, est.p90_s * occ.factor, est.samples, est.confidence)
        upstreams = waits_for(name)
        via, up50, up90, blocked = _latest(upstreams, rows) if upstreams else _NOTHING_BEFORE
        start, p50, p90, elapsed = _times(occ, est, up50, up90, blocked, now_ts, tick_s)
        # tuple.__new__ skips the NamedTuple's own __new__ frame: a tenth of a recompute
        rows[name] = _new(
            Projection,
            (name, occ.state, occ.held, est, start, p50, p90, occ.deadline_ts, via, elapsed, occ.retries_left),
        )
    return Plan(rows, now_ts)


_NOTHING_BEFORE: Final = (None, None, None, False)
_new: Final = tuple.__new__


def _latest(
    upstreams: Sequence[str], rows: Mapping[str, Projection]
) -> tuple[str | None, float | None, float | None, bool]:
    """(the upstream finishing last at p50, latest p50 finish, latest p90 finish, any unbounded)."""
    via: str | None = None
    p50: float | None = None
    p90: float | None = None
    for name in upstreams:
        row = rows.get(name)
        if row is None:
            continue
        if row.p50_ts is None or row.p90_ts is None:
            return name, None, None, True
        if p50 is None or row.p50_ts > p50:
            via, p50 = name, row.p50_ts
        if p90 is None or row.p90_ts > p90:
            p90 = row.p90_ts
    return via, p50, p90, False


_Times = tuple[float | None, float | None, float | None, float | None]


def _times(
    occ: Occurrence, est: Estimate, up50: float | None, up90: float | None, blocked: bool, now_ts: float, tick_s: float
) -> _Times:
    """(start, p50 finish, p90 finish, elapsed) of one occurrence; None finishes: unbounded."""
    state = occ.state
    if state is RunState.SUCCEEDED:
        end = now_ts if occ.ended_ts is None else occ.ended_ts
        return (end if occ.started_ts is None else occ.started_ts), end, end, None
    if state is RunState.RUNNING:
        started = now_ts if occ.started_ts is None else occ.started_ts
        elapsed = now_ts - started if now_ts > started else 0.0
        left50, left90 = est.p50_s - elapsed, est.p90_s - elapsed
        return (
            started,
            now_ts + (left50 if left50 > tick_s else tick_s) + occ.delay_s,
            now_ts + (left90 if left90 > tick_s else tick_s) + occ.delay_s,
            elapsed,
        )
    if occ.held or blocked:
        return None, None, None, None
    opens = now_ts if occ.opens_ts is None or occ.opens_ts < now_ts else occ.opens_ts
    opens += occ.delay_s
    if state is RunState.WAITING:
        start50 = opens if up50 is None or up50 < opens else up50
        start90 = opens if up90 is None or up90 < opens else up90
        return start50, start50 + est.p50_s, start90 + est.p90_s, None
    if occ.retries_left > 0:
        start = opens + occ.backoff_s
        return start, start + est.p50_s, start + est.p90_s, None
    return None, None, None, None
