"""Stage 4: what follows the runs that ended: followers, retries, alerts, recoveries, and the
unscheduled events whose `requires` a finished run may have made true."""

from __future__ import annotations

from typing import Final

from evman.engine.clock import iso
from evman.engine.conditions import evaluate
from evman.engine.model import ALERT_KINDS, AlertKind, EventSpec, OnLost, RunState, Trigger
from evman.engine.store import RESOLVED_BY_SUCCESS
from evman.engine.tick import lifecycle
from evman.engine.tick.context import Ended, Tick
from evman.engine.tick.readview import ConditionView, condition_of
from evman.engine.timing.backoff import backoff_for
from evman.engine.timing.durations import format_duration

RECOVERY_WORTHY: Final = frozenset(kind for kind, facts in ALERT_KINDS.items() if facts.recovers)


def follow_up(tick: Tick) -> None:
    """Act on every run in tick.ended (and on what acting on them ends in turn). A run leaves
    tick.ended only once all of it is done: a tick that fails on a read half-way (a lost
    connection) is carried on, and the next one goes on from the first run not followed up."""
    if not tick.ended:
        return
    tick.view.prefetch_open_alerts({e.run.event for e in tick.ended})
    at = 0
    while at < len(tick.ended):  # acting on one may end others (appended)
        ended = tick.ended[at]
        spec = tick.view.spec(ended.run.event)
        if not ended.followed:
            if spec is not None:
                _after(tick, spec, ended)
            ended.followed = True
            tick.done.append(ended)
        at += 1
    tick.view.forget_open_alerts()
    _trigger_dependents(tick, [e for e in tick.ended if e.judged])
    tick.ended.clear()


def _after(tick: Tick, spec: EventSpec, ended: Ended) -> None:
    if ended.state is RunState.SUCCEEDED:
        _succeeded(tick, spec, ended)
    elif ended.state in (RunState.FAILED, RunState.LOST):
        _failed(tick, spec, ended)


def _succeeded(tick: Tick, spec: EventSpec, ended: Ended) -> None:
    run, at = ended.run, ended.at
    took = (at - run.started_at).total_seconds() if run.started_at else None
    if spec.runtime.min_s is not None and took is not None and took < spec.runtime.min_s:
        run.flags.add("too_fast")
        tick.batch.run_flags(run.id, ",".join(sorted(run.flags)))
        lifecycle.raise_alert(
            tick,
            spec,
            AlertKind.TOO_FAST,
            run,
            f"{spec.name} succeeded in {format_duration(took)}, faster than its normal "
            f"minimum of {format_duration(spec.runtime.min_s)}; check that it did its work.",
            at,
        )
    _resolve_alerts(tick, spec, ended)
    for name in spec.on_success:  # each receives its leader's run parameters (coordination.params_for)
        if not _made(tick, name, f"run:{run.id}"):  # by a try of this tick that failed after it
            lifecycle.new_run(tick, name, Trigger.ON_SUCCESS, at, triggered_by=f"run:{run.id}", leader=run.params)


def _made(tick: Tick, event: str, triggered_by: str) -> bool:
    return any(r.event == event and r.triggered_by == triggered_by for r in tick.inserts)


def _resolve_alerts(tick: Tick, spec: EventSpec, ended: Ended) -> None:
    """A success resolves the event's open failure alerts, and says it recovered."""
    open_kinds = tick.view.open_alert_kinds(spec.name)
    if not open_kinds & set(RESOLVED_BY_SUCCESS):
        return
    tick.batch.alerts_resolved_by_success(spec.name, iso(ended.at))
    recovered = open_kinds & RECOVERY_WORTHY
    if recovered:
        message = (
            f"{spec.name} succeeded again (run {ended.run.id}) after "
            + ", ".join(sorted(recovered))
            + "; its alerts are resolved."
        )
        tick.batch.alert_recovered(spec.name, ended.run.id, spec.driver, message, iso(ended.at))
        tick.change("alert", spec.name, ended.run.id, AlertKind.RECOVERED, message)


def _failed(tick: Tick, spec: EventSpec, ended: Ended) -> None:
    run, at, policy = ended.run, ended.at, spec.on_failure
    if ended.state is RunState.LOST and spec.on_lost is OnLost.RERUN:
        _rerun_lost(tick, spec, ended)
        return
    if not ended.final and run.attempt <= policy.retries:
        lifecycle.new_run(
            tick,
            spec.name,
            Trigger.RETRY,
            run.scheduled_for,
            attempt=run.attempt + 1,
            repeats=run,
            not_before=at + backoff_for(spec, run.attempt),
            needs_prepare=policy.prepare is not None,
            triggered_by=f"retry {run.attempt} of {policy.retries} after run {run.id}",
        )
        return
    kind = AlertKind.LOST if ended.state is RunState.LOST else AlertKind.FAILED
    tries = f" after {run.attempt} attempt(s)" if run.attempt > 1 else ""
    lifecycle.raise_alert(
        tick,
        spec,
        kind,
        run,
        f"{spec.name} {ended.state}{tries}: {ended.reason or 'no reason recorded'}",
        at,
        route=policy.alert,
    )
    for name in policy.trigger:
        if not _made(tick, name, f"run:{run.id}"):
            lifecycle.new_run(tick, name, Trigger.ON_FAILURE, at, triggered_by=f"run:{run.id}", leader=run.params)


def _rerun_lost(tick: Tick, spec: EventSpec, ended: Ended) -> None:
    """on_lost = "rerun": page (it was lost), and run it again at once as the next attempt."""
    run = ended.run
    lifecycle.raise_alert(
        tick,
        spec,
        AlertKind.LOST,
        run,
        f"{spec.name} lost: {ended.reason or 'no reason recorded'}; running it again (on_lost = rerun)",
        ended.at,
        route=spec.on_failure.alert,
    )
    lifecycle.new_run(
        tick,
        spec.name,
        Trigger.RETRY,
        run.scheduled_for,
        attempt=run.attempt + 1,
        repeats=run,
        needs_prepare=spec.on_failure.prepare is not None,
        triggered_by=f"rerun of lost run {run.id} (on_lost = rerun)",
    )


def _dependents(tick: Tick, event: str) -> list[str]:
    """The events whose `requires` names `event`, or its group (group:NAME)."""
    found = tick.view.dependents_of(event)
    spec = tick.view.spec(event)
    if spec is not None and spec.group is not None:
        found = found + tick.view.dependents_of(f"group:{spec.group}")
    return found


def _trigger_dependents(tick: Tick, judged: list[Ended]) -> None:
    """Unscheduled events whose `requires` names a finished event (or its group) start when it now holds."""
    seen: set[str] = set()
    tick.elsewhere.want(name for ended in judged for name in _dependents(tick, ended.run.event))
    for ended in judged:
        for name in _dependents(tick, ended.run.event):
            if name in seen:
                continue
            seen.add(name)
            spec = tick.view.spec(name)
            if spec is None or spec.schedule is not None or spec.requires is None:
                continue
            if any(r.state is RunState.WAITING for r in tick.runs.of(name)) or any(
                r.state is RunState.WAITING for r in tick.elsewhere.of(name)
            ):
                continue  # one waits already, here or on another engine
            view = ConditionView(tick.view, tick.runs, spec, tick.elsewhere)
            if evaluate(condition_of(spec.requires), view, tick.now)[0]:
                lifecycle.new_run(tick, name, Trigger.CONDITION, tick.now, triggered_by=f"run:{ended.run.id}")
