"""Stage 5: start the waiting runs whose hold, backoff, window, queue and `requires` allow."""

from __future__ import annotations

from evman.engine.clock import iso
from evman.engine.conditions import evaluate
from evman.engine.model import EventSpec, OnBlackout, RunState
from evman.engine.tick import lifecycle
from evman.engine.tick.active import ActiveRun
from evman.engine.tick.context import Tick
from evman.engine.tick.readview import ConditionView, condition_of
from evman.engine.timing.blackouts import Inside, inside
from evman.engine.timing.wording import local_text


def start_ready(tick: Tick) -> None:
    """Judge every waiting run, every tick: windows open, backoffs expire, files appear."""
    waiting = tick.runs.waiting()
    _want_elsewhere(tick, waiting)
    for run in waiting:
        if run.preparing:
            continue
        if run.due_by is not None and tick.now >= run.due_by:
            continue  # its window closed (the engine was down, or the clock jumped): the
            # deadline check of this tick marks it missed; it never starts after its window
        if _not_ours(tick, run) or _skipped_by_blackout(tick, run):
            continue
        reason = why_waiting(tick, run)
        if reason is None and tick.stopping:  # a stopping engine starts nothing, but says so
            reason = "ready; the engine stopped before it could start it"
        if reason is None:
            _begin(tick, run)
        else:
            lifecycle.note_waiting(tick, run, reason)


def _want_elsewhere(tick: Tick, waiting: list[ActiveRun]) -> None:
    """Several engines: the events these runs will ask about (queued behind another engine's
    run, or running(E) in `requires`), read together at the first question."""
    if not tick.elsewhere.is_shared:
        return
    for run in waiting:
        if run.behind:
            tick.elsewhere.want([run.event])
        spec = tick.view.spec(run.event)
        if spec is not None and spec.requires is not None and "running(" in spec.requires:
            tick.elsewhere.want(condition_of(spec.requires).events)


def _not_ours(tick: Tick, run: ActiveRun) -> bool:
    """Several engines: a waiting run of an event this engine does not fit (taken over from a
    dead engine, claimed to be judged late, or its event's hosts/tags changed) is handed on,
    never started here; one late and not yet said to be stays a tick, for the deadline check."""
    if tick.placement is None:  # one engine (SQLite): every run is ours, no spec to look up
        return False
    spec = tick.view.spec(run.event)
    if spec is None or tick.placement.fits(spec):
        return False
    if run.late_at is None or tick.now < run.late_at or "late" in run.flags:
        lifecycle.release(tick, run, tick.placement.why_waiting(spec))
    return True


def why_waiting(tick: Tick, run: ActiveRun) -> str | None:
    """Why `run` cannot start now, in words; None when it can."""
    spec = tick.view.spec(run.event)
    now = tick.now
    if spec is None:
        return "its event is no longer defined"
    if tick.view.is_held(run.event):
        return "held"
    blackout = _blackout_now(tick, run, spec)
    if blackout is not None:
        return f"{blackout} until {local_text(blackout.end, spec, now)}"
    if run.not_before is not None and now < run.not_before:
        return f"retry backoff until {local_text(run.not_before, spec, now)}"
    if run.window_open is not None and now < run.window_open and "forced" not in run.flags:
        return f"window opens at {local_text(run.window_open, spec, now)}"
    ahead = _ahead(tick, run)
    if ahead:
        return f"queued behind run {ahead[0].id} ({ahead[0].state})"
    if run.behind:
        still = [r for r in tick.elsewhere.of(run.event) if r.id in run.behind]
        if still:
            return f"queued behind run {still[0].id} ({still[0].state} on {still[0].where})"
        run.behind = set()
    if spec.requires is not None and "forced" not in run.flags:
        view = ConditionView(tick.view, tick.runs, spec, tick.elsewhere)
        holds, why = evaluate(condition_of(spec.requires), view, now)
        if not holds:
            return why or f"requires {spec.requires} is false"
    return None


def _ahead(tick: Tick, run: ActiveRun) -> list[ActiveRun]:
    """The runs `run` waits behind: the event's earlier active runs. Backfill runs stand aside
    for live runs, and run up to max_parallel at once, oldest first."""
    others = [r for r in tick.runs.of(run.event) if r is not run and r.state in (RunState.WAITING, RunState.RUNNING)]
    if not run.is_backfill:
        return [r for r in others if r.id < run.id and not r.is_backfill]
    live = [r for r in others if not r.is_backfill]
    if live:
        return live
    before = [r for r in others if r.state is RunState.RUNNING or r.id < run.id]
    return before if len(before) >= run.max_parallel else []


def _blackout_now(tick: Tick, run: ActiveRun, spec: EventSpec) -> Inside | None:
    """The blackout that stops `run` now (a forced run goes through), else None."""
    found = tick.view.blackouts_for(spec)
    if not found or "forced" in run.flags:
        return None
    return inside(found, tick.now)


def _skipped_by_blackout(tick: Tick, run: ActiveRun) -> bool:
    """on_blackout = skip: a run that fell due inside a blackout, still inside it, is skipped."""
    spec = tick.view.spec(run.event)
    if spec is None or spec.on_blackout is not OnBlackout.SKIP or _blackout_now(tick, run, spec) is None:
        return False
    fell_in = inside(tick.view.blackouts_for(spec), run.scheduled_for)
    if fell_in is None:
        return False
    lifecycle.finish(tick, run, RunState.SKIPPED, tick.now, reason=f"fell due inside {fell_in} (on_blackout = skip)")
    return True


def _begin(tick: Tick, run: ActiveRun) -> None:
    spec = tick.view.spec(run.event)
    assert spec is not None
    if run.needs_prepare and spec.on_failure.prepare:
        run.preparing = True
        lifecycle.note_waiting(tick, run, f"preparing: {spec.on_failure.prepare}")
        tick.to_spawn.append(run)
        return
    run.move(RunState.RUNNING)
    run.started_at = tick.now
    run.waiting_reason = None
    if not run.is_new:
        tick.batch.run_started(run.id, iso(tick.now), tick.host)
    tick.to_spawn.append(run)
    tick.change("run", run.event, run.id, RunState.RUNNING, run.trigger)
