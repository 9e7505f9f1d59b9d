"""How events link: requires, on_success, on_failure, driver, and no cycles through them."""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from typing import Any, Final

from evman.engine.conditions import ConditionError, find_cycle, parse_condition
from evman.engine.definitions.problems import Problems
from evman.engine.definitions.routes import check_route
from evman.engine.definitions.table import Context, Table, without_none
from evman.engine.model import EventSpec, OnFailure
from evman.engine.quoting import quoted
from evman.engine.timing.durations import format_duration

ON_FAILURE_KEYS: Final = ("retries", "backoff", "backoff_max", "prepare", "trigger", "alert")


def read_links(table: Table, context: Context) -> dict[str, Any]:
    driver = table.string("driver", blank_ok=False)
    if driver is not None:
        check_route(table, "driver", driver, context.routes)
    return {
        "requires": _read_requires(table, context),
        "on_success": _read_event_names(table, "on_success", context),
        "on_failure": _read_on_failure(table, context),
        "driver": driver or context.defaults.driver,
    }


def _read_requires(table: Table, context: Context) -> str | None:
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
    for group in sorted(condition.groups):
        _check_group(table, group, context)
    return text


def _check_group(table: Table, group: str, context: Context) -> None:
    if context.groups is None or group in context.groups:
        return
    close = difflib.get_close_matches(group, sorted(context.groups), n=1)
    hint = f"did you mean group:{close[0]}?" if close else 'expected a group some event names with group = "..."'
    table.error("requires", f"no event has group = {quoted(group)}; {hint}")


def _read_event_names(table: Table, key: str, context: Context) -> tuple[str, ...] | None:
    names = table.strings(key)
    for name in names or ():
        _check_event(table, key, name, context)
    return names


def _check_event(table: Table, key: str, name: str, context: Context) -> None:
    if context.events is None or name in context.events:
        return
    close = difflib.get_close_matches(name, sorted(context.events), n=1)
    hint = f"did you mean {quoted(close[0])}?" if close else "expected the name of an [[event]] in this file"
    table.error(key, f"unknown event {quoted(name)}; {hint}")


def _read_on_failure(table: Table, context: Context) -> OnFailure | None:
    failure = table.sub("on_failure", ON_FAILURE_KEYS)
    if failure is None:
        return None
    backoff, most = failure.duration("backoff"), failure.duration("backoff_max")
    if backoff is not None and most is not None and backoff > most:
        failure.error(
            "backoff",
            f"is longer than backoff_max ({format_duration(backoff)} > "
            f"{format_duration(most)}); expected backoff <= backoff_max",
        )
    alert = failure.string("alert", blank_ok=False)
    if alert is not None:
        check_route(failure, "alert", alert, context.routes)
    return OnFailure(
        **without_none(
            {
                "retries": failure.integer("retries"),
                "backoff_s": backoff,
                "backoff_max_s": most,
                "prepare": failure.string("prepare", blank_ok=False),
                "trigger": _read_event_names(failure, "trigger", context),
                "alert": alert,
            }
        )
    )


def check_cycles(specs: Sequence[EventSpec], problems: Problems, indexes: Mapping[str, int]) -> None:
    """A cycle through requires/on_success would wait on, or start, itself forever.
    `indexes`: each event's place in the file's [[event]] array (0-based), for its line."""
    graph: dict[str, set[str]] = {spec.name: set(spec.on_success) for spec in specs}
    members: dict[str, set[str]] = {}
    for spec in specs:
        if spec.group is not None:
            members.setdefault(spec.group, set()).add(spec.name)
    for spec in specs:
        for needed in _required_events(spec, members):
            graph.setdefault(needed, set()).add(spec.name)
    cycle = find_cycle({node: sorted(targets) for node, targets in sorted(graph.items())})
    if cycle is None:
        return
    if cycle[0] != cycle[-1]:
        cycle = [*cycle, cycle[0]]
    by_name = {spec.name: spec for spec in specs}
    first = by_name.get(cycle[0])
    event, key = (
        (cycle[0], "on_success") if first is not None and cycle[1] in first.on_success else (cycle[1], "requires")
    )
    problems.add(
        f"event {quoted(event)}",
        f"key {quoted(key)}: dependency cycle {' -> '.join(cycle)} "
        "through requires and on_success; expected no cycle: remove one of these links",
        ("event", indexes[event], key) if event in indexes else (),
    )


def _required_events(spec: EventSpec, members: Mapping[str, set[str]]) -> frozenset[str]:
    """The events `requires` waits on: those it names, and every member of a group it names."""
    if spec.requires is None:
        return frozenset()
    condition = parse_condition(spec.requires)
    return condition.events.union(*(members.get(group, set()) for group in condition.groups))
