"""Business-day schedules: "every business day at 06:00", "business day 3 of month at 06:00",
"business day -1 of month at 19:00" (the last), "first|last business day of month at HH:MM"."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Final
from zoneinfo import ZoneInfo

from evman.engine.model import Calendar
from evman.engine.quoting import quoted
from evman.engine.timing import calendars
from evman.engine.timing.durations import TimeOfDayError, parse_time_of_day
from evman.engine.timing.schedules import ScheduleError, resolve_wall_time

FORMS: Final = (
    "'every business day at HH:MM', 'business day N of month at HH:MM' (N from 1 for the first, "
    "from -1 for the last), 'first business day of month at HH:MM' or 'last business day of month at HH:MM'"
)
MAX_NTH: Final = 23
"""No month has more than 23 weekdays."""
QUIET_DAYS: Final = 800
"""A calendar that leaves no business day for this long ends the schedule (no more fires)."""
_FORM: Final = re.compile(
    r"(?:(?P<every>every business day)"
    r"|business day (?P<n>[+-]?\d+) of (?:the )?month"
    r"|(?P<word>first|last) business day of (?:the )?month)"
    r"(?: at (?P<at>\S+))?"
)


@dataclass(frozen=True)
class BusinessRule:
    nth: int | None
    """None: every business day; 1 the first of the month, -1 the last."""
    at: time


def is_business_spec(spec: str) -> bool:
    """Whether `spec` is meant as a business-day schedule (then parse_business judges it)."""
    return "business day" in " ".join(spec.lower().split())


@lru_cache(maxsize=1024)
def parse_business(spec: str) -> BusinessRule:
    """The rule of a business-day schedule; ScheduleError naming what is wrong and the forms."""
    text = " ".join(spec.lower().split())
    match = _FORM.fullmatch(text)
    if match is None:
        raise _bad(spec, "it does not read as a business-day schedule")
    if match["at"] is None:
        raise _bad(spec, "it needs a time of day, as in '... at 06:00'")
    try:
        hour, minute = parse_time_of_day(match["at"])
    except TimeOfDayError as exc:
        raise _bad(spec, str(exc).rstrip(".")) from exc
    return BusinessRule(_nth(spec, match), time(hour, minute))


def _nth(spec: str, match: re.Match[str]) -> int | None:
    if match["every"]:
        return None
    if match["word"]:
        return 1 if match["word"] == "first" else -1
    nth = int(match["n"])
    if nth == 0:
        raise _bad(spec, "business day 0 is neither the first (1) nor the last (-1)")
    if abs(nth) > MAX_NTH:
        raise _bad(spec, f"a month has at most {MAX_NTH} business days, so {nth} never comes")
    return nth


def _bad(spec: str, problem: str) -> ScheduleError:
    return ScheduleError(f"Bad schedule {quoted(spec)}: {problem}. Business-day forms: {FORMS}.")


def business_fires(rule: BusinessRule, cal: Calendar, after: datetime, zone: ZoneInfo) -> Iterator[datetime]:
    """Fires strictly after `after` (aware), in UTC, in order; the day is the zone's local day."""
    after = after.astimezone(UTC)
    day: date | None = after.astimezone(zone).date() - timedelta(days=1)
    last_found = day
    while day is not None and last_found is not None and (day - last_found).days <= QUIET_DAYS:
        for candidate in _days_from(rule, cal, day):
            last_found = candidate
            at = resolve_wall_time(datetime.combine(candidate, rule.at), zone)
            if at > after:
                yield at
        day = _next_span(rule, day)


def _days_from(rule: BusinessRule, cal: Calendar, day: date) -> list[date]:
    """The rule's days in the span that starts at `day` (that day, or the rest of its month)."""
    if rule.nth is None:
        return [day] if calendars.is_business_day(cal, day) else []
    found = calendars.nth_business_day(cal, day.year, day.month, rule.nth)
    return [] if found is None or found < day else [found]


def _next_span(rule: BusinessRule, day: date) -> date | None:
    try:
        if rule.nth is None:
            return day + timedelta(days=1)
        return date(day.year + day.month // 12, day.month % 12 + 1, 1)
    except (OverflowError, ValueError):
        return None
