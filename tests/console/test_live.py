"""Live updates, filtering and sorting, and attaching to an engine that runs elsewhere."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from evman.console.app.evman_app import make_app
from evman.console.mailbox import engine_is_live
from evman.console.screens.services import EngineChanged
from evman.engine.clock import FakeClock
from evman.engine.engine import Engine
from evman.engine.store import Store, open_store
from tests.console.console_helpers import (
    cells,
    engine_running,
    loaded,
    query,
    requests,
    run,
    screen_text,
    select,
    shown,
    table,
    wait_until,
)

ROOT = Path(__file__).resolve().parents[2]


def test_schedule_fires_and_rows_update_in_place(seed: Callable[..., Path], clock: FakeClock) -> None:
    db = seed()

    async def scenario() -> None:
        seen: list[object] = []
        app = make_app(db, clock=clock)
        async with app.run_test(size=(100, 30), message_hook=seen.append) as pilot:
            await loaded(pilot)
            await engine_running(pilot)
            assert cells(app, "fetch")[2] == "in 14m"
            await select(pilot, "report")
            row_before = table(app).cursor_row
            clock.advance(timedelta(minutes=15))
            assert app.engine is not None
            app.engine.wake()
            await wait_until(pilot, lambda: cells(app, "fetch")[0] == "✔ succeeded", "fetch to run")
            await wait_until(pilot, lambda: cells(app, "publish")[0] == "✔ succeeded", "publish to follow")
            await wait_until(pilot, lambda: cells(app, "report")[0] == "✔ succeeded", "report to follow")
            assert cells(app, "fetch")[2] == "in 14m"  # 00:15:01 -> 00:30:00
            assert table(app).cursor_row == row_before, "the cursor stays on its row"
            assert table(app).fills == 1, "live updates change cells; they never refill the table"
            assert any(isinstance(m, EngineChanged) for m in seen)
            assert [r["state"] for r in query(db, "SELECT state FROM runs ORDER BY id")] == [
                "succeeded",
                "succeeded",
                "succeeded",
            ]

    run(scenario())


def test_filter_applies_on_enter_and_escape_clears_it(seed: Callable[..., Path], clock: FakeClock) -> None:
    db = seed()

    async def scenario() -> None:
        app = make_app(db, clock=clock, start_engine=False)
        async with app.run_test(size=(100, 30)) as pilot:
            await loaded(pilot)
            assert shown(app) == ["broken", "fetch", "publish", "report", "slow"]
            await pilot.press("slash")
            await pilot.press(*"night")
            assert shown(app) == ["broken", "fetch", "publish", "report", "slow"], "applied on Enter only"
            await pilot.press("enter")
            await wait_until(pilot, lambda: shown(app) == ["broken", "report"], "the filter by driver")
            assert app.focused is table(app)
            assert "filter: night (2 shown)" in screen_text(app)
            await pilot.press("slash", "ctrl+u", *"state:idle name:re", "enter")
            await wait_until(pilot, lambda: shown(app) == ["report"], "the filter by state and name")
            await pilot.press("escape")
            await wait_until(pilot, lambda: len(shown(app)) == 5, "escape to clear the filter")
            assert "filter:" not in screen_text(app)

    run(scenario())


def test_sort_by_column_keeps_the_cursor_on_its_event(
    seed: Callable[..., Path], clock: FakeClock, store: Store
) -> None:
    db = seed()
    store.apply_statements([("UPDATE events SET held = 1 WHERE name = ?", [("publish",)])])

    async def scenario() -> None:
        app = make_app(db, clock=clock, start_engine=False)
        async with app.run_test(size=(100, 30)) as pilot:
            await loaded(pilot)
            await select(pilot, "slow")
            await pilot.press("s")  # by state: held (warn) before idle ones
            await wait_until(pilot, lambda: shown(app)[0] == "publish", "the sort by state")
            assert table(app).selected_key() == "slow"
            await pilot.press("s", "s")  # next, then last run
            await pilot.pause()
            assert table(app).selected_key() == "slow"

    run(scenario())


def test_engine_busy_makes_the_console_a_viewer(
    seed: Callable[..., Path], clock: FakeClock, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another engine holds the database (a live pid on this host) but its heartbeat looked
    stale to the first check: Engine.start refuses, and the console attaches instead."""
    db = seed()
    other = Engine(store, clock=clock, pid=os.getppid())
    other.start()
    looks: list[bool] = []

    def stale_at_first(store: Store, now: datetime | None = None) -> bool:
        looks.append(True)
        return len(looks) > 1 and engine_is_live(store, now)

    monkeypatch.setattr("evman.console.app.connect.engine_is_live", stale_at_first)

    async def scenario() -> None:
        app = make_app(db, clock=clock, operator="carol")
        async with app.run_test(size=(100, 30)) as pilot:
            await loaded(pilot)
            await wait_until(pilot, lambda: app.mode != "starting", "the console to decide")
            assert app.mode == "attached" and app.engine is None
            await select(pilot, "fetch")
            await pilot.press("h")
            await wait_until(pilot, lambda: requests(db), "the hold request")
            assert [(r["verb"], r["target"], r["requested_by"], r["handled_at"]) for r in requests(db)] == [
                ("hold", "fetch", "carol", None)
            ]
            other.tick(clock.now())
            await wait_until(
                pilot, lambda: cells(app, "fetch")[0] == "‖ held", "the viewer to see the other engine's change"
            )

    try:
        run(scenario())
    finally:
        other.executors.shutdown(wait_s=0)


@pytest.fixture
def headless(seed: Callable[..., Path]) -> Iterator[tuple[Path, subprocess.Popen[bytes]]]:
    """`evman --no-ui` on a database of events without schedules, as a real process."""
    db = seed("""
        [defaults]
        timezone = "UTC"
        [[event]]
        name = "ping"
        run = "true"
        [[event]]
        name = "pong"
        run = "true"
        requires = "success(ping)"
    """)
    proc = subprocess.Popen(
        [sys.executable, "-m", "evman.console.cli", "--no-ui", "--db", str(db), "--tick", "0.1"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 15
        while not engine_is_live(open_store(db)):
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else "headless engine died"
            assert time.monotonic() < deadline, "the headless engine did not start"
            time.sleep(0.05)
        yield db, proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_attaches_to_a_running_headless_engine(headless: tuple[Path, subprocess.Popen[bytes]]) -> None:
    db, proc = headless

    async def scenario() -> None:
        app = make_app(db, operator="dave")  # the real clock, like the engine's
        async with app.run_test(size=(100, 30)) as pilot:
            await loaded(pilot)
            await wait_until(pilot, lambda: app.mode == "attached", "the console to attach")
            assert app.engine is None
            await wait_until(pilot, lambda: "attached to engine" in screen_text(app), "the header")
            # the header names the engine once the watcher has read its row (a moment later)
            await wait_until(pilot, lambda: f"pid {proc.pid}" in screen_text(app), "the engine's pid in the header")
            await select(pilot, "ping")
            await pilot.press("t")
            await wait_until(
                pilot,
                lambda: query(db, "SELECT state FROM runs WHERE event = 'pong'"),
                "the remote engine to run ping, then pong",
            )
            await select(pilot, "pong")
            await pilot.press("h")
            await wait_until(
                pilot,
                lambda: query(db, "SELECT held FROM events WHERE name = 'pong'")[0]["held"],
                "the remote engine to hold pong",
            )
            assert [(r["verb"], r["target"], r["requested_by"], r["outcome"]) for r in requests(db)] == [
                ("trigger", "ping", "dave", "ok"),
                ("hold", "pong", "dave", "ok"),
            ]
            await wait_until(pilot, lambda: cells(app, "pong")[0] == "‖ held", "the held row")
            await wait_until(pilot, lambda: cells(app, "ping")[0] == "✔ succeeded", "ping's row")

    run(scenario())
    assert proc.poll() is None, "quitting an attached console leaves the engine running"
