"""W8's live stretch: the real engine on the year-old database, with and without the housekeeper
deleting beside it, in alternating blocks of simulated minutes on one engine (same database, same
hours of the day, same machine load for both sides).

Blocks go idle, busy, idle, busy, ...: in a busy block the housekeeper's thread is started as the
engine's companions start it (start_housekeeper(path, engine): paced, yielding to ticks), its
clock a fresh backlog ahead of the engine's, and stopped at the block's end. A tick counts as
"while housekeeping deletes" when it started while that pass was under way; what the pass deleted
in the block is counted in the database (runs) and on disk (log files), not taken from the
housekeeper's own report. A client thread queues a request and makes the console's reads every
20 ms throughout; its latencies go to the block they were taken in."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

MIN_CLIENT_SAMPLES = 50
DAY = timedelta(days=1)


@dataclass
class Live:
    ticks_ms: list[float] = field(default_factory=list)
    request_ms: list[float] = field(default_factory=list)
    read_ms: list[float] = field(default_factory=list)
    cpu_s: float = 0.0
    engine_cpu_s: float = 0.0
    runs: int = 0
    minutes: int = 0
    deleted_runs: int = 0
    """Runs of the database's past that the busy blocks deleted (counted in the database)."""
    deleted_logs: int = 0
    """Log files of the database's past that the busy blocks deleted (counted on disk)."""
    ticks_outside: int = 0
    """Busy blocks' ticks that started when no pass was under way (not in ticks_ms)."""
    longest_lock_ms: float = 0.0
    ended: datetime = datetime.min


def run_live(book: Any, s: Any, start: datetime) -> tuple[Live, Live]:
    """(alone, busy): s.live_minutes simulated minutes from `start` on book's database, split into
    2 * s.live_blocks alternating blocks."""
    from evman.engine.clock import FakeClock
    from evman.engine.engine import Engine
    from evman.engine.store import open_store
    from evman.engine.tick.pace import settle_heap

    clock = FakeClock(start)
    engine = Engine(open_store(book.db), clock=clock, logs_dir=book.logs, tick_s=60)
    engine.start()
    alone, busy = Live(), Live()
    into: list[Live] = [alone]
    stop = threading.Event()
    client = threading.Thread(target=_client, args=(book.db, into, stop), daemon=True)
    try:
        for _minute in range(10):  # warm: the first ticks of a fresh start
            _step(engine, clock, None, lambda: False)
        settle_heap()  # as `evman --no-ui` does once its engine started
        client.start()
        block_minutes = max(1, s.live_minutes // (2 * s.live_blocks))
        for block in range(2 * s.live_blocks):
            live = busy if block % 2 else alone
            into[0] = live
            if block % 2:
                _busy_block(book, s, engine, clock, live, block_minutes, backlog=(block // 2 + 1) * s.backlog_days)
            else:
                _idle_block(book, s, engine, clock, live, block_minutes)
    finally:
        stop.set()
        client.join(5)
        engine.executors.shutdown(wait_s=5)
        engine.store.release_engine(pid=engine.pid, now=clock.now())
        alone.ended = busy.ended = clock.now()
    return alone, busy


def _idle_block(book: Any, s: Any, engine: Any, clock: Any, live: Live, minutes: int) -> None:
    cpu = time.process_time() + _tree_cpu_s(engine.executors.supervisor.pid)
    engine_cpu = time.process_time()
    before = book.store.value("SELECT count(*) FROM runs")
    _minutes(engine, clock, live, minutes, _least_s(s), lambda: True)
    live.cpu_s += time.process_time() + _tree_cpu_s(engine.executors.supervisor.pid) - cpu
    live.engine_cpu_s += time.process_time() - engine_cpu
    live.runs += book.store.value("SELECT count(*) FROM runs") - before


def _busy_block(book: Any, s: Any, engine: Any, clock: Any, live: Live, minutes: int, backlog: float) -> None:
    """The housekeeper deleting `backlog` days of the past while the engine runs `minutes`."""
    from evman.engine.clock import FakeClock
    from evman.engine.retention import start_housekeeper

    last_id = int(book.store.value("SELECT max(id) FROM runs") or 0)
    runs, files = _old_runs(book, last_id), _files(book.logs)
    keeper = start_housekeeper(
        book.db,
        engine,
        clock=FakeClock(clock.now() + backlog * DAY),
        every_s=3600.0,  # one pass a block: its ticks are those while it deletes
        first_after_s=0.0,
        host="bench",
    )
    outside = 0

    def deleting() -> bool:
        nonlocal outside
        if keeper.current is None:
            outside += 1
            return False
        return True

    try:
        _minutes(engine, clock, live, minutes, _least_s(s), deleting)
    finally:
        keeper.stop()
    live.ticks_outside += outside
    live.longest_lock_ms = max(live.longest_lock_ms, keeper.totals.longest_batch_s * 1000)
    live.deleted_runs += runs - _old_runs(book, last_id)
    live.deleted_logs += files + _new_files(book, last_id) - _files(book.logs)


def _least_s(s: Any) -> float:
    """A block lasts at least this long in real time: s.live_s in all, and time enough for the
    client's MIN_CLIENT_SAMPLES on each side (one every 20 ms and more)."""
    return max(s.live_s / (2 * s.live_blocks), MIN_CLIENT_SAMPLES * 0.04 / s.live_blocks)


def _old_runs(book: Any, last_id: int) -> int:
    return int(book.store.value("SELECT count(*) FROM runs WHERE id <= ?", (last_id,)) or 0)


def _new_files(book: Any, last_id: int) -> int:
    rows = book.store.rows("SELECT log_path FROM runs WHERE id > ? AND log_path IS NOT NULL", (last_id,))
    return sum(1 for r in rows if os.path.exists(r[0]))


def _files(folder: Path) -> int:
    """Run logs on disk (the supervisor's exit records beside them are not logs)."""
    return sum(1 for _root, _dirs, names in os.walk(folder) for n in names if not n.endswith(".exit"))


def _minutes(engine: Any, clock: Any, live: Live, minutes: int, least_s: float, counts: Any) -> None:
    began = time.monotonic()
    done = 0
    while done < minutes or time.monotonic() - began < least_s:
        _step(engine, clock, live.ticks_ms, counts)
        done += 1
    live.minutes += done


def _step(engine: Any, clock: Any, ticks_ms: list[float] | None, counts: Any) -> None:
    """One simulated minute: tick, and tick again while its runs are active (as the engine's
    loop does when their ends wake it); each tick's duration kept when counts() says so."""
    clock.advance(timedelta(minutes=1))
    deadline = time.monotonic() + 30
    while True:
        counted = ticks_ms is not None and counts()
        started = time.perf_counter()
        engine.tick(clock.now())
        if counted:
            assert ticks_ms is not None
            ticks_ms.append((time.perf_counter() - started) * 1000)
        engine.between_ticks()  # as the engine's loop does after each tick
        if not engine.active_runs() or time.monotonic() > deadline:
            return
        time.sleep(0.002)  # the commands run meanwhile


def _tree_cpu_s(pid: int | None) -> float:
    """CPU seconds of the command supervisor and the commands it reaped (/proc: utime, stime,
    cutime, cstime)."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(v) for v in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def _client(db: Path, into: list[Live], stop: threading.Event) -> None:
    """A program queueing requests (a write) and the console reading (its first page, an event's detail)."""
    from evman.engine.store import open_store

    store = open_store(db)
    try:
        while not stop.wait(0.02):
            live = into[0]
            started = time.perf_counter()
            store.add_request("hold", "no-such-event", requested_by="bench")
            live.request_ms.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            store.console_events_page(None, 120)
            store.runs_of("minutely-0", limit=50)
            live.read_ms.append((time.perf_counter() - started) * 1000)
    finally:
        store.close()
