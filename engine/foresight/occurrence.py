"""One event's current occurrence, as the projection needs it (build it with occurrence())."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

from evman.engine.foresight.estimate import Estimate, estimate
from evman.engine.model import RunState


class Occurrence(NamedTuple):
    """Times are UTC epoch seconds: the stage builds an occurrence when its run changes and
    reuses it for every recompute in between, so each time is converted once. A NamedTuple,
    not a frozen dataclass: one is built per event, and a frozen dataclass costs four times
    as much to build."""

    event: str
    state: RunState
    """WAITING also for an occurrence not created yet but expected (a follower in tonight's chain)."""
    estimate: Estimate
    opens_ts: float | None = None
    """No start before this: when it falls due, its window opens or its retry's backoff ends."""
    started_ts: float | None = None
    ended_ts: float | None = None
    retries_left: int = 0
    backoff_s: float = 0.0
    """Wait before the next retry of a failed occurrence."""
    held: bool = False
    deadline_ts: float | None = None
    """Must have finished by this (see engine.timing.windows.resolve_deadline)."""
    factor: float = 1.0
    """What-if: its durations times this."""
    delay_s: float = 0.0
    """What-if: it starts (or, running, finishes) this much later."""
    seed: int = 0
    """Which random order its samples take (engine/foresight/model.py): the stage gives each
    night's occurrence its own, so that the sampling's small errors do not repeat every night."""


def occurrence(
    event: str,
    state: RunState,
    durations_s: Sequence[float] = (),
    *,
    expect_s: float | None = None,
    runtime_max_s: float | None = None,
    opens_at: datetime | None = None,
    started_at: datetime | None = None,
    ended_at: datetime | None = None,
    retries_left: int = 0,
    backoff_s: float = 0.0,
    held: bool = False,
    deadline: datetime | None = None,
    estimated: Estimate | None = None,
) -> Occurrence:
    """An Occurrence from datetimes and the event's history: `durations_s` are its last
    succeeded runs' durations, newest first (only the first 20 count); `estimated`, when
    the caller already has it, stands for estimate(durations_s, expect_s, runtime_max_s)."""
    est = estimated or estimate(durations_s, expect_s=expect_s, runtime_max_s=runtime_max_s)
    return Occurrence(
        event, state, est, _ts(opens_at), _ts(started_at), _ts(ended_at), retries_left, backoff_s, held, _ts(deadline)
    )


def _ts(at: datetime | None) -> float | None:
    return None if at is None else at.timestamp()
