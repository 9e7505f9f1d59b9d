"""W8, a year of operation: 50 events (5 every minute, 20 hourly, 25 daily), about 2.8 million
runs and as many log files a year, with a 30-day horizon (keep = { runs = "30d", logs = "30d" }).

    uv run python -m bench.year [--quick]          # alone; `python -m bench --only W8` in the table

How it is made, honestly:
- The year is written day by day, as the engine writes it: each run a row with every column the
  engine fills (one executemany per day, the statement the engine's flush uses) and a log file at
  the path the executors give it; a few failures a day, each with its alert (resolved by the next
  success) and a delivery; two dozen handled requests a day. Two databases get the same days:
  one where the real housekeeper (engine/retention/) runs a pass at the end of every day, one
  without. Sizes (database file after a checkpoint, log files counted on disk) at 1x, 3x, 12x.
- Then the real engine runs on the year-old database (FakeClock, a simulated minute per step,
  the runs real `true` commands) for some hours in alternating blocks (bench/year_live.py):
  alone, then beside the housekeeper's thread (started as the engine's companions start it)
  deleting a backlog of days, and so on, on one engine: both sides see the same database, the
  same hours of the day and the same machine. The tick row is judged on the ticks that started
  while a pass was deleting, beside the runs and log files it deleted meanwhile (counted in the
  database and on disk); a stretch that deleted nothing is not judged MET. A client thread
  queues requests and makes the console's reads all along: their latencies, and every tick's duration.
- CPU: the housekeeper's per day at steady state (its passes in the year's build, plus the fixed
  cost of 288 idle passes a day) against the engine's own per day (its CPU per run in the live
  stretch, times the runs of a day). The runs are callables, the cheapest for the engine, so the
  share is an upper bound of what it is with commands.
- `evman list` (a process), the console's first paint (in-process, from app start) and
  `evman plan`'s projection (CPU) on the year-old databases, with and without retention."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import statistics
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.stats import Results

DAY = timedelta(days=1)
START = datetime(2025, 1, 6, tzinfo=UTC)
W8 = "W8"
KEPT = "evman, keep 30d"
ALL = "evman, no retention"
YOUNG = "evman, after its first day"
HK_CPU = "housekeeping CPU a day (a day's deletions + a day of idle passes)"
WORK_CPU = "the workload's CPU a day (engine + supervisor + commands, per run x runs a day)"


@dataclass(frozen=True)
class Sizes:
    horizon_days: int = 30
    horizons: tuple[int, ...] = (1, 3, 12)
    minute_every: int = 1
    """The every-minute events run every this many minutes (1: the issue's mix)."""
    per_minute: int = 5
    hourly: int = 20
    daily: int = 25
    live_minutes: int = 720
    live_blocks: int = 3
    """The live stretch alternates this many blocks alone with as many beside the housekeeper."""
    backlog_days: float = 2
    """Each busy block's housekeeper runs this many days ahead of the engine: a backlog to delete."""
    plan_reps: int = 30
    list_runs: int = 5
    live_s: float = 3.0
    """A live stretch lasts at least this long in real time (and until the client made 50 samples)."""

    @property
    def days(self) -> int:
        return self.horizon_days * max(self.horizons)


FULL = Sizes()
QUICK = Sizes(horizon_days=3, minute_every=10, live_minutes=180, backlog_days=0.5, plan_reps=10, list_runs=2)
SMOKE = Sizes(
    horizon_days=1,
    minute_every=60,
    hourly=4,
    daily=5,
    live_minutes=30,
    live_blocks=1,
    backlog_days=0.5,
    plan_reps=3,
    list_runs=1,
    live_s=0.5,
)


def events(s: Sizes) -> list[tuple[str, list[int]]]:
    """(name, the minutes of the day it fires at)."""
    out = [(f"minutely-{i}", list(range(i % s.minute_every, 1440, s.minute_every))) for i in range(s.per_minute)]
    out += [(f"hourly-{i:02d}", [h * 60 + (i * 3) % 60 for h in range(24)]) for i in range(s.hourly)]
    out += [(f"daily-{i:02d}", [(i * 53) % 1440]) for i in range(s.daily)]
    return out


def definitions(s: Sizes, keep: bool) -> str:
    lines = ["[defaults]", 'timezone = "UTC"']
    days = s.horizon_days if keep else 36500
    lines.append(f'keep = {{ runs = "{days}d", logs = "{days}d", requests = "{days}d", alerts = "{days}d" }}')
    for name, minutes in events(s):
        lines += ["[[event]]", f'name = "{name}"', 'run = "true"', f'schedule = "{_cron(minutes)}"']
    return "\n".join(lines) + "\n"


def _cron(minutes: list[int]) -> str:
    """A cron line for fire times `minutes` of the day (every k minutes, hourly, or daily)."""
    first = minutes[0]
    if len(minutes) == 1:
        return f"{first % 60} {first // 60} * * *"
    every = minutes[1] - minutes[0]
    if every >= 60:
        return f"{first % 60} * * * *"
    return "* * * * *" if every == 1 else f"{first}-59/{every} * * * *"


@dataclass
class Book:
    """One database of the year and what was measured of it."""

    db: Path
    logs: Path
    keep: bool
    store: Any = None
    keeper: Any = None
    next_id: int = 1
    files: int = 0
    sizes: dict[int, tuple[float, int]] = field(default_factory=dict)
    """horizons -> (database MB, log files on disk)."""
    pass_cpu_s: list[float] = field(default_factory=list)
    longest_batch_s: float = 0.0


def open_book(tmp: Path, s: Sizes, keep: bool) -> Book:
    from evman.engine.definitions import catalog, parse_definitions
    from evman.engine.retention import Housekeeper
    from evman.engine.store import open_store

    folder = tmp / ("kept" if keep else "all")
    folder.mkdir(parents=True, exist_ok=True)
    book = Book(folder / "year.db", folder / "year.db.logs", keep)
    book.store = open_store(book.db)
    defs = parse_definitions(definitions(s, keep), source=str(folder / "defs.toml"), base_dir=folder, known_events=[])
    catalog.save(book.store, defs, now=START)
    book.keeper = Housekeeper(book.store, host="bench")
    return book


def write_day(book: Book, s: Sizes, day: int, log_path: Any) -> None:
    """One day of runs (rows and log files), failures with their alerts, handled requests."""
    from evman.engine.clock import iso
    from evman.engine.store.runs import insert_run_sql
    from evman.engine.store.schema import RUN_COLUMNS

    base = START + day * DAY
    rows, made_dirs = [], set()
    failures = []
    for name, minutes in events(s):
        for n, minute in enumerate(minutes):
            at = base + timedelta(minutes=minute)
            run_id = book.next_id
            book.next_id += 1
            failed = name.startswith("minutely") and (run_id % 211 == 0)
            path = log_path(name, run_id, at)
            folder = os.path.dirname(path)
            if folder not in made_dirs:
                os.makedirs(folder, exist_ok=True)
                made_dirs.add(folder)
            text = f"{name} run {run_id}\nfetched 42 items in 0.8 s\nwrote /srv/data/{name}.json\n" + (
                "error: upstream 503\n" if failed else "done\n"
            )
            with open(path, "w") as fh:
                fh.write(text)
            book.files += 1
            values = {
                "id": run_id,
                "event": name,
                "state": "failed" if failed else "succeeded",
                "trigger": "schedule",
                "attempt": 1,
                "scheduled_for": iso(at),
                "created_at": iso(at),
                "needs_prepare": 0,
                "started_at": iso(at + timedelta(milliseconds=40)),
                "ended_at": iso(at + timedelta(seconds=2, milliseconds=n % 900)),
                "exit_code": 1 if failed else 0,
                "reason": "exit code 1" if failed else None,
                "output_tail": text[-120:],
                "pid": 10_000 + run_id % 50_000,
                "host": "bench",
                "log_path": path,
            }
            rows.append(tuple(values.get(c) for c in RUN_COLUMNS))
            if failed:
                failures.append((name, run_id, at))
    conn = book.store.conn
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany(insert_run_sql(), rows)
    for name, run_id, at in failures:
        stamp, resolved = iso(at + timedelta(seconds=3)), iso(at + timedelta(minutes=s.minute_every, seconds=3))
        cur = conn.execute(
            "INSERT INTO alerts (kind, event, run_id, route, message, status, created_at, updated_at, resolved_at, "
            "pending, delivered_at, attempts) VALUES ('failed', ?, ?, 'ops', 'failed: exit code 1', 'resolved', ?, ?, ?, 0, ?, 1)",
            (name, run_id, stamp, resolved, resolved, stamp),
        )
        conn.execute(
            "INSERT INTO deliveries (alert_id, attempted_at, route, target, outcome, page) VALUES (?, ?, 'ops', 'json://****', 'sent', 1)",
            (cur.lastrowid, stamp),
        )
    conn.executemany(
        "INSERT INTO requests (verb, target, requested_by, requested_at, handled_at, outcome) VALUES ('trigger', ?, 'cron', ?, ?, 'ok')",
        [
            (
                f"daily-{h % max(1, s.daily):02d}",
                iso(base + timedelta(hours=h)),
                iso(base + timedelta(hours=h, seconds=1)),
            )
            for h in range(24)
        ],
    )
    conn.execute("COMMIT")


def measure_size(book: Book) -> tuple[float, int]:
    book.store.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    mb = (os.path.getsize(book.db) + _size(str(book.db) + "-wal")) / 1e6
    count = sum(len(files) for _root, _dirs, files in os.walk(book.logs))
    return mb, count


def _size(path: str) -> int:
    return os.path.getsize(path) if os.path.exists(path) else 0


def build_year(s: Sizes, tmp: Path, say: Any) -> tuple[Book, Book, Any]:
    from evman.engine.clock import SystemClock
    from evman.engine.running.executors import Executors

    kept, every = open_book(tmp, s, True), open_book(tmp, s, False)
    paths = {}
    for book in (kept, every):
        runner = Executors(SystemClock(), book.logs, lambda _outcome: None)
        paths[book.keep] = runner.log_path_text  # the layout the engine writes, whatever it is
        runner.shutdown(wait_s=0)
    checkpoints = {h * s.horizon_days: h for h in s.horizons}
    started = time.monotonic()
    for day in range(s.days):
        for book in (kept, every):
            write_day(book, s, day, paths[book.keep])
        report = kept.keeper.run_pass(START + (day + 1) * DAY)
        kept.pass_cpu_s.append(report.cpu_s)
        kept.longest_batch_s = max(kept.longest_batch_s, report.longest_batch_s)
        if day == 0:
            _snapshot(kept, tmp / "day1" / "year.db")
        if day + 1 in checkpoints:
            for book in (kept, every):
                book.sizes[checkpoints[day + 1]] = measure_size(book)
            say(
                f"  W8 day {day + 1}: kept {kept.sizes[checkpoints[day + 1]]}, all {every.sizes[checkpoints[day + 1]]} ({time.monotonic() - started:.0f} s)"
            )
    idle = kept.keeper.run_pass(
        START + s.days * DAY + timedelta(seconds=1)
    )  # nothing new to delete: a pass's fixed cost
    for book in (kept, every):
        _fires_from(book, START + s.days * DAY)
    return kept, every, idle


def _snapshot(book: Book, path: Path) -> None:
    """A copy of the database as it was after its first day: what list, paint and plan cost young."""
    path.parent.mkdir(parents=True, exist_ok=True)
    target = sqlite3.connect(path)
    book.store.conn.backup(target)
    target.close()


def _fires_from(book: Book, now: datetime) -> None:
    """Each event's next fire time as an engine that ran all year would have left it."""
    from evman.engine.clock import iso
    from evman.engine.timing.schedules import next_fire

    conn = book.store.conn
    rows = conn.execute("SELECT name, schedule FROM events").fetchall()
    fires = [(iso(next_fire(r[1], now - timedelta(seconds=1), "UTC")), r[0]) for r in rows]
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany("UPDATE events SET next_fire_at = ? WHERE name = ?", fires)
    conn.execute("COMMIT")


# -- reads on the year-old database -------------------------------------------------------------------


def list_ms(db: Path, runs: int) -> tuple[float, float]:
    from bench import footprint

    list_s, base_s = footprint.startup(db, runs)
    return list_s * 1000, base_s * 1000


def first_paint_ms(db: Path) -> float:
    from bench.console_bench import Frames
    from evman.console.app.evman_app import make_app
    from evman.console.screens.events import EventsScreen
    from evman.console.widgets.event_table import EventTable
    from evman.engine.clock import FakeClock

    async def paint() -> float:
        app = make_app(db, clock=FakeClock(datetime.now(UTC)), start_engine=False, operator="bench")
        frames = Frames(app)
        frames.arm(lambda: isinstance(app.screen, EventsScreen) and app.screen.query_one(EventTable).row_count > 0)
        started = time.perf_counter()
        async with app.run_test(size=(100, 30)):
            painted = await frames.shown("first rows")
        return (painted - started) * 1000

    return asyncio.run(paint())


def plan_cpu_ms(db: Path, reps: int, at: datetime) -> tuple[list[float], list[float]]:
    """CPU ms of `evman plan`'s two halves: reading tonight's facts, and the projection."""
    from evman.engine.foresight.reading import read_tonight
    from evman.engine.store import open_store

    store = open_store(db, readonly=True)
    reads, projections = [], []
    try:
        for _ in range(reps):
            started = time.thread_time()
            tonight = read_tonight(store, at)
            reads.append((time.thread_time() - started) * 1000)
            started = time.thread_time()
            tonight.project(())
            projections.append((time.thread_time() - started) * 1000)
    finally:
        store.close()
    return reads, projections


# -- the row -------------------------------------------------------------------------------------------


def measure(results: Results, s: Sizes, tmp: Path, say: Any) -> None:
    say(f"W8 a year: {s.days} days of {sum(len(m) for _n, m in events(s)):,} runs a day, twice")
    started = time.monotonic()
    kept, every, idle = build_year(s, tmp, say)
    results.note(f"W8: the year written and kept in {time.monotonic() - started:.0f} s")
    for book, system in ((kept, KEPT), (every, ALL)):
        for horizons, (mb, files) in sorted(book.sizes.items()):
            results.add(W8, system, f"database after {horizons}x the horizon", "MB", mb)
            results.add(W8, system, f"log files after {horizons}x the horizon", "files", float(files))
    results.add(
        W8,
        KEPT,
        "housekeeping: longest a batch held the write lock, the year's passes",
        "ms",
        kept.longest_batch_s * 1000,
    )
    say("W8 the engine on the year-old database, in blocks alone and beside the housekeeper deleting")
    from bench.year_live import run_live

    alone, busy = run_live(kept, s, START + s.days * DAY)
    results.add_samples(W8, KEPT, "tick, housekeeping idle", "ms", alone.ticks_ms)
    if busy.ticks_ms:
        results.add_samples(W8, KEPT, "tick, housekeeping deleting", "ms", busy.ticks_ms)
    results.add(W8, KEPT, "runs deleted during those ticks", "runs", float(busy.deleted_runs))
    results.add(W8, KEPT, "log files deleted during those ticks", "files", float(busy.deleted_logs))
    results.add(W8, KEPT, "housekeeping: longest a batch held the write lock, live", "ms", busy.longest_lock_ms)
    for name, live in (("housekeeping idle", alone), ("housekeeping deleting", busy)):
        results.add(W8, KEPT, f"request write, longest, {name}", "ms", max(live.request_ms))
        results.add(W8, KEPT, f"console read, longest, {name}", "ms", max(live.read_ms))
    results.note(
        f"W8: {s.live_blocks} blocks alone ({alone.minutes} simulated minutes, {len(alone.ticks_ms):,} ticks) and "
        f"{s.live_blocks} beside the housekeeper ({busy.minutes} minutes, {len(busy.ticks_ms):,} ticks while a pass "
        f"deleted, {busy.ticks_outside:,} after it had finished, not counted): it deleted {busy.deleted_runs:,} runs "
        f"and {busy.deleted_logs:,} log files; {len(busy.request_ms):,} requests beside it"
    )
    from evman.engine.retention.housekeeper import EVERY_S

    runs_a_day = sum(len(m) for _n, m in events(s))
    steady = kept.pass_cpu_s[s.horizon_days :] or kept.pass_cpu_s
    keeper_day_s = statistics.median(steady) + idle.cpu_s * (86400 / EVERY_S)
    results.add(W8, KEPT, HK_CPU, "s", keeper_day_s)
    results.add(W8, KEPT, WORK_CPU, "s", alone.cpu_s / max(1, alone.runs) * runs_a_day)
    results.add(W8, KEPT, "of which the engine process", "s", alone.engine_cpu_s / max(1, alone.runs) * runs_a_day)
    say("W8 list, first paint and plan on the year-old databases, and on the first day's")
    for db, system, at in (
        (kept.db, KEPT, alone.ended),  # the live stretches ran on it: tonight is theirs
        (every.db, ALL, START + s.days * DAY),
        (tmp / "day1" / "year.db", YOUNG, START + DAY),
    ):
        listed, base = list_ms(db, s.list_runs)
        results.add(W8, system, "`evman list` start-up", "ms", listed)
        results.add(W8, system, "`python -c 'import sqlite3'`", "ms", base)
        results.add(W8, system, "console first paint (from app start)", "ms", first_paint_ms(db))
        reads, projections = plan_cpu_ms(db, s.plan_reps, at)
        results.add_samples(W8, system, "plan: reading tonight's facts, CPU", "ms", reads)
        results.add_samples(W8, system, "plan: projection, CPU", "ms", projections)
    for book in (kept, every):
        book.store.close()


def judge(results: Results, s: Sizes) -> None:
    r = results
    last = max(s.horizons)
    for what in ("database", "log files"):
        one = r.median(W8, KEPT, f"{what} after 1x the horizon")
        if not one:
            continue
        worst = max(abs((r.median(W8, KEPT, f"{what} after {h}x the horizon") or one) / one - 1) for h in s.horizons)
        without = r.median(W8, ALL, f"{what} after {last}x the horizon")
        r.target(
            W8,
            f"{what} flat within 10% after 1x the horizon (3x, 12x against 1x)",
            f"worst {worst * 100:.1f}% (without retention at {last}x: {without / one:.1f}x)"
            if without
            else f"worst {worst * 100:.1f}%",
            worst <= 0.10,
        )
    _judge_tick(r)
    waits = [r.median(W8, KEPT, f"{k}, longest, housekeeping deleting") for k in ("request write", "console read")]
    found = [w for w in waits if w is not None]
    if len(found) == 2:
        r.target(
            W8,
            "no request or console read waits > 50 ms while housekeeping deletes",
            f"request {found[0]:.1f} ms, read {found[1]:.1f} ms (longest)",
            max(found) <= 50,
        )
    keeper, work = r.median(W8, KEPT, HK_CPU), r.median(W8, KEPT, WORK_CPU)
    if keeper is not None and work:
        r.target(
            W8,
            "housekeeping CPU < 5% of the workload's",
            f"{keeper / work * 100:.2f}% ({keeper:.2f} s of {work:.1f} s a day)",
            keeper / work < 0.05,
        )
    for system in (KEPT, ALL):
        _judge_reads(r, system)


def _judge_tick(r: Results) -> None:
    """Judged only on ticks during which the housekeeper deleted something: a stretch that deleted
    nothing measured nothing, and says so."""
    idle, busy = r.get(W8, KEPT, "tick, housekeeping idle"), r.get(W8, KEPT, "tick, housekeeping deleting")
    runs = r.median(W8, KEPT, "runs deleted during those ticks") or 0
    logs = r.median(W8, KEPT, "log files deleted during those ticks") or 0
    if idle is None or not idle.p99:
        return
    text = "tick p99 while housekeeping deletes <= 2x without"
    if busy is None or busy.p99 is None or runs < 1 or logs < 1:
        r.target(W8, text, f"not measured: the housekeeper deleted {runs:,.0f} runs, {logs:,.0f} log files", False)
        return
    r.target(
        W8,
        text,
        f"{busy.p99:.2f} ms vs {idle.p99:.2f} ms ({busy.p99 / idle.p99:.2f}x; "
        f"{runs:,.0f} runs and {logs:,.0f} log files deleted meanwhile)",
        busy.p99 <= 2 * idle.p99,
    )


def _judge_reads(r: Results, system: str) -> None:
    listed, base = r.median(W8, system, "`evman list` start-up"), r.median(W8, system, "`python -c 'import sqlite3'`")
    if listed is not None and base is not None:
        r.target(
            W8,
            f"`evman list`, year-old ({system}) <= W6's 1.5x import sqlite3 + 100 ms",
            f"{listed:.0f} ms vs {1.5 * base + 100:.0f} ms",
            listed <= 1.5 * base + 100,
        )
    young_list = r.median(W8, YOUNG, "`evman list` start-up")
    if listed is not None and young_list:
        r.target(
            W8,
            f"`evman list`, year-old ({system}) within 1.5x of the first day's",
            f"{listed:.0f} ms vs {young_list:.0f} ms ({listed / young_list:.2f}x)",
            listed <= 1.5 * young_list,
        )
    paint = r.median(W8, system, "console first paint (from app start)")
    if paint is not None:
        r.target(W8, f"console first paint, year-old ({system}) < W5's 1 s", f"{paint:.0f} ms", paint < 1000)
    project = r.get(W8, system, "plan: projection, CPU")
    if project is not None and project.p99 is not None:
        r.target(
            W8,
            f"plan's projection, year-old ({system}) <= W7's 5 ms (median; p99 <= 5x)",
            f"median {project.median:.2f} ms, p99 {project.p99:.2f} ms",
            project.median <= 5 and project.p99 <= 25,
        )
    old, young = (
        r.median(W8, system, "plan: reading tonight's facts, CPU"),
        r.median(W8, YOUNG, "plan: reading tonight's facts, CPU"),
    )
    if old is not None and young:
        r.target(
            W8,
            f"plan's read, year-old ({system}) within 1.5x of the first day's (age costs nothing)",
            f"{old:.2f} ms vs {young:.2f} ms ({old / young:.2f}x)",
            old <= 1.5 * young,
        )


def main(argv: list[str] | None = None) -> int:
    import argparse
    import tempfile

    from bench.stats import table, targets_table

    parser = argparse.ArgumentParser(prog="python -m bench.year", description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--horizon-days", type=int, help="the horizon (default 30): the year is 12 of them")
    args = parser.parse_args(argv)
    import logging

    logging.basicConfig(level=logging.ERROR)
    s = SMOKE if args.smoke else QUICK if args.quick else FULL
    if args.horizon_days:
        s = replace(s, horizon_days=args.horizon_days)
    started = time.monotonic()
    results = Results()
    with tempfile.TemporaryDirectory(prefix="evman-w8-") as tmp:
        measure(results, s, Path(tmp), lambda text: print(f"[{time.monotonic() - started:6.1f}s] {text}", flush=True))
    judge(results, s)
    print(table(results.metrics.values()))
    print(targets_table(results.targets))
    for note in results.notes:
        print("-", note)
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main())
