"""Putting validated definitions into the store: rows, first fire times, dependency edges."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import datetime
from typing import Any

from evman.engine.clock import iso
from evman.engine.conditions import parse_condition
from evman.engine.definitions import spec_to_json
from evman.engine.model import Definitions, EventSpec
from evman.engine.store import Store
from evman.engine.timing import occurrences


def event_row(spec: EventSpec, now: datetime, source: str) -> dict[str, Any]:
    timing = occurrences.timing_of(spec)
    nxt = None if timing is None else occurrences.next_fire(timing, now)
    return {
        "name": spec.name,
        "spec": spec_to_json(spec),
        "kind": spec.kind,
        "schedule": spec.schedule,
        "timezone": spec.timezone,
        "driver": spec.driver,
        "requires": spec.requires,
        "next_fire_at": iso(nxt),
        "source": source,
    }


def dependency_edges(spec: EventSpec) -> list[tuple[str, str]]:
    """(upstream, event) for every event named in `requires`."""
    if spec.requires is None:
        return []
    return [(upstream, spec.name) for upstream in sorted(parse_condition(spec.requires).events)]


def save(store: Store, defs: Definitions, *, now: datetime, prune: bool = False) -> dict[str, list[str]]:
    """Upsert the definitions; a changed schedule counts from `now`, history is kept."""
    rows = [event_row(spec, now, defs.source) for spec in defs.events]
    edges = [edge for spec in defs.events for edge in dependency_edges(spec)]
    routes = {name: json.dumps(asdict(route)) for name, route in defs.routes.items()}
    named = {
        "calendars": {name: json.dumps(asdict(c)) for name, c in defs.calendars.items()},
        "blackouts": {name: json.dumps(asdict(b)) for name, b in defs.blackouts.items()},
    }
    return store.save_definitions(
        rows, edges, routes, json.dumps(asdict(defs.defaults)), prune=prune, now=now, named=named
    )
