"""Schedule specs: parse them once, and say when each fires next (cron, every, at, @reboot)."""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from itertools import islice, takewhile
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import schedule
from cronsim import CronSim, CronSimError

from evman.engine.quoting import quoted

ACCEPTED: Final = (
    "a 5-field cron expression ('*/15 * * * *', '0 6 * * mon-fri', with L, W and #), "
    "a macro (@hourly @daily @midnight @weekly @monthly @yearly @annually @reboot), "
    "'every N seconds|minutes|hours|days', 'every day at HH:MM[:SS]', "
    "'every monday at HH:MM' (any weekday), 'at 2026-12-01T09:00' (ISO date-time), "
    "or a business-day schedule ('every business day at 06:00', 'business day -1 of month at 19:00')"
)

MACROS: Final[Mapping[str, str]] = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}

CRON_FIELDS: Final = ("minute", "hour", "day-of-month", "month", "day-of-week")
WEEKDAYS: Final = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")

_EVERY: Final = re.compile(
    r"every(?: (?P<n>\d+))? (?P<unit>seconds?|minutes?|hours?|days?|weeks?|"
    + "|".join(WEEKDAYS)
    + r")(?: at (?P<at>\S+))?"
)
_NEAREST_WEEKDAY: Final = re.compile(r"(\d{1,2})W", re.IGNORECASE)
_CRON_FIELD: Final = re.compile(
    r"[\d*?/,LW#-]+|jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec"
    r"|sun|mon|tue|wed|thu|fri|sat",
    re.IGNORECASE,
)


class ScheduleError(ValueError):
    """A spec (or zone) that cannot be used; the message names it and lists the accepted forms."""


@dataclass(frozen=True)
class Schedule:
    spec: str
    """As given."""
    kind: str
    """"cron" (macros too), "every", "at" or "reboot"."""


@dataclass(frozen=True)
class Fire:
    utc: datetime
    local: datetime
    """The same instant in the schedule's zone."""
    note: str | None
    """Set when DST bends the fire: shifted past a gap, or inside a repeated hour."""


# -- parsed forms ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Cron:
    expr: str
    """Five fields for cronsim, with nW terms taken out of the day-of-month field."""
    nearest: frozenset[int]
    """n of each nW term: the weekday nearest day n, never leaving the month."""
    has_days: bool
    """False when day-of-month held only nW terms (expr then carries a placeholder)."""
    day_and: bool
    is_fixed_time: bool
    """Neither minute nor hour starts with '*': cronsim's Debian DST fix-up applies."""


@dataclass(frozen=True)
class _Elapsed:
    step: timedelta


@dataclass(frozen=True)
class _Days:
    n: int
    """Calendar days: same wall-clock time, n days on."""


@dataclass(frozen=True)
class _AtTime:
    at: time
    weekday: int | None
    """0 is Monday; None fires every day."""


@dataclass(frozen=True)
class _Once:
    when: datetime
    """Naive means local in the zone passed at evaluation."""


@dataclass(frozen=True)
class _Reboot:
    pass


_Rule = _Cron | _Elapsed | _Days | _AtTime | _Once | _Reboot


@dataclass(frozen=True)
class _Slot:
    at: datetime
    """UTC."""
    shifted_from: datetime | None = None
    """The wall time the rule asked for, when it fell in a DST gap."""


def _bad(spec: str, problem: str) -> ScheduleError:
    return ScheduleError(f"Bad schedule {quoted(spec)}: {problem}. Accepted forms: {ACCEPTED}.")


# -- parsing -----------------------------------------------------------------------------


@lru_cache(maxsize=4096)
def _compile(spec: str) -> tuple[str, _Rule]:
    text = " ".join(spec.split())
    lowered = text.lower()
    if not text:
        raise _bad(spec, "it is empty")
    if lowered == "@reboot":
        return "reboot", _Reboot()
    if lowered.startswith("@"):
        if lowered not in MACROS:
            raise _bad(spec, f"{quoted(text)} is not a cron macro")
        return "cron", _cron(spec, MACROS[lowered])
    if lowered == "every" or lowered.startswith("every "):
        return "every", _every(spec, lowered)
    if lowered == "at" or lowered.startswith("at "):
        return "at", _once(spec, text[2:].strip())
    return "cron", _cron(spec, text)


def _cron(spec: str, text: str) -> _Cron:
    fields = text.split()
    if len(fields) != 5:
        if _CRON_FIELD.fullmatch(fields[0]) and len(fields) > 1:
            raise _bad(spec, f"cron needs 5 fields ({' '.join(CRON_FIELDS)}), this has {len(fields)}")
        raise _bad(spec, "it is not a schedule evman knows")
    rule = _split_nearest(spec, fields)
    try:
        first = next(_cronsim(rule, datetime(2000, 1, 1)), None)
    except CronSimError as e:
        raise _bad(spec, _cron_problem(str(e), fields)) from e
    if first is None:
        raise _bad(spec, "it never fires (no date matches its day and month fields)")
    return rule


def _split_nearest(spec: str, fields: list[str]) -> _Cron:
    """Take Quartz-style nW terms out of day-of-month: cronsim only knows LW."""
    minute, hour, dom, month, dow = fields
    terms = dom.split(",")
    nearest = {int(m.group(1)) for t in terms if (m := _NEAREST_WEEKDAY.fullmatch(t))}
    if any(not 1 <= n <= 31 for n in nearest):
        raise _bad(spec, f"day-of-month field {quoted(dom)}: nW needs a day from 1 to 31")
    plain = [t for t in terms if not _NEAREST_WEEKDAY.fullmatch(t)]
    return _Cron(
        expr=" ".join([minute, hour, ",".join(plain) or "1", month, dow]),
        nearest=frozenset(nearest),
        has_days=bool(plain),
        day_and=dom.startswith("*") or dow.startswith("*"),
        is_fixed_time=not (minute.startswith("*") or hour.startswith("*")),
    )


def _cron_problem(message: str, fields: list[str]) -> str:
    name = message.removeprefix("Bad ")
    if name not in CRON_FIELDS:
        return f"cron says {quoted(message)}"
    value = fields[CRON_FIELDS.index(name)]
    why = " or no month in the month field has that day" if name == "day-of-month" else ""
    return (
        f"{name} field {quoted(value)} is not valid{why} (use numbers in range, names like jan "
        "or mon, a-b ranges, */n or a-b/n steps, a,b lists, L, W, #)"
    )


def _every(spec: str, lowered: str) -> _Elapsed | _Days | _AtTime:
    match = _EVERY.fullmatch(lowered)
    if match is None:
        raise _bad(
            spec, "an 'every' schedule reads 'every 15 minutes', 'every day at 06:30' or 'every monday at 09:00'"
        )
    n = int(match["n"] or 1)
    unit, at = match["unit"], match["at"]
    if n < 1:
        raise _bad(spec, "the interval must be at least 1")
    try:
        return _every_rule(spec, n, unit, at)
    except OverflowError as e:
        raise _bad(spec, f"an interval of {n} {unit} is too large to count") from e


def _every_rule(spec: str, n: int, unit: str, at: str | None) -> _Elapsed | _Days | _AtTime:
    job = _schedule_job(spec, n, unit, at)
    if at is None:
        if job.start_day is not None:
            raise _bad(spec, f"a weekday needs a time, as in 'every {unit} at 09:00'")
        if job.unit == "weeks":
            raise _bad(spec, "weeks are not supported; use 'every monday at 09:00' or cron")
        if job.unit == "days":
            return _Days(n)
        return _Elapsed(timedelta(**{str(job.unit): n}))
    if job.start_day is None and (job.unit != "days" or n != 1):
        raise _bad(
            spec,
            "'at' goes with 'every day' or a weekday only; for other offsets use "
            "cron, e.g. '30 * * * *' or '30 6 */2 * *'",
        )
    assert job.at_time is not None
    weekday = None if job.start_day is None else WEEKDAYS.index(job.start_day)
    return _AtTime(at=job.at_time, weekday=weekday)


def _schedule_job(spec: str, n: int, unit: str, at: str | None) -> schedule.Job:
    """Let the `schedule` package judge the words and the time, so its rules and messages apply."""
    try:
        job = getattr(schedule.Scheduler().every(n), unit)
        if at is not None:
            job = job.at(at)
    except schedule.ScheduleError as e:
        # schedule 1.2.2 forgets to format its "hours out of range" message.
        raise _bad(spec, str(e).replace("{}", repr(at))) from e
    assert isinstance(job, schedule.Job)
    return job


def _once(spec: str, text: str) -> _Once:
    try:
        return _Once(datetime.fromisoformat(text))
    except ValueError as e:
        raise _bad(
            spec, f"{quoted(text)} is not an ISO date-time such as 2026-12-01T09:00 or 2026-12-01T09:00+01:00"
        ) from e


# -- evaluation --------------------------------------------------------------------------


class _NearestWeekdayCronSim(CronSim):
    """cronsim plus nW in day-of-month (15W: the weekday nearest the 15th, within its month)."""

    def __init__(self, rule: _Cron, dt: datetime) -> None:
        super().__init__(rule.expr, dt)
        self.nearest = rule.nearest
        self.day_and = rule.day_and
        if not rule.has_days:
            self.days = set()

    def match_dom(self, d: date) -> bool:
        if super().match_dom(d):
            return True
        return any(d.day == _nearest_weekday(d.year, d.month, n) for n in self.nearest)


def _nearest_weekday(year: int, month: int, n: int) -> int | None:
    """Quartz's rule: Saturday moves to Friday, Sunday to Monday, never across the month."""
    last = calendar.monthrange(year, month)[1]
    if n > last:
        return None
    weekday = date(year, month, n).weekday()
    if weekday == 5:
        return n - 1 if n > 1 else n + 2
    if weekday == 6:
        return n + 1 if n < last else n - 2
    return n


def _cronsim(rule: _Cron, dt: datetime) -> CronSim:
    if rule.nearest:
        return _NearestWeekdayCronSim(rule, dt)
    return CronSim(rule.expr, dt)


@lru_cache(maxsize=256)
def _zone(tz: str) -> ZoneInfo:
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, OSError) as e:  # OSError: a name too long for a path
        raise ScheduleError(
            f"Unknown time zone {quoted(tz)}: use an IANA name such as 'Europe/London', 'America/New_York' or 'UTC'."
        ) from e


def _slots(rule: _Rule, after: datetime, zone: ZoneInfo) -> Iterator[_Slot]:
    """Fires strictly after `after`, in order."""
    if after.tzinfo is None or after.utcoffset() is None:
        raise ValueError(f"`after` must be timezone-aware, got {after.isoformat()}")
    # Compare in UTC only: == across zones is always False inside a repeated hour (PEP 495).
    after = after.astimezone(UTC)
    try:
        match rule:
            case _Cron():
                yield from _cron_slots(rule, after, zone)
            case _Elapsed(step):
                at = after
                while True:
                    at += step
                    yield _Slot(at)
            case _Days(n):
                at = after
                while True:
                    slot = _resolve(at.astimezone(zone).replace(tzinfo=None) + timedelta(days=n), zone)
                    at = slot.at
                    yield slot
            case _AtTime():
                yield from _at_time_slots(rule, after, zone)
            case _Once(when):
                slot = _resolve(when, zone) if when.tzinfo is None else _Slot(when.astimezone(UTC))
                if slot.at > after:
                    yield slot
            case _Reboot():
                return
    except OverflowError:
        return  # past year 9999


def _cron_slots(rule: _Cron, after: datetime, zone: ZoneInfo) -> Iterator[_Slot]:
    last = after
    for local in _cronsim(rule, after.astimezone(zone)):
        at = local.astimezone(UTC)
        # Fixed-time rules walk the naive wall clock, which inside a repeated hour can
        # land before `after`; "next" is strictly after it.
        if at > last:
            last = at
            yield _Slot(at, _cron_shifted_from(rule, local, zone))


def _cron_shifted_from(rule: _Cron, local: datetime, zone: ZoneInfo) -> datetime | None:
    gap = _gap_ending_at(local, zone)
    if gap is None or not rule.is_fixed_time:
        return None
    wanted = next(_cronsim(rule, gap - timedelta(seconds=1)), None)
    return wanted if wanted is not None and wanted < local.replace(tzinfo=None) else None


def _at_time_slots(rule: _AtTime, after: datetime, zone: ZoneInfo) -> Iterator[_Slot]:
    day = after.astimezone(zone).date() - timedelta(days=1)
    while True:
        if rule.weekday is None or day.weekday() == rule.weekday:
            slot = _resolve(datetime.combine(day, rule.at), zone)
            if slot.at > after:
                yield slot
        day += timedelta(days=1)


def _resolve(wall: datetime, zone: ZoneInfo) -> _Slot:
    """A naive local time as an instant: a repeated time is its first occurrence; a time
    in a DST gap runs once, just after the gap (as cronsim does for fixed-time cron)."""
    first = wall.replace(tzinfo=zone, fold=0)
    at = first.astimezone(UTC)
    if at.astimezone(zone).replace(tzinfo=None) == wall:
        return _Slot(at)
    # In a gap, fold=1 reads the wall time with the offset after the change (an instant
    # before it), fold=0 with the offset before (an instant after it).
    lo, hi = wall.replace(tzinfo=zone, fold=1).astimezone(UTC), at
    offset_after = hi.astimezone(zone).utcoffset()
    while hi - lo > timedelta(seconds=1):
        mid = lo + timedelta(seconds=(hi - lo).total_seconds() // 2)
        if mid.astimezone(zone).utcoffset() == offset_after:
            hi = mid
        else:
            lo = mid
    return _Slot(hi, shifted_from=wall)


def _gap_ending_at(local: datetime, zone: ZoneInfo) -> datetime | None:
    """The naive wall time where a DST gap starts, if `local` is the instant it ends."""
    before = (local.astimezone(UTC) - timedelta(seconds=1)).astimezone(zone)
    offset_before, offset_now = before.utcoffset(), local.utcoffset()
    if offset_before is None or offset_now is None or offset_before >= offset_now:
        return None
    return before.replace(tzinfo=None) + timedelta(seconds=1)


def _note(slot: _Slot, local: datetime) -> str | None:
    if slot.shifted_from is not None:
        return f"shifted past DST gap ({_clock(slot.shifted_from)} does not exist)"
    if local.replace(fold=0).utcoffset() != local.replace(fold=1).utcoffset():
        return "first of repeated hour (DST fall-back)" if local.fold == 0 else "second of repeated hour"
    return None


def _clock(wall: datetime) -> str:
    return wall.strftime("%H:%M:%S" if wall.second else "%H:%M")


# -- public API --------------------------------------------------------------------------


@lru_cache(maxsize=4096)
def parse_schedule(spec: str) -> Schedule:
    """Validate `spec`; raises ScheduleError naming it and the accepted forms."""
    return Schedule(spec=spec, kind=_compile(spec)[0])


def is_interval(spec: str) -> bool:
    """True for anchor-free specs ('every 15 minutes', 'every 2 days'): each fire is one
    interval after the previous one, so next_fire(after) is after plus the interval."""
    return isinstance(_compile(spec)[1], _Elapsed | _Days)


def next_fire(spec: str, after: datetime, tz: str) -> datetime | None:
    """The first fire strictly after `after`, in UTC; None when there is none
    (an 'at' in the past; @reboot, which the engine runs at start)."""
    slot = next(_slots(_compile(spec)[1], after, _zone(tz)), None)
    return None if slot is None else slot.at


def fires_between(spec: str, after: datetime, until: datetime, tz: str, limit: int = 1000) -> list[datetime]:
    """Fires in (after, until], in UTC, at most `limit` of them (for misfire=all)."""
    slots = takewhile(lambda slot: slot.at <= until, _slots(_compile(spec)[1], after, _zone(tz)))
    return [slot.at for slot in islice(slots, max(limit, 0))]


def fires_after(spec: str, after: datetime, tz: str) -> Iterator[datetime]:
    """Every fire strictly after `after`, in UTC, in order: one walk where fires_between and
    next_fire would each start one (cronsim walks a daily rule an hour at a time: ~50 µs)."""
    return (slot.at for slot in _slots(_compile(spec)[1], after, _zone(tz)))


def preview(spec: str, tz: str, after: datetime, n: int) -> list[Fire]:
    """The next `n` fires for `evman next`, with a note on each that DST bends."""
    zone = _zone(tz)
    fires = []
    for slot in islice(_slots(_compile(spec)[1], after, zone), max(n, 0)):
        local = slot.at.astimezone(zone)
        fires.append(Fire(utc=slot.at, local=local, note=_note(slot, local)))
    return fires


def fire_slots(spec: str, after: datetime, tz: str) -> Iterator[Fire]:
    """Every fire strictly after `after`, in order, with its DST note (the calendars' layer reads these)."""
    zone = _zone(tz)
    for slot in _slots(_compile(spec)[1], after, zone):
        local = slot.at.astimezone(zone)
        yield Fire(utc=slot.at, local=local, note=_note(slot, local))


def resolve_wall_time(wall: datetime, zone: ZoneInfo) -> datetime:
    """A naive local time as a UTC instant, as fixed-time schedules read it: a repeated time
    is its first occurrence, a time in a DST gap is just after the gap."""
    return _resolve(wall, zone).at


def zone_of(tz: str) -> ZoneInfo:
    """The zone named `tz`; ScheduleError naming it when there is none."""
    return _zone(tz)


def latest_fire(spec: str, due: datetime, until: datetime, tz: str) -> datetime:
    """The last fire time in [due, until] (`due` is a fire), cheaply even months later.

    For catching up after a long stop: interval specs step by arithmetic from `due` (their
    phase counts from the previous fire); others look back an hour, a day, a month, a year."""
    if is_interval(spec):
        step = (next_fire(spec, due, tz) or due) - due
        if step.total_seconds() <= 0:
            return due
        return due + step * ((until - due) // step)
    for back in (timedelta(hours=1), timedelta(days=1), timedelta(days=32), timedelta(days=400)):
        start = max(due, until - back)
        fires = fires_between(spec, start, until, tz, limit=1_000_000)
        if fires:
            return fires[-1]
        if start == due:
            break
    return due
