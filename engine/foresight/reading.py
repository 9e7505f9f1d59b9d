"""The plan as the database holds it: facts read through the store, then the projection.

For `evman plan` and the console's plan view (readers, not the engine): a handful of batched
statements (events, active and recent runs, histories, edges), never one per event."""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from engine.clock import parse_iso
from engine.definitions import spec_from_json
from engine.foresight.current import HORIZON, Current, EventFacts, RunFacts, current_occurrences, graph_of
from engine.foresight.graph import Graph
from engine.foresight.projection import Plan, project
from engine.foresight.whatif import WhatIf, apply_what_ifs
from engine.model import RunState
from engine.paging import defaults_from_json
from engine.store import Store


@dataclass(frozen=True)
class PlanView:
    plan: Plan
    current: Mapping[str, Current]
    graph: Graph
    margin_s: float
    """[defaults] at_risk_margin."""


def run_facts(row: Mapping[str, Any]) -> RunFacts:
    scheduled = parse_iso(row["scheduled_for"])
    assert scheduled is not None
    return RunFacts(int(row["id"]), RunState(row["state"]), scheduled, parse_iso(row["started_at"]),
                    parse_iso(row["ended_at"]), parse_iso(row["not_before"]), parse_iso(row["window_open"]))


def read_facts(store: Store, now: datetime) -> tuple[dict[str, EventFacts], dict[str, list[str]]]:
    """(event -> its facts, event -> the events its `requires` names) for every defined event."""
    rows = store.defined_events()
    names = [str(r["name"]) for r in rows]
    runs: dict[str, list[RunFacts]] = {name: [] for name in names}
    seen: set[int] = set()
    for row in [*store.runs_ended_since(names, now - HORIZON), *store.active_runs()]:
        if row["event"] in runs and int(row["id"]) not in seen:
            seen.add(int(row["id"]))
            runs[row["event"]].append(run_facts(row))
    durations = store.succeeded_durations(names)
    facts = {}
    for r in rows:
        name = str(r["name"])
        facts[name] = EventFacts(spec_from_json(r["spec"]), bool(r["held"]), parse_iso(r["next_fire_at"]),
                                 tuple(sorted(runs[name], key=lambda x: x.id)), tuple(durations[name]))
    return facts, _requires(store.all_dependents())


def _requires(dependents: Mapping[str, Iterable[str]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for upstream, events in dependents.items():
        for event in events:
            out.setdefault(event, []).append(upstream)
    return out


@dataclass(frozen=True)
class Tonight:
    """The current occurrences as read, before any projection."""
    current: Mapping[str, Current]
    graph: Graph
    margin_s: float
    now: datetime

    def project(self, what_ifs: Sequence[WhatIf] = (), tick_s: float = 1.0) -> PlanView:
        """The plan with `what_ifs` applied (nothing is written)."""
        occurrences = apply_what_ifs({n: c.occurrence for n, c in self.current.items()}, what_ifs)
        return PlanView(project(self.graph, occurrences, self.now, tick_s), self.current, self.graph,
                        self.margin_s)


def read_tonight(store: Store, now: datetime) -> Tonight:
    facts, requires = read_facts(store, now)
    graph = graph_of(facts, requires)
    margin = defaults_from_json(store.defaults_json()).at_risk_margin_s
    return Tonight(current_occurrences(facts, graph, now), graph, margin, now)


def read_plan(store: Store, now: datetime, what_ifs: Sequence[WhatIf] = (), tick_s: float = 1.0) -> PlanView:
    """Every event's current occurrence projected at `now`, with `what_ifs` applied (nothing is written)."""
    return read_tonight(store, now).project(what_ifs, tick_s)
