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

from engine import catalog  # noqa: E402
from engine.clock import FakeClock, iso  # noqa: E402
from engine.definitions import parse_definitions  # noqa: E402
from engine.store import RUN_COLUMNS, Store  # noqa: E402

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
    store = Store(path)
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
    indexes = [r[0] for r in store.conn.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'runs' AND sql IS NOT NULL")]
    with store.transaction() as conn:
        # building the secondary indexes once, after the rows, is several times faster
        for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index' "
                                    "AND tbl_name = 'runs' AND sql IS NOT NULL").fetchall():
            conn.execute(f"DROP INDEX {name}")
        conn.executemany(f"INSERT INTO runs ({', '.join(RUN_COLUMNS)}) VALUES ({marks})", rows)
        for sql in indexes:
            conn.execute(sql)
        conn.executemany(
            "INSERT INTO alerts (kind, event, run_id, route, message, created_at, updated_at) "
            "VALUES ('failed', ?, NULL, 'ops', ?, ?, ?)",
            [(n, f"{n} failed: exit code 1", iso(NOW), iso(NOW)) for n in names[::25]])
    store.close()


class _StepTimes:
    """The ISO strings one step of history needs, computed once (iso() per row is the slow part)."""

    def __init__(self, at: datetime) -> None:
        self.at = iso(at)
        self.due = iso(at + timedelta(minutes=30))
        self.ends = [iso(at + timedelta(seconds=s)) for s in range(1, 121, 7)]


_INDEX = {c: i for i, c in enumerate(RUN_COLUMNS)}


def _run_row(roll: float, run_id: int, name: str, t: _StepTimes, *, last: bool) -> tuple[object, ...]:
    state = "succeeded" if roll < 0.93 else "failed" if roll < 0.98 else "missed"
    if last and roll < 0.03:
        state = "running"
    elif last and roll < 0.05:
        state = "waiting"
    row: list[object] = [None] * len(RUN_COLUMNS)
    started = None if state in ("waiting", "missed") else t.at
    ended = None if state in ("waiting", "running") else (
        t.ends[run_id % len(t.ends)] if started else t.due)
    values = {
        "id": run_id, "event": name, "state": state, "trigger": "schedule", "attempt": 1,
        "scheduled_for": t.at, "created_at": t.at, "started_at": started, "ended_at": ended,
        "exit_code": {"succeeded": 0, "failed": 1}.get(state),
        "reason": {"failed": "exit code 1", "missed": "missed: window closed"}.get(state),
        "waiting_reason": "requires success(job-00000) is false" if state == "waiting" else None,
        "due_by": t.due, "needs_prepare": 0,
    }
    for key, value in values.items():
        row[_INDEX[key]] = value
    return tuple(row)


# -- measuring through the real app ------------------------------------------------------------
# Pilot.press() waits for the process to look idle (about 100 ms a key), so keys are sent to the
# driver directly, and "on screen" means the first frame the compositor renders after the screen
# shows what the key asked for (App._display is wrapped to timestamp frames).


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
    """Timestamps of the frames the app renders."""

    def __init__(self, app: Any) -> None:
        self.times: list[float] = []
        original = app._display

        def display(screen: Any, renderable: Any) -> None:
            if renderable is not None:
                self.times.append(time.perf_counter())
            original(screen, renderable)

        app._display = display

    async def after(self, moment: float, timeout_s: float = 30.0) -> float:
        deadline = time.monotonic() + timeout_s
        while not self.times or self.times[-1] < moment:
            if time.monotonic() > deadline:
                raise TimeoutError("bench: no frame was rendered")
            await asyncio.sleep(0.0005)
        return next(t for t in self.times if t >= moment)


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
        await asyncio.sleep(0.0005)
    return time.perf_counter()


async def key_to_screen(app: Any, frames: Frames, key: str, ready: Callable[[], object]) -> float:
    """Milliseconds from the key to the first frame that shows its effect."""
    started = time.perf_counter()
    send_key(app, key)
    shown = await until(ready, f"the screen after {key}")
    return (await frames.after(shown) - started) * 1000


def _ms(values: list[float]) -> str:
    return f"median {statistics.median(values):.1f} ms, max {max(values):.1f} ms"


async def measure(db: Path, size: tuple[int, int], events: int) -> dict[str, object]:
    """Open the console on `db` (no engine: the numbers are the console's) and time it."""
    from textual.widgets import Input

    from console.app import make_app
    from console.screens.events import EventsScreen
    from console.screens.run_detail import RunDetailScreen
    from console.widgets.event_table import EventTable

    out: dict[str, object] = {}
    app = make_app(db, clock=FakeClock(NOW), start_engine=False, operator="bench")
    started = time.perf_counter()
    async with app.run_test(size=size) as pilot:
        frames = Frames(app)
        lag = LoopLag().start()
        screen = app.screen
        assert isinstance(screen, EventsScreen)
        table = screen.query_one(EventTable)
        painted = await until(lambda: table.row_count > 0, "first rows")
        out["first paint: rows on screen (ms from app start)"] = (await frames.after(painted) - started) * 1000
        await until(lambda: not table.is_filling and table.row_count == events, "full table")
        out["every row in the table (ms)"] = (time.perf_counter() - started) * 1000
        out["worst input wait while loading (ms)"] = lag.stop()
        await pilot.pause(0.5)

        timings: dict[str, list[float]] = {}

        async def press(label: str, key: str, ready: Callable[[], object]) -> None:
            timings.setdefault(label, []).append(await key_to_screen(app, frames, key, ready))

        def moved(past: int) -> Callable[[], bool]:
            return lambda: table.cursor_row > past

        for _ in range(10):
            await press("down arrow", "down", moved(table.cursor_row))
        for _ in range(5):
            await press("page down", "pagedown", moved(table.cursor_row + 1))

        box = screen.query_one("#filter", Input)
        filters: list[tuple[str, Callable[[], bool]]] = [
            (f"job-{(events - 1) // 10:04d}", lambda: table.row_count == 10),
            ("state:failed", lambda: 0 < table.row_count < events),
            ("", lambda: table.row_count == events)]
        for text, want in filters:
            await press("/ opens the filter", "slash", lambda: box.has_focus)
            box.value = text  # typing is the Input's business; the filter runs on Enter
            lag.start()
            await press(f"enter applies filter {text or '(cleared)'}", "enter",
                        lambda: want() and app.focused is table)  # noqa: B023 - awaited at once
            await until(lambda: not table.is_filling, "the refill")
            timings.setdefault("worst input wait while filtering (ms)", []).append(lag.stop())
        def sorted_past(column: str) -> Callable[[], bool]:
            return lambda: screen.sort_column != column

        for _ in range(3):
            await press("s: sort by the next column", "s", sorted_past(screen.sort_column))
        for _ in range(3):
            await press("enter: run details", "enter", lambda: isinstance(app.screen, RunDetailScreen)
                        and app.screen.shown_run is not None)
            await press("escape: back to the events", "escape", lambda: app.screen is screen)
        for _ in range(3):
            await press("d: dependency tree", "d", lambda: getattr(app.screen, "tree_data", None) is not None)
            await press("escape: back to the events", "escape", lambda: app.screen is screen)
        for _ in range(3):
            await press("o: overdue view", "o",
                        lambda: app.screen is not screen and getattr(app.screen, "loaded", False))
            await press("escape: back to the events", "escape", lambda: app.screen is screen)
        out["key to screen"] = {k: _ms(v) for k, v in timings.items()}
        out["live refresh"] = await _refresh(app, frames, screen, table, db, events)
    return out


async def _refresh(app: Any, frames: Frames, screen: Any, table: Any, db: Path, events: int) -> dict[str, object]:
    """Another connection changes the latest run of 20 events (5 on screen); the engine's
    message arrives; time until the rows show it, the worker's read, and the input wait."""
    from console.screens.services import EngineChanged
    from engine.engine import Change
    writer = Store(db)
    visible = table.visible_keys()[:5]
    names = visible + [f"job-{i:05d}" for i in range(events - 15, events)]
    shown: list[float] = []
    reads: list[float] = []
    lags: list[float] = []
    fills = table.fills
    for round_ in range(6):
        state = "failed" if round_ % 2 == 0 else "succeeded"
        with writer.transaction() as conn:
            conn.executemany("UPDATE runs SET state = ? WHERE id = (SELECT max(id) FROM runs WHERE event = ?)",
                             [(state, n) for n in names])
        lag = LoopLag().start()
        started = time.perf_counter()
        app.post_message(EngineChanged([Change("run", n, None, state) for n in names]))
        done = await until(lambda: all(screen.rows[n]["run_state"] == state for n in names)
                           and all(table.row_texts(n)[0].plain.endswith(state) for n in visible), "the refresh")
        shown.append((await frames.after(done) - started) * 1000)
        reads.append(screen.last_refresh_s * 1000)
        await asyncio.sleep(0.2)
        lags.append(lag.stop())
    writer.close()
    return {"20 changed rows: engine message to frame": _ms(shown),
            "their re-read in the worker thread": _ms(reads),
            "worst input wait during a refresh (ms)": _ms(lags),
            "table refills caused": table.fills - fills}


def _store_costs(db: Path) -> dict[str, str]:
    """The reads behind the screens, straight from the store."""
    from console import views
    store = Store(db)
    names = [f"job-{i:05d}" for i in range(0, 10_000, 500)]  # 20 names (fewer exist in a small db)

    def best(fn: Callable[[], object], n: int = 5) -> str:
        times = []
        for _ in range(n):
            started = time.perf_counter()
            fn()
            times.append((time.perf_counter() - started) * 1000)
        return f"{min(times):.1f} ms"

    marks = store.watch_marks()
    out = {
        "console_event_rows, all events": best(lambda: views.console_event_rows(store), 3),
        "console_event_rows, 20 names": best(lambda: views.console_event_rows(store, names)),
        "watch_marks (attached viewer, per commit)": best(store.watch_marks),
        "changed_events diff": best(lambda: views.changed_events(marks, store.watch_marks())),
        "attention_list (o)": best(lambda: views.attention_list(store, NOW)),
        "alert_list 300 (l)": best(lambda: views.alert_list(store, event=None, open_only=False, limit=300)),
        "event_detail + 50 runs (enter)": best(lambda: (views.event_detail(store, "job-05000"),
                                                       views.run_list(store, "job-05000", 50))),
        "dependency_tree (d)": best(lambda: views.dependency_tree(store, "job-05001")),
    }
    store.close()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--db", type=Path, help="Reuse (or build once) this database.")
    parser.add_argument("--size", default="200x60", help="Terminal size, WxH (default 200x60).")
    parser.add_argument("--json", action="store_true", help="Print the numbers as JSON.")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        db = args.db or Path(tmp) / "bench.db"
        if not db.exists():
            started = time.perf_counter()
            build_database(db, events=args.events, runs=args.runs)
            print(f"built {db}: {args.events} events, {args.runs} runs in "
                  f"{time.perf_counter() - started:.1f} s", file=sys.stderr)
        results: dict[str, object] = {"events": args.events, "runs": args.runs, "terminal": args.size}
        results["store"] = _store_costs(db)
        results["console"] = asyncio.run(measure(db, (width, height), args.events))
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
