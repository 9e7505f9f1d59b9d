"""The [calendars.NAME] tables: weekends, public holidays, company days, calendars built from others;
and an event's `calendar = "NAME"` resolved to everything it is built from."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any, Final

from evman.engine.definitions.problems import Problems
from evman.engine.definitions.table import Table, describe
from evman.engine.model import Calendar, CalendarDef, HolidaySource
from evman.engine.quoting import quoted
from evman.engine.timing.calendars import DAY_NAMES, source_problem

CALENDAR_KEYS: Final = ("holidays", "dates", "weekend", "include", "exclude", "description")
HOLIDAY_KEYS: Final = ("country", "subdiv", "market", "language")
DATE_KEYS: Final = ("date", "name")
CALENDAR_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
COMPANY_DAY: Final = "company day"
_LONG_DAYS: Final = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def read_calendars(raw: object, problems: Problems) -> dict[str, CalendarDef]:
    """Every calendar of the file by name; a value with a problem is noted and left out of its
    calendar (the file is refused anyway), so events naming the calendar are not blamed too."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        problems.add("[calendars]", f"got {describe(raw)}; expected tables such as [calendars.uk]", ("calendars",))
        return {}
    found = {}
    for name, value in raw.items():
        calendar = _read_calendar(name, value, problems)
        if calendar is not None:
            found[name] = calendar
    _check_links(found, raw, problems)
    return found


def _read_calendar(name: str, value: object, problems: Problems) -> CalendarDef | None:
    where = f"[calendars.{name}]"
    if CALENDAR_NAME.fullmatch(name) is None:
        problems.add(where, "is not a valid calendar name; expected letters, digits, '.', '_' and '-'", ("calendars",))
        return None
    if not isinstance(value, dict):
        problems.add(where, f"got {describe(value)}; expected a table of holidays, dates, weekend", ("calendars", name))
        return None
    table = Table(value, problems, where, at=("calendars", name))
    table.check_keys(CALENDAR_KEYS)
    table.string("description")
    return CalendarDef(
        name=name,
        weekend=_read_weekend(table),
        holidays=_read_holidays(table),
        dates=_read_dates(table),
        include=table.strings("include") or (),
        exclude=table.strings("exclude") or (),
    )


def _read_weekend(table: Table) -> tuple[int, ...] | None:
    names = table.strings("weekend")
    if names is None:
        return None
    days = []
    for index, text in enumerate(names):
        day = _weekday(text)
        if day is None:
            table.error(
                f"weekend[{index}]", f"{quoted(text)} is not a day of the week; expected one of {', '.join(DAY_NAMES)}"
            )
            return None
        days.append(day)
    if len(set(days)) == 7:
        table.error("weekend", "names all seven days, which leaves no business day; expected at most six days")
        return None
    return tuple(sorted(set(days)))


def _weekday(text: str) -> int | None:
    word = text.strip().lower()
    if word in DAY_NAMES:
        return DAY_NAMES.index(word)
    return _LONG_DAYS.index(word) if word in _LONG_DAYS else None


def _read_holidays(table: Table) -> tuple[HolidaySource, ...]:
    raw = table.data.get("holidays")
    if raw is None:
        return ()
    items = raw if isinstance(raw, list) else [raw]
    sources = []
    for index, item in enumerate(items):
        key = f"holidays[{index}]" if isinstance(raw, list) else "holidays"
        source = _read_source(table, key, item)
        if source is not None:
            sources.append(source)
    return tuple(sources)


def _read_source(table: Table, key: str, item: object) -> HolidaySource | None:
    expected = 'a table such as { country = "GB", subdiv = "ENG" } or { market = "XNYS" }'
    if not isinstance(item, dict):
        table.error(key, f"got {describe(item)}; expected {expected}")
        return None
    sub = Table(item, table.problems, table.where, f"{table.prefix}{key}.", (*table.at, *_path(key)))
    sub.check_keys(HOLIDAY_KEYS)
    values = {k: sub.string(k, blank_ok=False) for k in HOLIDAY_KEYS}
    if (values["country"] is None) == (values["market"] is None):
        table.error(key, f"needs a country or a market (one of them); expected {expected}")
        return None
    if values["market"] is not None and values["subdiv"] is not None:
        sub.error("subdiv", "goes with a country, not a market; expected no subdiv here")
        return None
    source = HolidaySource(**values)
    problem = source_problem(source)
    if problem is not None:
        sub.error(*problem)
        return None
    return source


def _path(key: str) -> tuple[str | int, ...]:
    name, _, rest = key.partition("[")
    return (name, int(rest.rstrip("]"))) if rest else (name,)


def _read_dates(table: Table) -> tuple[tuple[str, str], ...]:
    raw = table.get("dates", (list,), 'an array of dates such as ["2026-12-24", "2026-12-31"]')
    if raw is None:
        return ()
    found: dict[str, str] = {}
    for index, item in enumerate(raw):
        entry = _read_date(table, f"dates[{index}]", item)
        if entry is not None:
            found[entry[0]] = entry[1]
    return tuple(sorted(found.items()))


def _read_date(table: Table, key: str, item: object) -> tuple[str, str] | None:
    name = COMPANY_DAY
    if isinstance(item, dict):
        sub = Table(item, table.problems, table.where, f"{table.prefix}{key}.", (*table.at, *_path(key)))
        sub.check_keys(DATE_KEYS)
        name = sub.string("name", blank_ok=False) or COMPANY_DAY
        item = item.get("date")
    if isinstance(item, date) and not isinstance(item, datetime):
        return item.isoformat(), name
    if isinstance(item, str):
        try:
            return date.fromisoformat(item.strip()).isoformat(), name
        except ValueError:
            pass
    table.error(
        key, f'got {describe(item)}; expected a date such as "2026-12-24" or {{ date = "2026-12-24", name = "..." }}'
    )
    return None


def _check_links(found: dict[str, CalendarDef], raw: Mapping[str, Any], problems: Problems) -> None:
    """include/exclude name calendars of the file, and no calendar is built from itself."""
    for name, calendar in list(found.items()):
        table = Table(raw[name], problems, f"[calendars.{name}]", at=("calendars", name))
        for key, names in (("include", calendar.include), ("exclude", calendar.exclude)):
            for index, other in enumerate(names):
                if other not in raw:
                    known = ", ".join(sorted(raw)) or "none"
                    table.error(
                        f"{key}[{index}]", f"{quoted(other)} is not a calendar of this file; expected one of {known}"
                    )
        cycle = _cycle(name, found, [])
        if cycle:
            table.error("include", f"builds the calendar from itself ({' -> '.join(cycle)}); expected no loop")
            found[name] = CalendarDef(name, calendar.weekend, calendar.holidays, calendar.dates)


def _cycle(name: str, found: Mapping[str, CalendarDef], path: list[str]) -> list[str] | None:
    if name in path:
        return [*path[path.index(name) :], name]
    calendar = found.get(name)
    if calendar is None:
        return None
    for other in (*calendar.include, *calendar.exclude):
        cycle = _cycle(other, found, [*path, name])
        if cycle:
            return cycle
    return None


def resolve_calendar(name: str, defs: Mapping[str, CalendarDef]) -> Calendar:
    """The calendar `name` with every calendar it is built from (the named one first)."""
    order: list[CalendarDef] = []
    pending = [name]
    while pending:
        current = pending.pop(0)
        if current in defs and defs[current] not in order:
            order.append(defs[current])
            pending += [*defs[current].include, *defs[current].exclude]
    return Calendar(name, tuple(order))
