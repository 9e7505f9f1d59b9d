"""Stage 6: window and runtime checks over the active runs: late, missed, overdue, timeout, overrun."""

from __future__ import annotations

from evman.engine.model import AlertKind, EventSpec, RunState
from evman.engine.tick import lifecycle
from evman.engine.tick.active import ActiveRun
from evman.engine.tick.context import Tick
from evman.engine.timing.durations import format_duration
from evman.engine.timing.wording import local_text


def check_deadlines(tick: Tick) -> None:
    for run in list(tick.runs.values()):
        spec = tick.view.spec(run.event)
        if spec is None:
            continue
        if run.state is RunState.WAITING:
            _check_waiting(tick, spec, run)
        elif run.state is RunState.RUNNING:
            _check_running(tick, spec, run)


def _check_waiting(tick: Tick, spec: EventSpec, run: ActiveRun) -> None:
    now = tick.now
    waiting = run.waiting_reason or "nothing recorded"
    if run.due_by is not None and now >= run.due_by:
        closed = local_text(run.due_by, spec, now)
        if run.preparing:  # its prepare step is still going: it ends with the run
            lifecycle.kill(tick, run, "window closed")
        lifecycle.finish(
            tick, run, RunState.MISSED, now, reason=f"missed: window closed at {closed} while waiting ({waiting})"
        )
        lifecycle.raise_alert(
            tick,
            spec,
            AlertKind.MISSED,
            run,
            f"{spec.name} missed its window: it had not started when the window "
            f"closed at {closed} (waiting: {waiting}).",
            now,
        )
        return
    if run.late_at is not None and now >= run.late_at and lifecycle.set_flag(tick, run, "late"):
        lifecycle.raise_alert(
            tick,
            spec,
            AlertKind.LATE,
            run,
            f"{spec.name} is late: not started by {local_text(run.late_at, spec, now)} (waiting: {waiting}).",
            now,
        )


def _check_running(tick: Tick, spec: EventSpec, run: ActiveRun) -> None:
    now = tick.now
    if run.due_by is not None and now >= run.due_by and lifecycle.set_flag(tick, run, "overdue"):
        lifecycle.raise_alert(
            tick,
            spec,
            AlertKind.OVERDUE,
            run,
            f"{spec.name} is overdue: still running at {local_text(run.due_by, spec, now)}, the end of its window.",
            now,
        )
    if run.started_at is None:
        return
    took = (now - run.started_at).total_seconds()
    if spec.timeout_s is not None and took >= spec.timeout_s and lifecycle.set_flag(tick, run, "timeout"):
        lifecycle.kill(tick, run, f"timeout {format_duration(spec.timeout_s)} exceeded")
    limit = spec.runtime.max_s
    if limit is None or took < limit or not lifecycle.set_flag(tick, run, "overrun"):
        return
    action = "; killing it (runtime.kill = true)" if spec.runtime.kill else ""
    lifecycle.raise_alert(
        tick,
        spec,
        AlertKind.OVERRUN,
        run,
        f"{spec.name} has run {format_duration(took)}, longer than its normal maximum "
        f"of {format_duration(limit)}{action}.",
        now,
    )
    if spec.runtime.kill:
        lifecycle.kill(tick, run, f"runtime max {format_duration(limit)} exceeded")
