"""How long an event takes: p50 and p90 of its recent successes, or fallbacks while history is thin."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, NamedTuple

from evman.engine.ranks import HISTORY_RUNS, rank

MIN_SAMPLES: Final = 5
"""Fewer succeeded runs than this is low confidence: the fallbacks below are used instead."""
FALLBACK_P50_S: Final = 60.0
"""p50 of an event with thin history and neither `expect` nor `runtime.max`."""
HISTORY: Final = "history"
LOW: Final = "low"


class Estimate(NamedTuple):
    """An event's typical durations. A NamedTuple, not a frozen dataclass: a recompute builds
    one per event, and a frozen dataclass costs four times as much to build."""

    p50_s: float
    p90_s: float
    samples: int
    """How many succeeded durations the history held (at most HISTORY_RUNS)."""
    confidence: str
    """HISTORY or LOW."""
    history: tuple[float, ...] = ()
    """The durations it was made from (newest first, at most HISTORY_RUNS): what the
    projection samples from (engine/foresight/model.py)."""


_P50_INDEX: Final = tuple(rank(n, 0.5) - 1 for n in range(HISTORY_RUNS + 1))
_P90_INDEX: Final = tuple(rank(n, 0.9) - 1 for n in range(HISTORY_RUNS + 1))


def estimate(
    durations_s: Sequence[float], *, expect_s: float | None = None, runtime_max_s: float | None = None
) -> Estimate:
    """p50 and p90 from the latest HISTORY_RUNS of `durations_s` (newest first).

    Below MIN_SAMPLES: p50 = expect, else runtime.max / 2, else 60 s; p90 = runtime.max,
    else 3 x p50 (never below p50: an `expect` above `runtime.max` keeps p90 = p50)."""
    recent = sorted(durations_s[:HISTORY_RUNS]) if len(durations_s) > HISTORY_RUNS else sorted(durations_s)
    n = len(recent)
    if n >= MIN_SAMPLES:
        return Estimate(recent[_P50_INDEX[n]], recent[_P90_INDEX[n]], n, HISTORY, tuple(durations_s[:HISTORY_RUNS]))
    if expect_s is not None:
        p50 = expect_s
    elif runtime_max_s is not None:
        p50 = runtime_max_s / 2
    else:
        p50 = FALLBACK_P50_S
    p90 = runtime_max_s if runtime_max_s is not None else 3 * p50
    return Estimate(p50, max(p50, p90), len(recent), LOW, tuple(durations_s[:HISTORY_RUNS]))
