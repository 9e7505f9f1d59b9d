"""Nearest-rank quantiles of run durations: the one rule `evman show`, the store and the
projection share."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Final

HISTORY_RUNS: Final = 20
"""The last this many succeeded runs make an event's history."""


def nearest_rank(ordered: Sequence[float], q: float) -> float:
    """The nearest-rank q-quantile (0 < q <= 1) of sorted, non-empty `ordered`: the value at
    rank ceil(q * n), counting from 1. p50 of 20 is the 10th, p90 of 20 the 18th."""
    return ordered[rank(len(ordered), q) - 1]


def rank(n: int, q: float) -> int:
    """The 1-based rank of the nearest-rank q-quantile of n values."""
    return min(n, max(1, math.ceil(round(q * n, 9))))
