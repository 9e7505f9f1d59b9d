"""At engine start: take over the runs a previous engine left waiting or running.

A running run is judged by what its command left (engine/tick/adoption.py): ended while no engine
ran (its exit record: judged by the reap stage as if watched), still running (watched to its
end), or gone without a word (`lost`, and the follow-ups stage retries or pages as its policy
says)."""

from __future__ import annotations

from typing import Any

from evman.engine.model import RunState
from evman.engine.running.executors import Executors
from evman.engine.tick import adoption, lifecycle
from evman.engine.tick.active import ActiveRun
from evman.engine.tick.context import Tick


def recover(tick: Tick, executors: Executors) -> None:
    take_runs(tick, executors, tick.view.store.active_runs())


def take_runs(tick: Tick, executors: Executors, rows: list[dict[str, Any]], *, final: bool = False) -> None:
    """Make these waiting and running runs this engine's: waiting ones wait here, running ones
    are judged by what their command left. final: a lost one is not retried (a takeover: only
    `on_lost = "rerun"` runs it again)."""
    running: list[tuple[ActiveRun, bool]] = []
    for row in rows:
        run = ActiveRun.from_row(row)
        if run.state is RunState.RUNNING:
            running.append((run, row.get("host") == tick.host))
        else:
            run.preparing = False
            tick.runs[run.id] = run
    looks = [(run, tick.view.spec(run.event), here) for run, here in running]
    for run, verdict in adoption.reconcile(looks, executors, tick.now):
        tick.runs[run.id] = run
        if verdict.pid is not None:
            run.pid = verdict.pid
            tick.batch.run_pid(run.id, verdict.pid)
        if verdict.outcome is not None:
            executors.on_done(verdict.outcome)  # the reap stage judges it: checks, follow-ups
        elif verdict.lost is not None:
            lifecycle.finish(tick, run, RunState.LOST, tick.now, reason=verdict.lost, final=final)
