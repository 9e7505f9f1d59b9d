"""Foresight in words: the critical path and the at-risk / projected-late alert texts."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from evman.engine.foresight.projection import Plan, Projection
from evman.engine.model import RunState


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


def late_text(plan: Plan, event: str, timezone: str) -> str:
    """The projected_late message, e.g. `publish projected to miss 06:00 by 12 min (p50; p90
    +31 min); path: fetch ✓ → build running 35/50 min → publish`."""
    row = plan[event]
    assert row.deadline_ts is not None
    deadline = clock_time(row.deadline_ts, timezone, plan.now_ts)
    path = path_text(plan, event)
    if row.p50_ts is None or row.p90_ts is None:
        stuck = blocker(plan, event)
        why = _why_unbounded(stuck) if stuck is not None else "its path has no end"
        return f"{event} will miss {deadline} unless someone acts: {why}; path: {path}"
    by = minutes(row.p50_ts - row.deadline_ts)
    p90 = row.p90_ts - row.deadline_ts
    return (
        f"{event} projected to miss {deadline} by {by} min (p50; p90 {'+' if p90 >= 0 else '-'}"
        f"{minutes(p90)} min); path: {path}"
    )


def risk_text(plan: Plan, event: str, timezone: str, margin_s: float) -> str:
    """The at_risk message: the p90 finish against the deadline and margin, the p50 slack, the path."""
    row = plan[event]
    assert row.deadline_ts is not None
    deadline = clock_time(row.deadline_ts, timezone, plan.now_ts)
    path = path_text(plan, event)
    if row.p50_ts is None or row.p90_ts is None:
        return late_text(plan, event, timezone)
    gap = row.deadline_ts - row.p90_ts
    where = f"{minutes(gap)} min before it" if gap >= 0 else f"{minutes(gap)} min after it"
    spare = row.deadline_ts - row.p50_ts
    p50 = f"{minutes(spare)} min to spare" if spare >= 0 else f"{minutes(spare)} min late"
    return (
        f"{event} at risk of missing {deadline}: p90 finish "
        f"{clock_time(row.p90_ts, timezone, plan.now_ts)}, {where} (margin {minutes(margin_s)} min; "
        f"p50 {clock_time(row.p50_ts, timezone, plan.now_ts)}, {p50}); path: {path}"
    )
