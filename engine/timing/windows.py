"""Runtime windows: when a run may start, when it must have finished, when it is late."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Final
from zoneinfo import ZoneInfo

from evman.engine.model import EventSpec
from evman.engine.timing.durations import parse_duration, parse_time_of_day


def _clock(text: str | None) -> str | None:
    """A time-of-day bound; relative ("+...") ones are handled by bounds_for."""
    return None if text is None or text.startswith("+") else text


@dataclass(frozen=True)
class Bounds:
    open_at: datetime | None
    """No start before this (UTC)."""
    due_by: datetime | None
    """Must have finished by this (UTC); a run still waiting then is missed."""
    late_at: datetime | None
    """A run not started by this (UTC) is late."""


_UNBOUNDED: Final = Bounds(None, None, None)


def _at(day: date, hhmm: str, tz: ZoneInfo) -> datetime:
    hour, minute = (int(p) for p in hhmm.split(":")[:2])
    return datetime.combine(day, time(hour, minute), tzinfo=tz).astimezone(UTC)


def _relative_s(text: str | None) -> float | None:
    """Seconds of a "+DURATION" window time, None for a time of day (or no time)."""
    if text is None or not text.startswith("+"):
        return None
    return parse_duration(text[1:])


def bounds_for(spec: EventSpec, scheduled_for: datetime) -> Bounds:
    """The window instance of a run scheduled for `scheduled_for`.

    "+DURATION" bounds count from the scheduled time; time-of-day bounds follow
    `_day_bounds`."""
    if spec.window.earliest is None and spec.window.latest is None and spec.late_after is None:
        return _UNBOUNDED  # most events: no time zone arithmetic for every run of a burst
    earliest, latest, late = (
        _relative_s(spec.window.earliest),
        _relative_s(spec.window.latest),
        _relative_s(spec.late_after),
    )
    if earliest is None and latest is None and late is None:
        return _day_bounds(spec, scheduled_for)
    day = _day_bounds(spec, scheduled_for)
    return Bounds(
        open_at=scheduled_for + timedelta(seconds=earliest) if earliest is not None else day.open_at,
        due_by=scheduled_for + timedelta(seconds=latest) if latest is not None else day.due_by,
        late_at=scheduled_for + timedelta(seconds=late) if late is not None else day.late_at,
    )


def _day_bounds(spec: EventSpec, scheduled_for: datetime) -> Bounds:
    """The window instance a run scheduled for `scheduled_for` belongs to.

    The instance is the first one whose latest end is after the scheduled time, so a run
    triggered after today's window waits for tomorrow's. A latest before the earliest spans
    midnight."""
    tz = ZoneInfo(spec.timezone)
    local = scheduled_for.astimezone(tz)
    day = local.date()
    earliest, latest = _clock(spec.window.earliest), _clock(spec.window.latest)
    open_at: datetime | None = None
    due_by: datetime | None = None
    if latest is not None:
        due_by = _at(day, latest, tz)
        if due_by <= scheduled_for:
            day += timedelta(days=1)
            due_by = _at(day, latest, tz)
        if earliest is not None:
            open_at = _at(day, earliest, tz)
            if open_at >= due_by:
                open_at = _at(day - timedelta(days=1), earliest, tz)
    elif earliest is not None:
        open_at = _at(day, earliest, tz)
    late_at = None
    if _clock(spec.late_after) is not None:
        assert spec.late_after is not None
        anchor = open_at or scheduled_for
        late_at = _at(anchor.astimezone(tz).date(), spec.late_after, tz)
        if late_at < anchor:
            late_at = _at(anchor.astimezone(tz).date() + timedelta(days=1), spec.late_after, tz)
        if late_at < scheduled_for or (due_by is not None and late_at > due_by):
            late_at = None  # created after its late time, or late_after outside this window
    return Bounds(open_at, due_by, late_at)


def resolve_deadline(text: str | None, spec: EventSpec, scheduled_for: datetime) -> datetime | None:
    """The instant (UTC) by which the occurrence scheduled for `scheduled_for` must have finished.

    `text` is the event's `deadline`: "+DURATION" counts from `scheduled_for` (when the
    occurrence fell due); "HH:MM" is resolved to the occurrence's day: the day its window
    opens (else the day it fell due), or the next day when that time of day comes before
    the opening (so a 06:00 deadline of a 22:00 window is the next morning's). Without a
    deadline the window's latest end is the deadline (None when there is neither)."""
    bounds = bounds_for(spec, scheduled_for)
    if text is None:
        return bounds.due_by
    if text.startswith("+"):
        return scheduled_for + timedelta(seconds=parse_duration(text[1:]))
    tz = ZoneInfo(spec.timezone)
    anchor = bounds.open_at or scheduled_for
    day = anchor.astimezone(tz).date()
    hour, minute = parse_time_of_day(text)
    hhmm = f"{hour:02d}:{minute:02d}"
    deadline = _at(day, hhmm, tz)
    return deadline if deadline >= anchor else _at(day + timedelta(days=1), hhmm, tz)
