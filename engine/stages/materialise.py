"""Stage 2: turn due schedule fires into waiting runs, applying `misfire` to a backlog."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Final

from evman.engine.clock import iso, parse_iso
from evman.engine.model import EventSpec, Misfire, Trigger
from evman.engine.tick import lifecycle
from evman.engine.tick.context import Tick
from evman.engine.tick.drafts import Draft
from evman.engine.timing import occurrences
from evman.engine.timing.occurrences import Timing, WalkKey, walk_key

MISFIRE_GRACE_S: Final = 60.0
MAX_CATCH_UP: Final = 1000

_Memo = dict[WalkKey, tuple[list[datetime], datetime | None]]


def materialise(tick: Tick) -> None:
    """A run per due occurrence of every event whose next_fire_at has come (events_due index).
    An occurrence drafted ahead (engine/tick/drafts.py) is made from its draft."""
    memo: _Memo = {}
    due_rows = tick.view.store.claim_due_events(tick.now)  # several engines: each event to one
    tick.elsewhere.holding(row["name"] for row in due_rows)  # locked: their concurrency, one read for all
    drafts = tick.view.drafts
    for row in due_rows:
        name = row["name"]
        if name in tick.fired:
            continue
        tick.view.remember(row)  # the due row carries the spec: no SELECT per event
        spec = tick.view.spec(name)
        draft = drafts.get(name)
        if draft is not None and draft.serves(spec, row["next_fire_at"], tick.now, MISFIRE_GRACE_S):
            _materialise_drafted(tick, draft)
            continue
        timing = None if spec is None else tick.view.timing(spec)
        if spec is None or timing is None:
            continue
        due = parse_iso(row["next_fire_at"])
        assert due is not None
        fires, nxt = _fire_times(timing, due, tick.now, memo, tick.view.fires_ahead)
        _materialise_event(tick, spec, fires)
        tick.batch.next_fire(spec.name, iso(nxt))
        tick.fired.add(spec.name)
    tick.next_due_moved = True


def _materialise_drafted(tick: Tick, draft: Draft) -> None:
    """The run of an occurrence on time, made from its draft; the start stage looks at it first
    (stages/start.py, start_drafted)."""
    name = draft.spec.name
    run = lifecycle.new_drafted(tick, draft)
    if run is not None and draft.plain:
        tick.drafted.append(run)
    tick.batch.next_fire(name, draft.next_text)
    tick.fired.add(name)


def _materialise_event(tick: Tick, spec: EventSpec, fires: list[datetime]) -> None:
    late = (tick.now - fires[-1]).total_seconds() > MISFIRE_GRACE_S or len(fires) > 1
    backlog = False
    for at, note in _occurrences(tick, spec, fires, late):
        run = lifecycle.new_run(tick, spec.name, Trigger.SCHEDULE, at, triggered_by=note, backlog=backlog)
        backlog = backlog or run is not None


def _fire_times(
    timing: Timing, due: datetime, now: datetime, memo: _Memo, ahead: Mapping[WalkKey, datetime | None]
) -> tuple[list[datetime], datetime | None]:
    """(the fires from `due` up to now, the next fire after them), through the event's calendar;
    events that share a timing and a due time (a nightly batch) share the arithmetic through
    `memo`. `ahead`: the first fire after `due`, worked out before the tick (ReadView.prefetch):
    an occurrence materialised before its next fire needs no arithmetic here."""
    key = walk_key(timing, due)
    if key not in memo:
        first = ahead.get(key, due)  # `due`: not worked out (a fire after it is later)
        if first is None or first > now:
            memo[key] = ([due], first)
        elif occurrences.is_plain(timing):
            memo[key] = _one_walk(timing, due, now)
        else:
            memo[key] = _two_walks(timing, due, now)
    fires, nxt = memo[key]
    return list(fires), nxt


def _one_walk(timing: Timing, due: datetime, now: datetime) -> tuple[list[datetime], datetime | None]:
    """A schedule alone: its fires after `due` up to now and the first after now, in one walk
    (the first fire it finds after `due` is, on time, the next fire: half the arithmetic)."""
    fires = [due]
    for at in occurrences.plain_fires_after(timing, due):
        if at > now:
            return fires, at
        fires.append(at)
        if len(fires) > MAX_CATCH_UP:  # months of backlog: as below
            return _two_walks(timing, due, now)
    return fires, None


def _two_walks(timing: Timing, due: datetime, now: datetime) -> tuple[list[datetime], datetime | None]:
    fires = [due] + occurrences.fires_between(timing, due, now, limit=MAX_CATCH_UP)
    if len(fires) > MAX_CATCH_UP:  # months of backlog: catch up to now, not 1000 fires on
        last = occurrences.latest_fire(timing, due, now)
        fires += [last] if last > fires[-1] else []
    nxt = (
        occurrences.next_fire(timing, max(fires[-1], now))
        if not occurrences.is_interval(timing)
        else occurrences.next_fire(timing, fires[-1])
    )
    return fires, nxt


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
