"""A tick as its watchers see it (engine/watch/report.py): what started, what finished, how long;
and why one failed, as the engine's log says it."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime

from evman.engine.model import RunState
from evman.engine.store import StoreError, Unreachable
from evman.engine.tick.context import Tick
from evman.engine.tick.outage import Outage
from evman.engine.watch.report import Finished, Started, TickReport

log = logging.getLogger("evman.engine")


class Reports:
    """How each tick of the engine's loop went: a failed one said in the log (the database out
    of reach: once per outage), and every one told to the tick's listeners."""

    def __init__(self, listeners: list[Callable[[TickReport], None]]) -> None:
        self.listeners = listeners
        """Health, systemd, metrics: called in the engine's thread, they must be quick."""
        self.outage = Outage()

    def failed(self, exc: Exception) -> str:
        """Say in the log why a tick failed (called while `exc` is handled); the report's error."""
        if isinstance(exc, Unreachable):
            self.outage.failed(exc)
            return f"cannot reach the database: {exc}"
        if isinstance(exc, StoreError):
            log.error("tick could not record its work, will retry: %s", exc)
            return f"cannot record its work: {exc}"
        log.exception("tick failed")
        return f"tick failed: {type(exc).__name__}: {exc}"

    def tell(
        self, tick: Tick | None, now: datetime, began: float, error: str | None, *, fenced: str | None, active: int
    ) -> None:
        """The report of the tick that ran at `now` (began: its time.perf_counter()), to every listener."""
        if self.listeners:
            report = tick_report(tick, now, time.perf_counter() - began, error, fenced, active)
            for listener in self.listeners:
                listener(report)


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
