"""Runtime windows: when a run may start, when it must have finished, when it is late."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from engine.model import EventSpec


@dataclass(frozen=True)
class Bounds:
    open_at: datetime | None
    """No start before this (UTC)."""
    due_by: datetime | None
    """Must have finished by this (UTC); a run still waiting then is missed."""
    late_at: datetime | None
    """A run not started by this (UTC) is late."""


def _at(day: date, hhmm: str, tz: ZoneInfo) -> datetime:
    hour, minute = (int(p) for p in hhmm.split(":")[:2])
    return datetime.combine(day, time(hour, minute), tzinfo=tz).astimezone(UTC)


def bounds_for(spec: EventSpec, scheduled_for: datetime) -> Bounds:
    """The window instance a run scheduled for `scheduled_for` belongs to.

    The instance is the first one whose latest end is after the scheduled time, so a run
    triggered after today's window waits for tomorrow's. A latest before the earliest spans
    midnight."""
    tz = ZoneInfo(spec.timezone)
    local = scheduled_for.astimezone(tz)
    day = local.date()
    earliest, latest = spec.window.earliest, spec.window.latest
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
    if spec.late_after is not None:
        anchor = open_at or scheduled_for
        late_at = _at(anchor.astimezone(tz).date(), spec.late_after, tz)
        if late_at < anchor:
            late_at = _at(anchor.astimezone(tz).date() + timedelta(days=1), spec.late_after, tz)
        if late_at < scheduled_for or (due_by is not None and late_at > due_by):
            late_at = None  # created after its late time, or late_after outside this window
    return Bounds(open_at, due_by, late_at)
