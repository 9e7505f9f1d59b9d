"""What a starting engine makes of a run a previous engine left `running`: its command ended
while no engine ran (its supervisor's exit record says how: judged as if watched), or still
runs (adopted: watched to its end, window and runtime checks go on), or is gone without a
word (`lost`). Callables and HTTP calls ran inside the dead engine: always `lost`."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from evman.engine.clock import iso
from evman.engine.model import EventSpec
from evman.engine.running.executors import Executors, Outcome, outcome_of
from evman.engine.running.procs import pid_alive, session_leaders_with, started_near
from evman.engine.running.supervisor_client import ExitRecord, read_exit
from evman.engine.tick.active import ActiveRun

log = logging.getLogger("evman.engine")

LATE_RECORD_WAIT_S: Final = 0.2
"""Once per engine start, when a command is gone without an exit record: the time its
supervisor may still need to write it (it does so a few milliseconds after the end)."""


@dataclass(frozen=True)
class Verdict:
    """One of: `outcome` (ended; judge it), `adopted` (watched), or `lost` (the reason)."""

    outcome: Outcome | None = None
    adopted: int | None = None
    lost: str | None = None
    pid: int | None = None
    """A pid learnt on the way (never recorded by the engine that started it)."""


def reconcile(
    runs: list[tuple[ActiveRun, EventSpec | None, bool]], executors: Executors, now: datetime
) -> list[tuple[ActiveRun, Verdict]]:
    """The verdict on each (run, its spec, started on this host), in order."""
    verdicts = [(run, _first_look(run, spec, here, executors, now)) for run, spec, here in runs]
    if not any(
        v.lost is not None and _may_get_record(run, here) for (run, v), (_, _, here) in zip(verdicts, runs, strict=True)
    ):
        return verdicts
    time.sleep(LATE_RECORD_WAIT_S)  # a supervisor may be writing it this very moment
    return [(run, _second_look(run, v, here, now)) for (run, v), (_, _, here) in zip(verdicts, runs, strict=True)]


def _first_look(run: ActiveRun, spec: EventSpec | None, here: bool, executors: Executors, now: datetime) -> Verdict:
    if spec is not None and spec.run is None and spec.shell is None:
        kind = "call" if spec.call is not None else "http"
        return Verdict(
            lost=f"lost: it ran inside the engine (a {kind} event), which stopped; only commands outlive their engine"
        )
    if not here:
        return Verdict(lost=f"lost: it ran on another host; its process (pid {run.pid}) cannot be watched")
    ended = _ended(run, now)
    if ended is not None:
        return ended
    pid = run.pid if run.pid is not None else find_unrecorded(run)
    if (
        pid is not None
        and pid_alive(pid)
        and started_near(pid, run.started_at)
        and executors.adopt(run.id, pid, log_path=run.log_path)
    ):
        log.info("run %s of %s (pid %s) outlived the previous engine; watching it", run.id, run.event, pid)
        return Verdict(adopted=pid, pid=pid if run.pid is None else None)
    why = (
        "the engine stopped before it recorded the process"
        if pid is None
        else f"its process (pid {pid}) was gone when the engine restarted, with no exit record"
    )
    return Verdict(lost=f"lost: {why}")


def _second_look(run: ActiveRun, verdict: Verdict, here: bool, now: datetime) -> Verdict:
    if verdict.lost is None or not _may_get_record(run, here):
        return verdict
    return _ended(run, now) or verdict


def _may_get_record(run: ActiveRun, here: bool) -> bool:
    return here and run.log_path is not None


def _ended(run: ActiveRun, now: datetime) -> Verdict | None:
    """The run's command ended while no engine ran, by its exit record."""
    record = read_exit(run.log_path)
    if record is None or (run.pid is not None and record.pid != run.pid):
        return None
    log.info(
        "run %s of %s (pid %s) ended while no engine ran (exit %s); recording it",
        run.id,
        run.event,
        record.pid,
        record.exit_code,
    )
    return Verdict(outcome=outcome_of(record, _ended_at(record, run, now)), pid=record.pid if run.pid is None else None)


def _ended_at(record: ExitRecord, run: ActiveRun, now: datetime) -> datetime:
    """The record's end, kept within the run's start and now (an engine on a test clock)."""
    at = datetime.fromtimestamp(record.ended_at, UTC)
    if run.started_at is not None and at < run.started_at:
        return run.started_at
    return min(at, now)


def find_unrecorded(run: ActiveRun) -> int | None:
    """The live command of `run` whose pid was never recorded: the session leader (each
    command starts a session) whose environment names this run, started near its start."""
    wanted = {
        f"EVMAN_RUN_ID={run.id}".encode(),
        f"EVMAN_EVENT={run.event}".encode(),
        f"EVMAN_SCHEDULED_FOR={iso(run.scheduled_for) or ''}".encode(),
    }
    for pid in session_leaders_with(wanted):
        if started_near(pid, run.started_at):
            return pid
    return None


__all__ = ["Verdict", "find_unrecorded", "reconcile"]
