"""How times read in reasons and alerts: in the event's zone, the date only when not today."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from evman.engine.model import EventSpec


def local_text(at: datetime, spec: EventSpec, now: datetime) -> str:
    """A time as the event's zone reads it: HH:MM today, with the date otherwise, and with
    seconds when it is within the next hour and not on the minute (a 1 s retry backoff cut to
    the minute read as if it were past)."""
    zone = ZoneInfo(spec.timezone)
    local = at.astimezone(zone)
    same_day = local.date() == now.astimezone(zone).date()
    soon = timedelta(0) <= at - now <= timedelta(hours=1)
    clock = "%H:%M:%S" if soon and (local.second or local.microsecond) else "%H:%M"
    return local.strftime(f"{clock} %Z" if same_day else f"%Y-%m-%d {clock} %Z")
