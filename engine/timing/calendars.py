"""Business calendars: which local days are closed (weekends, public holidays, company days) and why.

Public holidays come from the `holidays` package, imported the first time a calendar asks for
one (its import costs about 0.2 s): `evman list` and events without holidays never pay it."""

from __future__ import annotations

import calendar as stdlib_calendar
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from typing import Any, Final

from evman.engine.model import Calendar, CalendarDef, HolidaySource
from evman.engine.quoting import quoted

DAY_NAMES: Final = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
WEEKEND: Final = (5, 6)
SEARCH_DAYS: Final = 366
"""How far next/previous look for a business day before giving up (the fire is then removed)."""
WEEKDAYS_ONLY: Final = Calendar("weekdays", (CalendarDef("weekdays"),))
"""Business days of an event without a calendar, for business-day schedules: Monday to Friday."""


@dataclass(frozen=True)
class Closure:
    """Why a day is not a business day."""

    name: str
    """The holiday's or company day's name, or "Saturday (weekend)"."""
    calendar: str
    """The calendar that closes it."""

    def __str__(self) -> str:
        return f"{self.name}, calendar {self.calendar}"


def closure(cal: Calendar, day: date) -> Closure | None:
    """Why `day` (a local date) is closed in `cal`; None on a business day."""
    return _compiled(cal).closure(day)


def is_business_day(cal: Calendar, day: date) -> bool:
    return _compiled(cal).closure(day) is None


def step_business_day(cal: Calendar, day: date, step: int) -> date | None:
    """The first business day after (`step` 1) or before (-1) `day`; None past SEARCH_DAYS."""
    for _ in range(SEARCH_DAYS):
        try:
            day += timedelta(days=step)
        except OverflowError:
            return None
        if is_business_day(cal, day):
            return day
    return None


def business_days_of_month(cal: Calendar, year: int, month: int) -> tuple[date, ...]:
    return _compiled(cal).month(year, month)


def nth_business_day(cal: Calendar, year: int, month: int, nth: int) -> date | None:
    """The nth business day of the month (1 the first, -1 the last); None when it has fewer."""
    days = business_days_of_month(cal, year, month)
    index = nth - 1 if nth > 0 else nth
    return days[index] if -len(days) <= index < len(days) else None


def holiday_names(source: HolidaySource, year: int) -> Mapping[date, str]:
    """{date: name} of `source`'s holidays in `year` (observed days included, as the package
    lists them: "Christmas Day (observed)")."""
    return _holidays_of_year(source, year)


def source_problem(source: HolidaySource) -> tuple[str, str] | None:
    """(the key, what is wrong with it in words) for an unknown country, subdivision, market
    or language; None when the `holidays` package (imported here) knows them all."""
    import holidays

    try:
        _make(holidays, source, 2000)
    except NotImplementedError as exc:
        return _unsupported(holidays, source, str(exc))
    except (KeyError, ValueError, TypeError, AttributeError) as exc:
        return "language" if source.language else "country", f"the holidays package refuses it ({exc})"
    return None


def _unsupported(holidays: Any, source: HolidaySource, message: str) -> tuple[str, str]:
    if source.market is not None:
        markets = ", ".join(sorted(holidays.list_supported_financial()))
        return (
            "market",
            f"{quoted(source.market)} is not a market the holidays package knows; expected one of {markets}",
        )
    countries = holidays.list_supported_countries()
    if source.country not in countries:
        return "country", (
            f"{quoted(source.country)} is not a country the holidays package knows; expected an "
            'ISO 3166 code such as "GB", "US", "DE" or "FR"'
        )
    subdivs = countries[source.country]
    if source.subdiv is not None and source.subdiv not in subdivs:
        return (
            "subdiv",
            f"{quoted(source.subdiv)} is not a subdivision of {source.country}; expected one of {', '.join(subdivs)}",
        )
    return "country", f"the holidays package says: {message}"


def _make(holidays: Any, source: HolidaySource, year: int) -> Any:
    options: dict[str, Any] = {"years": year}
    if source.language is not None:
        options["language"] = source.language
    if source.market is not None:
        return holidays.financial_holidays(source.market, **options)
    if source.subdiv is not None:
        options["subdiv"] = source.subdiv
    return holidays.country_holidays(source.country, **options)


@lru_cache(maxsize=1024)
def _holidays_of_year(source: HolidaySource, year: int) -> Mapping[date, str]:
    import holidays

    if not 1 <= year <= 9999:
        return {}
    found = _make(holidays, source, year)
    return {day: str(name) for day, name in sorted(found.items()) if day.year == year}


def source_label(source: HolidaySource) -> str:
    if source.market is not None:
        return f"{source.market} market holidays"
    return f"{source.country}{'-' + source.subdiv if source.subdiv else ''} holidays"


class _Compiled:
    """A calendar ready to answer: its definitions by name, weekends resolved, months cached."""

    def __init__(self, cal: Calendar) -> None:
        self.name = cal.name
        self.defs = {d.name: d for d in cal.defs}
        self.weekend = self._weekend(cal.name, set())
        self.dates = {d.name: {date.fromisoformat(day): label for day, label in d.dates} for d in cal.defs}
        self.months: dict[tuple[int, int], tuple[date, ...]] = {}

    def _weekend(self, name: str, seen: set[str]) -> frozenset[int]:
        found = self.defs.get(name)
        if found is None or name in seen:
            return frozenset(WEEKEND)
        if found.weekend is not None:
            return frozenset(found.weekend)
        if not found.include:
            return frozenset(WEEKEND)
        seen.add(name)
        return frozenset().union(*(self._weekend(inc, seen) for inc in found.include))

    def closure(self, day: date) -> Closure | None:
        listed = self.listed(self.name, day, frozenset())
        if listed is not None:
            return listed
        if day.weekday() in self.weekend:
            return Closure(f"{stdlib_calendar.day_name[day.weekday()]} (weekend)", self.name)
        return None

    def listed(self, name: str, day: date, seen: frozenset[str]) -> Closure | None:
        """Whether calendar `name` lists `day` (its own holidays and dates, or an included
        calendar's closures), unless one it excludes lists it."""
        found = self.defs.get(name)
        if found is None or name in seen:
            return None
        seen = seen | {name}
        hit = self._own(found, day) or next(
            (c for inc in found.include if (c := self.listed(inc, day, seen)) is not None), None
        )
        if hit is None or any(self.listed(exc, day, seen) is not None for exc in found.exclude):
            return None
        return hit

    def _own(self, found: CalendarDef, day: date) -> Closure | None:
        label = self.dates[found.name].get(day)
        if label is not None:
            return Closure(label, found.name)
        for source in found.holidays:
            name = _holidays_of_year(source, day.year).get(day)
            if name is not None:
                return Closure(name, found.name)
        return None

    def month(self, year: int, month: int) -> tuple[date, ...]:
        key = (year, month)
        if key not in self.months:
            last = stdlib_calendar.monthrange(year, month)[1]
            days = (date(year, month, d) for d in range(1, last + 1))
            self.months[key] = tuple(d for d in days if self.closure(d) is None)
        return self.months[key]


@lru_cache(maxsize=256)
def _compiled(cal: Calendar) -> _Compiled:
    return _Compiled(cal)
