"""At engine start: take over the runs a previous engine left waiting or running.

A running run whose process still lives on this host is watched to its end; one whose
process is gone is `lost` (and the follow-ups stage retries or pages as its policy says)."""
from __future__ import annotations

import logging
import socket
from typing import Any

from engine import lifecycle
from engine.active import ActiveRun
from engine.clock import iso
from engine.executors import Executors
from engine.model import RunState
from engine.procs import pid_alive, session_leaders_with, started_near
from engine.tick import Tick

log = logging.getLogger("evman.engine")


def recover(tick: Tick, executors: Executors) -> None:
    for row in tick.view.store.active_runs():
        run = ActiveRun.from_row(row)
        if run.state is RunState.RUNNING:
            _reconcile_running(tick, executors, run, row)
        else:
            run.preparing = False
            tick.runs[run.id] = run


def _reconcile_running(tick: Tick, executors: Executors, run: ActiveRun, row: dict[str, Any]) -> None:
    here = row.get("host") == socket.gethostname()
    if run.pid is None and here:
        # the previous engine died between starting the command and recording its pid
        run.pid = find_unrecorded(run)
        if run.pid is not None:
            tick.batch.run_pid(run.id, run.pid)
    alive = run.pid is not None and here and pid_alive(run.pid) and started_near(run.pid, run.started_at)
    tick.runs[run.id] = run
    if alive and run.pid is not None and executors.adopt(run.id, run.pid):
        log.info("run %s of %s (pid %s) outlived the previous engine; watching it", run.id, run.event, run.pid)
        return
    why = ("the engine stopped before it recorded the process" if run.pid is None else
           f"its process (pid {run.pid}) was gone when the engine restarted")
    lifecycle.finish(tick, run, RunState.LOST, tick.now, reason=f"lost: {why}")


def find_unrecorded(run: ActiveRun) -> int | None:
    """The live command of `run` whose pid was never recorded: the session leader (each
    command starts a session) whose environment names this run, started near its start."""
    wanted = {f"EVMAN_RUN_ID={run.id}".encode(), f"EVMAN_EVENT={run.event}".encode(),
              f"EVMAN_SCHEDULED_FOR={iso(run.scheduled_for) or ''}".encode()}
    for pid in session_leaders_with(wanted):
        if started_near(pid, run.started_at):
            return pid
    return None
