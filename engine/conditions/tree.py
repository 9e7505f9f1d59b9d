"""A parsed `requires` expression: its nodes, and each clause as a user would write it."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Final, Literal, TypeAlias

WORD: Final = re.compile(r"[A-Za-z0-9_.\-]+")
GROUP_PREFIX: Final = "group:"
"""success(group:NAME): a function's argument that names a group of events, not one event."""


class ConditionError(ValueError):
    def __init__(self, message: str, column: int | None = None) -> None:
        super().__init__(message)
        self.column = column
        """1-based column (within its line) of the problem; None when it has no one place."""


@dataclass(frozen=True)
class Lookback:
    seconds: float
    text: str
    """As written, e.g. "12h"; reasons quote it back."""


@dataclass(frozen=True)
class Outcome:
    """success(E) / failure(E) / done(E), optionally within a lookback."""

    test: Literal["success", "failure", "done"]
    event: str
    lookback: Lookback | None = None


@dataclass(frozen=True)
class ExitCode:
    event: str
    op: str
    number: int
    lookback: Lookback | None = None


@dataclass(frozen=True)
class Running:
    event: str
    wanted: bool
    """True for running(E), False for notrunning(E)."""


@dataclass(frozen=True)
class GroupOutcome:
    """success(group:G) / failure(group:G) / done(group:G): over every event of the group."""

    test: Literal["success", "failure", "done"]
    group: str
    lookback: Lookback | None = None


@dataclass(frozen=True)
class GroupRunning:
    """running(group:G): some event of the group runs; notrunning(group:G): none does."""

    group: str
    wanted: bool


@dataclass(frozen=True)
class Exists:
    path: str


@dataclass(frozen=True)
class Not:
    operand: Node


@dataclass(frozen=True)
class AllOf:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class AnyOf:
    items: tuple[Node, ...]


Node: TypeAlias = Outcome | ExitCode | Running | GroupOutcome | GroupRunning | Exists | Not | AllOf | AnyOf


@dataclass(frozen=True)
class Condition:
    source: str
    events: frozenset[str]
    """Every event name the expression mentions."""
    paths: tuple[str, ...]
    """Every exists() path, in order of first appearance."""
    tree: Node = field(repr=False)
    groups: frozenset[str] = frozenset()
    """Every group named as group:NAME."""

    def __str__(self) -> str:
        return render(self.tree)


def render(node: Node) -> str:
    """The clause as a user would write it; reasons quote it."""
    match node:
        case Outcome(test, event, lookback):
            return f"{test}({event}{_render_lookback(lookback)})"
        case ExitCode(event, op, number, lookback):
            return f"exitcode({event}{_render_lookback(lookback)}) {op} {number}"
        case Running(event, wanted):
            return f"{'running' if wanted else 'notrunning'}({event})"
        case GroupOutcome(test, group, lookback):
            return f"{test}({GROUP_PREFIX}{group}{_render_lookback(lookback)})"
        case GroupRunning(group, wanted):
            return f"{'running' if wanted else 'notrunning'}({GROUP_PREFIX}{group})"
        case Exists(path):
            return f"exists({_quote(path)})"
        case Not(operand):
            return f"not {_render_operand(operand)}"
        case AllOf(items):
            return " and ".join(f"({render(i)})" if isinstance(i, AnyOf) else render(i) for i in items)
        case AnyOf(items):
            return " or ".join(render(item) for item in items)


def _render_operand(node: Node) -> str:
    return f"({render(node)})" if isinstance(node, (AllOf, AnyOf)) else render(node)


def _render_lookback(lookback: Lookback | None) -> str:
    if lookback is None:
        return ""
    text = lookback.text
    return f", {text}" if WORD.fullmatch(text) else f", {_quote(text)}"


def _quote(text: str) -> str:
    return f"'{text}'" if '"' in text else f'"{text}"'
