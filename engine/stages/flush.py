"""Stage 7: write the tick's decisions in one transaction, then spawn what was recorded running.

A run is committed as `running` before its process starts, so a crash between the two leaves a
run `running` with no pid (the next engine marks it lost): never a double start."""

from __future__ import annotations

import logging
from collections.abc import Callable

from evman.engine.clock import iso
from evman.engine.model import EventSpec
from evman.engine.running.executors import Executors, Outcome, SpawnError, run_env
from evman.engine.store import Batch, Store
from evman.engine.tick.active import ActiveRun
from evman.engine.tick.context import Tick

log = logging.getLogger("evman.engine")

_Start = Callable[[], int | None]


def flush(tick: Tick, store: Store) -> None:
    """Apply the batch; a run whose occurrence exists already is dropped, never started twice.
    On a StoreError the batch stays on the tick, to be written by the next flush."""
    if not tick.batch and not tick.inserts:
        return
    for run in tick.inserts:
        run.created_at = tick.now  # as its row will say (a flush carried over makes it later)
        tick.batch.insert_run(run.values(tick.now, tick.host), owned=run.owned)
    try:
        inserted = store.apply(tick.batch, owner=tick.owner)
    except BaseException:
        tick.batch.clear_runs()  # they are made again from tick.inserts at the next try
        raise
    tick.fired.clear()
    created: set[int] | None = None
    if tick.inserts and inserted < len(tick.inserts):  # some were ignored: ask which
        created = store.runs_created([r.id for r in tick.inserts], iso(tick.now) or "")
    for run in tick.inserts:
        run.is_new = False
        if created is not None and run.id not in created:
            _drop_duplicate(tick, run)
    tick.inserts = []
    tick.batch = Batch()


def _drop_duplicate(tick: Tick, run: ActiveRun) -> None:
    log.warning("run for %s at %s exists already; not starting it again", run.event, iso(run.scheduled_for))
    tick.runs.pop(run.id, None)
    if run in tick.to_spawn:
        tick.to_spawn.remove(run)


def spawn(tick: Tick, store: Store, executors: Executors, report: Callable[[Outcome], None]) -> None:
    """Start the recorded runs (and prepare steps); record their pids at once, not at the next
    tick: an engine killed in between would leave live commands the next one cannot find."""
    spawn_list, tick.to_spawn = tick.to_spawn, []
    processes: list[tuple[ActiveRun, _Start]] = []
    calls: list[tuple[ActiveRun, _Start]] = []
    for run in spawn_list:
        spec = tick.view.spec(run.event)
        if spec is None or run.id not in tick.runs:
            continue
        is_process = run.preparing or spec.run is not None or spec.shell is not None
        (processes if is_process else calls).append((run, _starter(executors, run, spec)))
    # commands start several at once (a fork+exec holds its thread ~0.7 ms, mostly in the
    # kernel); callables and HTTP calls are only handed to a worker, here
    results = executors.start_all([start for _, start in processes]) + [Executors.attempt(start) for _, start in calls]
    failure = _record_started(tick, processes + calls, results, report)
    flush(tick, store)
    if failure is not None:
        raise failure


def _record_started(
    tick: Tick,
    started: list[tuple[ActiveRun, _Start]],
    results: list[int | None | BaseException],
    report: Callable[[Outcome], None],
) -> BaseException | None:
    failure: BaseException | None = None
    for (run, _), result in zip(started, results, strict=True):
        if isinstance(result, SpawnError):
            report(Outcome(run.id, "prepare" if run.preparing else "main", None, tick.now, str(result)))
        elif isinstance(result, BaseException):
            failure = failure or result
        elif result is not None and not run.preparing:
            run.pid = result
            tick.batch.run_pid(run.id, result)
    return failure


def _starter(executors: Executors, run: ActiveRun, spec: EventSpec) -> _Start:
    """What starts `run` (its prepare step while it is preparing); returns a pid or None."""
    scheduled = iso(run.scheduled_for)
    env = run_env(run.event, run.id, run.attempt, scheduled, run.params)
    log = run.log_path
    assert log is not None, "the start stage chose its log"
    if run.preparing:
        assert spec.on_failure.prepare is not None
        prepare = spec.on_failure.prepare
        return lambda: executors.prepare(run.id, prepare, spec, env, log)
    return lambda: executors.start(run.id, spec, env, run.attempt, scheduled or "", log, run.params)
