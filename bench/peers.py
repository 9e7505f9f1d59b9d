"""The schedulers a user would pick instead: APScheduler 3 (SQLAlchemy job store on SQLite),
Huey (SqliteHuey, consumer threads in-process) and `schedule` (in memory, the ceiling)."""

from __future__ import annotations

import logging
import pickle
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from bench import jobs
from bench.burst import Burst, from_calls, wait_calls

CALL_WORKERS = 16
"""Worker threads for every scheduler's no-op jobs: evman's callable pool has 16."""


def available() -> dict[str, str | None]:
    """Installed peer versions; None for a peer that is not installed (bench group missing)."""
    out: dict[str, str | None] = {}
    for dist in ("apscheduler", "sqlalchemy", "huey", "schedule"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = None
    return out


def has_peers() -> bool:
    return all(available().values())


# -- APScheduler ----------------------------------------------------------------------------


def _aps_engine(path: Path, wal: bool) -> Any:
    from sqlalchemy import create_engine, event

    eng = create_engine(f"sqlite:///{path}")
    if wal:

        def pragmas(conn: Any, _record: Any) -> None:
            cur = conn.cursor()
            cur.execute("PRAGMA journal_mode = WAL")
            cur.execute("PRAGMA synchronous = NORMAL")
            cur.close()

        event.listen(eng, "connect", pragmas)
    return eng


def _aps_scheduler(path: Path, wal: bool) -> tuple[Any, Any]:
    from apscheduler.executors.pool import ThreadPoolExecutor
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from apscheduler.schedulers.background import BackgroundScheduler

    store = SQLAlchemyJobStore(engine=_aps_engine(path, wal))
    # misfire_grace_time=None: with the default 1 s grace, APScheduler drops (never runs)
    # the tail of a 2,000-job burst, and "each ran exactly once" would fail outright.
    scheduler = BackgroundScheduler(
        jobstores={"default": store},
        executors={"default": ThreadPoolExecutor(CALL_WORKERS)},
        job_defaults={"misfire_grace_time": None, "coalesce": True},
        timezone=UTC,
    )
    return scheduler, store


def _aps_bulk_add(
    scheduler: Any, store: Any, when: datetime, n: int, func: str, arg: Callable[[int], tuple[Any, ...]]
) -> None:
    """Put n date-triggered jobs in the job store in one transaction (setup, not measured:
    add_job commits once per job, which at defaults takes longer than the burst itself)."""
    from apscheduler.job import Job
    from apscheduler.triggers.date import DateTrigger
    from apscheduler.util import datetime_to_utc_timestamp

    store.jobs_t.create(store.engine, checkfirst=True)
    trigger = DateTrigger(run_date=when, timezone=UTC)
    rows = []
    for i in range(n):
        job = Job(
            scheduler,
            id=f"b{i:05d}",
            func=func,
            args=arg(i),
            kwargs={},
            trigger=trigger,
            executor="default",
            name=f"b{i:05d}",
            misfire_grace_time=None,
            coalesce=True,
            max_instances=1,
            next_run_time=when,
        )
        rows.append(
            {
                "id": job.id,
                "next_run_time": datetime_to_utc_timestamp(when),
                "job_state": pickle.dumps(job.__getstate__(), store.pickle_protocol),
            }
        )
    with store.engine.begin() as conn:
        conn.execute(store.jobs_t.insert(), rows)


def aps_user_burst(tmp: Path, n: int, kind: str = "call") -> Burst:
    """APScheduler as its documentation has a user write it: `add_job` per job before
    `start()`, the library's defaults (10 pool threads, no coalescing, 1 s misfire grace
    time: jobs later than that are dropped, and counted here), on SQLite with WAL."""
    from apscheduler.events import EVENT_JOB_MISSED
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from apscheduler.schedulers.background import BackgroundScheduler

    from bench.evman_side import due_in

    path = tmp / f"aps-user-{kind}.db"
    store = SQLAlchemyJobStore(engine=_aps_engine(path, wal=True))
    scheduler = BackgroundScheduler(jobstores={"default": store}, timezone=UTC)
    logging.getLogger("apscheduler").setLevel(logging.ERROR)  # a warning per dropped job
    missed: list[str] = []
    scheduler.add_listener(lambda ev: missed.append(ev.job_id), EVENT_JOB_MISSED)
    when = due_in(2.0 + n / 1000)  # start() commits each job on its own: ~0.35 ms a job here, idle
    func = "bench.jobs:record" if kind == "call" else "bench.peers:run_true"
    for i in range(n):
        scheduler.add_job(func, "date", run_date=when, args=(f"b{i:05d}",), id=f"b{i:05d}")
    jobs.reset()
    scheduler.start()
    if time.time() > when.timestamp() - 0.1:
        scheduler.shutdown(wait=False)
        raise RuntimeError("APScheduler's add_job setup ran past the burst's due time; raise the lead")
    try:
        wait_calls(n, timeout_s=60 + n / 10, dropped=lambda: len(missed))
    finally:
        scheduler.shutdown(wait=True)
        store.engine.dispose()
    return from_calls(when.timestamp(), n, dropped=len(missed))


def aps_burst(tmp: Path, n: int, *, wal: bool, kind: str = "call") -> Burst:
    """APScheduler tuned for the burst: jobs bulk-inserted in one transaction, 16 pool
    threads, coalesce on, no misfire grace time."""
    from bench.evman_side import due_in

    path = tmp / f"aps-{'wal' if wal else 'default'}-{kind}.db"
    scheduler, store = _aps_scheduler(path, wal)
    when = due_in(1.5)
    if kind == "call":
        _aps_bulk_add(scheduler, store, when, n, "bench.jobs:record", lambda i: (f"b{i:05d}",))
    else:
        _aps_bulk_add(scheduler, store, when, n, "bench.peers:run_true", lambda i: (f"b{i:05d}",))
    jobs.reset()
    scheduler.start()
    try:
        wait_calls(n, timeout_s=60 + n / 10)
    finally:
        scheduler.shutdown(wait=True)
        store.engine.dispose()
    return from_calls(when.timestamp(), n)


def run_true(key: str) -> None:
    """A peer's command job: `true` with its output captured, as evman captures it."""
    import subprocess

    started = time.time()
    subprocess.run(["true"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
    jobs.calls.append((key, started, time.time()))


# -- Huey ------------------------------------------------------------------------------------


@contextmanager
def _signals_kept() -> Iterator[None]:
    """Huey's consumer installs SIGINT/SIGTERM/SIGHUP handlers; put ours back afterwards."""
    names = ("SIGINT", "SIGTERM", "SIGHUP", "SIGUSR1")
    saved = {name: signal.getsignal(getattr(signal, name)) for name in names if hasattr(signal, name)}
    try:
        yield
    finally:
        if threading.current_thread() is threading.main_thread():
            for name, handler in saved.items():
                signal.signal(getattr(signal, name), handler)


def make_huey(path: Path) -> Any:
    from huey import SqliteHuey

    return SqliteHuey(name="bench", filename=str(path))


def _enqueue_fast(huey: Any, enqueue: Callable[[], object]) -> None:
    """Setup, not measured: Huey commits once per task, so enqueue without fsync, then drop
    the connection so the consumer opens its own with Huey's defaults."""
    huey.storage.conn.execute("PRAGMA synchronous = OFF")
    enqueue()
    huey.storage.close()


@contextmanager
def huey_consumer(huey: Any, workers: int = CALL_WORKERS) -> Iterator[Any]:
    import logging

    logging.getLogger("huey").setLevel(logging.WARNING)
    consumer = huey.create_consumer(workers=workers, worker_type="thread", periodic=False, check_worker_health=False)
    with _signals_kept():
        if threading.current_thread() is threading.main_thread():
            consumer.start()
        else:  # signal handlers can only be set from the main thread
            consumer._set_signal_handlers = lambda: None
            consumer.start()
        try:
            yield consumer
        finally:
            consumer.stop(graceful=True)


def huey_burst(tmp: Path, n: int, kind: str = "call") -> Burst:
    from bench.evman_side import due_in

    huey = make_huey(tmp / f"huey-{kind}.db")
    task = huey.task()(jobs.record if kind == "call" else run_true)
    when = due_in(1.0 + n / 4000)
    _enqueue_fast(huey, lambda: [task.schedule(args=(f"b{i:05d}",), eta=when) for i in range(n)])
    if time.time() > when.timestamp() - 0.2:
        raise RuntimeError("Huey's setup ran past the burst's due time; raise the lead")
    jobs.reset()
    with huey_consumer(huey):
        wait_calls(n, timeout_s=60 + n / 10)
    huey.storage.close()
    return from_calls(when.timestamp(), n)


# -- schedule (in memory) ----------------------------------------------------------------------


def schedule_burst(n: int) -> Burst:
    """The in-memory ceiling: one thread runs due jobs inline, nothing is recorded anywhere."""
    import schedule

    from bench.evman_side import due_in

    when = due_in(1.0)
    local = when.astimezone().replace(tzinfo=None)
    scheduler = schedule.Scheduler()

    def once(key: str) -> Any:
        jobs.record(key)
        return schedule.CancelJob

    for i in range(n):
        scheduler.every().day.at(local.strftime("%H:%M:%S")).do(once, f"b{i:05d}")
    jobs.reset()
    deadline = time.monotonic() + 30
    while scheduler.jobs and time.monotonic() < deadline:
        scheduler.run_pending()
        time.sleep(0.001)
    return from_calls(when.timestamp(), n)
