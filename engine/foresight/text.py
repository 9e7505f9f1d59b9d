"""Foresight in words: the critical path and the at-risk / projected-late alert texts."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from evman.engine.model import RunState

if TYPE_CHECKING:
    from evman.engine.foresight.projection import Plan, Projection


def minutes(seconds: float) -> int:
    """Whole minutes, rounded up: 30 s late is "1 min" late, never "0 min"."""
    return math.ceil(round(abs(seconds) / 60, 6))


def clock_time(ts: float, timezone: str, now_ts: float) -> str:
    """HH:MM in the event's zone; with the date when it is not within a day of now."""
    zone = ZoneInfo(timezone)
    local = datetime.fromtimestamp(ts, UTC).astimezone(zone)
    return local.strftime("%H:%M" if abs(ts - now_ts) < 86400 else "%Y-%m-%d %H:%M")


def step_text(row: Projection) -> str:
    """One step of a path: "fetch ✓", "build running 35/50 min" (elapsed / p90), "publish held"."""
    state = row.state
    if state is RunState.SUCCEEDED:
        return f"{row.event} ✓"
    if state is RunState.RUNNING:
        elapsed = minutes(row.elapsed_s or 0.0) if (row.elapsed_s or 0) >= 60 else 0
        return f"{row.event} running {elapsed}/{minutes(row.estimate.p90_s)} min"
    if row.held:
        return f"{row.event} held"
    if state is RunState.WAITING:
        return row.event
    retry = ", retrying" if row.retries_left > 0 else ", no retries left"
    return f"{row.event} {state}{retry}"


def path_text(plan: Plan, event: str) -> str:
    return " → ".join(step_text(plan[name]) for name in plan.critical_path(event))


def blocker(plan: Plan, event: str) -> Projection | None:
    """The first event on `event`'s path whose own finish is unbounded (held, failed, missed)."""
    for name in plan.critical_path(event):
        row = plan[name]
        if row.is_unbounded:
            return row
    return None


def _why_unbounded(row: Projection) -> str:
    if row.held:
        return f"{row.event} is held"
    if row.state is RunState.WAITING:
        return f"{row.event} is waiting for an event that will not finish"
    return f"{row.event} {row.state} with no retries left"


def blocker_text(plan: Plan, event: str) -> str | None:
    """What stops `event`'s path ("head is held"), or None when its path has an end."""
    stuck = blocker(plan, event)
    return None if stuck is None else _why_unbounded(stuck)


def percent(probability: float) -> str:
    """ "73 %"; never "0 %" or "100 %" for what is only nearly so."""
    value = round(probability * 100)
    if value == 0 and probability > 0:
        return "<1 %"
    if value == 100 and probability < 1:
        return ">99 %"
    return f"{value} %"


def _odds(plan: Plan, event: str, timezone: str) -> str:
    row = plan[event]
    assert row.deadline_ts is not None and row.p50_ts is not None and row.p90_ts is not None
    deadline = clock_time(row.deadline_ts, timezone, plan.now_ts)
    expected = clock_time(row.p50_ts, timezone, plan.now_ts)
    p90 = clock_time(row.p90_ts, timezone, plan.now_ts)
    chance = percent(row.miss_probability or 0.0)
    return f"{chance} likely to miss {deadline}; expected {expected}, p90 {p90}"


def late_text(plan: Plan, event: str, timezone: str) -> str:
    """The projected_late message, e.g. `publish: 73 % likely to miss 05:30; expected 05:41,
    p90 06:02; path: fetch ✓ → build running 35/50 min → publish`, or `publish will miss
    05:30 unless someone acts: build failed with no retries left; path: ...`."""
    row = plan[event]
    assert row.deadline_ts is not None
    path = path_text(plan, event)
    if row.p50_ts is None or row.p90_ts is None:
        deadline = clock_time(row.deadline_ts, timezone, plan.now_ts)
        why = blocker_text(plan, event) or "its path has no end"
        return f"{event} will miss {deadline} unless someone acts: {why}; path: {path}"
    return f"{event}: {_odds(plan, event, timezone)}; path: {path}"


def risk_text(plan: Plan, event: str, timezone: str) -> str:
    """The at_risk message: `publish at risk: 35 % likely to miss 05:30; expected 05:12, p90 05:34; path: ...`."""
    row = plan[event]
    if row.p50_ts is None or row.p90_ts is None:
        return late_text(plan, event, timezone)
    return f"{event} at risk: {_odds(plan, event, timezone)}; path: {path_text(plan, event)}"
