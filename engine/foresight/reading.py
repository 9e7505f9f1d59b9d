"""Foresight's facts as the database holds them, read through the store in a few batched
statements (events, recent and active runs, histories, edges), never one per event.

`evman plan` and the console read every event (`read_tonight`) or only the events with a
deadline and what they wait for (`scoped=True`, as the engine's stage covers them)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from evman.engine.clock import parse_iso
from evman.engine.coordination import approvals
from evman.engine.coordination.pools import Claimant, in_line, parse_uses
from evman.engine.definitions import spec_from_json
from evman.engine.foresight.current import (
    HORIZON,
    Current,
    EventFacts,
    RunFacts,
    current_occurrences,
    facts_of,
    graph_of,
    has_deadline,
)
from evman.engine.foresight.estimate import estimate
from evman.engine.foresight.graph import Graph, ancestors
from evman.engine.foresight.waits import NO_WAITS, Claim, PendingApproval, PoolFacts, Uses, Waits
from evman.engine.foresight.whatif import WhatIf, apply_what_ifs
from evman.engine.model import EventSpec, RunState
from evman.engine.paging.rules import defaults_from_json
from evman.engine.store import Store
from evman.engine.timing.blackouts import blackouts_from_json

if TYPE_CHECKING:
    from evman.engine.foresight.projection import Plan


def run_facts(row: Mapping[str, Any]) -> RunFacts:
    scheduled = parse_iso(row["scheduled_for"])
    assert scheduled is not None
    return RunFacts(
        int(row["id"]),
        RunState(row["state"]),
        scheduled,
        parse_iso(row["started_at"]),
        parse_iso(row["ended_at"]),
        parse_iso(row["not_before"]),
        parse_iso(row["window_open"]),
    )


def requires_of(dependents: Mapping[str, Iterable[str]]) -> dict[str, list[str]]:
    """event -> the events its `requires` names, from all_dependents()' upstream -> events."""
    out: dict[str, list[str]] = {}
    for upstream, events in dependents.items():
        for event in events:
            out.setdefault(event, []).append(upstream)
    return out


@dataclass(frozen=True)
class Scope:
    """The events with a deadline (or a window latest) and everything they wait for."""

    specs: dict[str, EventSpec]
    deadlines: frozenset[str]
    requires: dict[str, list[str]]


def deadline_scope(store: Store) -> Scope:
    """Found without decoding every spec: one scan of the spec text for deadlines and
    followers, the requires edges, then the specs of the events in between."""
    found = {str(r["name"]): spec_from_json(r["spec"]) for r in store.foresight_candidates()}
    requires = requires_of(store.all_dependents())
    waits: dict[str, set[str]] = {event: set(ups) for event, ups in requires.items()}
    for name, spec in found.items():
        for follower in spec.on_success:
            waits.setdefault(follower, set()).add(name)
    deadlines = {name for name, spec in found.items() if has_deadline(spec)}
    covered = ancestors(deadlines, waits)
    specs = {name: found[name] for name in covered if name in found}
    missing = sorted(covered - set(specs))
    specs.update({str(r["name"]): spec_from_json(r["spec"]) for r in store.events_by_name(missing)})
    return Scope(
        specs,
        frozenset(deadlines & set(specs)),
        {e: [u for u in ups if u in specs] for e, ups in requires.items() if e in specs},
    )


def read_facts(store: Store, now: datetime, specs: Mapping[str, EventSpec] | None = None) -> dict[str, EventFacts]:
    """The facts of the events of `specs` (None: every defined event)."""
    rows = store.defined_events() if specs is None else store.events_by_name(sorted(specs))
    known = {str(r["name"]): (specs[str(r["name"])] if specs is not None else spec_from_json(r["spec"])) for r in rows}
    names = sorted(known)
    runs: dict[str, list[RunFacts]] = {name: [] for name in names}
    seen: set[int] = set()
    for row in [*store.runs_ended_since(names, now - HORIZON), *store.active_runs()]:
        if row["event"] in runs and int(row["id"]) not in seen:
            seen.add(int(row["id"]))
            runs[row["event"]].append(run_facts(row))
    durations = store.succeeded_durations(names)
    blackouts = blackouts_from_json(store.named_setting("blackouts"))
    return {
        str(r["name"]): facts_of(
            known[str(r["name"])],
            held=bool(r["held"]),
            next_fire_at=parse_iso(r["next_fire_at"]),
            runs=runs[str(r["name"])],
            durations_s=durations[str(r["name"])],
            blackouts=blackouts,
        )
        for r in rows
    }


@dataclass(frozen=True)
class PlanView:
    plan: Plan
    current: Mapping[str, Current]
    graph: Graph
    margin_s: float
    """[defaults] at_risk_margin."""

    @property
    def deadlines(self) -> list[str]:
        """The events of the plan whose occurrence has a deadline."""
        return [n for n in self.plan if self.current[n].occurrence.deadline_ts is not None]


@dataclass(frozen=True)
class Tonight:
    """The current occurrences as read, before any projection."""

    current: Mapping[str, Current]
    graph: Graph
    margin_s: float
    now: datetime
    waits: Waits = NO_WAITS
    """The pools' holders and line and the pending approvals (NO_WAITS: as if none)."""

    def project(self, what_ifs: Sequence[WhatIf] = (), tick_s: float = 1.0) -> PlanView:
        """The plan with `what_ifs` applied (nothing is written)."""
        from evman.engine.foresight.projection import project  # numpy: only when a plan is made

        occurrences = apply_what_ifs({n: c.occurrence for n, c in self.current.items()}, what_ifs)
        plan = project(self.graph, occurrences, self.now, tick_s, self.waits)
        return PlanView(plan, self.current, self.graph, self.margin_s)


def read_tonight(store: Store, now: datetime, *, scoped: bool = False) -> Tonight:
    """Every event's current occurrence at `now` (scoped: only those a deadline depends on)."""
    if scoped:
        scope = deadline_scope(store)
        facts, requires = read_facts(store, now, scope.specs), scope.requires
    else:
        facts, requires = read_facts(store, now), requires_of(store.all_dependents())
    graph = graph_of({name: f.spec for name, f in facts.items()}, requires)
    margin = defaults_from_json(store.defaults_json()).at_risk_margin_s
    current = current_occurrences(facts, graph, now)
    specs = {name: f.spec for name, f in facts.items()}
    return Tonight(current, graph, margin, now, read_waits(store, now, current, specs))


def read_waits(store: Store, now: datetime, current: Mapping[str, Current], specs: Mapping[str, EventSpec]) -> Waits:
    """The pools' holders and line (every engine's) and the pending approvals of the current
    runs: two statements when pools are defined, one when an event of `specs` has an approval."""
    asking = {name for name, spec in specs.items() if spec.approval is not None}
    pending: dict[str, PendingApproval] = {}
    if asking:
        rows = {int(r["id"]): r for r in store.active_runs() if r["event"] in asking}
        for name in sorted(asking):
            found = current.get(name)
            row = None if found is None or found.run_id is None else rows.get(found.run_id)
            record = approvals.from_json(row["approval"]) if row is not None else None
            asked = approvals.asked_at(record)
            approval = specs[name].approval
            if row is None or record is None or asked is None or approval is None or not approvals.is_pending(record):
                continue
            route = record.get("route")
            pending[name] = PendingApproval(
                int(row["id"]), asked.timestamp(), str(route) if route else None, approval.timeout_s,
                approval.on_timeout.value,
            )  # fmt: skip
    uses = {name: _uses(spec.uses) for name, spec in specs.items() if spec.uses}
    if not uses:
        return Waits(None, pending)
    return Waits(_pool_facts(store, now, current, specs, store.pool_sizes(), uses), pending)


def _uses(uses: Mapping[str, int]) -> Uses:
    return tuple(sorted(uses.items()))


def _pool_facts(
    store: Store,
    now: datetime,
    current: Mapping[str, Current],
    specs: Mapping[str, EventSpec],
    sizes: Mapping[str, int],
    uses: Mapping[str, Uses],
) -> PoolFacts:
    """The holders and the line as store.pool_claimants() has them, the line in the order it
    gets slots at `now`; each claim with its event's p50, for those the plan does not project."""
    rows = store.pool_claimants()
    others = sorted({str(r["event"]) for r in rows} - set(specs))
    found = {str(r["name"]): spec_from_json(r["spec"]) for r in store.events_by_name(others)} if others else {}
    history = store.succeeded_durations(sorted(set(found))) if found else {}
    every = {**found, **specs}

    def p50_of(event: str) -> float:
        if event in current:
            return current[event].occurrence.estimate.p50_s
        spec = every.get(event)
        if spec is None:
            return estimate(()).p50_s
        return estimate(history.get(event, []), expect_s=spec.expect_s, runtime_max_s=spec.runtime.max_s).p50_s

    claims: dict[int, Claim] = {}
    waiting: list[Claimant] = []
    for row in rows:
        run_id, event = int(row["id"]), str(row["event"])
        found_now = current.get(event)
        holding = row["state"] == RunState.RUNNING.value
        claims[run_id] = Claim(
            run_id,
            event,
            _uses(parse_uses(row["pools"])),
            holding,
            found_now is not None and found_now.run_id == run_id,
            (parse_iso(row["started_at"]) or now).timestamp() if holding else None,
            p50_of(event),
        )
        if not holding:
            spec = every.get(event)
            flags = str(row["flags"] or "").split(",")  # "backfill": engine/tick/active.py's BACKFILL_FLAG
            waiting.append(
                Claimant(
                    run_id, event, dict(claims[run_id].uses), False, spec.priority if spec is not None else 0,
                    parse_iso(row["scheduled_for"]), "backfill" in flags,
                )
            )  # fmt: skip
    holders = tuple(c for c in claims.values() if c.holding)
    line = tuple(claims[c.run_id] for c in in_line(waiting, now))
    return PoolFacts(dict(sizes), holders, line, uses)


def read_plan(
    store: Store, now: datetime, what_ifs: Sequence[WhatIf] = (), *, scoped: bool = False, tick_s: float = 1.0
) -> PlanView:
    """The projection at `now`, with `what_ifs` applied (nothing is written)."""
    return read_tonight(store, now, scoped=scoped).project(what_ifs, tick_s)
