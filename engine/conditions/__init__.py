"""The `requires` language: parse an expression once, evaluate it against run state, find cycles.

The rooms: `tree` (nodes, rendering), `tokens`, `parser`, `evaluate`, `cycles`.
"""

from __future__ import annotations

from evman.engine.conditions.cycles import find_cycle
from evman.engine.conditions.evaluate import Finished, StateView, evaluate
from evman.engine.conditions.parser import FUNCTIONS, parse_condition
from evman.engine.conditions.tree import (
    AllOf,
    AnyOf,
    Condition,
    ConditionError,
    Exists,
    ExitCode,
    GroupOutcome,
    GroupRunning,
    Lookback,
    Node,
    Not,
    Outcome,
    Running,
    render,
)

__all__ = [
    "FUNCTIONS",
    "AllOf",
    "AnyOf",
    "Condition",
    "ConditionError",
    "Exists",
    "ExitCode",
    "Finished",
    "GroupOutcome",
    "GroupRunning",
    "Lookback",
    "Node",
    "Not",
    "Outcome",
    "Running",
    "StateView",
    "evaluate",
    "find_cycle",
    "parse_condition",
    "render",
]
