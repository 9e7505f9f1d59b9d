"""How long each event's runs and logs are kept, from `keep` and from what reads them.

Never deleted, whatever the horizon (engine/retention/kept.py finds them): active runs; runs an
open alert points at; each event's last HISTORY_RUNS succeeded runs (foresight's durations,
`evman show`'s statistics) and its last run of every outcome (`success(E)`, `failure(E)`, the
console's last failure); and a run that a `requires` look-back can still see (`success(E, "12h")`
keeps E's runs for at least 12 hours). The last run of every outcome and an alerted run keep
their log too; the last successes keep only their rows (their durations are what is read)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from evman.engine.conditions import AllOf, AnyOf, ConditionError, ExitCode, Node, Not, Outcome, parse_condition
from evman.engine.model import Defaults, EventSpec


@dataclass(frozen=True)
class Horizon:
    runs_s: float
    """Finished runs that ended longer ago than this are deleted (unless kept)."""
    logs_s: float
    """Their log files go after this long; never later than the run itself."""


def horizons(specs: Mapping[str, EventSpec | None], defaults: Defaults) -> dict[str, Horizon]:
    """event -> its horizon. An event whose spec could not be read (None) gets the defaults'."""
    seen = looked_back(spec for spec in specs.values() if spec is not None)
    out: dict[str, Horizon] = {}
    for name, spec in specs.items():
        runs = (spec.keep_runs_s if spec is not None else None) or defaults.keep_runs_s
        runs = max(runs, seen.get(name, 0.0))
        logs = (spec.keep_logs_s if spec is not None else None) or defaults.keep_logs_s
        out[name] = Horizon(runs, min(logs, runs))
    return out


def looked_back(specs: Iterator[EventSpec] | list[EventSpec]) -> dict[str, float]:
    """event -> the longest look-back any `requires` asks of it (success(E, "12h") -> 43200)."""
    longest: dict[str, float] = {}
    for spec in specs:
        if not spec.requires:
            continue
        try:
            tree = parse_condition(spec.requires).tree
        except ConditionError:
            continue  # validated at load; an unreadable stored one asks for nothing
        for event, seconds in _lookbacks(tree):
            longest[event] = max(longest.get(event, 0.0), seconds)
    return longest


def _lookbacks(node: Node) -> Iterator[tuple[str, float]]:
    match node:
        case Outcome(_, event, lookback) | ExitCode(event, _, _, lookback) if lookback is not None:
            yield event, lookback.seconds
        case Not(operand):
            yield from _lookbacks(operand)
        case AllOf(items) | AnyOf(items):
            for item in items:
                yield from _lookbacks(item)
        case _:
            return
