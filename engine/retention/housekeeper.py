"""The housekeeper: deletes what is past its horizon, in small batches, in a thread of its own
beside the engine (as the notifier is), never in the tick.

Why a thread and not a stage: deleting log files and giving pages back to the file system are
blocking I/O, which a tick never does; and a stage's work would add to the tick it runs in,
where a batch here only holds the write lock for one short transaction (at most `batch` rows,
sized down when one takes longer than TARGET_BATCH_S), then lets go for at least as long, so
the engine's flush, a program's request and the console never wait more than one batch.

The thread also keeps out of the tick's way: beside an engine it starts each piece of work (a
batch's reads and transaction, UNLINK_CHUNK log files) only between two ticks (the engine's
`not_ticking`), and after each piece it rests PAUSE_FACTOR times as long as the whole piece
took, unlinks included. A tick that waits for its command supervisor to start the minute's
commands then does not share the machine, the disk or the GIL with a burst of deletions
(bench W8: the tick's p99 while housekeeping deletes against without it).

Each pass: (1) unlink the logs a killed pass marked but did not delete; (2) per event, the logs
past keep.logs (marked pruned first, unlinked after, see store/retention.py); (3) per event, the
runs past keep.runs whose log is gone, except the kept ones (engine/retention/rules.py);
(4) handled requests, resolved alerts and their deliveries; (5) SQLite: free pages given back
(incremental vacuum). With several engines (PostgreSQL) steps 3-5 run once across the fleet per
interval (a compare-and-set on settings.housekeeping_at); each engine prunes the logs its host
wrote (step 2), since each host keeps its own."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final

from evman.engine.clock import Clock, SystemClock, iso
from evman.engine.definitions import spec_from_json
from evman.engine.paging.rules import defaults_from_json
from evman.engine.retention.kept import KeptRuns
from evman.engine.retention.logfiles import remove_empty_day_folders, unlink_log
from evman.engine.retention.rules import Horizon, horizons
from evman.engine.store import Store, StoreError, open_store

log = logging.getLogger("evman.housekeeping")

EVERY_S: Final = 3600.0
"""A pass an hour: horizons are days, and a pass that finds nothing still reads each event once."""
FIRST_AFTER_S: Final = 30.0
"""The first pass waits this long after start: the engine's own start-up goes first."""
BATCH: Final = 500
LEAST_BATCH: Final = 20
TARGET_BATCH_S: Final = 0.010
"""A batch's transaction should hold the write lock about this long; the size adapts."""
PAUSE_FACTOR: Final = 2.0
"""After each batch the housekeeper waits at least PAUSE_FACTOR times as long as it took."""
LEAST_PAUSE_S: Final = 0.005
UNLINK_CHUNK: Final = 50
"""Log files unlinked in one piece of work (then a rest, and the next tick first)."""
TICK_WAIT_S: Final = 1.0
"""The longest a piece of work waits for the engine's tick to end (a tick never takes that long)."""
VACUUM_STEP_PAGES: Final = 256
VACUUM_LEAST_PAGES: Final = 32
VACUUM_WHEN_FREE: Final = 0.02
"""Give pages back once more than this share of the file is free (and at least VACUUM_LEAST_PAGES)."""


@dataclass
class PassReport:
    """What one pass did (or, dry, would do)."""

    logs: int = 0
    """Runs whose log was pruned (their files deleted)."""
    log_bytes: int = 0
    runs: int = 0
    requests: int = 0
    alerts: int = 0
    deliveries: int = 0
    pages_freed: int = 0
    batches: int = 0
    longest_batch_s: float = 0.0
    """The longest time a batch held the write lock (its transactions; not its unlinks): what
    another writer could wait on it."""
    busy_s: float = 0.0
    cpu_s: float = 0.0
    rows_pass: bool = False
    """Whether this pass deleted rows (with several engines: the one that claimed the interval)."""
    stopped: bool = False

    def counts(self) -> dict[str, int]:
        return {
            "runs": self.runs,
            "logs": self.logs,
            "log_bytes": self.log_bytes,
            "requests": self.requests,
            "alerts": self.alerts,
            "deliveries": self.deliveries,
        }


@dataclass
class _Pace:
    """Batch size and pauses: small transactions, and room for every other writer between them."""

    pace: bool
    stop: threading.Event
    not_ticking: threading.Event | None = None
    batch: int = BATCH
    report: PassReport = field(default_factory=PassReport)

    def turn(self) -> None:
        """Before a piece of work: let the engine's tick in progress (if any) finish first."""
        if self.pace and self.not_ticking is not None and not self.not_ticking.is_set():
            self.not_ticking.wait(TICK_WAIT_S)

    def took(self, locked: float) -> None:
        """A batch held the write lock `locked` seconds: the batch size adapts to it, then a rest."""
        r = self.report
        r.batches += 1
        r.busy_s += locked
        r.longest_batch_s = max(r.longest_batch_s, locked)
        if locked > TARGET_BATCH_S:
            self.batch = max(LEAST_BATCH, self.batch // 2)
        elif locked < TARGET_BATCH_S / 4:
            self.batch = min(BATCH * 2, self.batch * 2)
        self.rest(locked)

    def rest(self, worked: float) -> None:
        """After a piece of work that took `worked` seconds: PAUSE_FACTOR times as long (paced)."""
        if self.pace and self.stop.wait(max(LEAST_PAUSE_S, worked * PAUSE_FACTOR)):
            self.report.stopped = True

    @property
    def stopping(self) -> bool:
        return self.stop.is_set()


class Housekeeper:
    """Runs passes on its own Store. Tests and `evman prune` call run_pass(now) themselves."""

    def __init__(
        self,
        db: str | Path | Store,
        clock: Clock | None = None,
        *,
        every_s: float = EVERY_S,
        host: str | None = None,
        first_after_s: float = FIRST_AFTER_S,
        not_ticking: threading.Event | None = None,
    ) -> None:
        self._owns_store = not isinstance(db, Store)
        self.store = db if isinstance(db, Store) else open_store(db, create=False)
        self.clock = clock or SystemClock()
        self.every_s = every_s
        self.first_after_s = first_after_s
        self.host = (host or socket.gethostname()) if self.store.several_engines else None
        """Several engines: only this host's logs are ours to delete. None: every log (SQLite)."""
        self.not_ticking = not_ticking
        """Set while the engine beside it is not ticking (engine.not_ticking): paced work waits for it."""
        self.kept = KeptRuns()
        self.current: PassReport | None = None
        """The pass in progress (its counts so far), None between passes."""
        self.last: PassReport | None = None
        self.totals = PassReport()
        self._specs: tuple[int, dict[str, Horizon]] = (-1, {})
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    # -- the thread ------------------------------------------------------------------

    def start(self) -> Housekeeper:
        self._thread = threading.Thread(target=self._loop, name="evman-housekeeper", daemon=True)
        self._thread.start()
        return self

    def stop(self, wait_s: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(wait_s)
            self._thread = None
        if self._owns_store:
            self.store.close()

    def _loop(self) -> None:
        if self._stop.wait(self.first_after_s):
            return
        while not self._stop.is_set():
            try:
                self.run_pass(self.clock.now(), pace=True)
            except StoreError as exc:
                log.error("housekeeping could not finish its pass, will retry: %s", exc)
            except Exception:  # the thread must outlive a bug in one pass; it says so loudly
                log.exception("housekeeping pass failed")
            self._stop.wait(self.every_s)

    # -- one pass ----------------------------------------------------------------------

    def run_pass(self, now: datetime, *, pace: bool = False, rows: bool | None = None) -> PassReport:
        """Delete what is past its horizon at `now`. `pace`: pause between batches (the thread
        does; a test or `evman prune` runs flat out). `rows`: force the rows pass on or off
        (None: take it when this engine claims the interval)."""
        with self._lock:
            cpu = time.thread_time()
            p = _Pace(pace, self._stop, self.not_ticking)
            self.current = p.report
            try:
                self._steps(p, now, rows)
            finally:
                self.current = None
            p.report.cpu_s = time.thread_time() - cpu
            self._remember(p.report)
            return p.report

    def _steps(self, p: _Pace, now: datetime, rows: bool | None) -> None:
        if rows is None:
            later = iso(now + timedelta(seconds=self.every_s * 0.9))
            rows = self.store.claim_housekeeping(str(iso(now)), str(later))
        p.report.rows_pass = rows
        self._finish_unlinks(p, now)
        alerted = self.store.alerted_runs()
        for event, horizon in self._horizons().items():
            logs_before = str(iso(now - timedelta(seconds=horizon.logs_s)))
            if p.stopping or not self.store.ended_before(event, logs_before):
                continue  # nothing of it is old enough: one index probe, no more
            kept = self.kept.of(self.store, event)
            if rows:  # first: a run past both horizons goes with its log in one step
                runs_before = str(iso(now - timedelta(seconds=horizon.runs_s)))
                self._delete_runs(p, event, runs_before, kept.ids() | alerted, now)
            self._prune_logs(p, event, logs_before, kept.logs() | alerted, now)
        if rows and not p.stopping:
            self._delete_rows(p, now)
            self._give_back_space(p)

    def dry_run(self, now: datetime) -> dict[str, Any]:
        """What a pass at `now` would delete, deleting nothing: {"events": {name: {"runs", "logs"}},
        "requests", "alerts", "deliveries"} (deliveries: old ones and those of the alerts)."""
        alerted = self.store.alerted_runs()
        events: dict[str, dict[str, int]] = {}
        for event, horizon in self._horizons().items():
            logs_before = str(iso(now - timedelta(seconds=horizon.logs_s)))
            if not self.store.ended_before(event, logs_before):
                continue
            kept = self.kept.of(self.store, event)
            logs, runs = self.store.count_expired(
                event,
                logs_before,
                str(iso(now - timedelta(seconds=horizon.runs_s))),
                sorted(kept.logs() | alerted),
                sorted(kept.ids() | alerted),
            )
            if logs or runs:
                events[event] = {"runs": runs, "logs": logs}
        defaults = defaults_from_json(self.store.defaults_json())
        rows = self.store.count_old_rows(
            str(iso(now - timedelta(seconds=defaults.keep_requests_s))),
            str(iso(now - timedelta(seconds=defaults.keep_alerts_s))),
        )
        return {"events": events, **rows}

    def _remember(self, report: PassReport) -> None:
        self.last = report
        t = self.totals
        for name in ("logs", "log_bytes", "runs", "requests", "alerts", "deliveries", "pages_freed", "batches"):
            setattr(t, name, getattr(t, name) + getattr(report, name))
        t.busy_s += report.busy_s
        t.cpu_s += report.cpu_s
        t.longest_batch_s = max(t.longest_batch_s, report.longest_batch_s)
        if any(report.counts().values()):
            log.info(
                "housekeeping: deleted %d run(s), %d log(s) (%.1f MB), %d request(s), %d alert(s), "
                "%d deliveries; %d page(s) given back; %d batch(es), longest %.0f ms",
                report.runs,
                report.logs,
                report.log_bytes / 1e6,
                report.requests,
                report.alerts,
                report.deliveries,
                report.pages_freed,
                report.batches,
                report.longest_batch_s * 1000,
            )

    def _horizons(self) -> dict[str, Horizon]:
        """Every event that has runs, with its horizon; specs decoded again only when the
        definitions changed (a pass over 100,000 events would otherwise decode them all)."""
        version = self.store.defs_version()
        if version != self._specs[0]:
            rows = self.store.retained_events()
            specs = {str(r[0]): _spec_or_none(r[1]) for r in rows}
            self._specs = (version, horizons(specs, defaults_from_json(self.store.defaults_json())))
        return self._specs[1]

    # -- the steps ---------------------------------------------------------------------

    def _finish_unlinks(self, p: _Pace, now: datetime) -> None:
        """Logs a killed pass noted but had not deleted yet, and those another host's engine
        noted for this one (it deleted their runs)."""
        while not p.stopping:
            p.turn()
            rows = self.store.logs_to_unlink(self.host, p.batch)
            if not rows:
                return
            p.took(self._unlink(p, [(int(r[0]), str(r[1])) for r in rows], now))

    def _prune_logs(self, p: _Pace, event: str, before: str, kept: set[int], now: datetime) -> None:
        for rows in self._batches(p, lambda n: self.store.expired_logs(event, before, sorted(kept), n, self.host)):
            marked = [(int(r[0]), r[1], r[2]) for r in rows]
            started = time.perf_counter()
            self.store.mark_logs_pruned(marked, str(iso(now)))
            locked = time.perf_counter() - started
            p.report.logs += len(marked)
            p.took(locked + self._unlink(p, [(run_id, path) for run_id, path, _host in marked if path], now))

    def _delete_runs(self, p: _Pace, event: str, before: str, kept: set[int], now: datetime) -> None:
        """Rows and logs together: a run whose log is still there goes to pruned_logs in the
        transaction that deletes it, and its file is unlinked after (by its host's engine)."""
        for rows in self._batches(p, lambda n: self.store.expired_runs(event, before, sorted(kept), n)):
            started = time.perf_counter()
            p.report.runs += self.store.delete_runs_noting_logs(rows)
            locked = time.perf_counter() - started
            ours = [(int(r[0]), str(r[1])) for r in rows if r[1] and r[3] is None and self._is_ours(r[2])]
            p.report.logs += len(ours)
            p.took(locked + self._unlink(p, ours, now))

    def _is_ours(self, host: str | None) -> bool:
        return self.host is None or host is None or host == self.host

    def _unlink(self, p: _Pace, logs: list[tuple[int, str]], now: datetime) -> float:
        """Delete the files (UNLINK_CHUNK at a time, each between two ticks and followed by a rest),
        then their pruned_logs rows; the seconds that row delete held the lock."""
        if not logs:
            return 0.0
        for at in range(0, len(logs), UNLINK_CHUNK):
            p.turn()
            started = time.perf_counter()
            p.report.log_bytes += sum(unlink_log(path) for _run_id, path in logs[at : at + UNLINK_CHUNK])
            p.rest(time.perf_counter() - started)
        started = time.perf_counter()
        self.store.logs_unlinked([run_id for run_id, _path in logs])
        locked = time.perf_counter() - started
        remove_empty_day_folders([path for _run_id, path in logs], now.date())
        return locked

    def _delete_rows(self, p: _Pace, now: datetime) -> None:
        defaults = defaults_from_json(self.store.defaults_json())
        requests_before = str(iso(now - timedelta(seconds=defaults.keep_requests_s)))
        alerts_before = str(iso(now - timedelta(seconds=defaults.keep_alerts_s)))
        self._repeat(p, "requests", lambda n: self.store.delete_handled_requests(requests_before, n))
        self._repeat(p, "alerts", lambda n: self._alerts(p, alerts_before, n))
        self._repeat(p, "deliveries", lambda n: self.store.delete_old_deliveries(alerts_before, n))

    def _alerts(self, p: _Pace, before: str, n: int) -> int:
        alerts, deliveries = self.store.delete_resolved_alerts(before, n)
        p.report.deliveries += deliveries
        return alerts

    def _repeat(self, p: _Pace, name: str, delete: Any) -> None:
        """delete(n) batch after batch, counting into report.<name>, until one is not full."""
        while not p.stopping:
            p.turn()
            size = p.batch
            started = time.perf_counter()
            deleted = int(delete(size))
            p.took(time.perf_counter() - started)
            setattr(p.report, name, getattr(p.report, name) + deleted)
            if deleted < size:
                return

    def _give_back_space(self, p: _Pace) -> None:
        while not p.stopping:
            free, pages, can = self.store.free_pages()
            if not can or free < VACUUM_LEAST_PAGES or free < pages * VACUUM_WHEN_FREE:
                return
            p.turn()
            started = time.perf_counter()
            self.store.give_back_pages(VACUUM_STEP_PAGES)
            p.report.pages_freed += free - self.store.free_pages()[0]
            p.took(time.perf_counter() - started)

    def _batches(self, p: _Pace, select: Any) -> Iterator[Any]:
        """select(n) again and again, each time with the current batch size, until it returns
        fewer than asked (or the housekeeper stops)."""
        while not p.stopping:
            p.turn()
            size = p.batch
            found = select(size)
            if found:
                yield found
            if len(found) < size:
                return


def _spec_or_none(text: str) -> Any:
    try:
        return spec_from_json(text)
    except (ValueError, TypeError):
        return None  # unreadable: the defaults' horizons apply


def every_from_env() -> dict[str, float]:
    """EVMAN_HOUSEKEEPING_EVERY_S (seconds between passes, the first after as long at most): for
    drills on a compressed clock, and for whoever wants passes more or less often."""
    text = os.environ.get("EVMAN_HOUSEKEEPING_EVERY_S", "").strip()
    try:
        every = float(text)
    except ValueError:
        return {}
    return {"every_s": every, "first_after_s": min(FIRST_AFTER_S, every)} if every > 0 else {}


def start_housekeeper(path: str | Path, engine: Any, **options: Any) -> Housekeeper:
    """A housekeeper on the database at `path` with the engine's clock, started."""
    options.setdefault("not_ticking", getattr(engine, "not_ticking", None))
    clock = options.pop("clock", None) or getattr(engine, "clock", None)
    keeper = Housekeeper(path, clock, **{**every_from_env(), **options})
    fleet = getattr(engine, "fleet", None)
    if fleet is not None:  # the engine's limits: a stopped process never holds a row long
        keeper.store.limit_sessions(**fleet.session_limits)
    return keeper.start()
