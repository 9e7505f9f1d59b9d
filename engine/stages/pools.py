"""Stage 5's pool desk: which ready runs get their pool slots now, in the line's order
(engine/coordination/pools.py), and why the others wait.

One engine (SQLite): its active runs are every holder there is. Several engines (PostgreSQL):
the desk locks the rows of the pools it gives slots of (the others skip them this tick), reads
every engine's holders and line through the partial index runs_pools, and its tick's flush
commits the starts with the lock still held: a slot is never given twice. A fenced engine's
flush is refused, so it starts nothing; a dead engine's runs hold their slots until they are
judged (runs.state leaves 'running')."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from evman.engine.clock import parse_iso
from evman.engine.coordination.pools import Claimant, arbitrate, parse_uses, uses_text
from evman.engine.model import RunState
from evman.engine.tick import lifecycle
from evman.engine.tick.active import BACKFILL_FLAG, ActiveRun
from evman.engine.tick.context import Tick


def give_slots(tick: Tick, ready: list[ActiveRun]) -> list[ActiveRun]:
    """Of `ready` (runs that wait for nothing but their pools), those that get their slots now;
    the others join the line (runs.pools) and say why they wait."""
    if not ready:
        return []
    uses = {run.id: _uses(tick, run) for run in ready}
    wanted = {name for used in uses.values() for name in used}
    sizes = dict(tick.view.pool_sizes())
    busy: set[str] = set()
    others: list[Claimant] = []
    if tick.placement is not None and tick.owner is not None:  # several engines: lock, then read the fleet's
        locked = tick.view.store.lock_pools(sorted(wanted & set(sizes)))
        sizes.update(locked)
        busy = (wanted & set(sizes)) - set(locked)
        others = [_theirs(tick, row) for row in tick.view.store.pool_claimants() if not _is_mine(tick, row)]
    holders = [
        Claimant(r.id, r.event, r.pools, holding=True)
        for r in tick.runs.values()
        if r.state is RunState.RUNNING and r.pools
    ]
    line = [_claimant(tick, run, uses[run.id]) for run in ready]
    decision = arbitrate(sizes, [*holders, *line, *others], tick.now, busy)
    started = set(decision.start)
    for run in ready:
        join_line(tick, run, uses[run.id])
        if run.id not in started:
            lifecycle.note_waiting(tick, run, decision.why.get(run.id, "waiting for its pools"))
    return [run for run in ready if run.id in started]


def join_line(tick: Tick, run: ActiveRun, uses: Mapping[str, int]) -> None:
    """runs.pools = what it takes: in line while it waits, held once it runs."""
    if run.pools == dict(uses):
        return
    run.pools = dict(uses)
    if not run.is_new:
        tick.batch.run_pools(run.id, uses_text(uses))


def leave_line(tick: Tick, run: ActiveRun) -> None:
    """A waiting run that waits for something else again (held, its window, ...) leaves the line."""
    if not run.pools or run.state is not RunState.WAITING:
        return
    run.pools = {}
    if not run.is_new:
        tick.batch.run_pools(run.id, None)


def uses_pools(tick: Tick, run: ActiveRun) -> bool:
    spec = tick.view.spec(run.event)
    return spec is not None and bool(spec.uses)


def _uses(tick: Tick, run: ActiveRun) -> dict[str, int]:
    spec = tick.view.spec(run.event)
    return dict(spec.uses) if spec is not None else {}


def _claimant(tick: Tick, run: ActiveRun, uses: Mapping[str, int]) -> Claimant:
    spec = tick.view.spec(run.event)
    priority = spec.priority if spec is not None else 0
    return Claimant(run.id, run.event, uses, False, priority, run.scheduled_for, run.is_backfill)


def _is_mine(tick: Tick, row: Mapping[str, Any]) -> bool:
    return tick.owner is not None and row["engine_id"] == tick.owner.engine_id


def _theirs(tick: Tick, row: Mapping[str, Any]) -> Claimant:
    spec = tick.view.spec(str(row["event"]))
    return Claimant(
        int(row["id"]),
        str(row["event"]),
        parse_uses(row["pools"]),
        holding=row["state"] == RunState.RUNNING.value,
        priority=spec.priority if spec is not None else 0,
        due_at=parse_iso(row["scheduled_for"]),
        backfill=BACKFILL_FLAG in (row["flags"] or "").split(","),
        mine=False,
    )
