"""`evman next`: an event's (or any schedule's) next fire times, with the days its calendar moved
or removed and why."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from evman.engine.model import Calendar, CalendarDef, OnHoliday
from evman.engine.quoting import quoted
from evman.engine.store import Store
from evman.engine.timing.occurrences import Entry, Timing


def event_calendar(spec_json: str) -> tuple[Calendar | None, OnHoliday]:
    """The calendar and on_holiday of a stored spec."""
    from evman.engine.definitions import spec_from_json

    spec = spec_from_json(spec_json)
    return spec.calendar, spec.on_holiday


def stored_calendar(store: Store, name: str) -> Calendar:
    """A calendar the database keeps (from `load`), for `evman next --schedule S --calendar NAME`."""
    from evman.engine.definitions.calendars import resolve_calendar

    stored = store.named_setting("calendars")
    if name not in stored:
        known = ", ".join(sorted(stored)) or "none loaded"
        raise ValueError(f"no calendar {quoted(name)} in {store.url}; the calendars there: {known}")
    defs = {key: _calendar_def(json.loads(text)) for key, text in stored.items()}
    return resolve_calendar(name, defs)


def _calendar_def(data: dict[str, Any]) -> CalendarDef:
    from evman.engine.model import HolidaySource

    return CalendarDef(
        name=data["name"],
        weekend=None if data.get("weekend") is None else tuple(data["weekend"]),
        holidays=tuple(HolidaySource(**h) for h in data.get("holidays") or ()),
        dates=tuple((d[0], d[1]) for d in data.get("dates") or ()),
        include=tuple(data.get("include") or ()),
        exclude=tuple(data.get("exclude") or ()),
    )


def next_fires(
    spec: str,
    tz: str | None,
    after: datetime,
    count: int,
    event: str | None = None,
    *,
    calendar: Calendar | None = None,
    on_holiday: OnHoliday = OnHoliday.SKIP,
) -> dict[str, Any]:
    """The next `count` fires; `removed` lists the fires among them the calendar removed (or
    moved onto a time that already runs), each with its reason."""
    from evman.engine.definitions import machine_timezone
    from evman.engine.timing import occurrences

    zone = tz or machine_timezone()
    try:
        ZoneInfo(zone)
    except (KeyError, ValueError, OSError) as exc:  # OSError: a folder of zones ('Europe'), a name too long
        raise ValueError(f"unknown timezone {quoted(zone)}; use an IANA name such as Europe/London") from exc
    occurrences.check_schedule(spec)
    entries = occurrences.preview(Timing(spec, zone, calendar, on_holiday), after, count)
    return {
        "event": event,
        "schedule": spec,
        "timezone": zone,
        "calendar": None if calendar is None else calendar.name,
        "on_holiday": None if calendar is None else on_holiday.value,
        "after": after.astimezone(UTC).isoformat(),
        "fires": [_fire(e) for e in entries if e.is_fire],
        "removed": [_removed(e) for e in entries if not e.is_fire],
    }


def _fire(entry: Entry) -> dict[str, Any]:
    fire: dict[str, Any] = {"local": entry.local.isoformat(), "utc": _utc(entry.utc), "note": entry.note}
    if entry.change == "moved":
        assert entry.wanted is not None and entry.closure is not None
        fire.update(moved_from=_local(entry.wanted, entry), reason=entry.closure.name, calendar=entry.closure.calendar)
    return fire


def _removed(entry: Entry) -> dict[str, Any]:
    assert entry.closure is not None
    wanted = entry.wanted or entry.utc
    return {
        "local": _local(wanted, entry),
        "utc": _utc(wanted),
        "reason": entry.closure.name,
        "calendar": entry.closure.calendar,
        "merged_into": entry.local.isoformat() if entry.change == "merged" else None,
    }


def _utc(at: datetime) -> str:
    return at.astimezone(UTC).isoformat()


def _local(at: datetime, entry: Entry) -> str:
    tzinfo = entry.local.tzinfo
    return at.astimezone(tzinfo).isoformat()


def render_next(d: dict[str, Any]) -> str:
    calendar = f", calendar {d['calendar']}, on_holiday {d['on_holiday']}" if d.get("calendar") else ""
    lines = [f"{d['event'] or d['schedule']} ({d['schedule']}, {d['timezone']}{calendar}):"]
    rows = [(f["local"], _fire_line(f)) for f in d["fires"]]
    rows += [(r["local"], _removed_line(r)) for r in d.get("removed", ())]
    lines += [line for _, line in sorted(rows, key=lambda row: row[0])]
    if not d["fires"]:
        lines.append("  no further fire times")
    return "\n".join(lines)


def _fire_line(f: dict[str, Any]) -> str:
    note = f"  [{f['note']}]" if f["note"] else ""
    moved = f"  [moved from {f['moved_from']}: {f['reason']}, calendar {f['calendar']}]" if f.get("moved_from") else ""
    return f"  {f['local']}   {f['utc']}{note}{moved}"


def _removed_line(r: dict[str, Any]) -> str:
    if r["merged_into"]:
        return (
            f"  {r['local']}   moved to {r['merged_into']}, which runs anyway: {r['reason']}, calendar {r['calendar']}"
        )
    return f"  {r['local']}   removed: {r['reason']}, calendar {r['calendar']}"
