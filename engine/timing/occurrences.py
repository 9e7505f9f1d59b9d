"""An event's occurrences: its schedule read through its calendar (`on_holiday` skip, next or
previous) and business-day schedules. The engine, `evman next`, the plan and foresight all ask here,
so they see the same real occurrences."""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from itertools import islice, takewhile
from typing import Final
from zoneinfo import ZoneInfo

from evman.engine.model import Calendar, EventSpec, OnHoliday
from evman.engine.timing import business, calendars, schedules
from evman.engine.timing.calendars import Closure
from evman.engine.timing.schedules import Fire

QUIET_DAYS: Final = 800
"""A schedule whose calendar removes every fire for this long has no next fire."""
_TINY: Final = timedelta(microseconds=1)


@dataclass(frozen=True)
class Timing:
    """What decides an event's fire times: schedule, zone, calendar and on_holiday."""

    schedule: str
    timezone: str
    calendar: Calendar | None = None
    on_holiday: OnHoliday = OnHoliday.SKIP

    @property
    def is_business(self) -> bool:
        return business.is_business_spec(self.schedule)


@dataclass(frozen=True)
class Entry:
    """One line of what a schedule does: a fire, or a fire its calendar moved or removed."""

    utc: datetime
    """When it runs (a moved fire: its new time); a removed one: when it would have run."""
    local: datetime
    note: str | None
    """Set when DST bends the fire."""
    change: str | None = None
    """None: a fire as scheduled; "moved": a fire on another day; "removed": no run; "merged":
    moved onto a time that already has a fire (one run)."""
    closure: Closure | None = None
    """Why the calendar moved or removed it."""
    wanted: datetime | None = None
    """Moved or merged: when the schedule alone would have run it (UTC)."""

    @property
    def is_fire(self) -> bool:
        return self.change is None or self.change == "moved"


def timing_of(spec: EventSpec) -> Timing | None:
    """None for an event without a schedule, or with @reboot."""
    if spec.schedule is None or spec.schedule == "@reboot":
        return None
    return Timing(spec.schedule, spec.timezone, spec.calendar, spec.on_holiday)


def check_schedule(spec: str) -> str:
    """Validate any schedule evman knows (business-day ones too); its kind, or ScheduleError."""
    if business.is_business_spec(spec):
        business.parse_business(spec)
        return "business"
    return schedules.parse_schedule(spec).kind


def is_interval(timing: Timing) -> bool:
    return not timing.is_business and schedules.is_interval(timing.schedule)


def entries(timing: Timing, after: datetime) -> Iterator[Entry]:
    """Fires strictly after `after` in time order, with the ones the calendar moved or removed."""
    after = after.astimezone(UTC)
    zone = schedules.zone_of(timing.timezone)
    if timing.is_business:
        rule = business.parse_business(timing.schedule)
        for at in business.business_fires(rule, timing.calendar or calendars.WEEKDAYS_ONLY, after, zone):
            yield _entry(at, zone, rule.at)
    elif timing.calendar is None:
        for fire in schedules.fire_slots(timing.schedule, after, timing.timezone):
            yield Entry(fire.utc, fire.local, fire.note)
    elif timing.on_holiday is OnHoliday.SKIP:
        yield from _skipping(timing, timing.calendar, after, zone)
    else:
        yield from _moving(timing, timing.calendar, after, zone)


def next_fire(timing: Timing, after: datetime) -> datetime | None:
    """The first real fire strictly after `after` (UTC); None when there is none."""
    return next((e.utc for e in entries(timing, after) if e.is_fire), None)


def fires_between(timing: Timing, after: datetime, until: datetime, limit: int = 1000) -> list[datetime]:
    """Real fires in (after, until], at most `limit`."""
    if timing.calendar is None and not timing.is_business:
        return schedules.fires_between(timing.schedule, after, until, timing.timezone, limit)
    fires = (e.utc for e in entries(timing, after) if e.is_fire)
    return list(islice(takewhile(lambda at: at <= until, fires), max(limit, 0)))


WalkKey = tuple[str, str, Calendar | None, str, datetime]


def walk_key(timing: Timing, after: datetime) -> WalkKey:
    """What the fires after `after` depend on, as a key: the timing's fields, not the Timing (a
    frozen dataclass hashes in Python, its Enum too); a calendar still does, for the events that
    have one."""
    return (timing.schedule, timing.timezone, timing.calendar, timing.on_holiday.value, after)


def is_plain(timing: Timing) -> bool:
    """A schedule alone (no calendar, not business days): its fires are the schedule's."""
    return timing.calendar is None and not timing.is_business


def plain_fires_after(timing: Timing, after: datetime) -> Iterator[datetime]:
    """A plain timing's fires strictly after `after`, in order, in one walk."""
    return schedules.fires_after(timing.schedule, after, timing.timezone)


def preview(timing: Timing, after: datetime, n: int) -> list[Entry]:
    """The next `n` fires, with every fire the calendar moved or removed among them."""
    out: list[Entry] = []
    count = 0
    for entry in entries(timing, after):
        if count >= n:
            break
        out.append(entry)
        count += entry.is_fire
    return out


def latest_fire(timing: Timing, due: datetime, until: datetime) -> datetime:
    """The last fire in [due, until] (`due` is a fire), cheaply even months later."""
    if timing.calendar is None and not timing.is_business:
        return schedules.latest_fire(timing.schedule, due, until, timing.timezone)
    for back in (timedelta(days=1), timedelta(days=32), timedelta(days=400)):
        start = max(due, until - back)
        fires = fires_between(timing, start, until, limit=1_000_000)
        if fires:
            return fires[-1]
        if start == due:
            break
    return due


# -- through a calendar ---------------------------------------------------------------------


def _skipping(timing: Timing, cal: Calendar, after: datetime, zone: ZoneInfo) -> Iterator[Entry]:
    """on_holiday = skip: a fire on a closed day is removed. Anchored schedules jump to the next
    day after a removed fire (one line per closed day, not one per fire of it)."""
    start, anchored = after, not schedules.is_interval(timing.schedule)
    progress = after
    while True:
        for fire in schedules.fire_slots(timing.schedule, start, timing.timezone):
            if (fire.utc - progress).days > QUIET_DAYS:
                return
            why = calendars.closure(cal, fire.local.date())
            if why is None:
                progress = fire.utc
                yield Entry(fire.utc, fire.local, fire.note)
                continue
            yield Entry(fire.utc, fire.local, fire.note, "removed", why)
            if anchored:
                start = _day_start(fire.local.date() + timedelta(days=1), zone) - _TINY
                break
        else:
            return


def _moving(timing: Timing, cal: Calendar, after: datetime, zone: ZoneInfo) -> Iterator[Entry]:
    """on_holiday = next|previous: a fire on a closed day moves to the next (previous) business
    day at the same local time; one that lands on another fire's time merges into it."""
    step = 1 if timing.on_holiday is OnHoliday.NEXT else -1
    heap: list[tuple[datetime, int, int, Entry]] = []
    order = itertools.count()
    last: datetime | None = None
    progress = after
    for fire in schedules.fire_slots(timing.schedule, _raw_start(timing, cal, after, zone), timing.timezone):
        if (fire.utc - progress).days > QUIET_DAYS:
            break
        entry = _moved(cal, fire, step, zone)
        heapq.heappush(heap, (entry.utc, 0 if entry.change is None else 1, next(order), entry))
        bound = _lower_bound(cal, fire, step, zone)
        while heap and heap[0][0] < bound:
            last, ready = _settle(heapq.heappop(heap)[3], last)
            if _is_after(ready, after):
                progress = max(progress, ready.utc) if ready.is_fire else progress
                yield ready
    while heap:
        last, ready = _settle(heapq.heappop(heap)[3], last)
        if _is_after(ready, after):
            yield ready


def _is_after(entry: Entry, after: datetime) -> bool:
    """A fire after `after`; a removed or merged one only if the schedule wanted it after `after`."""
    return entry.utc > after and (entry.is_fire or (entry.wanted or entry.utc) > after)


def _settle(entry: Entry, last: datetime | None) -> tuple[datetime | None, Entry]:
    """A fire at the time of the fire before it is merged into that one (one run)."""
    if not entry.is_fire:
        return last, entry
    if last is not None and entry.utc == last:
        return last, Entry(entry.utc, entry.local, entry.note, "merged", entry.closure, entry.wanted or entry.utc)
    return entry.utc, entry


def _moved(cal: Calendar, fire: Fire, step: int, zone: ZoneInfo) -> Entry:
    why = calendars.closure(cal, fire.local.date())
    if why is None:
        return Entry(fire.utc, fire.local, fire.note)
    day = calendars.step_business_day(cal, fire.local.date(), step)
    if day is None:
        return Entry(fire.utc, fire.local, fire.note, "removed", why)
    wall = fire.local.replace(tzinfo=None)
    at = schedules.resolve_wall_time(datetime.combine(day, wall.time()), zone)
    moved = _entry(at, zone, wall.time())
    return Entry(moved.utc, moved.local, moved.note, "moved", why, fire.utc)


def _lower_bound(cal: Calendar, fire: Fire, step: int, zone: ZoneInfo) -> datetime:
    """No entry of a later fire comes before this: next moves forward (>= the fire); previous
    moves back at most to the start of the business day at or before the fire's day."""
    if step > 0:
        return fire.utc + _TINY
    day = fire.local.date()
    if calendars.closure(cal, day) is not None:
        found = calendars.step_business_day(cal, day, -1)
        if found is None:
            return fire.utc - timedelta(days=calendars.SEARCH_DAYS + 1)
        day = found
    return _day_start(day, zone)


def _raw_start(timing: Timing, cal: Calendar, after: datetime, zone: ZoneInfo) -> datetime:
    """next: a fire on the closed days just before `after` may move past it, so read the
    schedule from the end of the last business day before `after`'s day."""
    if timing.on_holiday is not OnHoliday.NEXT or schedules.is_interval(timing.schedule):
        return after
    today = after.astimezone(zone).date()
    before = calendars.step_business_day(cal, today, -1)
    if before is None:
        return after - timedelta(days=calendars.SEARCH_DAYS)
    return min(after, _day_start(before + timedelta(days=1), zone) - _TINY)


def _day_start(day: date, zone: ZoneInfo) -> datetime:
    return schedules.resolve_wall_time(datetime.combine(day, time(0)), zone)


def _entry(at: datetime, zone: ZoneInfo, wanted: time) -> Entry:
    """A fire at wall time `wanted` on its day, with a note when DST bent it."""
    local = at.astimezone(zone)
    note = None
    if local.time().replace(fold=0) != wanted:
        note = f"shifted past DST gap ({wanted.strftime('%H:%M')} does not exist)"
    elif local.replace(fold=0).utcoffset() != local.replace(fold=1).utcoffset():
        note = "first of repeated hour (DST fall-back)"
    return Entry(at, local, note)


# -- the AutoSys trap --------------------------------------------------------------------------

SILENT_DAYS: Final = 30


def silenced(timing: Timing, now: datetime, days: int = SILENT_DAYS) -> tuple[datetime | None, datetime | None] | None:
    """When the calendar leaves the schedule no fire in the next `days` days although the
    schedule alone has one: (the schedule's own next fire, the calendar's next, or None);
    None when it is not silenced."""
    horizon = now + timedelta(days=days)
    real = next_fire(timing, now)
    if real is not None and real <= horizon:
        return None
    if timing.is_business:
        return None, real
    own = schedules.next_fire(timing.schedule, now, timing.timezone)
    return None if own is None or own > horizon else (own, real)
