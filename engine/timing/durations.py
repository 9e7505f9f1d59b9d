"""Durations ("2h30m", "500ms") and times of day ("06:30") as written in definitions."""

from __future__ import annotations

import math
import re
from typing import Final

from evman.engine.quoting import quoted


class DurationError(ValueError):
    pass


class TimeOfDayError(ValueError):
    pass


UNIT_SECONDS: Final[dict[str, float]] = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
"""Largest first: a duration names its units in this order, each at most once."""

MAX_SECONDS: Final = 36500 * 86400.0
"""100 years: longer durations overflow the dates they are added to (timedelta, datetime)."""

ACCEPTED_FORMS: Final = (
    "a number of seconds, or amounts with units d, h, m, s, ms written largest first, "
    "e.g. 90s, 5m, 2h30m, 1d2h, 500ms, 1.5s"
)

_PART: Final = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*(ms|d|h|m|s)\s*")
_BARE: Final = re.compile(r"\s*[0-9]+(?:\.[0-9]+)?\s*")
_TIME_OF_DAY: Final = re.compile(r"([0-9]{1,2}):([0-9]{2})")
_FORMAT_UNITS: Final = ((86400, "d"), (3600, "h"), (60, "m"), (1, "s"))


def parse_duration(text: str | int | float) -> float:
    """Seconds in `text`; a bare number (or numeric string) is seconds. Zero is allowed."""
    if isinstance(text, bool) or not isinstance(text, (str, int, float)):
        raise DurationError(f"Invalid duration {quoted(text)}: expected {ACCEPTED_FORMS}.")
    if isinstance(text, str):
        seconds = _parse_text(text)
    else:
        seconds = float(text)
    if not math.isfinite(seconds):
        raise DurationError(
            f"Invalid duration {quoted(text)}: it is too large or not a number; expected {ACCEPTED_FORMS}."
        )
    if seconds < 0:
        raise DurationError(f"Invalid duration {quoted(text)}: it must be zero or more; expected {ACCEPTED_FORMS}.")
    if seconds > MAX_SECONDS:
        raise DurationError(
            f"Invalid duration {quoted(text)}: it is longer than 100 years (36500d), which no "
            f"clock or backoff here can hold; expected {ACCEPTED_FORMS}."
        )
    return seconds


def _parse_text(text: str) -> float:
    if _BARE.fullmatch(text):
        return float(text.strip())  # \s also matches what float() does not skip, such as \x1f
    total, pos, units = 0.0, 0, list(UNIT_SECONDS)
    while (match := _PART.match(text, pos)) is not None:  # anchored: finditer was quadratic on long digits
        unit = match.group(2)
        if unit not in units:
            break
        units = units[units.index(unit) + 1 :]
        total += float(match.group(1)) * UNIT_SECONDS[unit]
        pos = match.end()
    if text.strip().startswith("-"):
        raise DurationError(f"Invalid duration {quoted(text)}: it must be zero or more; expected {ACCEPTED_FORMS}.")
    if pos == 0 or pos != len(text):
        raise DurationError(f"Invalid duration {quoted(text)}: expected {ACCEPTED_FORMS}.")
    return total


def format_duration(seconds: float) -> str:
    """Short human form: "350ms", "1.2s", "45s", "2h30m", "3d4h" (two largest units, rounded)."""
    if not math.isfinite(seconds) or seconds < 0:
        raise DurationError(f"Cannot format duration {quoted(seconds)}: it must be a finite number, zero or more.")
    if seconds == 0:
        return "0s"
    if round(seconds * 1000) < 1000:
        return f"{round(seconds * 1000)}ms"
    if round(seconds, 1) < 10:
        return f"{round(seconds, 1):g}s"
    return _format_whole(round(seconds))


def _format_whole(total: int) -> str:
    if total < 60:
        return f"{total}s"
    lead = next(i for i, (size, _) in enumerate(_FORMAT_UNITS) if total >= size)
    resolution = _FORMAT_UNITS[lead + 1][0]
    total = round(total / resolution) * resolution
    lead = next(i for i, (size, _) in enumerate(_FORMAT_UNITS) if total >= size)
    (big, big_name), (small, small_name) = _FORMAT_UNITS[lead], _FORMAT_UNITS[lead + 1]
    text = f"{total // big}{big_name}"
    rest = (total % big) // small
    return text + (f"{rest}{small_name}" if rest else "")


def parse_time_of_day(text: str) -> tuple[int, int]:
    """(hour, minute) of "HH:MM" or "H:MM", 00:00 to 23:59."""
    if not isinstance(text, str):
        raise TimeOfDayError(f'Invalid time of day {quoted(text)}: expected a quoted "HH:MM" such as "06:30".')
    match = _TIME_OF_DAY.fullmatch(text.strip())
    if match is None:
        raise TimeOfDayError(f'Invalid time of day {quoted(text)}: expected "HH:MM" such as "06:30".')
    hour, minute = int(match.group(1)), int(match.group(2))
    if hour > 23 or minute > 59:
        raise TimeOfDayError(f"Invalid time of day {quoted(text)}: hours run 00-23 and minutes 00-59.")
    return hour, minute
