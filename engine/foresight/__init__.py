"""Foresight: projected finishes as distributions, critical paths and the at-risk /
projected-late rules.

Pure: nothing here reads the store or the clock except `reading`; the projection stage and
`evman plan` feed it.
"""

from __future__ import annotations

from typing import Any

from evman.engine.foresight.estimate import MIN_SAMPLES, Estimate, estimate
from evman.engine.foresight.graph import CycleError, Graph, build_graph
from evman.engine.foresight.occurrence import Occurrence, occurrence
from evman.engine.foresight.rules import AT_RISK, PROJECTED_LATE, Standing, Verdict, Watch, judge
from evman.engine.foresight.whatif import WhatIf, WhatIfError, apply_what_ifs, parse_what_if, parse_what_ifs
from evman.engine.ranks import HISTORY_RUNS, nearest_rank

_LAZY = {"Plan", "Projection", "project"}
"""From engine/foresight/projection.py, which needs numpy: imported when first asked for."""


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from evman.engine.foresight import projection

        return getattr(projection, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "AT_RISK",
    "CycleError",
    "Estimate",
    "Graph",
    "HISTORY_RUNS",
    "MIN_SAMPLES",
    "Occurrence",
    "PROJECTED_LATE",
    "Plan",
    "Projection",
    "Standing",
    "occurrence",
    "Verdict",
    "Watch",
    "WhatIf",
    "WhatIfError",
    "apply_what_ifs",
    "build_graph",
    "estimate",
    "judge",
    "nearest_rank",
    "parse_what_if",
    "parse_what_ifs",
    "project",
]
