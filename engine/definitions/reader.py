"""Reading a definitions file: the text, the TOML, and the document's tables in order."""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Collection, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from evman.engine.definitions.blackouts import read_blackouts
from evman.engine.definitions.calendars import read_calendars
from evman.engine.definitions.defaults import read_defaults
from evman.engine.definitions.event import read_event
from evman.engine.definitions.links import check_cycles
from evman.engine.definitions.problems import DefinitionsError, Problems
from evman.engine.definitions.routes import read_route_names, read_routes
from evman.engine.definitions.table import Context, Table, describe
from evman.engine.model import Defaults, Definitions, EventSpec
from evman.engine.quoting import quoted

TOP_KEYS: Final = ("defaults", "routes", "event", "calendars", "blackouts")
_TOML_POSITION: Final = re.compile(r"(?P<what>.*) \(at line (?P<line>\d+), column (?P<column>\d+)\)", re.S)


def load_definitions(path: str | Path, *, known_events: Iterable[str] = ()) -> Definitions:
    """Read and validate a definitions file; raise DefinitionsError listing every problem.

    `known_events` are names defined elsewhere (already in the database) that `requires`,
    `on_success` and `on_failure.trigger` may name besides this file's own events.
    """
    source = str(path)
    text = _read_text(Path(path), source)
    return parse_definitions(text, source=source, base_dir=Path(path).absolute().parent, known_events=known_events)


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
        line = data[: exc.start].count(b"\n") + 1
        raise DefinitionsError(
            [f"{source}:{line}: not UTF-8 text (byte 0x{data[exc.start]:02x}); expected a TOML file saved as UTF-8"]
        ) from None


def parse_definitions(text: str, *, source: str, base_dir: Path, known_events: Iterable[str] = ()) -> Definitions:
    """Validate definitions TOML; relative paths resolve against `base_dir`. Writes nothing."""
    problems = Problems(source, text)
    document = _parse_toml(text, source)
    definitions = _read_document(document, problems, Path(base_dir).absolute(), frozenset(known_events))
    if problems.lines:
        raise DefinitionsError(problems.lines)
    return definitions


def validate_event_table(
    table: Mapping[str, Any],
    *,
    source: str,
    defaults: Defaults,
    base_dir: Path,
    routes: Collection[str] | None,
    known_events: Collection[str] | None = None,
) -> EventSpec:
    """One `[[event]]` table as an EventSpec, or DefinitionsError.

    `routes`: the route names there are (a Mapping of routes will do); None when the file has
    no [routes], so any driver name goes. `known_events`: the names `requires` and
    `on_success` may use; None skips that check.
    """
    problems = Problems(source)
    context = Context(defaults, Path(base_dir).absolute(), _names(routes), _names(known_events))
    spec = read_event(Table(table, problems, event_where(table, 1)), context)
    if spec is None or problems.lines:
        raise DefinitionsError(problems.lines)
    return spec


def _names(names: Collection[str] | None) -> frozenset[str] | None:
    return None if names is None else frozenset(names)


def _parse_toml(text: str, source: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise DefinitionsError([f"{source}:{_syntax_problem(str(exc), text)}"]) from None


def _syntax_problem(message: str, text: str) -> str:
    """tomllib's message as "line:column: TOML syntax: what"."""
    if match := _TOML_POSITION.fullmatch(message):
        return f"{match['line']}:{match['column']}: TOML syntax: {match['what']}"
    what = message.removesuffix(" (at end of document)")
    last = text.rsplit("\n", 1)[-1]
    return f"{text.count(chr(10)) + 1}:{len(last) + 1}: TOML syntax: {what} (at the end of the file)"


def _read_document(
    document: Mapping[str, Any], problems: Problems, base_dir: Path, known_events: frozenset[str]
) -> Definitions:
    for key in document:
        if key not in TOP_KEYS:
            close = difflib.get_close_matches(key, TOP_KEYS, n=1)
            hint = (
                f"did you mean {quoted(close[0])}?"
                if close
                else "expected [defaults], [routes], [calendars.NAME], [blackouts.NAME] and [[event]]"
            )
            problems.add("", f"unknown top-level key {quoted(key)}; {hint}", (key,))
    route_names = read_route_names(document.get("routes"), problems)
    routes = read_routes(document.get("routes"), problems, base_dir)
    defaults = read_defaults(document.get("defaults"), problems, route_names)
    calendars = read_calendars(document.get("calendars"), problems)
    tables = _event_tables(document.get("event"), problems)
    context = Context(defaults, base_dir, route_names, None, calendars)
    events = _read_events(tables, problems, context, known_events)
    indexes = {name: index for index, table in reversed(tables) if isinstance(name := table.get("name"), str)}
    check_cycles(events, problems, indexes)
    names = {t["name"] for _, t in tables if isinstance(t.get("name"), str)} | known_events
    blackouts = read_blackouts(document.get("blackouts"), problems, defaults, names)
    return Definitions(
        defaults=defaults,
        routes=routes,
        events=tuple(events),
        source=problems.source,
        calendars=calendars,
        blackouts=blackouts,
    )


def _event_tables(raw: object, problems: Problems) -> list[tuple[int, Mapping[str, Any]]]:
    """The [[event]] tables, each with its index in the array (0-based)."""
    if raw is None:
        return []
    if isinstance(raw, dict):
        problems.add("[event]", "is a single table; write [[event]] (double brackets) before each event", ("event",))
        return []
    if not isinstance(raw, list):
        problems.add("key 'event'", f"got {describe(raw)}; expected [[event]] tables", ("event",))
        return []
    tables: list[tuple[int, Mapping[str, Any]]] = []
    for index, item in enumerate(raw):
        if isinstance(item, dict):
            tables.append((index, item))
        else:
            problems.add(f"event #{index + 1}", f"got {describe(item)}; expected an [[event]] table", ("event", index))
    return tables


def event_where(table: Mapping[str, Any], number: int) -> str:
    name = table.get("name")
    return f"event {quoted(name)}" if isinstance(name, str) and name else f"event #{number}"


def _read_events(
    tables: Sequence[tuple[int, Mapping[str, Any]]], problems: Problems, context: Context, known_events: frozenset[str]
) -> list[EventSpec]:
    names = {t["name"] for _, t in tables if isinstance(t.get("name"), str)}
    context = Context(
        context.defaults, context.base_dir, context.routes, frozenset(names) | known_events, context.calendars
    )
    first_seen: dict[str, int] = {}
    specs = []
    for index, raw in tables:
        number = index + 1
        table = Table(raw, problems, event_where(raw, number), at=("event", index))
        name = raw.get("name")
        if isinstance(name, str) and name in first_seen:
            table.error(
                "name",
                f"{quoted(name)} is already the name of event #{first_seen[name]}; expected a name no other event uses",
            )
        elif isinstance(name, str):
            first_seen[name] = number
        spec = read_event(table, context)
        if spec is not None:
            specs.append(spec)
    return specs
