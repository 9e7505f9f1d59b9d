"""The engine: claims the database, runs the tick's stages in order, sleeps until the next wake-up.

The stages (engine/stages/) do the work; this module only orders them, keeps what lives
between ticks (the active runs, the read view, the writes not yet flushed: engine/tick/carry.py)
and the lifecycle. When the loop ticks next is engine/tick/pace.py; how a tick went, told to the
tick's listeners, engine/tick/report.py."""

from __future__ import annotations

import functools
import logging
import os
import queue
import socket
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Final

from evman import __version__
from evman.engine.clock import Clock, SystemClock
from evman.engine.fleet.membership import membership_for
from evman.engine.fleet.placement import Seat
from evman.engine.fleet.sole import EngineBusy, Sole
from evman.engine.running.executors import Executors, Outcome
from evman.engine.stages.deadlines import check_deadlines
from evman.engine.stages.flush import flush, flush_and_spawn
from evman.engine.stages.followups import follow_up
from evman.engine.stages.foresight import Foresight
from evman.engine.stages.materialise import materialise
from evman.engine.stages.reap import reap
from evman.engine.stages.reboot import queue_reboots, reboot_at_join
from evman.engine.stages.recover import recover
from evman.engine.stages.requests import handle_requests
from evman.engine.stages.silence import SilenceWatch
from evman.engine.stages.start import start_ready
from evman.engine.stages.takeover import take_over
from evman.engine.store import Fenced, Store, StoreError, is_pg_store
from evman.engine.store.targets import logs_dir as default_logs_dir
from evman.engine.tick.active import ActiveRun, ActiveRuns, Change
from evman.engine.tick.ahead import LookAhead
from evman.engine.tick.carry import Carry
from evman.engine.tick.context import Tick
from evman.engine.tick.pace import Pace
from evman.engine.tick.readview import ReadView
from evman.engine.tick.report import Reports
from evman.engine.timing.backoff import backoff_for
from evman.engine.verbs.holds import release_ended_holds
from evman.engine.watch.report import TickReport

log = logging.getLogger("evman.engine")
LOG_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"
"""How evman's log lines read, wherever they go (the headless engine's stdout, the console's log file)."""

VERSION: Final = __version__


class Engine:
    def __init__(
        self,
        store: Store,
        *,
        clock: Clock | None = None,
        tick_s: float = 1.0,
        logs_dir: Path | None = None,
        on_change: Callable[[list[Change]], None] | None = None,
        stop_grace_s: float = 10.0,
        pid: int | None = None,
        tags: frozenset[str] = frozenset(),
        host: str | None = None,
    ) -> None:
        self.store = store
        self.clock = clock or SystemClock()
        self.tick_s = tick_s
        self.on_change = on_change
        self.stop_grace_s = stop_grace_s
        self.pid = pid if pid is not None else os.getpid()
        self._host = host or socket.gethostname()
        """This machine's name (a test may name another, to place events by host)."""
        fleet_id = store.fleet_id() if is_pg_store(store) else None
        self.logs_dir = logs_dir or default_logs_dir(store.target, fleet_id)
        self._outcomes: queue.SimpleQueue[Outcome] = queue.SimpleQueue()
        self.executors = Executors(self.clock, self.logs_dir, self._outcome_arrived, host=self._host)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self.not_ticking = threading.Event()
        """Set while no tick runs: the housekeeper starts each piece of its work only then."""
        self.not_ticking.set()
        self._runs = ActiveRuns()
        self._view = ReadView(store)
        self.foresight = Foresight(tick_s)
        self.silence = SilenceWatch()
        self.fleet = membership_for(store, Seat(self._host, tags), self.pid, tick_s, VERSION)
        """With several engines (PostgreSQL): this engine's lease, ids and takeovers."""
        self.sole = Sole(store, self.clock, pid=self.pid, host=self._host, tick_s=tick_s, version=VERSION)
        """With one engine (SQLite): this engine's claim on the database."""
        self._carry = Carry(
            Tick(self.clock.now(), self._runs, self._view, self.executors, self._new_id, self._host), self.fleet
        )
        self._pace = Pace(self.clock, tick_s)
        self._ahead = LookAhead(self._view, self._pace, self.executors, self.clock, tick_s)
        self.started = False
        self.tick_listeners: list[Callable[[TickReport], None]] = []
        """Called in the engine's thread after every tick of run(), ok or not (engine/watch/)."""
        self._reports = Reports(self.tick_listeners)
        self._last_tick: Tick | None = None
        self.elsewhere_reads = 0
        """Several engines: reads of the other engines' active runs so far (one per tick at most,
        whatever the number of occurrences: see engine/fleet/elsewhere.py)."""

    # -- lifecycle -----------------------------------------------------------------

    def start(self) -> None:
        """Claim the database, reconcile what a previous engine left, queue @reboot events."""
        now = self.clock.now()
        if self.fleet is not None:
            self._join(now)
            return
        self.sole.claim(now)
        self.store.checkpoint_in_background()  # no tick waits for a WAL checkpoint's fsyncs
        self._refresh_definitions()
        if self.store.has_commands():  # it boots while the engine recovers and ticks
            self.executors.expect_commands()
        tick = self._begin_tick(now)
        recover(tick, self.executors)
        queue_reboots(tick, self.fleet)
        follow_up(tick)
        self._end_tick(tick, spawning=False)
        self.started = True

    def _join(self, now: datetime) -> None:
        """Several engines: join (no claim on the database), take over the engines whose lease
        ran out, queue @reboot events, and listen for wake-ups."""
        assert self.fleet is not None
        self.fleet.join()
        self._refresh_definitions()
        tick = self._begin_tick(now)
        take_over(tick, self.fleet, self.executors)
        reboot_at_join(tick, self.fleet)
        follow_up(tick)
        self._end_tick(tick, spawning=False)
        self.fleet.listen(self.wake)
        self.started = True

    def run(self) -> None:
        """Tick until stop(); the thread (or process) that calls it is the engine."""
        if not self.started:
            self.start()
        try:
            while not self._stop.is_set():
                self._wake.clear()
                ticked = self._safe_tick(self.clock.now())
                self.between_ticks()
                self._wake.wait(self._pace.wait_s(ticked))
        finally:
            self.shutdown()

    def between_ticks(self) -> None:
        """What run() does after each tick before it waits: the next due tick's work done ahead
        (engine/tick/ahead.py), garbage collected then rather than in the next tick
        (engine/tick/pace.py). A driver that calls tick() itself calls it too."""
        if self.fenced is None and not self._stop.is_set():
            self._ahead.between_ticks()
        self._pace.between_ticks()

    def _safe_tick(self, now: datetime) -> bool:
        """One tick; False when it failed (said in the log)."""
        began = time.perf_counter()
        try:
            changes = self.tick(now)
        except Exception as exc:  # the engine thread must survive a bug in one tick; it logs it loudly
            error = self._reports.failed(exc)
            self._view.look_again()  # at the mailbox: the failed tick may not have
            self._report(now, began, error)
            return False
        self._reports.outage.ended()
        if changes and self.on_change is not None:
            self.on_change(changes)
        self._report(now, began, None)
        return True

    def _report(self, now: datetime, began: float, error: str | None) -> None:
        self._reports.tell(self._last_tick, now, began, error, fenced=self.fenced, active=len(self._runs))

    def _fenced(self, why: str) -> None:
        """Another engine owns this one's runs now: start nothing, kill our commands, stop."""
        assert self.fleet is not None
        self.store.drop_claims()
        self._stop.set()
        children = [(r.id, r.pid) for r in self._runs.values() if r.pid is not None]
        self.fleet.fence(why, children)
        self._runs.clear()

    @property
    def fenced(self) -> str | None:
        """Why this engine was fenced (several engines), else None."""
        return None if self.fleet is None else self.fleet.fenced

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def wake(self) -> None:
        self._wake.set()

    def shutdown(self) -> None:
        """Wait up to stop_grace_s for children, ticking meanwhile (what ends is recorded at once,
        and with several engines the lease stays this engine's: a survivor does not take it over
        while it waits); the rest stay recorded as running with their pid, and the next engine
        watches or reconciles them."""
        self._stop.set()
        self._wait_for_children()
        if self.fenced is not None:
            self.executors.shutdown(wait_s=0)
            if self.fleet is not None:
                self.fleet.stop_listening()
            return
        left = self.executors.shutdown(wait_s=0)
        now = self.clock.now()
        try:
            self.tick(now)
            if self.fleet is not None:
                self.fleet.stop_listening()
                self.fleet.leave()
            else:
                self.sole.release(now)
        except Fenced as exc:
            self._fenced(str(exc))
        except StoreError as exc:
            log.error("could not record the engine's stop: %s", exc)
        if left:
            log.warning(
                "left %d run(s) running at stop (ids %s); the next engine reconciles them",
                len(left),
                ", ".join(map(str, left)),
            )

    def _wait_for_children(self) -> None:
        """Tick (starting nothing: the engine is stopping) until no child runs, or the grace ends."""
        deadline = time.monotonic() + self.stop_grace_s
        while self.executors.running_count() and self.fenced is None:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self._wake.clear()
            self._wake.wait(min(self.tick_s, left))
            self._safe_tick(self.clock.now())

    # -- the tick ----------------------------------------------------------------------

    def tick(self, now: datetime | None = None) -> list[Change]:
        """One pass of the stages at `now`; returns what changed. An engine of several that
        finds itself fenced stops here (see engine/fleet/membership.py): nothing of the tick was written."""
        if self.fenced is not None:
            return []
        self.not_ticking.clear()
        try:
            return self._tick(now)
        except Fenced as exc:
            self._fenced(str(exc))
            return []
        finally:
            self.not_ticking.set()

    def _tick(self, now: datetime | None) -> list[Change]:
        tick = self._begin_tick(now or self.clock.now())
        if self.fleet is not None and not tick.stopping:
            take_over(tick, self.fleet, self.executors)
            if self.fleet.reboot_due:  # the engines live when it joined never renewed
                queue_reboots(tick, self.fleet)
        if self._view.committed_elsewhere():
            self._refresh_definitions()
            handle_requests(tick)
        release_ended_holds(tick)
        self._pace.due_elsewhere = False
        if self._pace.is_due(tick.now):
            materialise(tick)
            self._pace.due_elsewhere = not tick.fired  # all it saw due was locked by other engines
        reap(tick, self._outcomes)
        follow_up(tick)
        start_ready(tick)
        check_deadlines(tick)
        follow_up(tick)
        self.foresight.run(tick)
        self.silence.run(tick)
        self._heartbeat(tick)
        self._end_tick(tick, spawning=True)
        self.elsewhere_reads += tick.elsewhere.reads
        self._last_tick = tick
        self._ahead.get_ready()
        return tick.changes

    def _begin_tick(self, now: datetime) -> Tick:
        """A tick that goes on from what the last one left unwritten: a tick that failed
        anywhere (its flush, or a read half-way) is carried on whole, its writes, new runs,
        ended runs not yet followed up, spawns and changes with it; none is lost or made twice."""
        self.store.drop_claims()  # a tick that failed half-way left its claimed rows locked
        return self._carry.begin(now, stopping=self._stop.is_set())

    def _end_tick(self, tick: Tick, *, spawning: bool) -> None:
        """Flush (and spawn); what a failed flush could not write stays for the next tick. The
        next due time is read once the next fire times are committed (Pace.read_moved)."""
        try:
            if spawning:
                early = functools.partial(self._pace.read_moved, tick, self.store, early=True)
                flush_and_spawn(tick, self.store, self.executors, self._outcome_arrived, early)
            else:
                flush(tick, self.store)
        finally:
            self._pace.read_moved(tick, self.store)
        self._carry.flushed(tick)

    def _new_id(self) -> int:
        return (self.fleet or self.sole).next_id()

    def _refresh_definitions(self) -> None:
        if self._view.refresh_definitions():
            self._pace.read_next_due(self.store)
            self.foresight.prepare(self.store)
            self.silence.forget()
            if self.fleet is not None:
                self.fleet.place(self.fleet.store.placed_events())

    def _heartbeat(self, tick: Tick) -> None:
        if self.fleet is not None:
            tick.batch.lease()  # every tick: the flush renews the lease (apply's first statement)
        else:
            self.sole.beat(tick.batch, tick.now)

    def _outcome_arrived(self, outcome: Outcome) -> None:
        self._outcomes.put(outcome)
        if not self._wake.is_set():  # set() takes a lock: 2,000 callables of a burst end at once
            self._wake.set()

    # -- for tests, drills and the console -------------------------------------------------

    def settle(self, now: datetime | None = None, timeout_s: float = 10.0) -> list[Change]:
        """Tick at `now` (default: the clock) until no run is in flight; for tests and drills.

        Real child processes and callables still take real time; the clock does not move."""
        deadline = time.monotonic() + timeout_s
        changes: list[Change] = []
        while True:
            self._wake.clear()
            changes += self.tick(now)
            if not self._runs.in_flight() and self._outcomes.empty():
                return changes
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"runs still in flight after {timeout_s} s: " + ", ".join(str(r.id) for r in self._runs.values())
                )
            self._wake.wait(0.05)

    def active_runs(self) -> list[ActiveRun]:
        return list(self._runs.values())


__all__ = ["ActiveRun", "Change", "Engine", "EngineBusy", "backoff_for"]
