"""Requests of the calendar side (stage 1): hold and release by name, pattern ("etl-*") or tag
("tag:nightly"), a hold `until` a time, its release when that time comes, and backfill.

Each handler takes (tick, target, args, who) and returns its detail text, like the others in
stages/requests.py, which registers them."""

from __future__ import annotations

import fnmatch
from datetime import datetime, timedelta
from typing import Any, Final

from evman.engine.clock import iso, parse_iso
from evman.engine.model import Trigger
from evman.engine.quoting import quoted
from evman.engine.tick import lifecycle
from evman.engine.tick.active import BACKFILL_FLAG, PARALLEL_PREFIX
from evman.engine.tick.context import Tick
from evman.engine.timing import occurrences
from evman.engine.timing.wording import local_text

MAX_BACKFILL: Final = 10_000


class VerbError(ValueError):
    """What the operator asked cannot be done; the text says why and what to do."""


# -- holds -----------------------------------------------------------------------------------------


def hold(tick: Tick, target: str, args: dict[str, Any], who: str) -> str:
    names = targets(tick, target)
    until = _until(args, tick.now)
    for name in names:
        tick.batch.held(name, True, who, iso(until))
        tick.view.set_held(name, True, until)
    then = "" if until is None else f" until {iso(until)}"
    return f"{_names_text(names)} held{then}"


def release(tick: Tick, target: str, args: dict[str, Any], who: str) -> str:
    names = targets(tick, target)
    for name in names:
        tick.batch.held(name, False, None)
        tick.view.set_held(name, False)
    return f"{_names_text(names)} released"


def release_ended_holds(tick: Tick) -> None:
    """Release the holds whose `until` has come (one comparison a tick when none has)."""
    for name in tick.view.holds_ended(tick.now):
        tick.batch.held(name, False, None)
        tick.view.set_held(name, False)
        tick.change("event", name, None, None, "released: its hold ended")


def targets(tick: Tick, target: str) -> list[str]:
    """The defined events `target` names: one name, a glob pattern, or tag:NAME."""
    store = tick.view.store
    if target.startswith("tag:"):
        tag = target[4:]
        found = sorted(n for n in store.event_names() if (spec := tick.view.spec(n)) and tag in spec.tags)
        if not found:
            raise VerbError(f"no event has the tag {quoted(tag)}; `evman show E` lists an event's tags")
        return found
    if any(c in target for c in "*?["):
        found = sorted(fnmatch.filter(store.event_names(), target))
        if not found:
            raise VerbError(f"no event matches {quoted(target)}; `evman list` shows the defined events")
        return found
    if tick.view.spec(target) is None:
        raise VerbError(f"unknown event {quoted(target)}; `evman list` shows the defined events")
    return [target]


def _until(args: dict[str, Any], now: datetime) -> datetime | None:
    text = args.get("until")
    if text is None:
        return None
    until = parse_iso(str(text))
    if until is None or until.tzinfo is None:
        raise VerbError(f"until {quoted(text)} is not an ISO time with an offset; example: 2026-12-24T18:00:00+00:00")
    if until <= now:
        raise VerbError(f"until {iso(until)} has passed; give a later time")
    return until


def _names_text(names: list[str]) -> str:
    return (
        names[0]
        if len(names) == 1
        else f"{len(names)} events ({', '.join(names[:5])}{', ...' if len(names) > 5 else ''})"
    )


# -- backfill --------------------------------------------------------------------------------------


def backfill(tick: Tick, target: str, args: dict[str, Any], who: str) -> str:
    """Make the occurrences the event's schedule and calendar would have made in [from, to] that
    no run holds yet (the same unique key as live runs: a slot never runs twice), queued oldest
    first, at most `max_parallel` of them running at once, never beside a live run of the event."""
    spec = tick.view.spec(target)
    timing = None if spec is None else tick.view.timing(spec)
    if spec is None or timing is None:
        raise VerbError(f"{quoted(target)} is not an event with a schedule; backfill makes a schedule's occurrences")
    start, end, parallel = _backfill_args(args)
    slots = missing_slots(tick, target, timing, start, end)
    for at in slots:
        run = lifecycle.new_run(tick, target, Trigger.BACKFILL, at, triggered_by=who, backlog=True, fresh_window=True)
        if run is not None:
            run.flags |= {BACKFILL_FLAG, f"{PARALLEL_PREFIX}{parallel}"}
            run.due_by = run.late_at = None  # catching up on the past: never missed or late
    first = local_text(slots[0], spec, tick.now) if slots else ""
    return f"{len(slots)} occurrence(s) queued" + (f", from {first}" if slots else "; every slot already has a run")


def missing_slots(tick: Tick, event: str, timing: occurrences.Timing, start: datetime, end: datetime) -> list[datetime]:
    fires = occurrences.fires_between(timing, start - timedelta(microseconds=1), end, limit=MAX_BACKFILL + 1)
    if len(fires) > MAX_BACKFILL:
        raise VerbError(f"that range holds more than {MAX_BACKFILL} occurrences; backfill a shorter range at a time")
    taken = tick.view.store.runs_scheduled_between(event, iso(start) or "", iso(end) or "")
    taken |= {iso(r.scheduled_for) or "" for r in tick.runs.of(event)}
    return [at for at in fires if iso(at) not in taken]


def _backfill_args(args: dict[str, Any]) -> tuple[datetime, datetime, int]:
    start, end = parse_iso(str(args.get("from"))), parse_iso(str(args.get("to")))
    if start is None or end is None or start.tzinfo is None or end.tzinfo is None:
        raise VerbError("backfill needs from and to as ISO times with an offset")
    if end < start:
        raise VerbError(f"to ({iso(end)}) is before from ({iso(start)}); give from <= to")
    parallel = args.get("max_parallel", 1)
    if not isinstance(parallel, int) or isinstance(parallel, bool) or parallel < 1:
        raise VerbError(f"max_parallel {parallel!r} is not a whole number of 1 or more")
    return start, end, parallel
