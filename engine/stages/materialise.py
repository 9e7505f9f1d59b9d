"""Stage 2: turn due schedule fires into waiting runs, applying `misfire` to a backlog."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from evman.engine.clock import iso, parse_iso
from evman.engine.model import EventSpec, Misfire, Trigger
from evman.engine.tick import lifecycle
from evman.engine.tick.context import Tick
from evman.engine.timing import occurrences
from evman.engine.timing.occurrences import Timing

MISFIRE_GRACE_S: Final = 60.0
MAX_CATCH_UP: Final = 1000

_Memo = dict[tuple[str, str, Any, str, datetime], tuple[list[datetime], datetime | None]]


def materialise(tick: Tick) -> None:
    """A run per due occurrence of every event whose next_fire_at has come (events_due index)."""
    memo: _Memo = {}
    due_rows = tick.view.store.claim_due_events(tick.now)  # several engines: each event to one
    tick.elsewhere.holding(row["name"] for row in due_rows)  # locked: their concurrency, one read for all
    for row in due_rows:
        if row["name"] in tick.fired:
            continue
        tick.view.remember(row)  # the due row carries the spec: no SELECT per event
        spec = tick.view.spec(row["name"])
        timing = None if spec is None else tick.view.timing(spec)
        if spec is None or timing is None:
            continue
        due = parse_iso(row["next_fire_at"])
        assert due is not None
        fires, nxt = _fire_times(timing, due, tick.now, memo)
        _materialise_event(tick, spec, fires)
        tick.batch.next_fire(spec.name, iso(nxt))
        tick.fired.add(spec.name)
    tick.next_due_moved = True


def _materialise_event(tick: Tick, spec: EventSpec, fires: list[datetime]) -> None:
    late = (tick.now - fires[-1]).total_seconds() > MISFIRE_GRACE_S or len(fires) > 1
    backlog = False
    for at, note in _occurrences(tick, spec, fires, late):
        run = lifecycle.new_run(tick, spec.name, Trigger.SCHEDULE, at, triggered_by=note, backlog=backlog)
        backlog = backlog or run is not None


def _fire_times(timing: Timing, due: datetime, now: datetime, memo: _Memo) -> tuple[list[datetime], datetime | None]:
    """(the fires from `due` up to now, the next fire after them), through the event's calendar;
    events that share a timing and a due time (a nightly batch) share the arithmetic through `memo`."""
    # the timing's fields, not the Timing: a frozen dataclass hashes in Python (its Enum too),
    # twice per event of a burst; a calendar still does, for the events that have one
    key = (timing.schedule, timing.timezone, timing.calendar, timing.on_holiday.value, due)
    if key not in memo:
        fires = [due] + occurrences.fires_between(timing, due, now, limit=MAX_CATCH_UP)
        if len(fires) > MAX_CATCH_UP:  # months of backlog: catch up to now, not 1000 fires on
            last = occurrences.latest_fire(timing, due, now)
            fires += [last] if last > fires[-1] else []
        nxt = (
            occurrences.next_fire(timing, max(fires[-1], now))
            if not occurrences.is_interval(timing)
            else occurrences.next_fire(timing, fires[-1])
        )
        memo[key] = (fires, nxt)
    fires, nxt = memo[key]
    return list(fires), nxt


def _occurrences(tick: Tick, spec: EventSpec, fires: list[datetime], late: bool) -> list[tuple[datetime, str | None]]:
    if not late:
        return [(fires[-1], None)]
    missed = len(fires)
    if spec.misfire is Misfire.ALL:
        return [(f, f"catch-up ({missed} missed while no engine ran)") for f in fires]
    if spec.misfire is Misfire.ONCE:
        return [(fires[-1], f"catch-up once for {missed} missed occurrence(s)")]
    tick.change("event", spec.name, None, None, f"{missed} occurrence(s) missed while no engine ran (misfire=skip)")
    return []
