"""The verb backfill: the occurrences an event's schedule (and calendar) would have made in a past
range, once each, paced, never beside or ahead of a live run."""

from __future__ import annotations

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
from evman.engine.verbs.targets import RequestError

MAX_BACKFILL: Final = 10_000


def backfill(tick: Tick, target: str, args: dict[str, Any], who: str) -> str:
    """Make the occurrences the event's schedule and calendar would have made in [from, to] that
    no run holds yet (the same unique key as live runs: a slot never runs twice), queued oldest
    first, at most `max_parallel` of them running at once, never beside a live run of the event."""
    spec = tick.view.spec(target)
    timing = None if spec is None else tick.view.timing(spec)
    if spec is None or timing is None:
        raise RequestError(f"{quoted(target)} is not an event with a schedule; backfill makes a schedule's occurrences")
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
        raise RequestError(f"that range holds more than {MAX_BACKFILL} occurrences; backfill a shorter range at a time")
    taken = tick.view.store.runs_scheduled_between(event, iso(start) or "", iso(end) or "")
    taken |= {iso(r.scheduled_for) or "" for r in tick.runs.of(event)}
    return [at for at in fires if iso(at) not in taken]


def _backfill_args(args: dict[str, Any]) -> tuple[datetime, datetime, int]:
    start, end = parse_iso(str(args.get("from"))), parse_iso(str(args.get("to")))
    if start is None or end is None or start.tzinfo is None or end.tzinfo is None:
        raise RequestError("backfill needs from and to as ISO times with an offset")
    if end < start:
        raise RequestError(f"to ({iso(end)}) is before from ({iso(start)}); give from <= to")
    parallel = args.get("max_parallel", 1)
    if not isinstance(parallel, int) or isinstance(parallel, bool) or parallel < 1:
        raise RequestError(f"max_parallel {parallel!r} is not a whole number of 1 or more")
    return start, end, parallel
