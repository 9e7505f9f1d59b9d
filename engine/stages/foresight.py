"""Stage 7: foresight. Projects every deadline's graph and raises, pages again and resolves
at_risk and projected_late alerts (the rules: engine/foresight/rules.py).

It covers the events with a deadline (or a window latest) and everything they wait for;
without any, it costs nothing. They are found when the engine starts and when the
definitions change (`prepare`: one scan of the events' spec text, ~0.2 s at 100,000 events,
part of taking in a new definitions file), never in an ordinary tick. It recomputes when a
run of those starts or ends, when they are held, released or fall due, when the
definitions change, and every 60 s otherwise, never on a tick when nothing changed. A tick
that changed one of them is judged on the next tick, from what this one commits (its own
writes are not in the store yet).

A recompute is incremental: it reads the facts of the events that changed, finds the current
occurrence again for them and what follows them (and for those whose occurrence the clock
alone moves on), hands the projector the occurrences that changed, propagates the samples
(engine/foresight/sampling.py: a few array operations per level of the graph), and judges
only the deadlines that have an alert, a pending one, or a probability past a threshold."""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from evman.engine.clock import iso, parse_iso
from evman.engine.foresight.current import (
    HORIZON,
    Current,
    EventFacts,
    RunFacts,
    changes_at,
    current_of,
    facts_of,
    graph_of,
)
from evman.engine.foresight.graph import Graph
from evman.engine.foresight.histories import Histories
from evman.engine.foresight.reading import deadline_scope, run_facts
from evman.engine.foresight.rules import AT_RISK, AT_RISK_OPEN, KINDS, Standing, Verdict, Watch, judge
from evman.engine.foresight.text import blocker_text, late_text, risk_text
from evman.engine.model import Blackout, EventSpec
from evman.engine.store import Store
from evman.engine.tick.active import ActiveRun
from evman.engine.tick.context import Tick
from evman.engine.timing.blackouts import blackouts_from_json

if TYPE_CHECKING:
    from evman.engine.foresight.projection import Plan, Projection
    from evman.engine.foresight.sampling import Projector, Rows

RECOMPUTE_EVERY_S: Final = 60.0
_NO_NEW_HISTORY: Final = frozenset({"waiting", "running"})
"""A run that only fell due or started leaves the event's history of successes as it was."""
ADOPTED: Final = ""
"""The occurrence of a watch read back from an open alert (after a restart): the first
evaluation takes it as the current one, at its current expected finish."""


@dataclass(frozen=True)
class Scope:
    events: frozenset[str]
    """The events with a deadline and everything they wait for."""
    deadlines: frozenset[str]
    ordered_deadlines: tuple[str, ...]
    graph: Graph
    specs: dict[str, EventSpec]
    followers: dict[str, tuple[str, ...]]
    """event -> the events that wait for it."""
    position: dict[str, int]
    """event -> its place in the graph's order."""


def scope_of(specs: dict[str, EventSpec], deadlines: frozenset[str], graph: Graph) -> Scope:
    followers: dict[str, list[str]] = {}
    for event, ups in graph.waits_for.items():
        for up in ups:
            followers.setdefault(up, []).append(event)
    position = {name: i for i, name in enumerate(graph.order)}
    return Scope(
        frozenset(specs),
        deadlines,
        tuple(sorted(deadlines)),
        graph,
        specs,
        {k: tuple(v) for k, v in followers.items()},
        position,
    )


class Foresight:
    """The stage's memory between ticks: what it covers, the facts it read, the current
    occurrences, the projector's rows, the watches."""

    def __init__(self, tick_s: float = 1.0) -> None:
        self.tick_s = tick_s
        self.scope: Scope | None = None
        self.facts: dict[str, EventFacts] = {}
        self.current: dict[str, Current] = {}
        self.until: dict[str, float] = {}
        self._due: list[tuple[float, str]] = []
        """A heap of (until, event); an entry is current while self.until still says so."""
        """event -> when the clock alone moves its current occurrence on (epoch s)."""
        self.stale: set[str] = set()
        """Events whose facts are read again at the next recompute."""
        self.store_stale: set[str] = set()
        """...from the store (not when a run of theirs only started: that is in the engine's memory)."""
        self.history_stale: set[str] = set()
        """...and whose history too (a run of theirs succeeded; not when one only started)."""
        self.histories = Histories()
        self.pending = False
        self.last_ts: float | None = None
        self.watches: dict[str, Watch] = {}
        self.projector: Projector | None = None
        self._shown_rows: tuple[list[str], Rows] | None = None
        self.news = False
        """Whether the latest recompute read new facts (a run started or ended...)."""
        self.plan: Plan | None = None
        """The latest projection (for tests and the console; good until the next recompute)."""

    def prepare(self, store: Store) -> None:
        """Find what it covers: at engine start and whenever the definitions changed."""
        self._cover(store)

    def next_recompute_ts(self) -> float | None:
        """When the next recompute is due by the clock alone (None: nothing to cover, or due now)."""
        if self.scope is None or not self.scope.deadlines or self.pending or self.last_ts is None:
            return None
        return self.last_ts + RECOMPUTE_EVERY_S

    def run(self, tick: Tick) -> None:
        store = tick.view.store
        if self.scope is None:
            self._cover(store)  # not prepared (a test building its own engine loop)
        assert self.scope is not None
        if not self.scope.deadlines:
            return
        touched = {c.event for c in tick.changes if c.kind != "alert" and c.event in self.scope.events}
        if touched:
            self.stale |= touched
            self.store_stale |= {
                c.event for c in tick.changes if c.event in touched and not (c.kind == "run" and c.state == "running")
            }
            self.history_stale |= {
                c.event
                for c in tick.changes
                if c.event in touched and not (c.kind == "run" and c.state in _NO_NEW_HISTORY)
            }
            self.pending = True
            return
        now_ts = tick.now.timestamp()
        if not self.pending and self.last_ts is not None and now_ts - self.last_ts < RECOMPUTE_EVERY_S:
            return
        self.pending, self.last_ts = False, now_ts
        self.recompute(tick)

    def recompute(self, tick: Tick) -> None:
        """Read what changed, find the occurrences again where needed, project, judge."""
        from evman.engine.foresight.projection import Plan  # numpy: only where a deadline is covered

        changed = self._read(tick.view.store, tick)
        self._refresh(changed, tick.now)
        assert self.projector is not None
        self.projector.project(tick.now.timestamp())
        self.plan = Plan(self.projector, tick.now.timestamp())
        self.news = bool(changed)
        self._evaluate(tick, self.plan, news=self.news)

    # -- what it covers, and the facts ------------------------------------------------------------

    def _cover(self, store: Store) -> None:
        found = deadline_scope(store)
        graph = graph_of(found.specs, found.requires)
        self.scope = scope_of(found.specs, found.deadlines, graph)
        self.facts, self.current, self.until, self._shown_rows, self._due = {}, {}, {}, None, []
        self.stale, self.pending = set(found.specs), True
        self.history_stale = set(found.specs)
        self.store_stale = set(found.specs)
        self.histories = Histories()
        self.projector = None
        if found.deadlines:
            from evman.engine.foresight.sampling import Projector  # numpy: only where a deadline is covered

            self.projector = Projector(graph, self.tick_s)
        self._adopt(store)

    def _adopt(self, store: Store) -> None:
        """Open foresight alerts left by a previous engine stay open, watched from now."""
        assert self.scope is not None
        kinds = store.open_alert_kinds(sorted(self.scope.deadlines))
        self.watches = {}
        for event, found in kinds.items():
            open_ = {k: Standing(k, None) for k in found if k in KINDS}
            if open_:
                self.watches[event] = Watch(ADOPTED, open_)

    def _read(self, store: Store, tick: Tick) -> set[str]:
        """Facts of the stale events: timing, finished runs and history from the store, active
        runs from the engine's memory. Returns the events read."""
        assert self.scope is not None
        stale = sorted(self.stale)
        self.stale = set()
        if not stale:
            return set()
        stored = sorted(n for n in stale if n in self.store_stale or n not in self.facts)
        self.store_stale -= set(stored)
        timing = {str(r["name"]): r for r in store.events_by_name(stored)} if stored else {}
        ended: dict[str, list[RunFacts]] = {name: [] for name in stored}
        for row in store.runs_ended_since(stored, tick.now - HORIZON) if stored else ():
            ended[row["event"]].append(run_facts(row))
        again = sorted(n for n in stored if n in self.history_stale or n not in self.facts)
        self.history_stale -= set(again)
        known = {n: self.facts[n].durations_s for n in again if n in self.facts}
        durations = self.histories.read(store, again, ended, known) if again else {}
        blackouts = blackouts_from_json(store.named_setting("blackouts")) if stored else ()
        for name in stale:
            self.facts[name] = self._facts(name, tick, timing, ended, (durations, blackouts))
        return set(stale)

    def _facts(
        self,
        name: str,
        tick: Tick,
        timing: dict[str, Any],
        ended: dict[str, list[RunFacts]],
        read: tuple[dict[str, list[float]], Sequence[Blackout]],
    ) -> EventFacts:
        """One event's facts: what was read now (timing, ended runs, `read`: histories and
        blackouts), the rest as read before; its active runs from memory."""
        assert self.scope is not None
        durations, blackouts = read
        before = self.facts.get(name)
        active = [_active_facts(r) for r in tick.runs.of(name)]
        if name not in ended and before is not None:  # only a run of it started: the store has nothing new
            done = [r for r in before.runs if r.ended_at is not None]
            return replace(before, runs=tuple(sorted(done + active, key=lambda r: r.id)))
        event = timing.get(name)
        return facts_of(
            self.scope.specs[name],
            held=bool(event and event["held"]),
            next_fire_at=parse_iso(event["next_fire_at"]) if event else None,
            runs=[r for r in ended.get(name, ()) if r.ended_at is not None] + active,
            durations_s=durations[name] if name in durations or before is None else before.durations_s,
            estimated=None if name in durations or before is None else before.estimated,
            blackouts=blackouts,
        )

    def _refresh(self, changed: set[str], now: datetime) -> None:
        """Find the current occurrence again for `changed` and the events whose occurrence
        the clock moved on; then for the followers of every event whose occurrence changed,
        in the graph's order. Hand the projector what differs."""
        assert self.scope is not None
        now_ts = now.timestamp()
        position = self.scope.position
        todo = [(position[n], n) for n in changed | self._moved_on(now_ts)]
        heapq.heapify(todo)
        seen: set[str] = set()
        while todo:
            _, name = heapq.heappop(todo)
            if name in seen:
                continue
            seen.add(name)
            if self._find(name, now):
                for follower in self.scope.followers.get(name, ()):
                    heapq.heappush(todo, (position[follower], follower))

    def _moved_on(self, now_ts: float) -> set[str]:
        """The events whose occurrence the clock alone moves on by `now_ts`."""
        due = set()
        while self._due and self._due[0][0] <= now_ts:
            at, name = heapq.heappop(self._due)
            if self.until.get(name) == at:
                due.add(name)
        return due

    def _find(self, name: str, now: datetime) -> bool:
        """Find one event's current occurrence again; whether it changed."""
        assert self.scope is not None and self.projector is not None
        f = self.facts.get(name)
        if f is None:
            return False
        ups = [self.current[u] for u in self.scope.graph.waits_for.get(name, ()) if u in self.current]
        found = current_of(f, ups, now, HORIZON)
        until = changes_at(f, found, HORIZON)
        if until is None:
            self.until.pop(name, None)
        else:
            self.until[name] = until.timestamp()
            heapq.heappush(self._due, (until.timestamp(), name))
        old = self.current.get(name)
        if found is None:
            self.current.pop(name, None)
        else:
            self.current[name] = found
        if old == found:
            return False
        if name in self.scope.deadlines and _has_deadline(old) != _has_deadline(found):
            self._shown_rows = None  # the deadlines shown are what changed, not only this one's occurrence
        if old is None or found is None or old.occurrence != found.occurrence:
            self.projector.set(name, None if found is None else found.occurrence)
        return True

    # -- judging ---------------------------------------------------------------------------------------

    def _evaluate(self, tick: Tick, plan: Plan, *, news: bool = True) -> None:
        """Judge the deadlines with a watch, or a probability past the lowest open threshold."""
        assert self.scope is not None and self.projector is not None
        for event in [e for e in self.watches if e not in self.current]:
            self._drop(tick, event)
        shown, rows = self._shown()
        odds = self.projector.miss_probability(rows) if len(rows) else ()
        judged = [e for e, p in zip(shown, odds, strict=True) if p >= AT_RISK_OPEN]
        judged += [e for e in self.watches if e not in judged]  # with no deadline now, its alerts resolve
        for event, row in plan.brief(judged).items():
            self._judge(tick, plan, event, row, news)

    def _shown(self) -> tuple[list[str], Rows]:
        """The deadline events whose occurrence has a deadline, and their rows (kept until an occurrence changes)."""
        assert self.scope is not None and self.projector is not None
        if self._shown_rows is None:
            from evman.engine.foresight.sampling import rows_of

            shown = [
                e for e in self.scope.ordered_deadlines
                if e in self.current and self.current[e].occurrence.deadline_ts is not None
            ]  # fmt: skip
            self._shown_rows = (shown, rows_of(self.projector, shown))
        return self._shown_rows

    def _judge(self, tick: Tick, plan: Plan, event: str, row: Projection, news: bool) -> None:
        found = self.current[event]
        blocker = blocker_text(plan, event) if row.is_unbounded and row.deadline_ts is not None else None
        watch = self._adopted(self.watches.get(event), found, row, blocker)
        verdicts, after = judge(row, found.key, watch, plan.now_ts, blocker, news=news)
        if after is None:
            self.watches.pop(event, None)
        else:
            self.watches[event] = after
        for verdict in verdicts:
            self._write(tick, plan, found, verdict)

    def _adopted(self, watch: Watch | None, found: Current, row: Projection, blocker: str | None) -> Watch | None:
        if watch is None or watch.occurrence != ADOPTED:
            return watch
        open_ = {k: replace(s, paged_eta_ts=row.p50_ts, paged_blocker=blocker) for k, s in watch.open.items()}
        return Watch(found.key, open_, was_late=any(k != AT_RISK for k in open_))

    def _drop(self, tick: Tick, event: str) -> None:
        """An event with no occurrence in view any more: its foresight alerts are over."""
        watch = self.watches.pop(event, None)
        for kind in watch.open if watch is not None else ():
            tick.batch.alert_resolved(event, kind, iso(tick.now))

    def _write(self, tick: Tick, plan: Plan, found: Current, verdict: Verdict) -> None:
        assert self.scope is not None
        spec, at = self.scope.specs[verdict.event], iso(tick.now)
        if verdict.action == "resolve":
            tick.batch.alert_resolved(verdict.event, verdict.kind, at)
            tick.change("alert", verdict.event, found.run_id, verdict.kind, f"resolved: {verdict.why}")
            return
        text = risk_text if verdict.kind == AT_RISK else late_text
        message = text(plan, verdict.event, spec.timezone)
        if verdict.action == "open":
            tick.batch.alert(verdict.kind, verdict.event, found.run_id, spec.driver, message, at)
        else:
            message = f"{message} (paged again: {verdict.why})"
            tick.batch.alert_paged_again(verdict.event, verdict.kind, found.run_id, message, at)
        tick.change("alert", verdict.event, found.run_id, verdict.kind, message)


def _has_deadline(found: Current | None) -> bool:
    return found is not None and found.occurrence.deadline_ts is not None


def _active_facts(run: ActiveRun) -> RunFacts:
    return RunFacts(run.id, run.state, run.scheduled_for, run.started_at, None, run.not_before, run.window_open)


__all__ = ["Foresight", "RECOMPUTE_EVERY_S"]
