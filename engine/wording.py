"""How times read in reasons and alerts: in the event's zone, the date only when not today."""
from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from engine.model import EventSpec


def local_text(at: datetime, spec: EventSpec, now: datetime) -> str:
    """A time as the event's zone reads it: HH:MM today, with the date otherwise."""
    zone = ZoneInfo(spec.timezone)
    local = at.astimezone(zone)
    same_day = local.date() == now.astimezone(zone).date()
    return local.strftime("%H:%M %Z" if same_day else "%Y-%m-%d %H:%M %Z")
