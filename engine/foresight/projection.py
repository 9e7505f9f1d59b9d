"""The projection: when each event of tonight's graph starts and finishes, as a distribution
(engine/foresight/sampling.py), read as p50, p90 and the probability of missing its deadline.

A pure function of plain values on the injected clock: no store, no engine. Times are UTC
epoch seconds inside; the rows give datetimes on demand. A row is computed when it is first
read: the engine's stage reads only the events with a deadline and their critical paths."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import NamedTuple

import numpy as np

from evman.engine.foresight.estimate import Estimate
from evman.engine.foresight.graph import Graph
from evman.engine.foresight.model import K50, K90
from evman.engine.foresight.occurrence import Occurrence, occurrence
from evman.engine.foresight.sampling import DONE, NEVER, RUNNING, WAITING, Projector, quantiles
from evman.engine.foresight.waits import NO_WAITS, Claim, PoolWait, Waiting, Waits
from evman.engine.model import RunState


def _dt(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC)


class Projection(NamedTuple):
    """One event's row of the plan. *_ts are UTC epoch seconds; None is unbounded (or no deadline)."""

    event: str
    state: RunState
    held: bool
    estimate: Estimate
    """p50/p90 durations of its history, after any what-if factor."""
    start_ts: float | None
    """p50 of its start."""
    p50_ts: float | None
    p90_ts: float | None
    deadline_ts: float | None
    via: str | None
    """The event it waits for that finishes last (p50): the step before it on its critical path."""
    elapsed_s: float | None = None
    """Running: how long it has run."""
    retries_left: int = 0
    miss_probability: float | None = None
    """P(it finishes after its deadline), 0 to 1 (1: unbounded); None without a deadline."""

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
    """The projection of every occurrence given, by event, in topological order. It reads
    its projector's rows as they are now: a Plan is good until that projector projects again."""

    def __init__(self, projector: Projector, now_ts: float, waits: Waits = NO_WAITS) -> None:
        self.projector = projector
        self.now_ts = now_ts
        self.waits = waits
        self._rows: dict[str, Projection] = {}

    def __getitem__(self, event: str) -> Projection:
        row = self._rows.get(event)
        if row is None:
            if event not in self:
                raise KeyError(event)
            row = self._rows[event] = self._row(event)
        return row

    def __iter__(self) -> Iterator[str]:
        return iter(self.projector.present)

    def __len__(self) -> int:
        return len(self.projector.present)

    def __contains__(self, event: object) -> bool:
        i = self.projector.index.get(event) if isinstance(event, str) else None
        return i is not None and self.projector.occurrences[i] is not None

    @property
    def now(self) -> datetime:
        return datetime.fromtimestamp(self.now_ts, UTC)

    def critical_path(self, event: str) -> tuple[str, ...]:
        """The chain of events that sets `event`'s start, first to last, ending with `event`.

        Each step is the event the next one waits for that finishes last (p50), whether or
        not it is still the binding constraint (a finished upstream stays on the path: it is
        why its follower started when it did)."""
        path = [event]
        step = self[event].via
        while step is not None and step in self and len(path) <= len(self.projector.names):
            path.append(step)
            step = self[step].via
        return tuple(reversed(path))

    def brief(self, events: Sequence[str]) -> dict[str, Projection]:
        """Rows of `events` with what judging needs (state, p50, p90, deadline, probability),
        computed together; no start, path or elapsed time (read plan[event] for those)."""
        p = self.projector
        rows = np.asarray([p.index[e] for e in events], dtype=np.intp)
        if not len(rows):
            return {}
        part = np.partition(p.finish[rows], (K50, K90), axis=1)
        odds = p.miss_probability(rows)
        out = {}
        for k, event in enumerate(events):
            occ = p.occurrences[rows[k]]
            assert occ is not None
            p50, p90 = float(part[k, K50]), float(part[k, K90])
            out[event] = Projection(
                event, occ.state, occ.held, occ.estimate, None,
                p.now_ts + p50 if math.isfinite(p50) else None, p.now_ts + p90 if math.isfinite(p90) else None,
                occ.deadline_ts, None, None, occ.retries_left, float(odds[k]) if occ.deadline_ts is not None else None,
            )  # fmt: skip
        return out

    def waiting(self, event: str) -> Waiting | None:
        """What `event`'s waiting occurrence waits for besides the clock and its upstreams (its
        pools, a pending approval) and the slack it loses to them; None: nothing of that."""
        p = self.projector
        i = p.index[event]
        occ = p.occurrences[i]
        if occ is None or int(p.kind[i]) != WAITING:
            return None
        approval = self.waits.approvals.get(event)
        lost = 0.0
        if approval is not None:  # it could have started when it was asked (or opened, if later)
            could = max(approval.asked_ts, occ.opens_ts if occ.opens_ts is not None else -math.inf)
            lost = max(0.0, self.now_ts - could)
        pools: tuple[PoolWait, ...] = ()
        if i in p.gates:
            gated = quantiles(p.start_row(i), self.now_ts)[0]
            free = quantiles(p.start_row(i, pools=False), self.now_ts)[0]
            later = 0.0 if gated is None or free is None else max(0.0, gated - free)
            pools = self._pool_waits(event, held_back=gated is None or later >= 1.0)
            lost += later if pools else 0.0
        if not pools and approval is None:
            return None
        return Waiting(pools, approval, lost)

    def _pool_waits(self, event: str, *, held_back: bool) -> tuple[PoolWait, ...]:
        """The pools `event` cannot have its slots of now: all of them while its run is in
        their line; not in line yet, only when they push its start later (`held_back`)."""
        pools = self.waits.pools
        if pools is None or event not in pools.uses:
            return ()
        mine = pools.in_line(event)
        if mine is None and not held_back:
            return ()
        ahead = pools.line[: pools.line.index(mine)] if mine is not None else ()
        out = []
        for name, needs in pools.uses[event]:
            size = pools.sizes.get(name)
            holders = [c for c in pools.holders if dict(c.uses).get(name)]
            before = tuple(c for c in ahead if dict(c.uses).get(name))
            taken = sum(dict(c.uses)[name] for c in (*holders, *before))
            if size is not None and taken + needs <= size:  # its slots are free, even after those ahead
                continue
            ends = sorted(((c, self._holder_ends(c)) for c in holders), key=lambda h: (h[1], h[0].run_id))
            out.append(PoolWait(name, needs, size, tuple(ends), before))
        return tuple(out)

    def _holder_ends(self, claim: Claim) -> float:
        """A holder's p50 finish (epoch s): its row's, when the plan projects it."""
        if claim.projected and claim.event in self:
            p50 = self[claim.event].p50_ts
            if p50 is not None:
                return p50
        started = self.now_ts if claim.started_ts is None else claim.started_ts
        return max(started + claim.p50_s, self.now_ts + self.projector.tick_s)

    def _row(self, event: str) -> Projection:
        p = self.projector
        i = p.index[event]
        occ = p.occurrences[i]
        assert occ is not None
        est = occ.estimate
        if occ.factor != 1.0:
            est = est._replace(p50_s=est.p50_s * occ.factor, p90_s=est.p90_s * occ.factor)
        p50, p90 = quantiles(p.finish[i], p.now_ts)
        start, elapsed = self._start(i, occ)
        miss = None if occ.deadline_ts is None else float(p.miss_probability(np.asarray([i]))[0])
        return Projection(
            event, occ.state, occ.held, est, start, p50, p90, occ.deadline_ts, self._via(event), elapsed,
            occ.retries_left, miss,
        )  # fmt: skip

    def _start(self, i: int, occ: Occurrence) -> tuple[float | None, float | None]:
        """(p50 start, elapsed if running)."""
        kind = int(self.projector.kind[i])
        if kind == DONE:
            return (occ.started_ts if occ.started_ts is not None else occ.ended_ts), None
        if kind == RUNNING:
            started = self.now_ts if occ.started_ts is None else occ.started_ts
            return started, max(0.0, self.now_ts - started)
        if kind == NEVER:
            return None, None
        return quantiles(self.projector.start_row(i), self.now_ts)[0], None

    def _via(self, event: str) -> str | None:
        """The upstream finishing last (p50; unbounded counts as latest), from the rows as they are."""
        p = self.projector
        ups = [n for n in p.graph.waits_for.get(event, ()) if n in self]
        if len(ups) <= 1:
            return ups[0] if ups else None
        rows = p.finish[[p.index[n] for n in ups]]
        p50 = np.partition(rows, K50, axis=1)[:, K50]
        return ups[int(np.argmax(p50))]


def project(
    graph: Graph, occurrences: Mapping[str, Occurrence], now: datetime, tick_s: float = 1.0, waits: Waits = NO_WAITS
) -> Plan:
    """The projection of every occurrence at `now` (events of the graph without one hold nobody up).

    What is left of each: finished nothing; running its run time given how long it has run;
    waiting its run time, from the latest of now, its opening and the finishes of what it
    waits for; failed with a retry to come its backoff, then its run time; failed with none
    left, held, or waiting for an event that will not finish: unbounded. `waits`: the pools'
    holders and line, and the pending approvals (engine/foresight/waits.py): a waiting
    occurrence that uses a pool starts no earlier than its slots are free."""
    now_ts = now.timestamp()
    projector = Projector(graph, tick_s).load(occurrences)
    projector.pools = waits.pools
    projector.project(now_ts)
    return Plan(projector, now_ts, waits)


__all__ = ["Occurrence", "Plan", "Projection", "occurrence", "project"]
