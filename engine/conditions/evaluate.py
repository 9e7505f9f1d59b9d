"""Evaluating a Condition against run state: whether it holds, and if not, why."""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, Protocol

from evman.engine.conditions.tree import (
    AllOf,
    AnyOf,
    Condition,
    Exists,
    ExitCode,
    GroupOutcome,
    GroupRunning,
    Node,
    Not,
    Outcome,
    Running,
    render,
)
from evman.engine.model import FAILED_STATES, RunState
from evman.engine.timing.durations import format_duration


@dataclass(frozen=True)
class Finished:
    """The most recent finished run of an event."""

    state: RunState
    ended_at: datetime
    exit_code: int | None


class StateView(Protocol):
    def last_finished(self, event: str) -> Finished | None:
        """The most recent finished run, skipped runs left out; None if it never finished."""
        ...

    def is_running(self, event: str) -> bool: ...

    def path_exists(self, path: str) -> bool:
        """The caller resolves relative paths and globs."""
        ...

    def group_members(self, group: str) -> Sequence[str]:
        """The defined events whose `group` is `group`, by name (asked only by group:NAME)."""
        ...

    def is_waiting(self, event: str) -> bool:
        """Whether a run of `event` waits to start (asked only by group:NAME)."""
        ...


_OUTCOME_STATES: Final[Mapping[str, frozenset[RunState]]] = {
    "success": frozenset({RunState.SUCCEEDED}),
    "failure": FAILED_STATES,
    "done": FAILED_STATES | {RunState.SUCCEEDED},
}
_OUTCOME_NOUNS: Final[Mapping[str, str]] = {"success": "success", "failure": "failure", "done": "run"}
STATE_WORDS: Final[Mapping[RunState, str]] = {
    RunState.SUCCEEDED: "succeeded",
    RunState.FAILED: "failed",
    RunState.KILLED: "was killed",
    RunState.LOST: "was lost",
    RunState.MISSED: "was missed",
    RunState.SKIPPED: "was skipped",
    RunState.WAITING: "was waiting",
    RunState.RUNNING: "was running",
}
_COMPARE: Final[Mapping[str, Callable[[int, int], bool]]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    ">": operator.gt,
    "<=": operator.le,
    ">=": operator.ge,
}


def evaluate(cond: Condition, view: StateView, now: datetime) -> tuple[bool, str | None]:
    """(holds, reason); reason names the first clause that makes it false, None when it holds.

    Short-circuits, so the view is asked only what the answer needs. Naive datetimes are UTC.
    """
    now = _utc(now)
    asked = _Asked(view)
    if _holds(cond.tree, asked, now):  # the usual answer on the hot path: no reason to word
        return True, None
    holds, why = _evaluate(cond.tree, asked, now)
    return holds, None if holds else why


class _Asked:
    """The view, asking each question once: reasons are worded in a second pass, which
    must see the answers the first one saw."""

    def __init__(self, view: StateView) -> None:
        self._view = view
        self._finished: dict[str, Finished | None] = {}
        self._running: dict[str, bool] = {}
        self._exists: dict[str, bool] = {}
        self._members: dict[str, Sequence[str]] = {}
        self._waiting: dict[str, bool] = {}

    def last_finished(self, event: str) -> Finished | None:
        if event not in self._finished:
            self._finished[event] = self._view.last_finished(event)
        return self._finished[event]

    def is_running(self, event: str) -> bool:
        if event not in self._running:
            self._running[event] = self._view.is_running(event)
        return self._running[event]

    def path_exists(self, path: str) -> bool:
        if path not in self._exists:
            self._exists[path] = self._view.path_exists(path)
        return self._exists[path]

    def group_members(self, group: str) -> Sequence[str]:
        if group not in self._members:
            self._members[group] = self._view.group_members(group)
        return self._members[group]

    def is_waiting(self, event: str) -> bool:
        if event not in self._waiting:
            self._waiting[event] = self._view.is_waiting(event)
        return self._waiting[event]


def _holds(node: Node, view: StateView, now: datetime) -> bool:
    """_evaluate(node, ...)[0] without wording reasons (which cost ten times the answer)."""
    match node:
        case AllOf(items):
            return all(_holds(item, view, now) for item in items)
        case AnyOf(items):
            return any(_holds(item, view, now) for item in items)
        case Not(operand):
            return not _holds(operand, view, now)
        case Running(event, wanted):
            return view.is_running(event) == wanted
        case Exists(path):
            return view.path_exists(path)
        case Outcome() | ExitCode():
            return _finished_holds(node, view.last_finished(node.event), now)
        case GroupOutcome() | GroupRunning():
            return _evaluate_group(node, view, now)[0]
    return False


def _finished_holds(node: Outcome | ExitCode, last: Finished | None, now: datetime) -> bool:
    if last is None:
        return False
    if isinstance(node, Outcome):
        holds = last.state in _OUTCOME_STATES[node.test]
    else:
        holds = last.exit_code is not None and _COMPARE[node.op](last.exit_code, node.number)
    if not holds:
        return False
    return node.lookback is None or max((now - _utc(last.ended_at)).total_seconds(), 0.0) <= node.lookback.seconds


def _evaluate(node: Node, view: StateView, now: datetime) -> tuple[bool, str]:
    """(holds, why): `why` explains the result either way, so `not` can say what held."""
    match node:
        case AllOf(items):
            for item in items:
                holds, why = _evaluate(item, view, now)
                if not holds:
                    return False, why
            return True, f"({render(node)}) is true"
        case AnyOf(items):
            reasons = []
            for item in items:
                holds, why = _evaluate(item, view, now)
                if holds:
                    return True, why
                reasons.append(why)
            return False, "; ".join(reasons)
        case Not(operand):
            holds, why = _evaluate(operand, view, now)
            return (False, why) if holds else (True, f"{render(node)} is true")
        case Running(event, _):
            return _evaluate_running(node, view.is_running(event))
        case Exists(path):
            if view.path_exists(path):
                return True, f"{render(node)} is true"
            return False, f"{render(node)} is false: no such file"
        case Outcome() | ExitCode():
            return _evaluate_finished(node, view.last_finished(node.event), now)
        case GroupOutcome() | GroupRunning():
            return _evaluate_group(node, view, now)


def _evaluate_group(node: GroupOutcome | GroupRunning, view: StateView, now: datetime) -> tuple[bool, str]:
    """A group's clause over its members: success and done ask every member to have finished
    (none waiting or running: the group's current occurrence is over) and succeeded (done: either
    way); failure asks that one member's last run failed; running that one member runs."""
    clause = render(node)
    members = view.group_members(node.group)
    if not members:
        return False, f"{clause} is false: no defined event has group = {node.group!r}"
    if isinstance(node, GroupRunning):
        running = [m for m in members if view.is_running(m)]
        if bool(running) == node.wanted:
            return True, f"{clause} is true" + (f": {running[0]} is running" if running else "")
        return False, f"{clause} is false" + (f": {running[0]} is running" if running else ": none of it runs")
    if node.test == "failure":
        for member in members:
            holds, why = _evaluate_finished(Outcome("failure", member, node.lookback), view.last_finished(member), now)
            if holds:
                return True, f"{clause} is true: {member}: {why.split(': ', 1)[-1]}"
        return False, f"{clause} is false: no event of the group failed last"
    for member in members:
        active = "running" if view.is_running(member) else "waiting" if view.is_waiting(member) else None
        if active is not None:
            return False, f"{clause} is false: {member} is still {active}"
        holds, why = _evaluate_finished(Outcome(node.test, member, node.lookback), view.last_finished(member), now)
        if not holds:
            return False, f"{clause} is false: {why}"
    return (
        True,
        f"{clause} is true: all {len(members)} of its events {'succeeded' if node.test == 'success' else 'finished'}",
    )


def _evaluate_running(node: Running, is_running: bool) -> tuple[bool, str]:
    clause = render(node)
    if is_running == node.wanted:
        return True, f"{clause} is true: it is {'' if is_running else 'not '}running"
    return False, f"{clause} is false" + ("" if node.wanted else ": it is running")


def _evaluate_finished(node: Outcome | ExitCode, last: Finished | None, now: datetime) -> tuple[bool, str]:
    clause = render(node)
    if last is None:
        return False, f"{clause} is false: it has never finished"
    ended = _utc(last.ended_at)
    said = f"its last run {STATE_WORDS[last.state]} at {_stamp(ended)}"
    if isinstance(node, Outcome):
        holds, noun = last.state in _OUTCOME_STATES[node.test], _OUTCOME_NOUNS[node.test]
    elif last.exit_code is None:
        holds, noun, said = False, "run", f"{said} without an exit code"
    else:
        holds, noun = _COMPARE[node.op](last.exit_code, node.number), "run"
        said = f"its last run exited with {last.exit_code} at {_stamp(ended)}"
    if not holds:
        return False, f"{clause} is false: {said}"
    age = max((now - ended).total_seconds(), 0.0)
    if node.lookback is not None and age > node.lookback.seconds:
        return False, f"{clause} is false: last {noun} ended {format_duration(age)} ago"
    return True, f"{clause} is true: {said}"


def _utc(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _stamp(at: datetime) -> str:
    """2026-01-01T06:00Z; seconds only when there are some."""
    return at.strftime("%Y-%m-%dT%H:%MZ" if at.second == 0 and at.microsecond == 0 else "%Y-%m-%dT%H:%M:%SZ")
