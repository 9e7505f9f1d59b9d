"""Reading one TOML table: typed getters that note what is wrong and return None."""

from __future__ import annotations

import difflib
import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import time
from pathlib import Path
from typing import Any, Final, TypeVar

from evman.engine.definitions.positions import KeyPath, key_path
from evman.engine.definitions.problems import Problems
from evman.engine.model import CalendarDef, Defaults
from evman.engine.quoting import quoted
from evman.engine.timing.durations import DurationError, parse_duration, parse_time_of_day

EXPECT_DURATION: Final = 'a duration such as "90s", "5m" or "2h30m"'
NUL_PROBLEM: Final = (
    "contains a NUL character (\\u0000), which no command, path or name can hold; expected text without it"
)
EXPECT_TIME_OF_DAY: Final = 'a time of day such as "06:30"'
_E = TypeVar("_E", bound=enum.Enum)


@dataclass(frozen=True)
class Context:
    """What an event's validation needs from the rest of the file."""

    defaults: Defaults
    base_dir: Path
    routes: frozenset[str] | None
    """Route names there are; None when the file has no [routes], so any name goes."""
    events: frozenset[str] | None
    """Event names `requires` and `on_success` may use; None skips the check."""
    calendars: Mapping[str, CalendarDef] | None = None
    """The file's [calendars], which `calendar` may name; None: a table read on its own."""


class Table:
    """One TOML table being read: typed getters that note problems and return None."""

    def __init__(
        self, data: Mapping[str, Any], problems: Problems, where: str, prefix: str = "", at: KeyPath = ()
    ) -> None:
        self.data = data
        self.problems = problems
        self.where = where
        self.prefix = prefix
        """How keys are named in messages: "runtime." for the keys of runtime = { ... }."""
        self.at = at
        """Where the table is in the document, e.g. ("event", 2, "runtime"), for line numbers."""

    def error(self, key: str, message: str) -> None:
        """A problem with `key` ("max", "outputs[0]", "env.HOME"), on the line that holds it."""
        self.problems.add(self.where, f"key {quoted(self.prefix + key)}: {message}", (*self.at, *key_path(key)))

    def check_keys(self, allowed: Sequence[str]) -> None:
        for key in self.data:
            if key not in allowed:
                close = difflib.get_close_matches(key, allowed, n=1)
                hint = (
                    f"did you mean {quoted(self.prefix + close[0])}?"
                    if close
                    else "expected one of: " + ", ".join(allowed)
                )
                self.problems.add(self.where, f"unknown key {quoted(self.prefix + key)}; {hint}", (*self.at, key))

    def get(self, key: str, kinds: tuple[type, ...], expected: str) -> Any:
        """The value at `key` if it is one of `kinds`; None when absent or of another type."""
        if key not in self.data:
            return None
        value = self.data[key]
        if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
            self.error(key, f"got {describe(value)}; expected {expected}")
            return None
        return value

    def string(self, key: str, *, blank_ok: bool = True) -> str | None:
        value: str | None = self.get(key, (str,), "a string")
        if value is not None and not blank_ok and not value.strip():
            self.error(key, "is empty; expected some text")
            return None
        if value is not None and "\0" in value:
            self.error(key, NUL_PROBLEM)
            return None
        return value

    def boolean(self, key: str) -> bool | None:
        value: bool | None = self.get(key, (bool,), "true or false")
        return value

    def integer(self, key: str, *, minimum: int = 0) -> int | None:
        value: int | None = self.get(key, (int,), f"an integer of {minimum} or more")
        if value is not None and value < minimum:
            self.error(key, f"is {value}; expected an integer of {minimum} or more")
            return None
        return value

    def duration(self, key: str, *, positive: bool = False) -> float | None:
        value = self.get(key, (str, int, float), EXPECT_DURATION)
        if value is None:
            return None
        try:
            seconds = parse_duration(value)
        except DurationError as exc:
            self.error(key, str(exc))
            return None
        if positive and seconds == 0:
            self.error(key, f"is zero; expected {EXPECT_DURATION} greater than zero")
            return None
        return seconds

    def time_of_day(self, key: str) -> str | None:
        value = self.get(key, (str, time), EXPECT_TIME_OF_DAY)
        if isinstance(value, time):
            if value.second or value.microsecond or value.tzinfo is not None:
                self.error(key, f"got {value}; expected {EXPECT_TIME_OF_DAY} (hours and minutes only)")
                return None
            return f"{value.hour:02d}:{value.minute:02d}"
        if value is None:
            return None
        try:
            hour, minute = parse_time_of_day(value)
        except ValueError as exc:
            self.error(key, str(exc))
            return None
        return f"{hour:02d}:{minute:02d}"

    def window_time(self, key: str) -> str | None:
        """A time of day "HH:MM", or "+DURATION": that long after the run fell due."""
        value = self.data.get(key) if isinstance(self.data, Mapping) else None
        if not (isinstance(value, str) and value.strip().startswith("+")):
            return self.time_of_day(key)
        try:
            parse_duration(value.strip()[1:])
        except DurationError as exc:
            self.error(key, f'{exc}; expected {EXPECT_TIME_OF_DAY} or a relative time such as "+20m"')
            return None
        return value.strip()

    def strings(self, key: str) -> tuple[str, ...] | None:
        items = self.get(key, (list,), "an array of strings")
        if items is None:
            return None
        wrong = [i for i, item in enumerate(items) if not isinstance(item, str)]
        for i in wrong:
            self.error(f"{key}[{i}]", f"got {describe(items[i])}; expected a string")
        nul = [i for i, item in enumerate(items) if isinstance(item, str) and "\0" in item]
        for i in nul:
            self.error(f"{key}[{i}]", NUL_PROBLEM)
        return None if wrong or nul else tuple(items)

    def choice(self, key: str, kind: type[_E]) -> _E | None:
        values = [member.value for member in kind]
        expected = " or ".join(f'"{v}"' for v in values)
        value = self.get(key, (str,), expected)
        if value is None:
            return None
        if value not in values:
            self.error(key, f"got {describe(value)}; expected {expected}")
            return None
        return kind(value)

    def sub(self, key: str, allowed: Sequence[str]) -> Table | None:
        """The table at `key`, its keys checked against `allowed`."""
        value = self.get(key, (dict,), "a table { ... } with keys " + ", ".join(allowed))
        if value is None:
            return None
        table = Table(value, self.problems, self.where, f"{self.prefix}{key}.", (*self.at, key))
        table.check_keys(allowed)
        return table


def describe(value: object) -> str:
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, (int, float)):
        return f"the number {value}"
    if isinstance(value, str):
        return "the string " + quoted(value, style="json")
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return f"the {type(value).__name__} {value}"


def without_none(values: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}
