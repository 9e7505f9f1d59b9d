"""Work of the next due tick done while the loop waits for it: the specs, timings and first fires
of the events due next (ReadView.prefetch), and what their runs will need started beforehand."""

from __future__ import annotations

import logging

from evman.engine.clock import Clock
from evman.engine.running.executors import Executors
from evman.engine.tick.pace import BURST_AHEAD, Pace
from evman.engine.tick.readview import ReadView

log = logging.getLogger("evman.engine")


class LookAhead:
    def __init__(self, view: ReadView, pace: Pace, executors: Executors, clock: Clock, tick_s: float) -> None:
        self.view = view
        self.pace = pace
        self.executors = executors
        self.clock = clock
        self.tick_s = tick_s

    def between_ticks(self) -> None:
        """Read and work out what the next due tick would, however far off it is (once per due
        time); a failure only leaves that work to the tick itself, which says what went wrong."""
        try:
            decoded = self.view.prefetch(self.pace.next_due, self.clock.now(), self.tick_s)
            self.pace.burst_ahead = decoded >= BURST_AHEAD
            self.get_ready()
        except Exception as exc:  # the loop must go on waiting; the next tick meets it again
            log.debug("looking ahead of the next tick failed: %s", exc)

    def get_ready(self) -> None:
        """The command supervisor, the log folders and the worker threads that the specs read so
        far will need, started (or made) before their runs fall due."""
        if self.view.saw_command:
            self.executors.expect_commands()
            self.executors.prepare_logs(self.view.commands_ahead, self.pace.next_due)
            self.view.commands_ahead = []
        if self.view.saw_call:
            self.executors.expect_calls()
