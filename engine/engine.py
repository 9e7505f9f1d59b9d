"""The tick loop: requests, due occurrences, starts, reaping, follow-ups, window checks."""
from __future__ import annotations

import functools
import json
import logging
import os
import queue
import socket
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final

from engine import schedules
from engine.clock import Clock, SystemClock, iso, parse_iso
from engine.conditions import Condition, Finished, evaluate, parse_condition
from engine.definitions import spec_from_json
from engine.executors import Executors, Outcome, SpawnError, read_tail, run_env
from engine.model import (
    Concurrency,
    EventSpec,
    Misfire,
    RunState,
    Trigger,
)
from engine.procs import pid_alive as _pid_alive
from engine.store import RUN_COLUMNS, Batch, Store, StoreError
from engine.store.engines import HEARTBEAT
from engine.windows import bounds_for
from engine.verify import first_failure, verify_outputs

log = logging.getLogger("evman.engine")

VERSION: Final = "0.1.0"
HEARTBEAT_EVERY_S: Final = 5.0
STALE_AFTER_S: Final = 30.0
MISFIRE_GRACE_S: Final = 60.0
MAX_CATCH_UP: Final = 1000
PREFETCH_MAX: Final = 5000
"""At most this many specs decoded ahead of a burst (a bound on that idle tick's length)."""


@dataclass(frozen=True)
class Change:
    """One thing a tick changed, for the console and for tests."""
    kind: str
    """"run" (a run changed state), "alert", "request", "event"."""
    event: str
    run_id: int | None = None
    state: str | None = None
    detail: str | None = None


@dataclass
class ActiveRun:
    """A waiting or running run, as the engine holds it in memory."""
    id: int
    event: str
    state: RunState
    trigger: str
    attempt: int
    scheduled_for: datetime
    triggered_by: str | None = None
    repeats_run_id: int | None = None
    not_before: datetime | None = None
    window_open: datetime | None = None
    due_by: datetime | None = None
    late_at: datetime | None = None
    needs_prepare: bool = False
    started_at: datetime | None = None
    pid: int | None = None
    log_path: str | None = None
    waiting_reason: str | None = None
    flags: set[str] = field(default_factory=set)
    preparing: bool = False
    is_new: bool = False
    killed_by: str | None = None

    def row(self, created_at: datetime) -> dict[str, Any]:
        return {
            "id": self.id, "event": self.event, "state": self.state.value, "trigger": self.trigger,
            "triggered_by": self.triggered_by, "attempt": self.attempt,
            "repeats_run_id": self.repeats_run_id, "scheduled_for": _iso(self.scheduled_for),
            "created_at": _iso(created_at), "not_before": _iso(self.not_before),
            "window_open": _iso(self.window_open), "due_by": _iso(self.due_by),
            "late_at": _iso(self.late_at), "needs_prepare": int(self.needs_prepare),
            "started_at": _iso(self.started_at), "waiting_reason": self.waiting_reason,
            "pid": self.pid, "host": socket.gethostname() if self.started_at else None,
            "log_path": self.log_path, "flags": _flags_text(self.flags),
        }


def _iso(at: datetime | None) -> str | None:
    """iso(), remembered for aware times: a burst's runs share their scheduled, created and
    started times, and formatting them again was a tenth of inserting a run."""
    return iso(at) if at is None or at.tzinfo is None else _iso_aware(at)


@functools.lru_cache(maxsize=1024)
def _iso_aware(at: datetime) -> str | None:
    return iso(at)


@functools.lru_cache(maxsize=4096)
def _parse_condition(text: str) -> Condition:
    """parse_condition, once per text: conditions are immutable, and events often share one
    (a layer of a flow all waiting for the same upstreams)."""
    return parse_condition(text)


def _values(row: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(row.get(c) for c in RUN_COLUMNS)


def _flags_text(flags: set[str]) -> str | None:
    return ",".join(sorted(flags)) if flags else None


class _ActiveRuns(dict[int, ActiveRun]):
    """The waiting and running runs by id, also indexed by event: "which runs of E are
    active?" is asked for every run on the hot path, and scanning all active runs for it
    made a burst of n runs cost n² steps."""

    def __init__(self) -> None:
        super().__init__()
        self._by_event: dict[str, dict[int, ActiveRun]] = {}

    def __setitem__(self, run_id: int, run: ActiveRun) -> None:
        old = self.get(run_id)
        if old is not None and old.event != run.event:
            self._drop(old)
        super().__setitem__(run_id, run)
        self._by_event.setdefault(run.event, {})[run_id] = run

    def __delitem__(self, run_id: int) -> None:
        run = self[run_id]
        super().__delitem__(run_id)
        self._drop(run)

    def pop(self, run_id: int, *default: Any) -> Any:
        if run_id not in self:
            if default:
                return default[0]
            raise KeyError(run_id)
        run = super().pop(run_id)
        self._drop(run)
        return run

    def clear(self) -> None:
        super().clear()
        self._by_event.clear()

    def _drop(self, run: ActiveRun) -> None:
        runs = self._by_event.get(run.event)
        if runs is not None:
            runs.pop(run.id, None)
            if not runs:
                del self._by_event[run.event]

    def of(self, event: str) -> list[ActiveRun]:
        """The active runs of `event`, oldest first."""
        runs = self._by_event.get(event)
        return list(runs.values()) if runs else []


class EngineBusy(RuntimeError):
    """Another live engine drives this database."""


class Engine:
    def __init__(self, store: Store, *, clock: Clock | None = None, tick_s: float = 1.0,
                 logs_dir: Path | None = None,
                 on_change: Callable[[list[Change]], None] | None = None,
                 stop_grace_s: float = 10.0, pid: int | None = None) -> None:
        self.store = store
        self.clock = clock or SystemClock()
        self.tick_s = tick_s
        self.on_change = on_change
        self.stop_grace_s = stop_grace_s
        self.pid = pid if pid is not None else os.getpid()
        base = store.path.parent if store.path else Path(".")
        name = store.path.name if store.path else "memory"
        self.logs_dir = logs_dir or base / f"{name}.logs"
        self._outcomes: queue.SimpleQueue[Outcome] = queue.SimpleQueue()
        self.executors = Executors(self.clock, self.logs_dir, self._outcome_arrived)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._runs = _ActiveRuns()
        self._specs: dict[str, EventSpec | None] = {}
        self._held: dict[str, bool] = {}
        self._conditions: dict[str, Condition] = {}
        self._finished: dict[str, Finished | None] = {}
        self._dependents: dict[str, list[str]] | None = None
        """upstream -> events whose `requires` names it; None until read (once per definitions)."""
        self._open_kinds: dict[str, set[str]] | None = None
        """Open alert kinds per event, read once for the outcomes being reaped."""
        self._writes: list[tuple[str, list[Sequence[Any]]]] = []
        self._inserts: list[ActiveRun] = []
        self._to_spawn: list[ActiveRun] = []
        self._changes: list[Change] = []
        self.acked_this_tick: dict[int, str] = {}
        """alert id -> who acknowledged it in this tick's requests (their writes are not flushed yet)."""
        self._data_version = -1
        self._defs_version = -1
        self._next_due: datetime | None = None
        self._next_run_id = 0
        self._last_heartbeat: datetime | None = None
        self._dirty = True
        self._next_due_stale = False
        self._prefetched_for: datetime | None = None
        """The next due time whose events' specs were decoded ahead (see _prefetch_specs)."""
        self._fired: set[str] = set()
        """Events materialised whose next_fire_at update is not committed yet: a tick whose
        flush failed (a locked database) must not materialise the same occurrence again."""
        self.started = False

    # -- lifecycle -----------------------------------------------------------------

    def start(self) -> None:
        """Claim the database, reconcile what a previous engine left, queue @reboot events."""
        now = self.clock.now()
        refusing = self.store.claim_engine(pid=self.pid, now=now, tick_s=self.tick_s,
                                           version=VERSION, may_take=self._may_take)
        if refusing is not None:
            age = (now - (parse_iso(refusing.heartbeat_at) or now)).total_seconds()
            raise EngineBusy(
                f"{self.store.path} is driven by another engine (pid {refusing.pid} on "
                f"{refusing.host}, heartbeat {age:.0f} s ago). Stop it, or use --db PATH.")
        self._last_heartbeat = now
        self._next_run_id = self.store.max_run_id()
        self._refresh_definitions()
        self._load_active(now)
        for name in self.store.reboot_events():
            self._new_run(name, Trigger.REBOOT, now, triggered_by="engine start")
        self._flush(now)
        self.started = True

    def _may_take(self, row: Any) -> bool:
        if row.stopped_at is not None or row.pid is None:
            return True
        if row.pid == self.pid and row.host == socket.gethostname():
            return True
        if row.host == socket.gethostname() and not _pid_alive(int(row.pid)):
            return True
        beat = parse_iso(row.heartbeat_at)
        return beat is None or (self.clock.now() - beat).total_seconds() > STALE_AFTER_S

    def _load_active(self, now: datetime) -> None:
        for row in self.store.active_runs():
            run = _active_from_row(row)
            if run.state is RunState.RUNNING:
                self._reconcile_running(run, row, now)
            else:
                run.preparing = False
                self._runs[run.id] = run

    def _reconcile_running(self, run: ActiveRun, row: dict[str, Any], now: datetime) -> None:
        if run.pid is None and row.get("host") == socket.gethostname():
            # the previous engine died between starting the command and recording its pid
            run.pid = _find_unrecorded(run)
            if run.pid is not None:
                self._write("UPDATE runs SET pid = ? WHERE id = ?", run.pid, run.id)
        alive = (run.pid is not None and row.get("host") == socket.gethostname()
                 and _pid_alive(run.pid) and _started_near(run.pid, run.started_at))
        self._runs[run.id] = run
        if alive and run.pid is not None and self.executors.adopt(run.id, run.pid):
            log.info("run %s of %s (pid %s) outlived the previous engine; watching it",
                     run.id, run.event, run.pid)
            return
        why = ("the engine stopped before it recorded the process" if run.pid is None else
               f"its process (pid {run.pid}) was gone when the engine restarted")
        self._finish(run, RunState.LOST, now, exit_code=None, reason=f"lost: {why}")

    def run(self) -> None:
        """Tick until stop(); the thread (or process) that calls it is the engine."""
        if not self.started:
            self.start()
        try:
            while not self._stop.is_set():
                self._wake.clear()
                now = self.clock.now()
                ticked = self._safe_tick(now)
                # after a failed tick wait a whole tick: an occurrence still due (its next fire
                # time could not be recorded) would otherwise make the loop spin, and flood the log
                # the wait counts from the tick's end: a long tick must not make the next one late
                self._wake.wait(self._sleep_for(self.clock.now()) if ticked else self.tick_s)
        finally:
            self.shutdown()

    def _safe_tick(self, now: datetime) -> bool:
        """One tick; False when it failed (said in the log)."""
        try:
            changes = self.tick(now)
        except StoreError as exc:
            log.error("tick could not record its work, will retry: %s", exc)
            return False
        except Exception:  # the engine thread must survive a bug in one tick; it logs it loudly
            log.exception("tick failed")
            return False
        if changes and self.on_change is not None:
            self.on_change(changes)
        return True

    def _sleep_for(self, now: datetime) -> float:
        wait = self.tick_s
        if self._next_due is not None:
            wait = min(wait, max(0.0, (self._next_due - now).total_seconds()))
        return wait

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def wake(self) -> None:
        self._wake.set()

    def shutdown(self) -> None:
        """Wait up to stop_grace_s for children; the rest stay recorded as running with their
        pid, and the next engine watches or reconciles them."""
        left = self.executors.shutdown(wait_s=self.stop_grace_s)
        now = self.clock.now()
        try:
            self.tick(now)
            self.store.release_engine(pid=self.pid, now=now)
        except StoreError as exc:
            log.error("could not record the engine's stop: %s", exc)
        if left:
            log.warning("left %d run(s) running at stop (ids %s); the next engine reconciles them",
                        len(left), ", ".join(map(str, left)))

    # -- the tick ----------------------------------------------------------------------

    def tick(self, now: datetime | None = None) -> list[Change]:
        now = now or self.clock.now()
        self._changes = []
        if self._external_change():
            self._refresh_definitions()
            self._handle_requests(now)
        if self._next_due is not None and now >= self._next_due:
            self._materialise(now)
        now = self._reap(now)
        if not self._stop.is_set() and (
                self._dirty or any(r.state is RunState.WAITING for r in self._runs.values())):
            # waiting runs are judged every tick: windows open, backoffs expire, files appear.
            # A stopping engine starts nothing: its last tick only records what ended.
            self._start_ready(now)
        self._check_deadlines(now)
        self._heartbeat(now)
        self._flush(now)
        if self._next_due_stale:
            self._next_due_stale = False
            self._next_due = parse_iso(self.store.next_due_at())
        self._spawn_pending(now)
        self._prefetch_specs(now)
        return self._changes

    def _prefetch_specs(self, now: datetime) -> None:
        """Decode the specs of the events due within the next tick ahead of time, so that
        the tick that materialises a burst only makes runs: decoding was a fifth of it."""
        due = self._next_due
        if due is None or due == self._prefetched_for or (due - now).total_seconds() > self.tick_s:
            return
        self._prefetched_for = due
        for row in self.store.due_events(now + timedelta(seconds=self.tick_s), limit=PREFETCH_MAX):
            if row["name"] not in self._specs:
                self._specs[row["name"]] = spec_from_json(row["spec"])
                self._held[row["name"]] = bool(row["held"])

    def _external_change(self) -> bool:
        version = self.store.data_version()
        if version == self._data_version:
            return False
        self._data_version = version
        return True

    def _refresh_definitions(self) -> None:
        version = self.store.defs_version()
        if version == self._defs_version:
            return
        self._defs_version = version
        self._specs.clear()
        self._held.clear()
        self._conditions.clear()
        self._dependents = None
        self._prefetched_for = None
        self._dirty = True
        due = self.store.next_due_at()
        self._next_due = parse_iso(due)

    def spec(self, name: str) -> EventSpec | None:
        if name not in self._specs:
            found = self.store.event_specs([name]).get(name)
            self._specs[name] = None if found is None else self._placed(spec_from_json(found[0]))
            self._held[name] = bool(found and found[1])
        return self._specs[name]

    def _placed(self, spec: EventSpec) -> EventSpec:
        """A relative cwd (a database made to travel, like sample.db) is relative to the
        database's folder; `load` itself stores absolute ones."""
        if os.path.isabs(spec.cwd) or self.store.path is None:
            return spec
        return replace(spec, cwd=os.path.normpath(self.store.path.parent.absolute() / spec.cwd))

    def _is_held(self, name: str) -> bool:
        self.spec(name)
        return self._held.get(name, False)

    def _condition(self, spec: EventSpec) -> Condition | None:
        if spec.requires is None:
            return None
        if spec.name not in self._conditions:
            self._conditions[spec.name] = _parse_condition(spec.requires)
        return self._conditions[spec.name]

    def _dependents_of(self, name: str) -> list[str]:
        if self._dependents is None:  # every edge in one read, not one SELECT per finished event
            self._dependents = self.store.all_dependents()
        return self._dependents.get(name, [])

    # -- writes ---------------------------------------------------------------------------

    def _write(self, sql: str, *params: Any) -> None:
        if self._writes and self._writes[-1][0] == sql:
            self._writes[-1][1].append(params)
        else:
            self._writes.append((sql, [params]))

    def _flush(self, now: datetime) -> None:
        if not self._writes and not self._inserts:
            return
        rows: list[Sequence[Any]] = [_values(r.row(now)) for r in self._inserts]
        batch = Batch()
        batch.runs, batch.writes = rows, self._writes
        inserted = self.store.apply(batch)
        self._fired.clear()
        created: set[int] | None = None
        if rows and inserted < len(rows):  # some were ignored: ask which (one executemany above)
            created = self.store.runs_created([r.id for r in self._inserts], iso(now) or "")
        for run in self._inserts:
            run.is_new = False
            if created is not None and run.id not in created:  # the occurrence exists already: never start it twice
                log.warning("run for %s at %s exists already; not starting it again",
                            run.event, iso(run.scheduled_for))
                self._runs.pop(run.id, None)
                if run in self._to_spawn:
                    self._to_spawn.remove(run)
        self._inserts = []
        self._writes = []

    def _heartbeat(self, now: datetime) -> None:
        if self._last_heartbeat is None or (now - self._last_heartbeat).total_seconds() >= HEARTBEAT_EVERY_S:
            self._last_heartbeat = now
            self._write(HEARTBEAT, iso(now), self.pid)

    # -- requests ----------------------------------------------------------------------------

    def _handle_requests(self, now: datetime) -> None:
        from engine.requests import handle_request
        self.acked_this_tick = {}
        for req in self.store.open_requests():
            key = req["dedupe_key"]
            earlier = self.store.dedupe_seen(key, int(req["id"])) if key else None
            if earlier is not None:
                outcome, detail = f"duplicate of request {earlier}; not acted on again", None
            else:
                outcome, detail = handle_request(self, dict(req), now)
            self._write("UPDATE requests SET handled_at = ?, outcome = ?, detail = ? WHERE id = ?",
                        iso(now), outcome, detail, int(req["id"]))
            self._changes.append(Change("request", str(req["target"]), None, outcome,
                                        f"{req['verb']} #{req['id']}"))
            self._dirty = True

    # -- materialising due occurrences -----------------------------------------------------------

    def _materialise(self, now: datetime) -> None:
        memo: dict[tuple[str, str, datetime], tuple[list[datetime], datetime | None]] = {}
        for row in self.store.due_events(now):
            if row["name"] in self._fired:
                continue
            if row["name"] not in self._specs:  # the due row carries the spec: no SELECT per event
                self._specs[row["name"]] = self._placed(spec_from_json(row["spec"]))
                self._held[row["name"]] = bool(row["held"])
            spec = self.spec(row["name"])
            if spec is None or spec.schedule is None:
                continue
            due = parse_iso(row["next_fire_at"])
            assert due is not None
            fires, nxt = self._fire_times(spec.schedule, spec.timezone, due, now, memo)
            late = (now - fires[-1]).total_seconds() > MISFIRE_GRACE_S or len(fires) > 1
            backlog = False
            for at, note in self._occurrences(spec, fires, late):
                run = self._new_run(spec.name, Trigger.SCHEDULE, at, triggered_by=note, now=now,
                                    backlog=backlog)
                backlog = backlog or run is not None
            self._write("UPDATE events SET next_fire_at = ? WHERE name = ?", iso(nxt), spec.name)
            self._fired.add(spec.name)
        self._next_due_stale = True

    @staticmethod
    def _fire_times(schedule: str, tz: str, due: datetime, now: datetime,
                    memo: dict[tuple[str, str, datetime], tuple[list[datetime], datetime | None]],
                    ) -> tuple[list[datetime], datetime | None]:
        """(the fires from `due` up to now, the next fire after them); events that share a
        schedule and a due time (a nightly batch) share the arithmetic through `memo`."""
        key = (schedule, tz, due)
        if key not in memo:
            fires = [due] + schedules.fires_between(schedule, due, now, tz, limit=MAX_CATCH_UP)
            if len(fires) > MAX_CATCH_UP:  # months of backlog: catch up to now, not 1000 fires on
                last = schedules.latest_fire(schedule, due, now, tz)
                fires += [last] if last > fires[-1] else []
            nxt = schedules.next_fire(schedule, max(fires[-1], now), tz) \
                if not schedules.is_interval(schedule) else \
                schedules.next_fire(schedule, fires[-1], tz)
            memo[key] = (fires, nxt)
        fires, nxt = memo[key]
        return list(fires), nxt

    def _occurrences(self, spec: EventSpec, fires: list[datetime],
                     late: bool) -> list[tuple[datetime, str | None]]:
        if not late:
            return [(fires[-1], None)]
        missed = len(fires)
        if spec.misfire is Misfire.ALL:
            return [(f, f"catch-up ({missed} missed while no engine ran)") for f in fires]
        if spec.misfire is Misfire.ONCE:
            return [(fires[-1], f"catch-up once for {missed} missed occurrence(s)")]
        self._changes.append(Change("event", spec.name, None, None,
                                    f"{missed} occurrence(s) missed while no engine ran (misfire=skip)"))
        return []

    # -- creating runs --------------------------------------------------------------------------

    def _new_run(self, event: str, trigger: Trigger, scheduled_for: datetime, *,
                 triggered_by: str | None = None, attempt: int = 1,
                 repeats: ActiveRun | dict[str, Any] | None = None, not_before: datetime | None = None,
                 needs_prepare: bool = False, now: datetime | None = None,
                 fresh_window: bool = False, backlog: bool = False) -> ActiveRun | None:
        """Create a waiting run (in memory, inserted at the next flush), applying concurrency.

        backlog: a later catch-up of misfire=all; it queues behind the first, whatever the
        concurrency, or `all` would run one and skip the rest."""
        spec = self.spec(event)
        if spec is None:
            return None
        now = now or self.clock.now()
        if trigger not in (Trigger.SCHEDULE, Trigger.RETRY, Trigger.RESTART):
            scheduled_for = self._free_instant(event, scheduled_for, attempt)
        self._next_run_id += 1
        run = ActiveRun(self._next_run_id, event, RunState.WAITING, trigger.value, attempt,
                        scheduled_for, triggered_by=triggered_by, not_before=not_before,
                        needs_prepare=needs_prepare, is_new=True)
        if repeats is not None:
            run.repeats_run_id = repeats.id if isinstance(repeats, ActiveRun) else int(repeats["id"])
        anchor = now if fresh_window else scheduled_for
        bounds = bounds_for(spec, anchor)
        run.window_open, run.due_by, run.late_at = bounds.open_at, bounds.due_by, bounds.late_at
        run.log_path = self.executors.log_path_text(event, run.id)
        if trigger not in (Trigger.RETRY, Trigger.RESTART) and not backlog \
                and not self._admit(spec, run, now):
            return None
        self._runs[run.id] = run
        self._inserts.append(run)
        self._dirty = True
        self._changes.append(Change("run", event, run.id, RunState.WAITING.value, trigger.value))
        return run

    def _free_instant(self, event: str, at: datetime, attempt: int) -> datetime:
        """`at`, or the first microsecond after it that no run of `event` holds.

        (event, scheduled_for, attempt) is unique so that one schedule occurrence makes one
        run; a run asked for otherwise (trigger, on_success, condition, @reboot) at the same
        instant as another (one tick, or a fake clock) is a second run, not a duplicate."""
        taken = {r.scheduled_for for r in (*self._runs.values(), *self._inserts)
                 if r.event == event and r.attempt == attempt}
        while at in taken or self.store.max_attempt(event, iso(at) or "") >= attempt:
            at += timedelta(microseconds=1)
        return at

    def _admit(self, spec: EventSpec, run: ActiveRun, now: datetime) -> bool:
        """Concurrency: what a new run does while another run of the event is active."""
        active = self._runs.of(spec.name)
        if not active:
            return True
        other = active[-1]
        if spec.concurrency is Concurrency.QUEUE:
            return True
        if spec.concurrency is Concurrency.REPLACE:
            for r in active:
                self._cancel(r, now, by=f"replaced by run {run.id}")
            return True
        run.state = RunState.SKIPPED
        run.waiting_reason = None
        self._inserts.append(run)
        self._write_end(run, now, RunState.SKIPPED,
                        f"skipped: run {other.id} is still {other.state.value} (concurrency=skip)")
        self._changes.append(Change("run", spec.name, run.id, RunState.SKIPPED.value, "concurrency"))
        return False

    def _cancel(self, run: ActiveRun, now: datetime, *, by: str) -> None:
        if run.state is RunState.RUNNING:
            run.killed_by = by
            self._kill(run, by)
        else:
            if run.preparing:  # stop its prepare step with it
                self._kill(run, by)
            self._finish(run, RunState.SKIPPED, now, reason=f"skipped: {by}")

    # -- starting ------------------------------------------------------------------------------------

    def _start_ready(self, now: datetime) -> None:
        self._dirty = False
        waiting = sorted((r for r in self._runs.values() if r.state is RunState.WAITING),
                         key=lambda r: r.id)
        for run in waiting:
            if run.preparing:
                continue
            if run.due_by is not None and now >= run.due_by:
                continue  # its window closed (the engine was down, or the clock jumped): the
                # deadline check of this tick marks it missed; it never starts after its window
            reason = self._why_waiting(run, now)
            if reason is None:
                self._begin(run, now)
            elif reason != run.waiting_reason:
                run.waiting_reason = reason
                if not run.is_new:
                    self._write("UPDATE runs SET waiting_reason = ? WHERE id = ?", reason, run.id)

    def _why_waiting(self, run: ActiveRun, now: datetime) -> str | None:
        """Why `run` cannot start now, in words; None when it can."""
        spec = self.spec(run.event)
        if spec is None:
            return "its event is no longer defined"
        if self._is_held(run.event):
            return "held"
        if run.not_before is not None and now < run.not_before:
            return f"retry backoff until {_local(run.not_before, spec, now)}"
        if run.window_open is not None and now < run.window_open and "forced" not in run.flags:
            return f"window opens at {_local(run.window_open, spec, now)}"
        ahead = [r for r in self._runs.of(run.event)
                 if r.id < run.id and r.state in (RunState.WAITING, RunState.RUNNING)]
        if ahead:
            return f"queued behind run {ahead[0].id} ({ahead[0].state.value})"
        cond = self._condition(spec)
        if cond is not None and "forced" not in run.flags:
            holds, why = evaluate(cond, _View(self, spec), now)
            if not holds:
                return why or f"requires {spec.requires} is false"
        return None

    def _begin(self, run: ActiveRun, now: datetime) -> None:
        spec = self.spec(run.event)
        assert spec is not None
        if run.needs_prepare and spec.on_failure.prepare:
            run.preparing = True
            run.waiting_reason = f"preparing: {spec.on_failure.prepare}"
            if not run.is_new:
                self._write("UPDATE runs SET waiting_reason = ? WHERE id = ?", run.waiting_reason, run.id)
            self._to_spawn.append(run)
            return
        run.state = RunState.RUNNING
        run.started_at = now
        run.waiting_reason = None
        if not run.is_new:
            self._write("UPDATE runs SET state = 'running', started_at = ?, waiting_reason = NULL, "
                        "host = ? WHERE id = ? AND state = 'waiting'",
                        iso(now), socket.gethostname(), run.id)
        self._to_spawn.append(run)
        self._changes.append(Change("run", run.event, run.id, RunState.RUNNING.value, run.trigger))

    def _spawn_pending(self, now: datetime) -> None:
        spawn, self._to_spawn = self._to_spawn, []
        processes: list[tuple[ActiveRun, Callable[[], int | None]]] = []
        calls: list[tuple[ActiveRun, Callable[[], int | None]]] = []
        for run in spawn:
            spec = self.spec(run.event)
            if spec is None or run.id not in self._runs:
                continue
            is_process = run.preparing or spec.run is not None or spec.shell is not None
            (processes if is_process else calls).append((run, self._starter(run, spec)))
        # commands start several at once (a fork+exec holds its thread ~0.7 ms, mostly in the
        # kernel); callables and HTTP calls are only handed to a worker, here
        results = self.executors.start_all([start for _, start in processes]) + \
            [Executors.attempt(start) for _, start in calls]
        failure: BaseException | None = None
        for (run, _), result in zip(processes + calls, results, strict=True):
            if isinstance(result, SpawnError):
                self._outcomes.put(Outcome(run.id, "prepare" if run.preparing else "main", None,
                                           now, str(result)))
                self._wake.set()
            elif isinstance(result, BaseException):
                failure = failure or result
            elif result is not None and not run.preparing:
                run.pid = result
                self._write("UPDATE runs SET pid = ? WHERE id = ?", result, run.id)
        # record the pids now, not at the next tick: an engine killed in between would leave
        # live commands that the next engine cannot find
        self._flush(now)
        if failure is not None:
            raise failure

    def _starter(self, run: ActiveRun, spec: EventSpec) -> Callable[[], int | None]:
        """What starts `run` (its prepare step while it is preparing); returns a pid or None."""
        scheduled = _iso(run.scheduled_for)
        env = run_env(run.event, run.id, run.attempt, scheduled)
        if run.preparing:
            assert spec.on_failure.prepare is not None
            prepare = spec.on_failure.prepare
            return lambda: self.executors.prepare(run.id, prepare, spec, env)
        return lambda: self.executors.start(run.id, spec, env, run.attempt, scheduled or "")

    # -- reaping ---------------------------------------------------------------------------------------

    def _outcome_arrived(self, outcome: Outcome) -> None:
        self._outcomes.put(outcome)
        self._wake.set()

    def _reap(self, now: datetime) -> datetime:
        """Judge the outcomes that arrived; returns `now`, moved past the latest end seen so
        that what starts next never starts before the run it follows ended."""
        finished_events: list[tuple[str, int]] = []
        while batch := self._drain_outcomes():
            now = max([now, *(o.ended_at for o in batch)])
            self._prefetch_open_alerts(batch)
            for outcome in batch:
                run = self._runs.get(outcome.run_id)
                if run is None:
                    continue
                if outcome.phase == "prepare":
                    self._prepared(run, outcome, now)
                    continue
                self._judge(run, outcome, now)
                finished_events.append((run.event, run.id))
        self._open_kinds = None
        if finished_events:
            self._dirty = True
            self._trigger_dependents(finished_events, now)
        return now

    def _drain_outcomes(self) -> list[Outcome]:
        batch = []
        while True:
            try:
                batch.append(self._outcomes.get_nowait())
            except queue.Empty:
                return batch

    def _prefetch_open_alerts(self, batch: list[Outcome]) -> None:
        """Read the open alert kinds of every event in `batch` at once: a success asks for
        them (to resolve them), and one SELECT per run was most of a burst's reads."""
        events = {run.event for o in batch if (run := self._runs.get(o.run_id)) is not None}
        self._open_kinds = self.store.open_alert_kinds(events)

    def open_alert_kinds(self, event: str) -> set[str]:
        """Kinds of the open alerts of `event`, as committed (this tick's writes not included)."""
        if self._open_kinds is not None and event in self._open_kinds:
            return self._open_kinds[event]
        return {a["kind"] for a in self.store.open_alerts_of(event)}

    def _prepared(self, run: ActiveRun, outcome: Outcome, now: datetime) -> None:
        run.preparing = False
        self._dirty = True
        if outcome.exit_code == 0 and outcome.error is None:
            run.needs_prepare = False
            run.waiting_reason = None
            self._write("UPDATE runs SET needs_prepare = 0, waiting_reason = NULL WHERE id = ?", run.id)
            return
        why = outcome.error or f"exit {outcome.exit_code}"
        self._finish(run, RunState.FAILED, now, exit_code=outcome.exit_code,
                     reason=f"prepare failed ({why}); retries stopped", final=True)

    def _judge(self, run: ActiveRun, outcome: Outcome, now: datetime) -> None:
        spec = self.spec(run.event)
        ended = outcome.ended_at
        killed_by = outcome.killed_by or run.killed_by
        if killed_by is not None:
            # the engine's own kills (runtime max, timeout) are failures; an operator's are kills
            state = RunState.FAILED if killed_by.startswith(("runtime max", "timeout")) else RunState.KILLED
            self._finish(run, state, ended, exit_code=outcome.exit_code, reason=f"killed: {killed_by}")
            return
        if outcome.error is not None and outcome.exit_code is None and run.state is RunState.RUNNING \
                and outcome.error.startswith("exit status unknown"):
            self._finish(run, RunState.LOST, ended, reason=f"lost: {outcome.error}")
            return
        if outcome.error is not None or outcome.exit_code != 0:
            reason = outcome.error or f"exit code {outcome.exit_code}"
            self._finish(run, RunState.FAILED, ended, exit_code=outcome.exit_code, reason=reason)
            return
        checks = verify_outputs(spec.outputs, spec.cwd, run.started_at, ended) if spec else []
        bad = first_failure(checks)
        if bad is not None:
            self._finish(run, RunState.FAILED, ended, exit_code=0, reason=bad.detail, checks=checks)
            return
        self._finish(run, RunState.SUCCEEDED, ended, exit_code=0, checks=checks)

    def _finish(self, run: ActiveRun, state: RunState, at: datetime, *, exit_code: int | None = None,
                reason: str | None = None, checks: list[Any] | None = None, final: bool = False) -> None:
        """Record the end of `run` and everything that follows from it."""
        self._runs.pop(run.id, None)
        run.state = state
        self._write_end(run, at, state, reason, exit_code=exit_code, checks=checks)
        self._finished[run.event] = Finished(state, at, exit_code) if state is not RunState.SKIPPED \
            else self._finished.get(run.event)
        self._changes.append(Change("run", run.event, run.id, state.value, reason))
        self._dirty = True
        spec = self.spec(run.event)
        if spec is None:
            return
        from engine import followups
        followups.after_finish(self, spec, run, state, at, reason=reason, final=final)

    def _write_end(self, run: ActiveRun, at: datetime, state: RunState, reason: str | None, *,
                   exit_code: int | None = None, checks: list[Any] | None = None) -> None:
        tail = read_tail(run.log_path) if run.started_at is not None else ""
        self._write(
            "UPDATE runs SET state = ?, ended_at = ?, exit_code = ?, reason = ?, output_tail = ?, "
            "checks = ?, flags = ?, waiting_reason = NULL, pid = coalesce(?, pid) WHERE id = ?",
            state.value, iso(at), exit_code, reason, tail or None,
            json.dumps([c.to_json() for c in checks]) if checks else None,
            _flags_text(run.flags), run.pid, run.id)

    def _trigger_dependents(self, finished: list[tuple[str, int]], now: datetime) -> None:
        """Unscheduled events whose `requires` names a finished event start when it now holds."""
        seen: set[str] = set()
        for event, run_id in finished:
            for name in self._dependents_of(event):
                if name in seen:
                    continue
                seen.add(name)
                spec = self.spec(name)
                if spec is None or spec.schedule is not None:
                    continue
                if any(r.state is RunState.WAITING for r in self._runs.of(name)):
                    continue
                cond = self._condition(spec)
                if cond is not None and evaluate(cond, _View(self, spec), now)[0]:
                    self._new_run(name, Trigger.CONDITION, now, triggered_by=f"run:{run_id}", now=now)

    # -- deadlines -------------------------------------------------------------------------------------

    def _check_deadlines(self, now: datetime) -> None:
        from engine import followups
        for run in list(self._runs.values()):
            followups.check_deadlines(self, run, now)

    # -- operator actions (called from requests) ---------------------------------------------------------

    def _kill(self, run: ActiveRun, by: str) -> bool:
        run.killed_by = by
        if self.executors.kill(run.id, by=by):
            return True
        if run.pid is not None and _pid_alive(run.pid):
            from engine.executors import _signal_group
            import signal
            _signal_group(run.pid, signal.SIGTERM)
            return True
        return False

    def settle(self, now: datetime | None = None, timeout_s: float = 10.0) -> list[Change]:
        """Tick at `now` (default: the clock) until no run is in flight; for tests and drills.

        Real child processes and callables still take real time; the clock does not move."""
        import time
        deadline = time.monotonic() + timeout_s
        changes: list[Change] = []
        while True:
            self._wake.clear()
            changes += self.tick(now)
            in_flight = any(r.state is RunState.RUNNING or r.preparing for r in self._runs.values())
            if not in_flight and self._outcomes.empty():
                return changes
            if time.monotonic() >= deadline:
                raise TimeoutError(f"runs still in flight after {timeout_s} s: "
                                   + ", ".join(str(r.id) for r in self._runs.values()))
            self._wake.wait(0.05)

    def active_runs(self) -> list[ActiveRun]:
        return list(self._runs.values())

    def last_finished(self, event: str) -> Finished | None:
        if event not in self._finished:
            row = self.store.last_finished(event)
            self._finished[event] = None if row is None else Finished(
                RunState(row["state"]), parse_iso(row["ended_at"]) or self.clock.now(), row["exit_code"])
        return self._finished[event]


class _View:
    """What conditions see: the engine's memory first, the store behind it."""

    def __init__(self, engine: Engine, spec: EventSpec) -> None:
        self.engine = engine
        self.spec = spec

    def last_finished(self, event: str) -> Finished | None:
        return self.engine.last_finished(event)

    def is_running(self, event: str) -> bool:
        return any(r.state is RunState.RUNNING for r in self.engine._runs.of(event))

    def path_exists(self, path: str) -> bool:
        import glob
        full = path if os.path.isabs(path) else os.path.join(self.spec.cwd, path)
        return bool(glob.glob(full)) if glob.has_magic(full) else os.path.exists(full)


def _active_from_row(row: dict[str, Any]) -> ActiveRun:
    return ActiveRun(
        id=int(row["id"]), event=row["event"], state=RunState(row["state"]), trigger=row["trigger"],
        attempt=int(row["attempt"]), scheduled_for=parse_iso(row["scheduled_for"]),  # type: ignore[arg-type]
        triggered_by=row["triggered_by"], repeats_run_id=row["repeats_run_id"],
        not_before=parse_iso(row["not_before"]), window_open=parse_iso(row["window_open"]),
        due_by=parse_iso(row["due_by"]), late_at=parse_iso(row["late_at"]),
        needs_prepare=bool(row["needs_prepare"]), started_at=parse_iso(row["started_at"]),
        pid=row["pid"], log_path=row["log_path"], waiting_reason=row["waiting_reason"],
        flags=set((row["flags"] or "").split(",")) - {""})


def _local(at: datetime, spec: EventSpec, now: datetime) -> str:
    """A time as the event's zone reads it: HH:MM today, with the date otherwise."""
    from zoneinfo import ZoneInfo
    zone = ZoneInfo(spec.timezone)
    local = at.astimezone(zone)
    same_day = local.date() == now.astimezone(zone).date()
    return local.strftime("%H:%M %Z" if same_day else "%Y-%m-%d %H:%M %Z")


def _find_unrecorded(run: ActiveRun) -> int | None:
    """The live command of `run` whose pid was never recorded: the session leader (each
    command starts a session) whose environment names this run, started near its start."""
    wanted = {f"EVMAN_RUN_ID={run.id}".encode(), f"EVMAN_EVENT={run.event}".encode(),
              f"EVMAN_SCHEDULED_FOR={iso(run.scheduled_for) or ''}".encode()}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        try:
            with open(f"/proc/{pid}/stat") as fh:
                if int(fh.read().rsplit(")", 1)[1].split()[3]) != pid:
                    continue  # not a session leader
            with open(f"/proc/{pid}/environ", "rb") as fh:
                environ = set(fh.read().split(b"\0"))
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile, or not ours to read
        if wanted <= environ and _pid_alive(pid) and _started_near(pid, run.started_at):
            return pid
    return None


def _started_near(pid: int, started_at: datetime | None) -> bool:
    """Guard against a reused pid: the process must have started near the run's start."""
    if started_at is None:
        return False
    try:
        with open(f"/proc/{pid}/stat") as fh:
            start_ticks = int(fh.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/stat") as fh:
            btime = next(int(line.split()[1]) for line in fh if line.startswith("btime"))
    except (OSError, ValueError, StopIteration, IndexError):
        return True
    started = btime + start_ticks / os.sysconf("SC_CLK_TCK")
    return abs(started - started_at.timestamp()) < 120


def backoff_for(spec: EventSpec, attempt: int) -> timedelta:
    """Doubling from `backoff` for each attempt so far, capped at backoff_max."""
    delay = spec.on_failure.backoff_s * (2 ** min(max(0, attempt - 1), 64))  # 2**64: past any cap, no overflow
    return timedelta(seconds=min(delay, spec.on_failure.backoff_max_s))


__all__ = ["Engine", "Change", "EngineBusy", "ActiveRun", "backoff_for"]
