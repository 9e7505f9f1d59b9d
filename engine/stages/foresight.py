"""Stage 7: foresight. Projects every deadline's graph and raises, pages again and resolves
at_risk and projected_late alerts (the rules: engine/foresight/rules.py).

It covers the events with a deadline (or a window latest) and everything they wait for;
without any, it costs nothing. They are found when the engine starts and when the
definitions change (`prepare`: one scan of the events' spec text, ~0.2 s at 100,000 events,
part of taking in a new definitions file), never in an ordinary tick. It recomputes when a run of those starts or ends, when they
are held, released or fall due, when the definitions change, and every 60 s otherwise,
never on a tick when nothing changed. A tick that changed one of them is judged on the next
tick, from what this one commits (its own writes are not in the store yet)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Final

from evman.engine.clock import iso, parse_iso
from evman.engine.foresight.current import (
    HORIZON,
    Current,
    EventFacts,
    RunFacts,
    current_occurrences,
    facts_of,
    graph_of,
)
from evman.engine.foresight.graph import Graph
from evman.engine.foresight.projection import Plan, Projection, project
from evman.engine.foresight.reading import deadline_scope, run_facts
from evman.engine.foresight.rules import AT_RISK, KINDS, Standing, Verdict, judge, slack_of
from evman.engine.foresight.text import late_text, risk_text
from evman.engine.model import EventSpec
from evman.engine.paging.rules import defaults_from_json
from evman.engine.store import Store
from evman.engine.tick.active import ActiveRun
from evman.engine.tick.context import Tick
from evman.engine.timing.blackouts import blackouts_from_json

RECOMPUTE_EVERY_S: Final = 60.0
ADOPTED: Final = ""
"""The occurrence of a standing read back from an open alert (after a restart): the first
evaluation takes it as the current one, at its current slack."""


@dataclass(frozen=True)
class Scope:
    events: frozenset[str]
    """The events with a deadline and everything they wait for."""
    deadlines: frozenset[str]
    graph: Graph
    specs: dict[str, EventSpec]
    margin_s: float


class Foresight:
    """The stage's memory between ticks: what it covers, the facts it read, the open alerts."""

    def __init__(self, tick_s: float = 1.0) -> None:
        self.tick_s = tick_s
        self.scope: Scope | None = None
        self.facts: dict[str, EventFacts] = {}
        self.stale: set[str] = set()
        """Events whose facts are read again at the next recompute."""
        self.pending = False
        self.last_ts: float | None = None
        self.standings: dict[str, dict[str, Standing]] = {}
        self.plan: Plan | None = None
        """The latest projection (for tests and the console)."""

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
            self.pending = True
            return
        now_ts = tick.now.timestamp()
        if not self.pending and self.last_ts is not None and now_ts - self.last_ts < RECOMPUTE_EVERY_S:
            return
        self.pending, self.last_ts = False, now_ts
        self._read(store, tick)
        self._evaluate(tick)

    # -- what it covers, and the facts ------------------------------------------------------------

    def _cover(self, store: Store) -> None:
        scope = deadline_scope(store)
        graph = graph_of(scope.specs, scope.requires)
        margin = defaults_from_json(store.defaults_json()).at_risk_margin_s
        self.scope = Scope(frozenset(scope.specs), scope.deadlines, graph, scope.specs, margin)
        self.facts, self.stale, self.pending = {}, set(scope.specs), True
        self._adopt(store)

    def _adopt(self, store: Store) -> None:
        """Open foresight alerts left by a previous engine stay open, as standings of now."""
        assert self.scope is not None
        kinds = store.open_alert_kinds(sorted(self.scope.deadlines))
        self.standings = {
            event: {k: Standing(k, ADOPTED, 0.0) for k in found if k in KINDS}
            for event, found in kinds.items()
            if found & set(KINDS)
        }

    def _read(self, store: Store, tick: Tick) -> None:
        """Facts of the stale events (timing, finished runs, history) from the store; active
        runs of every covered event from the engine's memory."""
        assert self.scope is not None
        stale = sorted(self.stale)
        self.stale = set()
        if stale:
            timing = {str(r["name"]): r for r in store.events_by_name(stale)}
            ended: dict[str, list[RunFacts]] = {name: [] for name in stale}
            for row in store.runs_ended_since(stale, tick.now - HORIZON):
                ended[row["event"]].append(run_facts(row))
            durations = store.succeeded_durations(stale)
            blackouts = blackouts_from_json(store.named_setting("blackouts"))
            for name in stale:
                event = timing.get(name)
                self.facts[name] = facts_of(
                    self.scope.specs[name],
                    held=bool(event and event["held"]),
                    next_fire_at=parse_iso(event["next_fire_at"]) if event else None,
                    runs=ended[name],
                    durations_s=durations[name],
                    blackouts=blackouts,
                )
        for name, f in self.facts.items():
            active = [_active_facts(r) for r in tick.runs.of(name)]
            done = [r for r in f.runs if r.ended_at is not None]
            self.facts[name] = replace(f, runs=tuple(sorted(done + active, key=lambda r: r.id)))

    # -- judging ---------------------------------------------------------------------------------------

    def _evaluate(self, tick: Tick) -> None:
        assert self.scope is not None
        current = current_occurrences(self.facts, self.scope.graph, tick.now)
        plan = project(self.scope.graph, {n: c.occurrence for n, c in current.items()}, tick.now, self.tick_s)
        self.plan = plan
        for event in sorted(self.scope.deadlines):
            found = current.get(event)
            if found is None or event not in plan:
                self._drop(tick, event)
                continue
            row = plan[event]
            standings = self._adopted(event, found, row)
            verdicts, self.standings[event] = judge(row, found.key, self.scope.margin_s, standings, plan.now_ts)
            for verdict in verdicts:
                self._write(tick, plan, found, verdict)

    def _adopted(self, event: str, found: Current, row: Projection) -> dict[str, Standing]:
        assert self.scope is not None
        standings = self.standings.get(event, {})
        return {
            k: s
            if s.occurrence != ADOPTED
            else replace(s, occurrence=found.key, paged_slack_s=slack_of(k, row, self.scope.margin_s) or 0.0)
            for k, s in standings.items()
        }

    def _drop(self, tick: Tick, event: str) -> None:
        """An event with no occurrence in view any more: its foresight alerts are over."""
        for kind in self.standings.pop(event, {}):
            tick.batch.alert_resolved(event, kind, iso(tick.now))

    def _write(self, tick: Tick, plan: Plan, found: Current, verdict: Verdict) -> None:
        assert self.scope is not None
        spec, at = self.scope.specs[verdict.event], iso(tick.now)
        if verdict.action == "resolve":
            tick.batch.alert_resolved(verdict.event, verdict.kind, at)
            tick.change("alert", verdict.event, found.run_id, verdict.kind, f"resolved: {verdict.why}")
            return
        message = (
            risk_text(plan, verdict.event, spec.timezone, self.scope.margin_s)
            if verdict.kind == AT_RISK
            else late_text(plan, verdict.event, spec.timezone)
        )
        if verdict.action == "open":
            tick.batch.alert(verdict.kind, verdict.event, found.run_id, spec.driver, message, at)
        else:
            tick.batch.alert_paged_again(verdict.event, verdict.kind, found.run_id, message, at)
        tick.change("alert", verdict.event, found.run_id, verdict.kind, message)


def _active_facts(run: ActiveRun) -> RunFacts:
    return RunFacts(run.id, run.state, run.scheduled_for, run.started_at, None, run.not_before, run.window_open)


__all__ = ["Foresight", "RECOMPUTE_EVERY_S"]
