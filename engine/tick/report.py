"""A tick as its watchers see it (engine/watch/report.py): what started, what finished, how long."""

from __future__ import annotations

from datetime import datetime

from evman.engine.model import RunState
from evman.engine.tick.context import Tick
from evman.engine.watch.report import Finished, Started, TickReport


def tick_report(
    tick: Tick | None, now: datetime, duration_s: float, error: str | None, fenced: str | None, active: int
) -> TickReport:
    """The report of the tick that ran at `now` (`tick`: its context, None when it failed before one)."""
    if tick is None or tick.now != now or error is not None:
        return TickReport(now, duration_s, error, fenced, active=active)
    started = []
    for change in tick.changes:
        if change.kind == "run" and change.state == RunState.RUNNING.value and change.run_id is not None:
            run = tick.runs.get(change.run_id)
            if run is not None and run.started_at is not None:
                started.append(Started(run.event, max(0.0, (run.started_at - run.scheduled_for).total_seconds())))
    finished = [
        Finished(
            e.run.event,
            e.state.value,
            None if e.run.started_at is None else max(0.0, (e.at - e.run.started_at).total_seconds()),
        )
        for e in tick.done
    ]
    return TickReport(now, duration_s, None, fenced, tuple(started), tuple(finished), active)
