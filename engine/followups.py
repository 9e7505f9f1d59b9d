"""What follows a finished run (followers, retries, alerts) and what deadlines raise."""
from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Final

from engine.clock import iso
from engine.durations import format_duration
from engine.model import AlertKind, EventSpec, RunState, Trigger

if TYPE_CHECKING:
    from engine.engine import ActiveRun, Change, Engine

RESOLVED_BY_SUCCESS: Final = ("failed", "lost", "missed", "overdue", "overrun", "late")
RECOVERY_WORTHY: Final = ("failed", "lost", "missed")

_UPSERT_ALERT: Final = (
    "INSERT INTO alerts (kind, event, run_id, route, message, created_at, updated_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(event, kind) WHERE status = 'open' DO UPDATE SET "
    "count = count + 1, updated_at = excluded.updated_at, run_id = excluded.run_id, "
    "message = excluded.message")
_RECOVERED: Final = (
    "INSERT INTO alerts (kind, event, run_id, route, message, created_at, updated_at, status, resolved_at) "
    "VALUES ('recovered', ?, ?, ?, ?, ?, ?, 'resolved', ?)")
_RESOLVE: Final = (
    "UPDATE alerts SET status = 'resolved', resolved_at = ? WHERE event = ? AND status = 'open' "
    "AND kind IN ('failed', 'lost', 'missed', 'overdue', 'overrun', 'late')")


def raise_alert(engine: Engine, spec: EventSpec, kind: AlertKind, run: ActiveRun,
                message: str, at: datetime, route: str | None = None) -> None:
    """Write an alert row; while one of (event, kind) is open, add to it instead of paging anew."""
    engine._write(_UPSERT_ALERT, kind.value, spec.name, run.id, route or spec.driver, message,
                  iso(at), iso(at))
    engine._changes.append(_change(spec.name, run.id, kind.value, message))


def _change(event: str, run_id: int, kind: str, message: str) -> Change:
    from engine.engine import Change
    return Change("alert", event, run_id, kind, message)


def after_finish(engine: Engine, spec: EventSpec, run: ActiveRun, state: RunState, at: datetime,
                 *, reason: str | None, final: bool) -> None:
    if state is RunState.SUCCEEDED:
        _succeeded(engine, spec, run, at)
    elif state in (RunState.FAILED, RunState.LOST):
        _failed(engine, spec, run, state, at, reason=reason, final=final)


def _succeeded(engine: Engine, spec: EventSpec, run: ActiveRun, at: datetime) -> None:
    took = (at - run.started_at).total_seconds() if run.started_at else None
    if spec.runtime.min_s is not None and took is not None and took < spec.runtime.min_s:
        run.flags.add("too_fast")
        engine._write("UPDATE runs SET flags = ? WHERE id = ?", ",".join(sorted(run.flags)), run.id)
        raise_alert(engine, spec, AlertKind.TOO_FAST, run,
                    f"{spec.name} succeeded in {format_duration(took)}, faster than its normal "
                    f"minimum of {format_duration(spec.runtime.min_s)}; check that it did its work.", at)
    open_kinds = engine.open_alert_kinds(spec.name)
    if open_kinds & set(RESOLVED_BY_SUCCESS):
        engine._write(_RESOLVE, iso(at), spec.name)
        if open_kinds & set(RECOVERY_WORTHY):
            message = f"{spec.name} succeeded again (run {run.id}) after " + ", ".join(
                sorted(open_kinds & set(RECOVERY_WORTHY))) + "; its alerts are resolved."
            engine._write(_RECOVERED, spec.name, run.id, spec.driver, message, iso(at), iso(at), iso(at))
            engine._changes.append(_change(spec.name, run.id, "recovered", message))
    for name in spec.on_success:
        engine._new_run(name, Trigger.ON_SUCCESS, at, triggered_by=f"run:{run.id}", now=at)


def _failed(engine: Engine, spec: EventSpec, run: ActiveRun, state: RunState, at: datetime,
            *, reason: str | None, final: bool) -> None:
    from engine.engine import backoff_for
    policy = spec.on_failure
    if not final and run.attempt <= policy.retries:
        delay = backoff_for(spec, run.attempt)
        engine._new_run(spec.name, Trigger.RETRY, run.scheduled_for, attempt=run.attempt + 1,
                        repeats=run, not_before=at + delay, needs_prepare=policy.prepare is not None,
                        triggered_by=f"retry {run.attempt} of {policy.retries} after run {run.id}",
                        now=at)
        return
    kind = AlertKind.LOST if state is RunState.LOST else AlertKind.FAILED
    tries = f" after {run.attempt} attempt(s)" if run.attempt > 1 else ""
    raise_alert(engine, spec, kind, run,
                f"{spec.name} {state.value}{tries}: {reason or 'no reason recorded'}", at,
                route=policy.alert)
    for name in policy.trigger:
        engine._new_run(name, Trigger.ON_FAILURE, at, triggered_by=f"run:{run.id}", now=at)


def check_deadlines(engine: Engine, run: ActiveRun, now: datetime) -> None:
    spec = engine.spec(run.event)
    if spec is None:
        return
    if run.state is RunState.WAITING:
        _check_waiting(engine, spec, run, now)
    elif run.state is RunState.RUNNING:
        _check_running(engine, spec, run, now)


def _flag(engine: Engine, run: ActiveRun, flag: str) -> bool:
    """Set a flag once; True the first time."""
    if flag in run.flags:
        return False
    run.flags.add(flag)
    if not run.is_new:
        engine._write("UPDATE runs SET flags = ? WHERE id = ?", ",".join(sorted(run.flags)), run.id)
    return True


def _check_waiting(engine: Engine, spec: EventSpec, run: ActiveRun, now: datetime) -> None:
    from engine.engine import _local
    waiting = run.waiting_reason or "nothing recorded"
    if run.due_by is not None and now >= run.due_by:
        message = (f"{spec.name} missed its window: it had not started when the window closed at "
                   f"{_local(run.due_by, spec, now)} (waiting: {waiting}).")
        if run.preparing:  # its prepare step is still going: it ends with the run
            engine._kill(run, "window closed")
        engine._finish(run, RunState.MISSED, now, reason=f"missed: window closed at "
                       f"{_local(run.due_by, spec, now)} while waiting ({waiting})")
        raise_alert(engine, spec, AlertKind.MISSED, run, message, now)
        return
    if run.late_at is not None and now >= run.late_at and _flag(engine, run, "late"):
        raise_alert(engine, spec, AlertKind.LATE, run,
                    f"{spec.name} is late: not started by {_local(run.late_at, spec, now)} "
                    f"(waiting: {waiting}).", now)


def _check_running(engine: Engine, spec: EventSpec, run: ActiveRun, now: datetime) -> None:
    from engine.engine import _local
    if run.due_by is not None and now >= run.due_by and _flag(engine, run, "overdue"):
        raise_alert(engine, spec, AlertKind.OVERDUE, run,
                    f"{spec.name} is overdue: still running at {_local(run.due_by, spec, now)}, "
                    f"the end of its window.", now)
    if run.started_at is None:
        return
    took = (now - run.started_at).total_seconds()
    if spec.timeout_s is not None and took >= spec.timeout_s and _flag(engine, run, "timeout"):
        engine._kill(run, f"timeout {format_duration(spec.timeout_s)} exceeded")
    limit = spec.runtime.max_s
    if limit is None:
        return
    if took >= limit and _flag(engine, run, "overrun"):
        action = "; killing it (runtime.kill = true)" if spec.runtime.kill else ""
        raise_alert(engine, spec, AlertKind.OVERRUN, run,
                    f"{spec.name} has run {format_duration(took)}, longer than its normal maximum "
                    f"of {format_duration(limit)}{action}.", now)
        if spec.runtime.kill:
            engine._kill(run, f"runtime max {format_duration(limit)} exceeded")
