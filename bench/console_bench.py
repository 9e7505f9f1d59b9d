"""Console at scale: a 10,000-event, 1,000,000-run database, then first paint, key-to-screen
and live-refresh cost measured through the real app, headless.

    uv run python bench/console_bench.py [--events 10000] [--runs 1000000] [--db PATH] [--keep]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.stats import percentile
from evman.engine.clock import FakeClock, iso
from evman.engine.definitions import catalog, parse_definitions
from evman.engine.model import ACTIVE_STATES, RunState
from evman.engine.store import RUN_COLUMNS, open_store

NOW = datetime(2026, 1, 5, 12, 0, 0, tzinfo=UTC)
DRIVERS = ("ops", "night", "lead")
SCHEDULES = ('"*/15 * * * *"', '"every day at 06:30"', '"0 2 * * *"', '"every 5 minutes"', '"30 */2 * * *"')


def definitions_text(events: int) -> str:
    """`events` events: schedules, windows, runtime bounds, and chains of requires/on_success."""
    parts = ['[defaults]\ntimezone = "UTC"\ndriver = "ops"\n']
    parts.append("[routes]\n" + "\n".join(f'{d} = ["json://127.0.0.1:9/"]' for d in DRIVERS) + "\n")
    for i in range(events):
        lines = ["[[event]]", f'name = "job-{i:05d}"', 'run = "true"']
        if i % 10 == 0 or i % 10 >= 5:
            lines.append(f"schedule = {SCHEDULES[i % len(SCHEDULES)]}")
        else:
            lines.append(f'requires = "success(job-{i - 1:05d})"')
        if i % 10 == 0:
            lines.append('window = { earliest = "01:00", latest = "23:00" }')
        if i % 3 == 0:
            lines.append('runtime = { min = "1s", max = "10m" }')
        if i % 10 == 1:
            lines.append(f'on_success = ["job-{i + 1:05d}"]' if i + 1 < events and (i + 1) % 10 < 5 else "")
        lines.append(f'driver = "{DRIVERS[i % len(DRIVERS)]}"')
        parts.append("\n".join(line for line in lines if line) + "\n")
    return "\n".join(parts)


def build_database(path: Path, *, events: int, runs: int, seed: int = 7) -> None:
    """Load the events through the real loader, then insert `runs` runs and some alerts in
    one transaction each (executemany)."""
    rnd = random.Random(seed)
    store = open_store(path)
    text = definitions_text(events)
    defs = parse_definitions(text, source=str(path.with_suffix(".toml")), base_dir=path.parent)
    catalog.save(store, defs, now=NOW)
    per_event = max(1, runs // events)
    names = [f"job-{i:05d}" for i in range(events)]
    rows: list[tuple[object, ...]] = []
    run_id = 0
    for step in range(per_event):
        times = _StepTimes(NOW - timedelta(minutes=15 * (per_event - step)))
        for name in names:
            run_id += 1
            rows.append(_run_row(rnd.random(), run_id, name, times, last=step == per_event - 1))
    marks = ", ".join("?" for _ in RUN_COLUMNS)
    store.conn.execute("PRAGMA cache_size = -600000")  # 600 MB: keeps the run indexes in memory
    indexes = [
        r[0]
        for r in store.conn.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'runs' AND sql IS NOT NULL"
        )
    ]
    with store.transaction() as conn:
        # building the secondary indexes once, after the rows, is several times faster
        for (name,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'runs' AND sql IS NOT NULL"
        ).fetchall():
            conn.execute(f"DROP INDEX {name}")
        conn.executemany(f"INSERT INTO runs ({', '.join(RUN_COLUMNS)}) VALUES ({marks})", rows)
        for sql in indexes:
            conn.execute(sql)
        conn.executemany(
            "INSERT INTO alerts (kind, event, run_id, route, message, created_at, updated_at) "
            "VALUES ('failed', ?, NULL, 'ops', ?, ?, ?)",
            [(n, f"{n} failed: exit code 1", iso(NOW), iso(NOW)) for n in names[::25]],
        )
    store.close()


class _StepTimes:
    """The ISO strings one step of history needs, computed once (iso() per row is the slow part)."""

    def __init__(self, at: datetime) -> None:
        self.at = iso(at)
        self.due = iso(at + timedelta(minutes=30))
        self.ends = [iso(at + timedelta(seconds=s)) for s in range(1, 121, 7)]


_INDEX = {c: i for i, c in enumerate(RUN_COLUMNS)}


def _run_row(roll: float, run_id: int, name: str, t: _StepTimes, *, last: bool) -> tuple[object, ...]:
    state = RunState.SUCCEEDED if roll < 0.93 else RunState.FAILED if roll < 0.98 else RunState.MISSED
    if last and roll < 0.03:
        state = RunState.RUNNING
    elif last and roll < 0.05:
        state = RunState.WAITING
    row: list[object] = [None] * len(RUN_COLUMNS)
    started = None if state in (RunState.WAITING, RunState.MISSED) else t.at
    ended = None if state in ACTIVE_STATES else (t.ends[run_id % len(t.ends)] if started else t.due)
    values = {
        "id": run_id,
        "event": name,
        "state": state,
        "trigger": "schedule",
        "attempt": 1,
        "scheduled_for": t.at,
        "created_at": t.at,
        "started_at": started,
        "ended_at": ended,
        "exit_code": {RunState.SUCCEEDED: 0, RunState.FAILED: 1}.get(state),
        "reason": {RunState.FAILED: "exit code 1", RunState.MISSED: "missed: window closed"}.get(state),
        "waiting_reason": "requires success(job-00000) is false" if state == RunState.WAITING else None,
        "due_by": t.due,
        "needs_prepare": 0,
    }
    for key, value in values.items():
        row[_INDEX[key]] = value
    return tuple(row)


# -- measuring through the real app ------------------------------------------------------------
# Pilot.press() waits for the process to look idle (about 100 ms a key), so keys are sent to the
# driver directly, and "on screen" means the first frame the compositor renders while the app's
# state shows what the key asked for: App._display is wrapped to timestamp frames and to test
# the condition as each frame goes out (a poller would add its own wake-up delay).

PRESSES = {"down": 30, "page": 20, "filter rounds": 3, "sort": 8, "screens": 10, "processes": 3}
"""Presses per key and repetition (and evman processes started for the pty row): enough for
a p99 (nearest rank) that is not just the max. --quick: a fifth of them, at least 2."""


class LoopLag:
    """How late a 10 ms ticker on the event loop runs: how long a key press would wait."""

    def __init__(self) -> None:
        self.worst_s = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + 0.01
            await asyncio.sleep(0.01)
            self.worst_s = max(self.worst_s, loop.time() - due)

    def start(self) -> LoopLag:
        self.worst_s = 0.0
        self._task = asyncio.get_running_loop().create_task(self._tick())
        return self

    def stop(self) -> float:
        assert self._task is not None
        self._task.cancel()
        return self.worst_s * 1000


class Frames:
    """Timestamps of the frames the app renders, and the first one shown while `watch` holds."""

    def __init__(self, app: Any) -> None:
        self.times: list[float] = []
        self.watch: Callable[[], object] | None = None
        self.hit: float | None = None
        original = app._display

        def display(screen: Any, renderable: Any) -> None:
            if renderable is not None:
                now = time.perf_counter()
                self.times.append(now)
                if self.watch is not None and self.hit is None and _holds(self.watch):
                    self.hit = now
            original(screen, renderable)

        app._display = display

    def arm(self, ready: Callable[[], object]) -> None:
        self.watch, self.hit = ready, None

    async def shown(self, what: str, timeout_s: float = 60.0) -> float:
        await until(lambda: self.hit is not None, what, timeout_s)
        assert self.hit is not None
        self.watch = None
        return self.hit


def _holds(ready: Callable[[], object]) -> bool:
    try:
        return bool(ready())
    except Exception:
        return False


def send_key(app: Any, key: str) -> None:
    from textual import events

    char = {"slash": "/", "enter": "\r", "escape": "\x1b"}.get(key, key if len(key) == 1 else None)
    event = events.Key(key, char)
    event.set_sender(app)
    app._driver.send_message(event)


async def until(ready: Callable[[], object], what: str, timeout_s: float = 60.0) -> float:
    deadline = time.monotonic() + timeout_s
    while not ready():
        if time.monotonic() > deadline:
            raise TimeoutError(f"bench: {what} did not happen in {timeout_s} s")
        await asyncio.sleep(0.001)
    return time.perf_counter()


async def key_to_screen(app: Any, frames: Frames, key: str, ready: Callable[[], object]) -> float:
    """Milliseconds from the key to the first frame that shows its effect."""
    frames.arm(ready)
    started = time.perf_counter()
    send_key(app, key)
    return (await frames.shown(f"the screen after {key}") - started) * 1000


def _ms(values: list[float]) -> str:
    return f"median {statistics.median(values):.2f} ms, p99 {percentile(values, 99):.2f} ms, max {max(values):.2f} ms"


async def measure(db: Path, size: tuple[int, int], events: int) -> dict[str, object]:
    """Open the console on `db` (no engine: the numbers are the console's) and time it."""
    from evman.console.app.evman_app import make_app
    from evman.console.screens.events import EventsScreen
    from evman.console.widgets.event_table import EventTable

    out: dict[str, object] = {}
    app = make_app(db, clock=FakeClock(NOW), start_engine=False, operator="bench")
    frames = Frames(app)

    def table() -> EventTable:
        return app.screen.query_one(EventTable)

    frames.arm(lambda: isinstance(app.screen, EventsScreen) and table().row_count > 0)
    started = time.perf_counter()
    async with app.run_test(size=size) as pilot:
        lag = LoopLag().start()
        painted = await frames.shown("first rows")
        out["first paint: rows on screen (ms from app start)"] = (painted - started) * 1000
        frames.arm(lambda: isinstance(app.screen, EventsScreen) and app.screen.loaded and table().row_count == events)
        out["every row in the table (ms from app start)"] = (await frames.shown("full table") - started) * 1000
        out["worst input wait while loading (ms)"] = lag.stop()
        await pilot.pause(0.5)
        screen = app.screen
        assert isinstance(screen, EventsScreen)
        out["key to screen"] = await _keys(app, frames, screen, table(), events)
        out["live refresh"] = await _refresh(app, frames, screen, table(), db, events)
    return out


async def _keys(app: Any, frames: Frames, screen: Any, table: Any, events: int) -> dict[str, str]:
    """Every key of the events screen and the screens it opens, PRESSES times each."""
    from textual.widgets import Input

    from evman.console.screens.run_detail import RunDetailScreen

    timings: dict[str, list[float]] = {}

    async def press(label: str, key: str, ready: Callable[[], object]) -> None:
        timings.setdefault(label, []).append(await key_to_screen(app, frames, key, ready))

    def moved(past: int) -> Callable[[], bool]:
        return lambda: table.cursor_row > past

    for _ in range(PRESSES["down"]):
        await press("down arrow", "down", moved(table.cursor_row))
    for _ in range(PRESSES["page"]):
        if table.cursor_row + 2 * table.scrollable_content_region.height >= table.row_count:
            table.action_first()  # a small database: back to the top (not timed)
            await asyncio.sleep(0.05)
        await press("page down", "pagedown", moved(table.cursor_row + 1))
    await press("/ opens the filter", "slash", lambda: bool(screen.query("#filter.-shown")))  # the first makes it
    box = screen.query_one("#filter", Input)
    await key_to_screen(app, frames, "enter", lambda: app.focused is table)  # closed again, not timed
    lag = LoopLag()
    for _ in range(PRESSES["filter rounds"]):
        for text, want in (
            (f"job-{(events - 1) // 10:04d}", lambda: table.row_count == 10),
            ("state:failed", lambda: 0 < table.row_count < events),
            ("", lambda: table.row_count == events),
        ):
            await press("/ opens the filter", "slash", lambda: box.has_focus)
            box.value = text  # typing is the Input's business; the filter runs on Enter
            lag.start()
            await press(f"enter applies filter {text or '(cleared)'}", "enter", lambda: want() and app.focused is table)  # noqa: B023 - awaited at once
            await asyncio.sleep(0.05)
            timings.setdefault("worst input wait while filtering (ms)", []).append(lag.stop())
    for _ in range(PRESSES["sort"]):
        column = screen.sort_column
        await press("s: sort by the next column", "s", lambda: screen.sort_column != column)  # noqa: B023
    for key, label, ready in (
        (
            "enter",
            "enter: run details",
            lambda: isinstance(app.screen, RunDetailScreen) and app.screen.shown_run is not None,
        ),
        ("d", "d: dependency tree", lambda: getattr(app.screen, "tree_data", None) is not None),
        ("o", "o: overdue view", lambda: app.screen is not screen and getattr(app.screen, "loaded", False)),
    ):
        for _ in range(PRESSES["screens"]):
            await press(label, key, ready)
            await press("escape: back to the events", "escape", lambda: app.screen is screen)
    return {k: _ms(v) for k, v in timings.items()}


async def _refresh(app: Any, frames: Frames, screen: Any, table: Any, db: Path, events: int) -> dict[str, object]:
    """Another connection changes the latest run of 20 events (5 on screen); the engine's
    message arrives; time until the rows show it, the worker's read, and the input wait."""
    from evman.console.screens.services import EngineChanged
    from evman.engine.engine import Change

    writer = open_store(db)
    top = int(table.scroll_y)
    visible = table.shown_names()[top : top + 5]  # on screen now: their change must be drawn
    names = visible + [n for n in (f"job-{i:05d}" for i in range(events - 15, events)) if n not in visible]
    first = RunState.SUCCEEDED if screen.rows[visible[0]]["run_state"] == RunState.FAILED else RunState.FAILED
    shown: list[float] = []
    reads: list[float] = []
    lags: list[float] = []
    fills = table.fills
    for round_ in range(10):
        state = first if round_ % 2 == 0 else (RunState.SUCCEEDED if first == RunState.FAILED else RunState.FAILED)
        with writer.transaction() as conn:
            conn.executemany(
                "UPDATE runs SET state = ? WHERE id = (SELECT max(id) FROM runs WHERE event = ?)",
                [(state, n) for n in names],
            )
        lag = LoopLag().start()

        def refreshed(state: str = state) -> bool:
            return all(screen.rows[n]["run_state"] == state for n in names) and all(
                table.row_texts(n)[0].plain.endswith(state) for n in visible
            )

        frames.arm(refreshed)
        started = time.perf_counter()
        app.post_message(EngineChanged([Change("run", n, None, state) for n in names]))
        shown.append((await frames.shown("the refresh") - started) * 1000)
        reads.append(screen.last_refresh_s * 1000)
        await asyncio.sleep(0.2)
        lags.append(lag.stop())
    writer.close()
    return {
        "20 changed rows: engine message to frame": _ms(shown),
        "their re-read in the worker thread": _ms(reads),
        "worst input wait during a refresh (ms)": _ms(lags),
        "table refills caused": table.fills - fills,
    }


def _store_costs(db: Path) -> dict[str, str]:
    """The reads behind the screens, straight from the store (median and p99 of a few)."""
    from evman.console.screens.event_pages import PAGE
    from evman.console.views import contract, screen_rows
    from evman.console.views.screen_rows import FIRST_PAGE

    store = open_store(db)
    names = [f"job-{i:05d}" for i in range(0, 10_000, 500)]  # 20 names (fewer exist in a small db)

    def timed(fn: Callable[[], object], n: int = 9) -> str:
        times = []
        for _ in range(n):
            started = time.perf_counter()
            fn()
            times.append((time.perf_counter() - started) * 1000)
        return _ms(times)

    def paged() -> None:
        rows: list[dict[str, Any]] = []
        limit = FIRST_PAGE
        while True:
            page = screen_rows.console_event_rows(store, after=rows[-1]["name"] if rows else None, limit=limit)
            rows += page
            if len(page) < limit:
                return
            limit = PAGE

    marks = store.watch_marks()
    out = {
        f"console_event_rows, first page ({FIRST_PAGE} events, painted first)": timed(
            lambda: screen_rows.console_event_rows(store, limit=FIRST_PAGE)
        ),
        f"console_event_rows, one page of {PAGE:,} (the store lock held at most this long)": timed(
            lambda: screen_rows.console_event_rows(store, after="job-04000", limit=PAGE)
        ),
        "console_event_rows, all events in pages (whole load)": timed(paged, 3),
        "console_event_rows, 20 names": timed(lambda: screen_rows.console_event_rows(store, names)),
        "watch_marks (attached viewer, per commit)": timed(store.watch_marks),
        "changed_events diff": timed(lambda: screen_rows.changed_events(marks, store.watch_marks())),
        "attention_list (o)": timed(lambda: screen_rows.attention_list(store, NOW)),
        "alert_list 300 (l)": timed(lambda: contract.alert_list(store, event=None, open_only=False, limit=300)),
        "event_detail + 50 runs (enter)": timed(
            lambda: (contract.event_detail(store, "job-05000"), contract.run_list(store, "job-05000", 50))
        ),
        "dependency_tree (d)": timed(lambda: screen_rows.dependency_tree(store, "job-05001")),
    }
    store.close()
    return out


# -- first paint as a user sees it ---------------------------------------------------------------


def process_first_paint(
    db: Path, size: tuple[int, int], *, first_name: str = "job-00000", runs: int = 3, timeout_s: float = 60.0
) -> dict[str, str]:
    """`evman --db DB --readonly` in a pseudo-terminal of `size`: milliseconds from the spawn
    (interpreter start and imports included) until the terminal receives the first event's
    name, i.e. the first frame with rows. --readonly: no engine, the database stays as built
    (an engine would start in a worker thread and not delay the paint)."""
    import subprocess

    paint: list[float] = []
    imports: list[float] = []
    for _ in range(runs):
        paint.append(_one_process_paint(db, size, first_name.encode(), timeout_s))
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-c", "import evman.console.app.evman_app"],
            check=True,
            timeout=timeout_s,
            cwd=Path(__file__).resolve().parent.parent,
        )
        imports.append((time.perf_counter() - started) * 1000)
    return {
        "first paint from process start (pty, imports included)": _ms(paint),
        "of which: python -c 'import evman.console.app.evman_app' (interpreter and imports alone)": _ms(imports),
    }


def _one_process_paint(db: Path, size: tuple[int, int], marker: bytes, timeout_s: float) -> float:
    """One first paint of `evman --db DB --readonly` (bench/first_paint.py's pty reader)."""
    import os

    from bench.first_paint import evman_argv, paint_in_pty

    env = {**os.environ, "TERM": "xterm-256color", "EVMAN_OPERATOR": "bench"}
    return paint_in_pty(evman_argv(db), marker, size, env, timeout_s)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--db", type=Path, help="Reuse (or build once) this database.")
    parser.add_argument("--size", default="200x60", help="Terminal size, WxH (default 200x60).")
    parser.add_argument("--json", action="store_true", help="Print the numbers as JSON.")
    parser.add_argument("--quick", action="store_true", help="Fewer presses per key (a smoke run).")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    if args.quick:
        PRESSES.update({k: max(2, v // 5) for k, v in PRESSES.items()})
    with tempfile.TemporaryDirectory() as tmp:
        db = args.db or Path(tmp) / "bench.db"
        if not db.exists():
            started = time.perf_counter()
            build_database(db, events=args.events, runs=args.runs)
            print(
                f"built {db}: {args.events} events, {args.runs} runs in {time.perf_counter() - started:.1f} s",
                file=sys.stderr,
            )
        results: dict[str, object] = {"events": args.events, "runs": args.runs, "terminal": args.size}
        results["store"] = _store_costs(db)
        console = asyncio.run(measure(db, (width, height), args.events))
        console["process"] = process_first_paint(db, (width, height), runs=PRESSES["processes"])
        results["console"] = console
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        _print(results)
    return 0


def _print(results: dict[str, object], indent: str = "") -> None:
    for key, value in results.items():
        if isinstance(value, dict):
            print(f"{indent}{key}:")
            _print(value, indent + "  ")
        else:
            print(f"{indent}{key}: {round(value, 1) if isinstance(value, float) else value}")


if __name__ == "__main__":
    sys.exit(main())
