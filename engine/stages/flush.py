"""Stage 8: write the tick's decisions, then start what was recorded running.

A run is committed as `running` before its process or call starts, so a crash between the
two leaves a run `running` with no pid (the next engine marks it lost): never a double start.
A burst of new runs is committed in parts of PART, each part started as soon as its commit
returns: the first callables of a burst of 2,000 need not wait for the other 1,999 to be
written, and they run while the next part is written (SQLite lets go of the GIL)."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from typing import Any, Final

from evman.engine.clock import iso
from evman.engine.fleet.membership import MIN_LEASE_S
from evman.engine.model import EventSpec
from evman.engine.running.executors import Executors, Outcome, SpawnError, run_env
from evman.engine.store import Batch, Store
from evman.engine.tick.active import ActiveRun, iso_cached
from evman.engine.tick.context import Tick

log = logging.getLogger("evman.engine")

_Start = Callable[[], int | None]
_Report = Callable[[Outcome], None]

PART: Final = 250
"""New runs per transaction when a tick makes more (one engine, SQLite). Writing the 2,000 runs
of bench W1 took 28.0 ms of CPU in one transaction, 28.8 ms in parts of 250, 30.9 ms of 200,
33.8 ms of 100, 36.0 ms of 50 (a commit and the statement prepared again cost 0.1-0.3 ms):
parts of 250 add ~3% to a burst's writes, and start the first 250 after ~4 ms of writing
instead of ~30 ms."""


PART_SWITCH_S: Final = 0.0005
"""The interpreter's switch interval while a burst is written in parts (then put back): each
part's commit lets go of the GIL, and the worker threads running the callables of the parts
before it hold it then; taking it back waited up to the whole interval (5 ms by default) after
each statement, and the engine's thread, which writes and starts the parts still to come, is
the burst's critical path (bench W1)."""

SPAWN_WITHIN_S: Final = MIN_LEASE_S / 4
"""Several engines: starts handed to the supervisor later than this after their commit began
(the engine stopped, or starved, in between) first renew the lease; an engine taken over
meanwhile is fenced there and starts nothing. Within it, no lease (1 s at least) can have run
out since the commit renewed it: no other engine can have judged these runs lost."""


def flush(tick: Tick, store: Store, part: int | None = None) -> None:
    """Apply the batch with the first `part` new runs (all by default); a run whose occurrence
    exists already is dropped, never started twice. On a StoreError the tick keeps the batch
    and every run not committed, for the next flush to write."""
    runs = tick.inserts if part is None else tick.inserts[:part]
    if not tick.batch and not runs:
        return
    for run in runs:
        run.created_at = tick.now  # as its row will say (a flush carried over makes it later)
        tick.batch.insert_run(run.values(tick.now, tick.host), owned=run.owned)
    try:
        inserted = store.apply(tick.batch, owner=tick.owner)
    except BaseException:
        tick.batch.clear_runs()  # they are made again from tick.inserts at the next try
        raise
    if part is None:
        tick.fired.clear()
    created: set[int] | None = None
    if runs and inserted < len(runs):  # some were ignored: ask which
        created = store.runs_created([r.id for r in runs], iso(tick.now) or "")
    for run in runs:
        run.is_new = False
        if created is not None and run.id not in created:
            _drop_duplicate(tick, run)
    tick.inserts = tick.inserts[len(runs) :]
    tick.batch = Batch()


def _drop_duplicate(tick: Tick, run: ActiveRun) -> None:
    log.warning("run for %s at %s exists already; not starting it again", run.event, iso(run.scheduled_for))
    tick.runs.pop(run.id, None)
    if run in tick.to_spawn:
        tick.to_spawn.remove(run)


def flush_and_spawn(
    tick: Tick, store: Store, executors: Executors, report: _Report, before_starts: Callable[[], None] | None = None
) -> None:
    """Flush, then start what was recorded running (see spawn). One engine (SQLite) commits a
    burst in parts of PART new runs and starts each part when its commit returns; the next
    fire times go last, after every part started (2,000 of them take ~9 ms to write). Several
    engines commit a tick at once: its claim on the due events holds until then.

    before_starts: what the tick still reads once its writes are committed, done before the
    starts of a tick committed at once: a read lets go of the GIL, and the callables just handed
    to the workers would take it then, in the middle of the tick (bench W3)."""
    if tick.owner is not None or len(tick.inserts) <= PART:
        committing = time.monotonic()
        flush(tick, store)
        if before_starts is not None and tick.owner is None:  # one engine: a local read, ~10 µs
            before_starts()
        spawn(tick, store, executors, report, committed_at=committing)
        return
    fires = tick.batch.next_fires_apart()
    failure: BaseException | None = None
    started: Callable[[], BaseException | None] | None = None
    interval = sys.getswitchinterval()
    shortened = min(interval, PART_SWITCH_S)
    sys.setswitchinterval(shortened)
    try:
        while tick.inserts:
            flush(tick, store, PART)  # with the pids of the parts answered before it
            # this part's commands go to the supervisor before the last part's answers are
            # awaited: it starts them while the next part is written (bench W2)
            answered, started = started, _hand_committed(tick, executors, report)
            if answered is not None:
                failure = answered() or failure
    finally:
        if started is not None:  # what was handed is started: its pids go into the batch
            failure = started() or failure
        put_back_switch(interval, shortened)
        tick.batch.extend(fires)  # after a failed part: written by the next flush, with the rest
    flush(tick, store)
    if failure is not None:
        raise failure


def put_back_switch(interval: float, shortened: float) -> None:
    """The switch interval as it was before a burst shortened it, unless another part of the
    process (the console's start, which shortens it until its first frame) set it meanwhile."""
    if sys.getswitchinterval() == shortened:
        sys.setswitchinterval(interval)


def spawn(
    tick: Tick, store: Store, executors: Executors, report: _Report, *, committed_at: float | None = None
) -> None:
    """Start the committed runs (and prepare steps); record their pids at once, not at the next
    tick: an engine killed in between would leave live commands the next one cannot find.

    Several engines: an engine that stopped between its commit and here (SIGSTOP, a frozen VM)
    past its lease was taken over, and its runs with no pid were judged lost, their pool slots
    given to others: started now, their commands would run without them. Past SPAWN_WITHIN_S
    after `committed_at` (when the commit that recorded them running began) the engine renews
    its lease first, and a taken-over engine is fenced there (Fenced) before it starts any."""
    if (
        tick.owner is not None
        and tick.to_spawn
        and (committed_at is None or time.monotonic() - committed_at > SPAWN_WITHIN_S)
    ):
        store.renew_lease(tick.owner)
    failure = _start_committed(tick, executors, report)
    flush(tick, store)
    if failure is not None:
        raise failure


def _start_committed(tick: Tick, executors: Executors, report: _Report) -> BaseException | None:
    """Start the runs to spawn whose rows are committed (the others wait for their part); their
    pids go into the batch. What a start raised (not a SpawnError), for the caller to raise.
    Commands go to the supervisor in one message and HTTP calls to the workers; then the
    callables, handed over together (the burst of a due tick: each is a work for a worker
    thread, ~3 µs a run less than a start through start_all)."""
    return _hand_committed(tick, executors, report)()


def _hand_committed(tick: Tick, executors: Executors, report: _Report) -> Callable[[], BaseException | None]:
    """_start_committed, what it returns waiting for the supervisor's answers and recording them
    (the callables are handed over before it returns)."""
    ready = [r for r in tick.to_spawn if not r.is_new]
    tick.to_spawn = [r for r in tick.to_spawn if r.is_new] if len(ready) < len(tick.to_spawn) else []
    started: list[tuple[ActiveRun, _Start]] = []
    works: list[tuple[Callable[..., None], tuple[Any, ...]]] = []
    for run in ready:
        spec = tick.view.spec(run.event)
        if spec is None or run.id not in tick.runs:
            continue
        if run.preparing or spec.call is None:
            started.append((run, _starter(executors, run, spec)))
        else:
            works.append(_call_work(executors, run, spec))
    results = executors.start_all_later([start for _, start in started])
    handed = executors.start_calls(works) if works else None
    return lambda: _record_started(tick, started, results(), report) or handed


def _record_started(
    tick: Tick, started: list[tuple[ActiveRun, _Start]], results: list[int | None | BaseException], report: _Report
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
    scheduled = iso_cached(run.scheduled_for)  # a burst's runs share it
    env = run_env(run.event, run.id, run.attempt, scheduled, run.params)
    log = run.log_path
    assert log is not None, "the start stage chose its log"
    if run.preparing:
        assert spec.on_failure.prepare is not None
        prepare = spec.on_failure.prepare
        return lambda: executors.prepare(run.id, prepare, spec, env, log)
    return lambda: executors.start(run.id, spec, env, run.attempt, scheduled or "", log, run.params)


def _call_work(executors: Executors, run: ActiveRun, spec: EventSpec) -> tuple[Callable[..., None], tuple[Any, ...]]:
    """What a worker thread does to run the callable of `run` (as _starter's start would)."""
    scheduled = iso_cached(run.scheduled_for)
    env = run_env(run.event, run.id, run.attempt, scheduled, run.params)
    assert run.log_path is not None, "the start stage chose its log"
    return executors.call_work(run.id, spec, env, run.attempt, scheduled or "", run.log_path, run.params)
