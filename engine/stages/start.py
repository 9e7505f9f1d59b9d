"""Stage 5: start the waiting runs whose hold, approval, backoff, window, queue, `requires` and
pools allow (the pool desk, stages/pools.py, gives slots to the runs ready but for them)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from evman.engine.clock import iso
from evman.engine.conditions import evaluate
from evman.engine.fleet.elsewhere import Remote
from evman.engine.model import EventSpec, OnBlackout, RunState
from evman.engine.stages import pools
from evman.engine.tick import lifecycle
from evman.engine.tick.active import BACKFILL_FLAG, ActiveRun
from evman.engine.tick.context import Tick
from evman.engine.tick.readview import ConditionView, condition_of
from evman.engine.timing.blackouts import Inside, inside
from evman.engine.timing.wording import local_text
from evman.engine.verbs import approvals

_RUNNING = RunState.RUNNING.value


def start_ready(tick: Tick) -> None:
    """Judge every waiting run, every tick: windows open, backoffs expire, files appear. What
    this engine knows decides first; the runs it would start then ask about the other engines'
    runs (several engines: one read for all of them) and their `requires`; the runs ready but
    for their pools then ask the pool desk for slots."""
    _undo_unflushed_starts(tick)
    start_drafted(tick)
    ready: list[ActiveRun] = []
    ready_for_pools: list[ActiveRun] = []
    for run in tick.runs.waiting():
        if run.preparing:
            continue
        if run.due_by is not None and tick.now >= run.due_by:
            continue  # its window closed (the engine was down, or the clock jumped): the
            # deadline check of this tick marks it missed; it never starts after its window
        if _not_ours(tick, run) or _skipped_by_blackout(tick, run) or _decided_by_timeout(tick, run):
            continue
        reason = why_waiting_here(tick, run)
        if reason is None:
            ready.append(run)
        else:
            pools.leave_line(tick, run)
            lifecycle.note_waiting(tick, run, reason)
    _want_elsewhere(tick, ready)
    busy = _lock_to_start(tick, ready)
    for run in ready:
        reason = _busy(run, busy) or why_waiting_elsewhere(tick, run) or why_not_required(tick, run)
        if reason is None and tick.stopping:  # a stopping engine starts nothing, but says so
            reason = "ready; the engine stopped before it could start it"
        if reason is None and pools.uses_pools(tick, run):
            ready_for_pools.append(run)
        elif reason is None:
            _begin(tick, run)
        else:
            pools.leave_line(tick, run)
            lifecycle.note_waiting(tick, run, reason)
    for run in pools.give_slots(tick, ready_for_pools):
        _begin(tick, run)


def start_drafted(tick: Tick) -> None:
    """The runs made from their drafts this tick (stages/materialise.py) that start_ready would
    start without a question, started first, each in a few checks: one engine, not stopping, the
    event's only active run, not held, its window open (their drafts said that nothing in their
    specs makes them wait: Draft.plain). The others wait for start_ready, which
    decides them as it decides every waiting run."""
    drafted, tick.drafted = tick.drafted, []
    if tick.stopping or tick.placement is not None or tick.elsewhere.is_shared:
        return
    view, now, runs = tick.view, tick.now, tick.runs
    for run in drafted:
        if (
            run.state is not RunState.WAITING
            or run.id not in runs
            or (run.window_open is not None and now < run.window_open)
            or (run.due_by is not None and now >= run.due_by)
            or run.not_before is not None
            or run.needs_prepare
            or view.is_held(run.event)
            or runs.count(run.event) != 1
        ):
            continue
        _running(tick, run)


def _undo_unflushed_starts(tick: Tick) -> None:
    """Several engines: starts that a failed flush did not commit were decided under locks (the
    event's row, their pools' rows) that ended with it; they wait again and are decided anew."""
    if tick.placement is None:
        return
    for run in [r for r in tick.to_spawn if r.state is RunState.RUNNING]:
        tick.to_spawn.remove(run)
        run.state, run.started_at = RunState.WAITING, None
        tick.batch.forget_start(run.id)


def _lock_to_start(tick: Tick, ready: list[ActiveRun]) -> set[str]:
    """Several engines: the events of the runs that would start, by what the others committed,
    are locked before the decision and their runs read again under the lock (those still
    waiting behind another engine's run take no lock: a long queue costs no lock a tick, and
    leaves the event's due claim free). Returns the events another engine holds now."""
    if tick.stopping or not tick.elsewhere.is_shared:
        return set()
    return tick.elsewhere.lock(run.event for run in ready if why_waiting_elsewhere(tick, run) is None)


def _busy(run: ActiveRun, busy: set[str]) -> str | None:
    """Several engines: another engine holds the event's row (it is making or starting runs of it)."""
    if run.event not in busy:
        return None
    return "another engine is starting runs of this event now; this one is looked at again next tick"


def _want_elsewhere(tick: Tick, ready: list[ActiveRun]) -> None:
    """Several engines: the events these runs will ask about (another engine's run of the same
    event ahead of it, or running(E) in `requires`), read together at the first question."""
    if not tick.elsewhere.is_shared:
        return
    tick.elsewhere.want(run.event for run in ready)
    for run in ready:
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


def why_waiting_here(tick: Tick, run: ActiveRun) -> str | None:
    """What this engine alone knows: the event, holds, backoff, window, and its own runs of
    the event (one runs, or one made earlier waits: runs of an event start one at a time, in
    the order they were made)."""
    spec = tick.view.spec(run.event)
    now = tick.now
    if spec is None:
        return "its event is no longer defined"
    if tick.view.is_held(run.event):
        return "held"
    awaiting = approvals.waiting_reason(tick, run, spec)
    if awaiting is not None:
        return awaiting
    blackout = _blackout_now(tick, run, spec)
    if blackout is not None:
        return f"{blackout} until {local_text(blackout.end, spec, now)}"
    if run.not_before is not None and now < run.not_before:
        return f"retry backoff until {local_text(run.not_before, spec, now)}"
    if run.window_open is not None and now < run.window_open and "forced" not in run.flags:
        return f"window opens at {local_text(run.window_open, spec, now)}"
    others = [r for r in tick.runs.of(run.event) if r is not run]  # most runs are their event's only one
    ahead = _blocking(run, [_other(r) for r in others]) if others else []
    if ahead:
        return f"queued behind run {ahead[0].id} ({ahead[0].state})"
    return None


def why_waiting_elsewhere(tick: Tick, run: ActiveRun) -> str | None:
    """Several engines: the event's runs on other engines count as this engine's own do (read
    from the database each time: a takeover forgets nothing)."""
    remote = {r.id: r for r in tick.elsewhere.of(run.event)}
    if not remote:
        return None
    here = [_other(r) for r in tick.runs.of(run.event)]
    ahead = _blocking(run, here + [_other(r) for r in remote.values()])
    if not ahead:
        return None
    first = ahead[0]
    where = f" on {remote[first.id].where}" if first.id in remote else ""
    return f"queued behind run {first.id} ({first.state.value}{where})"


@dataclass(frozen=True)
class Other:
    """Another active run of the event, as the queue sees it."""

    id: int
    state: RunState
    order: tuple[datetime, int]
    backfill: bool


def _other(run: ActiveRun | Remote) -> Other:
    backfill = run.is_backfill if isinstance(run, ActiveRun) else BACKFILL_FLAG in run.flags
    return Other(run.id, run.state, run.order, backfill)


def _blocking(run: ActiveRun, others: list[Other]) -> list[Other]:
    """The runs `run` waits behind, first the one to name: runs of an event start one at a
    time, in the order they were made (a running one blocks whatever its place). Backfill runs
    stand aside for live runs, and run up to max_parallel at once, oldest first."""
    others = [o for o in others if o.id != run.id]
    live = [o for o in others if not o.backfill]
    if not run.is_backfill:
        running = [o for o in live if o.state is RunState.RUNNING]
        earlier = (o for o in live if o.state is RunState.WAITING and o.order < run.order)
        return running + sorted(earlier, key=lambda o: o.order)
    if live:
        return live
    before = [o for o in others if o.state is RunState.RUNNING or o.order < run.order]
    return before if len(before) >= run.max_parallel else []


def why_not_required(tick: Tick, run: ActiveRun) -> str | None:
    """Its `requires`, unless forced."""
    spec = tick.view.spec(run.event)
    if spec is None or spec.requires is None or "forced" in run.flags:
        return None
    view = ConditionView(tick.view, tick.runs, spec, tick.elsewhere)
    holds, why = evaluate(condition_of(spec.requires), view, tick.now)
    return None if holds else why or f"requires {spec.requires} is false"


def _decided_by_timeout(tick: Tick, run: ActiveRun) -> bool:
    spec = tick.view.spec(run.event)
    return spec is not None and approvals.time_out(tick, run, spec)


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
        path = _log_here(tick, run)
        if path != run.log_path and not run.is_new:
            tick.batch.run_log(run.id, path)
        run.log_path = path
        run.preparing = True
        lifecycle.note_waiting(tick, run, f"preparing: {spec.on_failure.prepare}")
        tick.to_spawn.append(run)
        return
    _running(tick, run)


def _running(tick: Tick, run: ActiveRun) -> None:
    run.move(RunState.RUNNING)
    run.started_at = tick.now
    run.waiting_reason = None
    run.log_path = _log_here(tick, run)
    if not run.is_new:
        tick.batch.run_started(run.id, iso(tick.now), tick.host, run.log_path)
    tick.to_spawn.append(run)
    tick.change("run", run.event, run.id, _RUNNING, run.trigger)


def _log_here(tick: Tick, run: ActiveRun) -> str:
    """The file this engine's command of `run` writes, recorded as the run's log_path whoever
    made the run (an engine that judges it later finds its exit record there)."""
    return tick.runner.log_for(run.event, run.id, run.log_path, tick.now)
