"""The [blackouts.NAME] tables: maintenance windows (one-off, or recurring on a schedule) during
which no run of the events they name starts."""

from __future__ import annotations

import fnmatch
from collections.abc import Collection
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Final

from evman.engine.definitions.calendars import CALENDAR_NAME
from evman.engine.definitions.problems import Problems
from evman.engine.definitions.table import Table, describe
from evman.engine.definitions.zones import read_timezone
from evman.engine.model import Blackout, Defaults
from evman.engine.quoting import quoted
from evman.engine.timing.occurrences import check_schedule
from evman.engine.timing.schedules import ScheduleError, resolve_wall_time, zone_of

BLACKOUT_KEYS: Final = ("from", "to", "schedule", "duration", "timezone", "events", "tags", "description")
_WHEN: Final = (
    'expected from/to (from = "2026-12-20T00:00", to = "2027-01-04T00:00") for one window, '
    'or schedule/duration (schedule = "every sunday at 02:00", duration = "3h") for a recurring one'
)


def read_blackouts(raw: object, problems: Problems, defaults: Defaults, events: Collection[str]) -> dict[str, Blackout]:
    """Every blackout of the file by name; `events` are the names a blackout may list
    (patterns such as "etl-*" match names when the engine asks)."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        problems.add("[blackouts]", f"got {describe(raw)}; expected tables such as [blackouts.freeze]", ("blackouts",))
        return {}
    found = {}
    for name, value in raw.items():
        blackout = _read_blackout(name, value, problems, defaults, events)
        if blackout is not None:
            found[name] = blackout
    return found


def _read_blackout(
    name: str, value: object, problems: Problems, defaults: Defaults, events: Collection[str]
) -> Blackout | None:
    where = f"[blackouts.{name}]"
    if CALENDAR_NAME.fullmatch(name) is None:
        problems.add(where, "is not a valid blackout name; expected letters, digits, '.', '_' and '-'", ("blackouts",))
        return None
    if not isinstance(value, dict):
        problems.add(where, f"got {describe(value)}; expected a table; {_WHEN}", ("blackouts", name))
        return None
    before = len(problems.lines)
    table = Table(value, problems, where, at=("blackouts", name))
    table.check_keys(BLACKOUT_KEYS)
    zone = read_timezone(table) or defaults.timezone
    blackout = Blackout(
        name=name,
        timezone=zone,
        events=_read_events(table, events),
        tags=table.strings("tags") or (),
        description=table.string("description") or "",
        **_read_when(table, zone),
    )
    if not blackout.events and not blackout.tags and len(problems.lines) == before:
        table.error(
            "events", 'is missing; expected the events it stops: events = ["etl-*"], ["*"] for all, or tags = [...]'
        )
    return None if len(problems.lines) > before else blackout


def _read_events(table: Table, events: Collection[str]) -> tuple[str, ...]:
    names = table.strings("events") or ()
    for index, name in enumerate(names):
        if not any(c in name for c in "*?[") and name not in events:
            close = fnmatch.filter(events, f"*{name}*")[:3]
            hint = (
                f"did you mean {', '.join(map(quoted, close))}?"
                if close
                else 'expected an event name or a pattern such as "etl-*"'
            )
            table.error(f"events[{index}]", f"{quoted(name)} is not an event; {hint}")
    return names


def _read_when(table: Table, zone: str) -> dict[str, Any]:
    one_off = "from" in table.data or "to" in table.data
    recurring = "schedule" in table.data or "duration" in table.data
    if one_off == recurring:
        table.error(
            "from" if one_off else "schedule", ("has both kinds of window; " if one_off else "no window; ") + _WHEN
        )
        return {}
    if one_off:
        return _read_range(table, zone)
    schedule = table.string("schedule", blank_ok=False)
    duration = table.duration("duration", positive=True)
    if schedule is None or duration is None:
        if "schedule" not in table.data or "duration" not in table.data:
            table.error("schedule" if "schedule" not in table.data else "duration", f"is missing; {_WHEN}")
        return {}
    try:
        check_schedule(schedule.strip())
    except ScheduleError as exc:
        table.error("schedule", str(exc))
        return {}
    return {"schedule": schedule.strip(), "duration_s": duration}


def _read_range(table: Table, zone: str) -> dict[str, Any]:
    start = _instant(table, "from", zone, end=False)
    end = _instant(table, "to", zone, end=True)
    if start is None or end is None:
        return {}
    if end <= start:
        table.error("to", f"is not after from ({end.isoformat()} <= {start.isoformat()}); expected a later time")
        return {}
    return {"start": start.isoformat(), "end": end.isoformat()}


def _instant(table: Table, key: str, zone: str, *, end: bool) -> datetime | None:
    """An ISO date-time (naive: local to the blackout's zone) or a date: a whole day, so a
    `to` date is the end of that day."""
    if key not in table.data:
        table.error(key, f"is missing; {_WHEN}")
        return None
    value = table.data[key]
    if isinstance(value, str):
        value = _parse(value.strip())
    if isinstance(value, date) and not isinstance(value, datetime):
        value = datetime.combine(value + timedelta(days=1 if end else 0), time(0))
    if not isinstance(value, datetime):
        table.error(key, f'got {describe(table.data[key])}; expected a date-time such as "2026-12-20T00:00" or a date')
        return None
    if value.tzinfo is None:
        return resolve_wall_time(value, zone_of(zone))
    return value.astimezone(UTC)


def _parse(text: str) -> date | datetime | str:
    try:
        return date.fromisoformat(text) if len(text) == 10 else datetime.fromisoformat(text)
    except ValueError:
        return text
