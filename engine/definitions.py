"""Definitions files: TOML text to validated Definitions, and back to TOML and JSON."""
from __future__ import annotations

import difflib
import enum
import functools
import json
import logging
import os
import pwd
import re
import shlex
import threading
import tomllib
import types
import typing
import zoneinfo
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, fields, is_dataclass
from datetime import time
from pathlib import Path
from typing import Any, Final, TypeVar
from urllib.parse import urlsplit, urlunsplit

import tomli_w

from engine.conditions import ConditionError, find_cycle, parse_condition
from engine.durations import DurationError, format_duration, parse_duration, parse_time_of_day
from engine.model import (
    AlertKind,
    Concurrency,
    Defaults,
    Definitions,
    EventSpec,
    HttpCall,
    Misfire,
    OnFailure,
    OutputCheck,
    Route,
    Runtime,
    Window,
)
from engine.schedules import ScheduleError, parse_schedule

NAME_PATTERN: Final = re.compile(r"[a-z0-9][a-z0-9._-]*")
NAME_MAX_LENGTH: Final = 64
CALL_PATTERN: Final = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*")
HTTP_METHODS: Final = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
MASK: Final = "****"

TOP_KEYS: Final = ("defaults", "routes", "event")
DEFAULTS_KEYS: Final = ("timezone", "driver", "repeat", "max_repeats")
ROUTE_KEYS: Final = ("urls", "config", "tags", "quiet", "escalate_to", "escalate_after")
QUIET_KEYS: Final = ("from", "to", "except")
ACTION_KEYS: Final = ("run", "shell", "call", "http")
EVENT_KEYS: Final = (
    "name", *ACTION_KEYS, "cwd", "env", "schedule", "timezone", "requires", "window",
    "late_after", "runtime", "outputs", "on_success", "on_failure", "driver", "concurrency",
    "misfire", "user", "description", "stdin", "timeout",
)
HTTP_KEYS: Final = ("url", "method", "expect", "body", "headers", "timeout")
WINDOW_KEYS: Final = ("earliest", "latest")
RUNTIME_KEYS: Final = ("min", "max", "kill")
OUTPUT_KEYS: Final = ("path", "fresh", "min_size", "max_age", "contains", "json")
ON_FAILURE_KEYS: Final = ("retries", "backoff", "backoff_max", "prepare", "trigger", "alert")

_DURATION: Final = 'a duration such as "90s", "5m" or "2h30m"'
_NUL: Final = "contains a NUL character (\\u0000), which no command, path or name can hold; expected text without it"
_TIME_OF_DAY: Final = 'a time of day such as "06:30"'
_SECRET_HEADER_WORDS: Final = ("auth", "token", "secret", "key", "password", "cookie")
_TOML_POSITION: Final = re.compile(r"(?P<what>.*) \(at line (?P<line>\d+), column (?P<column>\d+)\)", re.S)

_E = TypeVar("_E", bound=enum.Enum)


class DefinitionsError(ValueError):
    """Everything wrong with one definitions file, one line per problem."""

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems: list[str] = list(problems)
        super().__init__("\n".join(self.problems))


# ---------------------------------------------------------------- loading

def load_definitions(path: str | Path, *, known_events: Iterable[str] = ()) -> Definitions:
    """Read and validate a definitions file; raise DefinitionsError listing every problem.

    `known_events` are names defined elsewhere (already in the database) that `requires`,
    `on_success` and `on_failure.trigger` may name besides this file's own events.
    """
    source = str(path)
    text = _read_text(Path(path), source)
    return parse_definitions(text, source=source, base_dir=Path(path).absolute().parent,
                             known_events=known_events)


def _read_text(path: Path, source: str) -> str:
    if path.is_dir():
        raise DefinitionsError([f"{source}: is a directory; expected a TOML definitions file"])
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DefinitionsError([f"{source}: no such file; check the path"]) from None
    except OSError as exc:
        raise DefinitionsError([f"{source}: cannot read it ({exc.strerror}); check its permissions"]) from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise DefinitionsError([
            f"{source}: line {line}: not UTF-8 text (byte 0x{data[exc.start]:02x}); "
            "expected a TOML file saved as UTF-8"
        ]) from None


def parse_definitions(text: str, *, source: str, base_dir: Path,
                      known_events: Iterable[str] = ()) -> Definitions:
    """Validate definitions TOML; relative paths resolve against `base_dir`. Writes nothing."""
    problems = _Problems(source)
    document = _parse_toml(text, source)
    definitions = _read_document(document, problems, Path(base_dir).absolute(), frozenset(known_events))
    if problems.lines:
        raise DefinitionsError(problems.lines)
    return definitions


def validate_event_table(table: Mapping[str, Any], *, source: str, defaults: Defaults, base_dir: Path,
                         routes: Collection[str] | None,
                         known_events: Collection[str] | None = None) -> EventSpec:
    """One `[[event]]` table as an EventSpec, or DefinitionsError.

    `routes`: the route names there are (a Mapping of routes will do); None when the file has
    no [routes], so any driver name goes. `known_events`: the names `requires` and
    `on_success` may use; None skips that check.
    """
    problems = _Problems(source)
    context = _Context(defaults, Path(base_dir).absolute(), _names(routes), _names(known_events))
    spec = _read_event(_Table(table, problems, _event_where(table, 1)), context)
    if spec is None or problems.lines:
        raise DefinitionsError(problems.lines)
    return spec


def _names(names: Collection[str] | None) -> frozenset[str] | None:
    return None if names is None else frozenset(names)


def _parse_toml(text: str, source: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = _TOML_POSITION.fullmatch(str(exc))
        if match is None:
            raise DefinitionsError([f"{source}: TOML syntax: {exc}"]) from None
        raise DefinitionsError([
            f"{source}: line {match['line']}, column {match['column']}: TOML syntax: {match['what']}"
        ]) from None


# ---------------------------------------------------------------- reading tables

@dataclass
class _Problems:
    source: str
    lines: list[str] = field(default_factory=list)

    def add(self, where: str, message: str) -> None:
        self.lines.append(f"{self.source}: {where}: {message}" if where else f"{self.source}: {message}")


@dataclass(frozen=True)
class _Context:
    """What an event's validation needs from the rest of the file."""
    defaults: Defaults
    base_dir: Path
    routes: frozenset[str] | None
    """Route names there are; None when the file has no [routes], so any name goes."""
    events: frozenset[str] | None
    """Event names `requires` and `on_success` may use; None skips the check."""


class _Table:
    """One TOML table being read: typed getters that note problems and return None."""

    def __init__(self, data: Mapping[str, Any], problems: _Problems, where: str, prefix: str = "") -> None:
        self.data = data
        self.problems = problems
        self.where = where
        self.prefix = prefix

    def error(self, key: str, message: str) -> None:
        self.problems.add(self.where, f"key '{self.prefix}{key}': {message}")

    def check_keys(self, allowed: Sequence[str]) -> None:
        for key in self.data:
            if key not in allowed:
                close = difflib.get_close_matches(key, allowed, n=1)
                hint = (f"did you mean '{self.prefix}{close[0]}'?" if close
                        else "expected one of: " + ", ".join(allowed))
                self.problems.add(self.where, f"unknown key '{self.prefix}{key}'; {hint}")

    def get(self, key: str, kinds: tuple[type, ...], expected: str) -> Any:
        """The value at `key` if it is one of `kinds`; None when absent or of another type."""
        if key not in self.data:
            return None
        value = self.data[key]
        if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
            self.error(key, f"got {_describe(value)}; expected {expected}")
            return None
        return value

    def string(self, key: str, *, blank_ok: bool = True) -> str | None:
        value: str | None = self.get(key, (str,), "a string")
        if value is not None and not blank_ok and not value.strip():
            self.error(key, "is empty; expected some text")
            return None
        if value is not None and "\0" in value:
            self.error(key, _NUL)
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
        value = self.get(key, (str, int, float), _DURATION)
        if value is None:
            return None
        try:
            seconds = parse_duration(value)
        except DurationError as exc:
            self.error(key, str(exc))
            return None
        if positive and seconds == 0:
            self.error(key, f"is zero; expected {_DURATION} greater than zero")
            return None
        return seconds

    def time_of_day(self, key: str) -> str | None:
        value = self.get(key, (str, time), _TIME_OF_DAY)
        if isinstance(value, time):
            if value.second or value.microsecond or value.tzinfo is not None:
                self.error(key, f"got {value}; expected {_TIME_OF_DAY} (hours and minutes only)")
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
            self.error(key, f"{exc}; expected {_TIME_OF_DAY} or a relative time such as \"+20m\"")
            return None
        return value.strip()

    def strings(self, key: str) -> tuple[str, ...] | None:
        items = self.get(key, (list,), "an array of strings")
        if items is None:
            return None
        wrong = [i for i, item in enumerate(items) if not isinstance(item, str)]
        for i in wrong:
            self.error(f"{key}[{i}]", f"got {_describe(items[i])}; expected a string")
        nul = [i for i, item in enumerate(items) if isinstance(item, str) and "\0" in item]
        for i in nul:
            self.error(f"{key}[{i}]", _NUL)
        return None if wrong or nul else tuple(items)

    def choice(self, key: str, kind: type[_E]) -> _E | None:
        values = [member.value for member in kind]
        expected = " or ".join(f'"{v}"' for v in values)
        value = self.get(key, (str,), expected)
        if value is None:
            return None
        if value not in values:
            self.error(key, f"got {_describe(value)}; expected {expected}")
            return None
        return kind(value)

    def sub(self, key: str, allowed: Sequence[str]) -> _Table | None:
        """The table at `key`, its keys checked against `allowed`."""
        value = self.get(key, (dict,), "a table { ... } with keys " + ", ".join(allowed))
        if value is None:
            return None
        table = _Table(value, self.problems, self.where, f"{self.prefix}{key}.")
        table.check_keys(allowed)
        return table


def _describe(value: object) -> str:
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, (int, float)):
        return f"the number {value}"
    if isinstance(value, str):
        return "the string " + json.dumps(value if len(value) <= 40 else value[:37] + "...")
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return f"the {type(value).__name__} {value}"


def _without_none(values: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}


# ---------------------------------------------------------------- the document

def _read_document(document: Mapping[str, Any], problems: _Problems, base_dir: Path,
                   known_events: frozenset[str]) -> Definitions:
    for key in document:
        if key not in TOP_KEYS:
            close = difflib.get_close_matches(key, TOP_KEYS, n=1)
            hint = f"did you mean '{close[0]}'?" if close else "expected [defaults], [routes] and [[event]]"
            problems.add("", f"unknown top-level key '{key}'; {hint}")
    route_names = _route_names(document.get("routes"), problems)
    routes = _read_routes(document.get("routes"), problems, base_dir)
    defaults = _read_defaults(document.get("defaults"), problems, route_names)
    tables = _event_tables(document.get("event"), problems)
    events = _read_events(tables, problems, _Context(defaults, base_dir, route_names, None), known_events)
    _check_cycles(events, problems)
    return Definitions(defaults=defaults, routes=routes, events=tuple(events), source=problems.source)


def _event_tables(raw: object, problems: _Problems) -> list[Mapping[str, Any]]:
    if raw is None:
        return []
    if isinstance(raw, dict):
        problems.add("[event]", "is a single table; write [[event]] (double brackets) before each event")
        return []
    if not isinstance(raw, list):
        problems.add("key 'event'", f"got {_describe(raw)}; expected [[event]] tables")
        return []
    tables: list[Mapping[str, Any]] = []
    for number, item in enumerate(raw, start=1):
        if isinstance(item, dict):
            tables.append(item)
        else:
            problems.add(f"event #{number}", f"got {_describe(item)}; expected an [[event]] table")
    return tables


def _event_where(table: Mapping[str, Any], number: int) -> str:
    name = table.get("name")
    return f"event '{name}'" if isinstance(name, str) and name else f"event #{number}"


def _read_events(tables: Sequence[Mapping[str, Any]], problems: _Problems, context: _Context,
                 known_events: frozenset[str]) -> list[EventSpec]:
    names = {t["name"] for t in tables if isinstance(t.get("name"), str)}
    context = _Context(context.defaults, context.base_dir, context.routes, frozenset(names) | known_events)
    first_seen: dict[str, int] = {}
    specs = []
    for number, raw in enumerate(tables, start=1):
        table = _Table(raw, problems, _event_where(raw, number))
        name = raw.get("name")
        if isinstance(name, str) and name in first_seen:
            table.error("name", f"'{name}' is already the name of event #{first_seen[name]}; "
                                "expected a name no other event uses")
        elif isinstance(name, str):
            first_seen[name] = number
        spec = _read_event(table, context)
        if spec is not None:
            specs.append(spec)
    return specs


def _check_cycles(specs: Sequence[EventSpec], problems: _Problems) -> None:
    """A cycle through requires/on_success would wait on, or start, itself forever."""
    graph: dict[str, set[str]] = {spec.name: set(spec.on_success) for spec in specs}
    for spec in specs:
        for needed in _required_events(spec):
            graph.setdefault(needed, set()).add(spec.name)
    cycle = find_cycle({node: sorted(targets) for node, targets in sorted(graph.items())})
    if cycle is None:
        return
    if cycle[0] != cycle[-1]:
        cycle = [*cycle, cycle[0]]
    by_name = {spec.name: spec for spec in specs}
    first = by_name.get(cycle[0])
    event, key = ((cycle[0], "on_success") if first is not None and cycle[1] in first.on_success
                  else (cycle[1], "requires"))
    problems.add(f"event '{event}'", f"key '{key}': dependency cycle {' -> '.join(cycle)} "
                                     "through requires and on_success; expected no cycle: remove one of these links")


def _required_events(spec: EventSpec) -> frozenset[str]:
    return frozenset() if spec.requires is None else parse_condition(spec.requires).events


# ---------------------------------------------------------------- [defaults]

def _read_defaults(raw: object, problems: _Problems, route_names: frozenset[str] | None) -> Defaults:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        problems.add("[defaults]", f"got {_describe(raw)}; expected a table")
        raw = {}
    table = _Table(raw, problems, "[defaults]")
    table.check_keys(DEFAULTS_KEYS)
    driver = table.string("driver", blank_ok=False)
    if driver is not None:
        _check_route(table, "driver", driver, route_names)
    return Defaults(**_without_none({
        "timezone": _read_timezone(table) or machine_timezone(),
        "driver": driver,
        "repeat_s": table.duration("repeat", positive=True),
        "max_repeats": table.integer("max_repeats"),
    }))


def machine_timezone() -> str:
    """This machine's zone name: $TZ if it names a zone, else /etc/localtime's link, else
    /etc/timezone, else "UTC"."""
    for candidate in (_zone_from_env(), _zone_from_localtime(), _zone_from_etc_timezone()):
        if candidate and _zone_problem(candidate) is None:
            return candidate
    return "UTC"


def _zone_from_env() -> str | None:
    value = os.environ.get("TZ", "").strip().removeprefix(":")
    return value or None


def _zone_from_localtime() -> str | None:
    try:
        target = os.readlink("/etc/localtime")
    except OSError:
        return None
    marker = "zoneinfo/"
    return target.split(marker, 1)[1] if marker in target else None


def _zone_from_etc_timezone() -> str | None:
    try:
        return Path("/etc/timezone").read_text(encoding="utf-8").strip() or None
    except (OSError, UnicodeDecodeError):
        return None


@functools.cache
def _zone_names() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _zone_problem(name: str) -> str | None:
    """None when `name` is a zoneinfo name, else what is wrong with it."""
    if name in _zone_names():
        try:
            zoneinfo.ZoneInfo(name)
            return None
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
            pass
    close = difflib.get_close_matches(name, sorted(_zone_names()), n=1)
    hint = f"did you mean '{close[0]}'?" if close else 'expected a zoneinfo name such as "Europe/London" or "UTC"'
    return f"unknown timezone '{name}'; {hint}"


def _read_timezone(table: _Table) -> str | None:
    name = table.string("timezone")
    if name is None:
        return None
    problem = _zone_problem(name)
    if problem is not None:
        table.error("timezone", problem)
        return None
    return name


# ---------------------------------------------------------------- [routes]

def _route_names(raw: object, problems: _Problems) -> frozenset[str] | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        problems.add("[routes]", f"got {_describe(raw)}; expected a table of route names to Apprise URLs")
        return frozenset()
    return frozenset(raw)


def _read_routes(raw: object, problems: _Problems, base_dir: Path) -> dict[str, Route]:
    if not isinstance(raw, dict):
        return {}
    routes = {}
    for name, value in raw.items():
        route = _read_route(name, value, problems, base_dir, frozenset(raw))
        if route is not None:
            routes[name] = route
    _check_escalation_loops(routes, problems)
    return routes


def _read_route(name: str, value: object, problems: _Problems, base_dir: Path,
                names: frozenset[str]) -> Route | None:
    where = f"[routes] '{name}'"
    if isinstance(value, list):
        value = {"urls": value}
    if not isinstance(value, dict):
        problems.add(where, f"got {_describe(value)}; expected an array of Apprise URLs or a table with urls = [...]")
        return None
    before = len(problems.lines)
    table = _Table(value, problems, where)
    table.check_keys(ROUTE_KEYS)
    fields_ = {"name": name, "urls": _read_urls(table), "config": _read_config(table, base_dir),
               "tags": table.strings("tags"), **_read_quiet(table), **_read_escalation(table, name, names)}
    if "urls" not in value and "config" not in value:
        table.error("urls", "missing; expected at least one Apprise URL (or a config file)")
    elif value.get("urls") == [] and "config" not in value:
        table.error("urls", "is empty; expected at least one Apprise URL (or a config file)")
    return Route(**_without_none(fields_)) if len(problems.lines) == before else None


def _read_urls(table: _Table) -> tuple[str, ...] | None:
    urls = table.strings("urls")
    if urls is None:
        return None
    for number, url in enumerate(urls, start=1):
        if not is_apprise_url(url):
            shown = url.split("://", 1)[0] + "://..." if "://" in url else "(no scheme://)"
            table.error("urls", f"Apprise cannot use URL {number} of {len(urls)}, {shown}; expected a URL "
                                "Apprise knows, see https://github.com/caronc/apprise/wiki")
    return urls


def _read_config(table: _Table, base_dir: Path) -> str | None:
    value = table.string("config", blank_ok=False)
    if value is None or "://" in value:
        return value
    try:
        path = base_dir / Path(value).expanduser()
    except RuntimeError:  # "~someone" for a user this machine does not have
        table.error("config", f"'{value}': no such user's home; expected a path, or ~ for your own home")
        return None
    if not path.is_file():
        table.error("config", f"no such file '{value}' (looked for {path}); expected an Apprise config file")
        return None
    return os.path.normpath(path)


def _read_quiet(table: _Table) -> dict[str, Any]:
    quiet = table.sub("quiet", QUIET_KEYS)
    if quiet is None:
        return {}
    start, end = quiet.time_of_day("from"), quiet.time_of_day("to")
    for key in ("from", "to"):
        if key not in quiet.data:
            quiet.error(key, f"missing; expected {_TIME_OF_DAY} (quiet needs both from and to)")
    kinds = quiet.strings("except")
    allowed = [kind.value for kind in AlertKind]
    for kind in kinds or ():
        if kind not in allowed:
            quiet.error("except", f"unknown alert kind '{kind}'; expected some of: " + ", ".join(allowed))
    return {"quiet_from": start, "quiet_to": end, "quiet_except": kinds}


def _read_escalation(table: _Table, name: str, names: frozenset[str]) -> dict[str, Any]:
    target = table.string("escalate_to", blank_ok=False)
    after = table.duration("escalate_after")
    if target is not None and target == name:
        table.error("escalate_to", f"names this route itself; expected another route, one of: {_listing(names - {name})}")
    elif target is not None:
        _check_route(table, "escalate_to", target, names)
    if "escalate_after" in table.data and "escalate_to" not in table.data:
        table.error("escalate_after", "given without escalate_to; expected both, or neither")
    return {"escalate_to": target, "escalate_after_s": after}


def _check_escalation_loops(routes: Mapping[str, Route], problems: _Problems) -> None:
    reported: set[frozenset[str]] = set()
    for start in sorted(routes):
        chain = [start]
        target = routes[start].escalate_to
        while target is not None and target in routes and target not in chain:
            chain.append(target)
            target = routes[target].escalate_to
        if target == start and frozenset(chain) not in reported and len(chain) > 1:
            reported.add(frozenset(chain))
            problems.add(f"[routes] '{start}'", f"key 'escalate_to': escalation loop "
                                                f"{' -> '.join([*chain, start])}; expected a chain that ends")


def _check_route(table: _Table, key: str, name: str, route_names: frozenset[str] | None) -> None:
    if route_names is None or name in route_names:
        return
    close = difflib.get_close_matches(name, sorted(route_names), n=1)
    hint = f"did you mean '{close[0]}'?" if close else f"expected one of: {_listing(route_names)}"
    table.error(key, f"no route '{name}' in [routes]; {hint}")


def _listing(names: Iterable[str]) -> str:
    return ", ".join(sorted(names)) or "(none defined)"


# ---------------------------------------------------------------- [[event]]

def _read_event(table: _Table, context: _Context) -> EventSpec | None:
    """The spec, or None when the table has problems (noted in table.problems)."""
    before = len(table.problems.lines)
    table.check_keys(EVENT_KEYS)
    values: dict[str, Any] = {
        "name": _read_name(table),
        **_read_action(table),
        **_read_surroundings(table, context),
        **_read_timing(table, context),
        **_read_links(table, context),
        "outputs": _read_outputs(table),
    }
    if len(table.problems.lines) > before:
        return None
    return EventSpec(**_without_none(values))


def _read_name(table: _Table) -> str | None:
    if "name" not in table.data:
        table.error("name", 'missing; expected a name such as "fetch-feeds"')
        return None
    name = table.string("name")
    if name is not None and (NAME_PATTERN.fullmatch(name) is None or len(name) > NAME_MAX_LENGTH):
        table.error("name", f"'{name}' is not a valid event name; expected lowercase letters, digits, "
                            f"'.', '_' and '-', starting with a letter or digit, at most {NAME_MAX_LENGTH} characters")
        return None
    return name


def _read_action(table: _Table) -> dict[str, Any]:
    given = [key for key in ACTION_KEYS if key in table.data]
    if not given:
        table.error("run", "missing; expected exactly one of run, shell, call or http to say what the event does")
    for extra in given[1:]:
        table.error(extra, f"given together with '{given[0]}'; expected exactly one of run, shell, call or http")
    return {"run": _read_run(table), "shell": table.string("shell", blank_ok=False),
            "call": _read_call(table), "http": _read_http(table)}


def _read_run(table: _Table) -> tuple[str, ...] | None:
    value = table.get("run", (str, list), "a command line string or an array of strings")
    if isinstance(value, list):
        return table.strings("run") if value else _empty_run(table)
    if value is None:
        return None
    if "\0" in value:
        table.error("run", _NUL)
        return None
    try:
        argv = shlex.split(value)
    except ValueError as exc:
        table.error("run", f"cannot split it into arguments ({exc}); expected balanced quotes, "
                           "or use shell = ... for shell syntax")
        return None
    return tuple(argv) if argv else _empty_run(table)


def _empty_run(table: _Table) -> tuple[str, ...] | None:
    table.error("run", "is empty; expected a program and its arguments")
    return None


def _read_call(table: _Table) -> str | None:
    value = table.string("call")
    if value is not None and CALL_PATTERN.fullmatch(value.strip()) is None:
        table.error("call", f"got {_describe(value)}; expected \"package.module:function\"")
        return None
    return None if value is None else value.strip()


def _read_http(table: _Table) -> HttpCall | None:
    http = table.sub("http", HTTP_KEYS)
    if http is None:
        return None
    url = http.string("url")
    if "url" not in http.data:
        http.error("url", 'missing; expected a URL such as "https://example.com/hook"')
    elif url is not None and (urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc):
        http.error("url", f"got {_describe(url)}; expected an http:// or https:// URL with a host")
    method = http.string("method")
    if method is not None and method.upper() not in HTTP_METHODS:
        http.error("method", f"got {_describe(method)}; expected one of: {', '.join(HTTP_METHODS)}")
    expect = http.integer("expect", minimum=100)
    if expect is not None and expect > 599:
        http.error("expect", f"is {expect}; expected an HTTP status code, 100 to 599")
    return HttpCall(**_without_none({
        "url": url or "", "method": None if method is None else method.upper(), "expect": expect,
        "body": http.string("body"), "headers": _read_string_table(http, "headers"),
        "timeout_s": http.duration("timeout", positive=True),
    }))


def _read_string_table(table: _Table, key: str) -> dict[str, str] | None:
    """A table of strings; numbers become their text (env = { PORT = 8080 })."""
    raw = table.get(key, (dict,), "a table of strings such as { NAME = \"value\" }")
    if raw is None:
        return None
    result = {}
    for name, value in raw.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            table.error(f"{key}.{name}", f"got {_describe(value)}; expected a string")
        elif not name or "=" in name or "\0" in name + value:
            table.error(f"{key}.{name}", "is not a usable name or value; expected no '=' in the name and no NUL")
        else:
            result[name] = value
    return result


def _read_surroundings(table: _Table, context: _Context) -> dict[str, Any]:
    return {
        "cwd": _read_cwd(table, context.base_dir),
        "env": _read_string_table(table, "env"),
        "user": _read_user(table),
        "description": table.string("description"),
        "stdin": table.string("stdin"),
    }


def _read_cwd(table: _Table, base_dir: Path) -> str | None:
    value = table.string("cwd", blank_ok=False)
    if value is None and "cwd" in table.data:
        return None
    try:
        return os.path.normpath(base_dir / Path(value or ".").expanduser())
    except RuntimeError:  # "~someone" for a user this machine does not have
        table.error("cwd", f"'{value}': no such user's home; expected a path, or ~ for your own home")
        return None


def _read_user(table: _Table) -> str | None:
    user = table.string("user", blank_ok=False)
    if user is None:
        return None
    euid = os.geteuid()
    if euid == 0:
        try:
            pwd.getpwnam(user)
        except KeyError:
            table.error("user", f"no user '{user}' on this machine; expected an existing user name")
            return None
    elif user != _user_name(euid):
        table.error("user", f"evman runs commands as another user only when it runs as root; "
                            f"expected '{_user_name(euid)}' or no user key")
        return None
    return user


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _read_timing(table: _Table, context: _Context) -> dict[str, Any]:
    return {
        "schedule": _read_schedule(table),
        "timezone": _read_timezone(table) or context.defaults.timezone,
        "window": _read_window(table),
        "late_after": table.window_time("late_after"),
        "runtime": _read_runtime(table),
        "timeout_s": table.duration("timeout", positive=True),
        "concurrency": table.choice("concurrency", Concurrency),
        "misfire": table.choice("misfire", Misfire),
    }


def _read_schedule(table: _Table) -> str | None:
    spec = table.string("schedule", blank_ok=False)
    if spec is None:
        return None
    try:
        parse_schedule(spec.strip())
    except ScheduleError as exc:
        table.error("schedule", str(exc))
        return None
    return spec.strip()


def _read_window(table: _Table) -> Window | None:
    window = table.sub("window", WINDOW_KEYS)
    if window is None:
        return None
    earliest, latest = window.window_time("earliest"), window.window_time("latest")
    if earliest is not None and earliest == latest:
        window.error("latest", f"equals earliest ({earliest}); expected a different time "
                               "(a latest before earliest spans midnight)")
    return Window(earliest=earliest, latest=latest)


def _read_runtime(table: _Table) -> Runtime | None:
    runtime = table.sub("runtime", RUNTIME_KEYS)
    if runtime is None:
        return None
    least, most = runtime.duration("min"), runtime.duration("max")
    kill = runtime.boolean("kill")
    if least is not None and most is not None and least > most:
        runtime.error("min", f"is longer than max ({format_duration(least)} > {format_duration(most)}); "
                             "expected min <= max")
    if kill and "max" not in runtime.data:
        runtime.error("kill", "is true but there is no max; expected a max to kill at")
    return Runtime(**_without_none({"min_s": least, "max_s": most, "kill": kill}))


def _read_outputs(table: _Table) -> tuple[OutputCheck, ...] | None:
    items = table.get("outputs", (list,), 'an array of tables such as [{ path = "out.json" }]')
    if items is None:
        return None
    checks = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            table.error(f"outputs[{index}]", f"got {_describe(item)}; expected a table {{ path = ... }}")
            continue
        check = _read_output(_Table(item, table.problems, table.where, f"outputs[{index}]."))
        if check is not None:
            checks.append(check)
    return tuple(checks)


def _read_output(table: _Table) -> OutputCheck | None:
    table.check_keys(OUTPUT_KEYS)
    path = table.string("path", blank_ok=False)
    if "path" not in table.data:
        table.error("path", "missing; expected the file (or glob) to check")
    contains = table.string("contains")
    if contains is not None:
        try:
            re.compile(contains)
        except re.error as exc:
            table.error("contains", f"is not a valid regular expression ({exc}); expected a Python regex")
    if path is None:
        return None
    return OutputCheck(**_without_none({
        "path": path, "fresh": table.boolean("fresh"), "min_size": table.integer("min_size"),
        "max_age_s": table.duration("max_age"), "contains": contains, "json": table.boolean("json"),
    }))


def _read_links(table: _Table, context: _Context) -> dict[str, Any]:
    driver = table.string("driver", blank_ok=False)
    if driver is not None:
        _check_route(table, "driver", driver, context.routes)
    return {
        "requires": _read_requires(table, context),
        "on_success": _read_event_names(table, "on_success", context),
        "on_failure": _read_on_failure(table, context),
        "driver": driver or context.defaults.driver,
    }


def _read_requires(table: _Table, context: _Context) -> str | None:
    text = table.string("requires", blank_ok=False)
    if text is None:
        return None
    try:
        condition = parse_condition(text)
    except ConditionError as exc:
        table.error("requires", str(exc).removeprefix("requires: "))
        return None
    for name in sorted(condition.events):
        _check_event(table, "requires", name, context)
    return text


def _read_event_names(table: _Table, key: str, context: _Context) -> tuple[str, ...] | None:
    names = table.strings(key)
    for name in names or ():
        _check_event(table, key, name, context)
    return names


def _check_event(table: _Table, key: str, name: str, context: _Context) -> None:
    if context.events is None or name in context.events:
        return
    close = difflib.get_close_matches(name, sorted(context.events), n=1)
    hint = f"did you mean '{close[0]}'?" if close else "expected the name of an [[event]] in this file"
    table.error(key, f"unknown event '{name}'; {hint}")


def _read_on_failure(table: _Table, context: _Context) -> OnFailure | None:
    failure = table.sub("on_failure", ON_FAILURE_KEYS)
    if failure is None:
        return None
    backoff, most = failure.duration("backoff"), failure.duration("backoff_max")
    if backoff is not None and most is not None and backoff > most:
        failure.error("backoff", f"is longer than backoff_max ({format_duration(backoff)} > "
                                 f"{format_duration(most)}); expected backoff <= backoff_max")
    alert = failure.string("alert", blank_ok=False)
    if alert is not None:
        _check_route(failure, "alert", alert, context.routes)
    return OnFailure(**_without_none({
        "retries": failure.integer("retries"), "backoff_s": backoff, "backoff_max_s": most,
        "prepare": failure.string("prepare", blank_ok=False),
        "trigger": _read_event_names(failure, "trigger", context), "alert": alert,
    }))


# ---------------------------------------------------------------- Apprise URLs

def is_apprise_url(url: str) -> bool:
    """Whether Apprise can build a notifier from `url` (it checks, it sends nothing)."""
    import apprise  # only here and in mask_url: loading its plugins takes most of a second

    with _apprise_quiet():
        return bool(apprise.Apprise().add(url))


def mask_url(url: str) -> str:
    """`url` with its secrets replaced by ****: Apprise's privacy form when Apprise knows the
    scheme (only the query keys the URL had), else with the password of user:password@ masked."""
    import apprise

    with _apprise_quiet():
        plugin = apprise.Apprise.instantiate(url)
    if plugin is None:
        return _mask_password(url)
    private: str = plugin.url(privacy=True)  # type: ignore[no-untyped-call]
    base, _, query = private.partition("?")
    had = {part.partition("=")[0].lower() for part in url.partition("?")[2].split("&") if part}
    kept = [part for part in query.split("&") if part and part.partition("=")[0].lower() in had]
    return base + ("?" + "&".join(kept) if kept else "")


def mask_password(url: str) -> str:
    """`url` with the password of user:password@ masked, without Apprise: for the plain
    http(s) URLs of `http` events, wherever they are shown or logged."""
    return _mask_password(url)


def _mask_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:{MASK}@{host}"))


@contextmanager
def _apprise_quiet() -> Iterator[None]:
    """Apprise logs each URL it rejects; validation reports them itself, so drop this
    thread's apprise records (other threads, such as the notifier, still log)."""
    logger = logging.getLogger("apprise")
    me = threading.get_ident()

    def is_other_thread(record: logging.LogRecord) -> bool:
        return record.thread != me

    logger.addFilter(is_other_thread)
    try:
        yield
    finally:
        logger.removeFilter(is_other_thread)


# ---------------------------------------------------------------- export

def export_toml(definitions: Definitions, *, include_secrets: bool = False) -> str:
    """Definitions as a TOML file that loads back into them. Secrets in URLs become ****
    unless `include_secrets`. An event's timezone and driver are left out when they are the
    defaults'."""
    document: dict[str, Any] = {"defaults": _defaults_to_table(definitions.defaults)}
    if definitions.routes:
        document["routes"] = {name: route_to_table(route, include_secrets=include_secrets)
                              for name, route in definitions.routes.items()}
    if definitions.events:
        document["event"] = [_event_for_export(spec, definitions.defaults, include_secrets)
                             for spec in definitions.events]
    header = "" if include_secrets else "# Secrets are shown as ****; export with secrets to keep them.\n\n"
    return header + tomli_w.dumps(document)


def _defaults_to_table(defaults: Defaults) -> dict[str, Any]:
    return _without_none({"timezone": defaults.timezone, "driver": defaults.driver,
                          "repeat": duration_text(defaults.repeat_s), "max_repeats": defaults.max_repeats})


def _event_for_export(spec: EventSpec, defaults: Defaults, include_secrets: bool) -> dict[str, Any]:
    table = spec_to_table(spec)
    if spec.timezone == defaults.timezone:
        del table["timezone"]
    if spec.driver is not None and spec.driver == defaults.driver:
        del table["driver"]
    if "http" in table and not include_secrets:
        http = table["http"]
        http["url"] = _mask_password(http["url"])
        if "headers" in http:
            http["headers"] = {name: MASK if _is_secret_header(name) else value
                               for name, value in http["headers"].items()}
    return table


def _is_secret_header(name: str) -> bool:
    return any(word in name.lower() for word in _SECRET_HEADER_WORDS)


def route_to_table(route: Route, *, include_secrets: bool) -> dict[str, Any] | list[str]:
    """A route as written under [routes]: just its URL list when it has nothing else."""
    urls = list(route.urls) if include_secrets else [mask_url(url) for url in route.urls]
    config = route.config if include_secrets or route.config is None else _mask_password(route.config)
    quiet = _without_none({"from": route.quiet_from, "to": route.quiet_to,
                           "except": list(route.quiet_except) or None})
    table = _without_none({
        "urls": urls or None, "config": config, "tags": list(route.tags) or None, "quiet": quiet or None,
        "escalate_to": route.escalate_to, "escalate_after": _duration_or_none(route.escalate_after_s),
    })
    return urls if list(table) == ["urls"] else table


def spec_to_table(spec: EventSpec) -> dict[str, Any]:
    """The [[event]] table that loads back into `spec`; cwd stays absolute, values equal to
    the model's defaults are left out."""
    table: dict[str, Any] = {"name": spec.name, **_action_to_table(spec)}
    if spec.description:
        table["description"] = spec.description
    table.update(_without_none({
        "cwd": spec.cwd, "env": dict(spec.env) or None, "user": spec.user, "stdin": spec.stdin,
        "schedule": spec.schedule, "timezone": spec.timezone, "requires": spec.requires,
        "window": _without_none({"earliest": spec.window.earliest, "latest": spec.window.latest}) or None,
        "late_after": spec.late_after, "runtime": _runtime_to_table(spec.runtime),
        "timeout": _duration_or_none(spec.timeout_s),
        "outputs": [_output_to_table(check) for check in spec.outputs] or None,
        "on_success": list(spec.on_success) or None, "on_failure": _on_failure_to_table(spec.on_failure),
        "driver": spec.driver,
        "concurrency": None if spec.concurrency is Concurrency.SKIP else spec.concurrency.value,
        "misfire": None if spec.misfire is Misfire.ONCE else spec.misfire.value,
    }))
    return table


def _action_to_table(spec: EventSpec) -> dict[str, Any]:
    if spec.run is not None:
        return {"run": shlex.join(spec.run)}
    if spec.shell is not None:
        return {"shell": spec.shell}
    if spec.call is not None:
        return {"call": spec.call}
    if spec.http is not None:
        return {"http": _http_to_table(spec.http)}
    return {}


def _http_to_table(http: HttpCall) -> dict[str, Any]:
    return _without_none({
        "url": http.url, "method": http.method, "expect": http.expect, "body": http.body,
        "headers": dict(http.headers) or None, "timeout": duration_text(http.timeout_s),
    })


def _runtime_to_table(runtime: Runtime) -> dict[str, Any] | None:
    table = _without_none({"min": _duration_or_none(runtime.min_s), "max": _duration_or_none(runtime.max_s),
                           "kill": runtime.kill or None})
    return table or None


def _output_to_table(check: OutputCheck) -> dict[str, Any]:
    return _without_none({
        "path": check.path, "fresh": check.fresh or None, "min_size": check.min_size,
        "max_age": _duration_or_none(check.max_age_s), "contains": check.contains, "json": check.json or None,
    })


def _on_failure_to_table(failure: OnFailure) -> dict[str, Any] | None:
    default = OnFailure()
    table = _without_none({
        "retries": failure.retries if failure.retries != default.retries else None,
        "backoff": duration_text(failure.backoff_s) if failure.backoff_s != default.backoff_s else None,
        "backoff_max": (duration_text(failure.backoff_max_s)
                        if failure.backoff_max_s != default.backoff_max_s else None),
        "prepare": failure.prepare, "trigger": list(failure.trigger) or None, "alert": failure.alert,
    })
    return table or None


def _duration_or_none(seconds: float | None) -> str | float | None:
    return None if seconds is None else duration_text(seconds)


def duration_text(seconds: float) -> str | float:
    """`seconds` as "5m"-style text that parses back to exactly `seconds`; the bare number
    when no such text does (e.g. 0.0001)."""
    candidates = [format_duration(seconds)]
    whole = int(seconds)
    if whole == seconds:
        parts = [(whole // 86400, "d"), (whole % 86400 // 3600, "h"), (whole % 3600 // 60, "m"), (whole % 60, "s")]
        candidates.append("".join(f"{amount}{unit}" for amount, unit in parts if amount) or "0s")
    for text in candidates:
        if parse_duration(text) == seconds:
            return text
    return seconds


# ---------------------------------------------------------------- JSON for the store

def spec_to_json(spec: EventSpec) -> str:
    """`spec` as JSON (field names as keys, enums as their values); spec_from_json undoes it."""
    return json.dumps(_plain(spec), ensure_ascii=False)


def spec_from_json(text: str) -> EventSpec:
    """The EventSpec spec_to_json wrote. Missing keys take the model's defaults; unknown keys
    (from another evman version) are ignored."""
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError(f"Stored event spec is {type(data).__name__}, not a JSON object; "
                         "reload the definitions file to rewrite it.")
    spec: EventSpec = _from_plain(EventSpec, data)
    return spec


def _plain(value: object) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (tuple, list)):
        return [_plain(item) for item in value]
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    return value


@functools.cache
def _field_types(cls: type[Any]) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _from_plain(kind: Any, value: Any) -> Any:
    """`value` (from JSON) as an instance of the annotated type `kind`."""
    return _converter(kind)(value)


@functools.cache
def _converter(kind: Any) -> Callable[[Any], Any]:
    """The function turning JSON for `kind` into a `kind` (None stays None), worked out once
    per type: the engine decodes the spec of every event it runs, and reading the type hints
    again for every field of every spec cost more than a no-op run."""
    origin = typing.get_origin(kind)
    if origin is types.UnionType or origin is typing.Union:
        (inner,) = [arg for arg in typing.get_args(kind) if arg is not type(None)]
        return _converter(inner)
    if origin is tuple:
        item = _converter(typing.get_args(kind)[0])
        return lambda value: None if value is None else tuple(item(v) for v in value)
    if origin in (Mapping, dict):
        item = _converter(typing.get_args(kind)[1])
        return lambda value: None if value is None else {key: item(v) for key, v in value.items()}
    if isinstance(kind, type) and is_dataclass(kind):
        hints = _field_types(kind)
        plan = [(f.name, _converter(hints[f.name])) for f in fields(kind)]
        return lambda value: None if value is None else kind(
            **{name: convert(value[name]) for name, convert in plan if name in value})
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        return lambda value: None if value is None else kind(value)
    if kind is float:
        return lambda value: None if value is None else float(value)
    return _same


def _same(value: Any) -> Any:
    return value
