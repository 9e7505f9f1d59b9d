"""What every stage may do to a run: create it (with concurrency), end it, kill it, flag it,
and raise an alert about it. Each appends its writes and changes to the Tick."""

from __future__ import annotations

import json
import signal
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from evman.engine.clock import iso
from evman.engine.conditions import Finished
from evman.engine.coordination.params import ParamError
from evman.engine.model import AlertKind, Concurrency, EventSpec, RunState, Trigger
from evman.engine.running.logfiles import read_tail
from evman.engine.running.procs import pid_alive, signal_group
from evman.engine.tick import coordination, routing
from evman.engine.tick.active import ActiveRun, flags_text
from evman.engine.tick.context import Ended, Tick
from evman.engine.tick.drafts import Draft
from evman.engine.timing.windows import bounds_for

_ANY_INSTANT = (Trigger.SCHEDULE, Trigger.RETRY, Trigger.RESTART, Trigger.BACKFILL)
"""Triggers whose run keeps the instant it is for (the others take the first free one)."""
_WAITING = RunState.WAITING
"""(Bound once: a member looked up on its class costs more, and a burst asks thousands of times.)"""


def new_run(
    tick: Tick,
    event: str,
    trigger: Trigger,
    scheduled_for: datetime,
    *,
    triggered_by: str | None = None,
    attempt: int = 1,
    repeats: ActiveRun | dict[str, Any] | None = None,
    not_before: datetime | None = None,
    needs_prepare: bool = False,
    fresh_window: bool = False,
    backlog: bool = False,
    params: Mapping[str, Any] | None = None,
    leader: Mapping[str, str] | None = None,
) -> ActiveRun | None:
    """Create a waiting run (in memory, inserted at the next flush), applying concurrency.
    Several engines: a run of an event this engine does not fit is inserted unowned, with why
    it waits, for an engine that fits to claim (the takeover stage).

    backlog: a later catch-up of misfire=all; it queues behind the first, whatever the
    concurrency, or `all` would run one and skip the rest.
    params: the run parameters it was given (a trigger): checked, and ParamError raised (no run
    made) when they are wrong. leader: the parameters of the run whose end started it. A run
    whose parameters cannot be made otherwise (a required one nobody gave) fails at once."""
    spec = tick.view.spec(event)
    if spec is None:
        return None
    try:
        values = coordination.params_for(spec, scheduled_for, given=params, leader=leader, repeats=repeats)
        refused = None
    except ParamError as exc:
        if params is not None:
            raise
        values, refused = {}, str(exc)
    if trigger not in _ANY_INSTANT:
        scheduled_for = _free_instant(tick, event, scheduled_for, attempt)
    run_id = tick.next_id()
    admitted = trigger in (Trigger.RETRY, Trigger.RESTART) or backlog
    busy = None if admitted else _admit(tick, spec, run_id)
    bounds = bounds_for(spec, tick.now if fresh_window else scheduled_for)
    run = ActiveRun.born(
        _WAITING if busy is None else RunState.SKIPPED,
        run_id,
        event,
        trigger=trigger,
        attempt=attempt,
        scheduled_for=scheduled_for,
        triggered_by=triggered_by,
        repeats_run_id=_id_of(repeats),
        not_before=not_before,
        needs_prepare=needs_prepare,
        window_open=bounds.open_at,
        due_by=bounds.due_by,
        late_at=bounds.late_at,
        created_at=tick.now,
        params=values,
        approval=coordination.carried_approval(trigger, repeats),
    )
    return _record_new(tick, spec, run, busy, refused)


def new_drafted(tick: Tick, draft: Draft) -> ActiveRun | None:
    """new_run(tick, event, Trigger.SCHEDULE, due), for an occurrence on time, from its draft
    (engine/tick/drafts.py): what its spec and occurrence decide was worked out ahead, so this
    numbers the run, admits it against the active runs of this moment and records it."""
    run_id = tick.next_id()
    busy = _admit(tick, draft.spec, run_id)
    run = ActiveRun.born_from(_WAITING if busy is None else RunState.SKIPPED, run_id, draft.fields, tick.now)
    return _record_new(tick, draft.spec, run, busy, None)


def _record_new(tick: Tick, spec: EventSpec, run: ActiveRun, busy: str | None, refused: str | None) -> ActiveRun | None:
    """A new run into the tick: skipped (`busy`), failed (`refused`), or waiting."""
    if busy is not None:
        tick.inserts.append(run)
        write_end(tick, run, tick.now, f"skipped: {busy} (concurrency=skip)")
        tick.change("run", spec.name, run.id, RunState.SKIPPED, "concurrency")
        return None
    tick.runs[run.id] = run
    tick.inserts.append(run)
    tick.change("run", run.event, run.id, _WAITING, run.trigger)
    if refused is not None:
        finish(tick, run, RunState.FAILED, tick.now, reason=f"not started: {refused}", final=True)
        return run
    if spec.approval is not None and run.approval is None:
        coordination.ask_approval(tick, spec, run)
    if tick.placement is not None and not tick.placement.fits(spec):
        release(tick, run, tick.placement.why_waiting(spec))
    return run


def _id_of(run: ActiveRun | dict[str, Any] | None) -> int | None:
    if run is None:
        return None
    return run.id if isinstance(run, ActiveRun) else int(run["id"])


def release(tick: Tick, run: ActiveRun, reason: str) -> None:
    """Several engines: hand a waiting run of an event this engine does not fit to no engine
    (`engine_id` NULL, with `reason`); an engine that fits claims it at its next tick."""
    tick.runs.pop(run.id, None)
    run.waiting_reason = reason
    left_line = bool(run.pools)
    run.pools = {}  # out of every pool's line: the engine that claims it puts it back
    if run.is_new:
        run.owned = False
    else:
        if left_line:
            tick.batch.run_pools(run.id, None)
        tick.batch.run_released(run.id, reason)
    tick.change("run", run.event, run.id, _WAITING, reason)


def _free_instant(tick: Tick, event: str, at: datetime, attempt: int) -> datetime:
    """`at`, or the first microsecond after it that no run of `event` holds.

    (event, scheduled_for, attempt) is unique so that one schedule occurrence makes one
    run; a run asked for otherwise (trigger, on_success, condition, @reboot) at the same
    instant as another (one tick, or a fake clock) is a second run, not a duplicate."""
    taken = {
        r.scheduled_for for r in (*tick.runs.of(event), *tick.inserts) if r.event == event and r.attempt == attempt
    }
    while at in taken or tick.view.store.max_attempt(event, iso(at) or "") >= attempt:
        at += timedelta(microseconds=1)
    return at


def _admit(tick: Tick, spec: EventSpec, run_id: int) -> str | None:
    """Concurrency: what new run `run_id` does while another run of the event is active, here
    or (several engines) on another engine: why it is skipped, or None (it waits, or starts)."""
    active = [r for r in tick.runs.of(spec.name) if not r.is_backfill]  # a backfill never skips a live run
    remote = [] if active and spec.concurrency is Concurrency.SKIP else tick.elsewhere.of(spec.name)
    if not active and not remote:
        return None
    if spec.concurrency is Concurrency.QUEUE:  # it starts behind them (stages/start.py)
        return None
    if spec.concurrency is Concurrency.REPLACE:  # it starts once they ended
        for other in active:
            cancel(tick, other, by=f"replaced by run {run_id}")
        routing.ask_to_kill(tick, remote, f"{routing.me(tick)}: run {run_id} replaces it", {"replaced_by": run_id})
        return None
    if active:
        return f"run {active[-1].id} is still {active[-1].state}"
    return f"run {remote[-1].id} is still {remote[-1].state} on {remote[-1].where}"


def cancel(tick: Tick, run: ActiveRun, *, by: str) -> None:
    """Stop `run` for another reason than its own outcome: kill it, or skip it unstarted."""
    if run.state is RunState.RUNNING:
        kill(tick, run, by)
        return
    if run.preparing:  # stop its prepare step with it
        kill(tick, run, by)
    finish(tick, run, RunState.SKIPPED, tick.now, reason=f"skipped: {by}")


def finish(
    tick: Tick,
    run: ActiveRun,
    state: RunState,
    at: datetime,
    *,
    exit_code: int | None = None,
    reason: str | None = None,
    checks: list[Any] | None = None,
    final: bool = False,
    judged: bool = False,
) -> None:
    """Record the end of `run`; the follow-ups stage acts on it (followers, retries, alerts)."""
    run.move(state)
    tick.runs.pop(run.id, None)
    write_end(tick, run, at, reason, exit_code=exit_code, checks=checks)
    if state is not RunState.SKIPPED:
        tick.view.set_finished(run.event, Finished(state, at, exit_code))
    tick.change("run", run.event, run.id, state, reason)
    tick.ended.append(Ended(run, state, at, reason, final=final, judged=judged))


def write_end(
    tick: Tick,
    run: ActiveRun,
    at: datetime,
    reason: str | None,
    *,
    exit_code: int | None = None,
    checks: list[Any] | None = None,
) -> None:
    """Write the end of `run`, now in its final state: an UPDATE of its row, or, for a run made
    this tick, its row inserted whole (no write ever finds a row that has ended already)."""
    tail = (read_tail(run.log_path) if run.started_at is not None else "") or None
    ended_at = iso(at)
    checks_text = json.dumps([c.to_json() for c in checks]) if checks else None
    if run.is_new:
        run.waiting_reason = None
        run.end = {
            "ended_at": ended_at,
            "exit_code": exit_code,
            "reason": reason,
            "output_tail": tail,
            "checks": checks_text,
        }
        return
    tick.batch.run_ended(
        run.id,
        state=run.state,
        ended_at=ended_at,
        exit_code=exit_code,
        reason=reason,
        output_tail=tail,
        checks=checks_text,
        flags=flags_text(run.flags),
        pid=run.pid,
    )


def kill(tick: Tick, run: ActiveRun, by: str) -> bool:
    """Ask the run's process (or prepare step) to end; False when nothing was left to signal."""
    run.killed_by = by
    if tick.runner.kill(run.id, by=by):
        return True
    if run.pid is not None and pid_alive(run.pid):  # a process this engine did not start
        signal_group(run.pid, signal.SIGTERM)
        return True
    return False


def set_flag(tick: Tick, run: ActiveRun, flag: str) -> bool:
    """Set a flag once; True the first time."""
    if flag in run.flags:
        return False
    run.flags.add(flag)
    if not run.is_new:
        tick.batch.run_flags(run.id, flags_text(run.flags))
    return True


def note_waiting(tick: Tick, run: ActiveRun, reason: str | None) -> None:
    """Say why `run` waits (written only when it changed)."""
    if reason == run.waiting_reason:
        return
    run.waiting_reason = reason
    if not run.is_new:
        tick.batch.run_waiting(run.id, reason)


def raise_alert(
    tick: Tick, spec: EventSpec, kind: AlertKind, run: ActiveRun, message: str, at: datetime, route: str | None = None
) -> None:
    """Write an alert row; while one of (event, kind) is open, add to it instead of paging anew."""
    tick.batch.alert(kind, spec.name, run.id, route or spec.driver, message, iso(at))
    tick.change("alert", spec.name, run.id, kind, message)
