"""Every console key writes the right request row, and the in-process engine acts on it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from evman.console.app.evman_app import make_app
from evman.console.screens.confirm import ConfirmScreen
from evman.engine.clock import FakeClock
from tests.console.console_helpers import cells, engine_running, loaded, query, requests, run, select, wait_until


def _event_row(db: Path, name: str) -> dict:
    return query(db, "SELECT * FROM events WHERE name = ?", name)[0]


def _runs(db: Path, name: str) -> list[dict]:
    return query(db, "SELECT * FROM runs WHERE event = ? ORDER BY id", name)


def test_hold_then_release_go_through_the_mailbox(seed: Callable[..., Path], clock: FakeClock) -> None:
    db = seed()

    async def scenario() -> None:
        app = make_app(db, clock=clock, operator="alice")
        async with app.run_test(size=(100, 30)) as pilot:
            await loaded(pilot)
            await engine_running(pilot)
            await select(pilot, "report")
            await pilot.press("h")
            await wait_until(pilot, lambda: _event_row(db, "report")["held"] == 1, "the engine to hold report")
            [req] = requests(db)
            assert (req["verb"], req["target"], req["requested_by"]) == ("hold", "report", "alice")
            assert req["outcome"] == "ok"
            assert _event_row(db, "report")["held_by"].startswith("alice")
            await wait_until(pilot, lambda: cells(app, "report")[0] == "‖ held", "the row to show held")
            await pilot.press("u")
            await wait_until(pilot, lambda: _event_row(db, "report")["held"] == 0, "the release")
            assert [r["verb"] for r in requests(db)] == ["hold", "release"]
            await wait_until(pilot, lambda: cells(app, "report")[0] != "‖ held", "the row to drop held")

    run(scenario())


def test_trigger_starts_a_run_that_appears_live(seed: Callable[..., Path], clock: FakeClock) -> None:
    db = seed()

    async def scenario() -> None:
        app = make_app(db, clock=clock)
        async with app.run_test(size=(100, 30), notifications=True) as pilot:
            await loaded(pilot)
            await engine_running(pilot)
            await select(pilot, "broken")
            await pilot.press("t")
            await wait_until(
                pilot, lambda: [r["state"] for r in _runs(db, "broken")] == ["failed"], "broken to run and fail"
            )
            [req] = requests(db)
            assert (req["verb"], req["target"], req["requested_by"]) == ("trigger", "broken", "test")
            await wait_until(pilot, lambda: cells(app, "broken")[0] == "✘ failed", "the row to show failed")
            assert cells(app, "broken")[6] == "⚠ 1"
            await wait_until(
                pilot,
                lambda: any("trigger broken" in n.message for n in app._notifications),
                "the outcome notification",
            )

    run(scenario())


def test_restart_and_ack_after_a_failure(seed: Callable[..., Path], clock: FakeClock) -> None:
    db = seed()

    async def scenario() -> None:
        app = make_app(db, clock=clock, operator="bob")
        async with app.run_test(size=(100, 30)) as pilot:
            await loaded(pilot)
            await engine_running(pilot)
            await select(pilot, "broken")
            await pilot.press("t")
            await wait_until(pilot, lambda: len(query(db, "SELECT * FROM alerts")) == 1, "the failure alert")
            await pilot.press("r")
            await wait_until(
                pilot,
                lambda: len(_runs(db, "broken")) == 2 and _runs(db, "broken")[1]["state"] == "failed",
                "the restart to run",
            )
            assert _runs(db, "broken")[1]["trigger"] == "restart"
            await pilot.press("a")
            await wait_until(
                pilot,
                lambda: query(db, "SELECT acknowledged_by FROM alerts")[0]["acknowledged_by"],
                "the acknowledgement",
            )
            assert [(r["verb"], r["target"]) for r in requests(db)] == [
                ("trigger", "broken"),
                ("restart", "broken"),
                ("ack", "broken"),
            ]
            assert query(db, "SELECT acknowledged_by FROM alerts")[0]["acknowledged_by"].startswith("bob")
            await wait_until(pilot, lambda: cells(app, "broken")[6] == "", "the alerts column to clear")

    run(scenario())


def test_kill_asks_first_cancel_writes_nothing(seed: Callable[..., Path], clock: FakeClock) -> None:
    db = seed()

    async def scenario() -> None:
        app = make_app(db, clock=clock)
        async with app.run_test(size=(100, 30)) as pilot:
            await loaded(pilot)
            await engine_running(pilot)
            await select(pilot, "slow")
            await pilot.press("t")
            await wait_until(pilot, lambda: [r["state"] for r in _runs(db, "slow")] == ["running"], "slow to run")
            # as an operator does: K once the row shows the run (the screen reads what it knows)
            await wait_until(pilot, lambda: "running" in cells(app, "slow")[0], "the row to show running")
            await pilot.press("K")
            await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the confirmation")
            await pilot.press("n")
            await wait_until(pilot, lambda: not isinstance(app.screen, ConfirmScreen), "the dialog to close")
            await pilot.pause(0.2)
            assert [r["verb"] for r in requests(db)] == ["trigger"]
            assert _runs(db, "slow")[0]["state"] == "running"
            await pilot.press("K")
            await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the confirmation")
            await pilot.press("y")
            await wait_until(pilot, lambda: _runs(db, "slow")[0]["state"] == "killed", "the kill")
            assert [(r["verb"], r["target"]) for r in requests(db)] == [("trigger", "slow"), ("kill", "slow")]
            await wait_until(pilot, lambda: cells(app, "slow")[0] == "☠ killed", "the row to show killed")

    run(scenario())


def test_escape_also_cancels_a_kill(snapshot_db: Path, clock: FakeClock) -> None:
    db = snapshot_db

    async def scenario() -> None:
        app = make_app(db, clock=clock, start_engine=False)
        async with app.run_test(size=(100, 30)) as pilot:
            await loaded(pilot)
            await select(pilot, "fetch-feeds")  # its run 4 is running
            await pilot.press("K")
            await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the confirmation")
            await pilot.press("escape")
            await wait_until(pilot, lambda: not isinstance(app.screen, ConfirmScreen), "the dialog to close")
            await pilot.pause(0.1)
            assert requests(db) == []

    run(scenario())


def test_readonly_console_sends_nothing(seed: Callable[..., Path], clock: FakeClock) -> None:
    db = seed()

    async def scenario() -> None:
        app = make_app(db, clock=clock, readonly=True)
        async with app.run_test(size=(100, 30), notifications=True) as pilot:
            await loaded(pilot)
            await select(pilot, "fetch")
            for key in "thuarK":
                await pilot.press(key)
            await pilot.pause(0.2)
            assert requests(db) == []
            assert app.mode == "none", "a read-only console must not drive the batch"
            messages = [n.message for n in app._notifications]
            assert any("read-only" in m and "hold fetch" in m for m in messages), messages
            assert not isinstance(app.screen, ConfirmScreen)

    run(scenario())


def test_command_palette_finds_actions(seed: Callable[..., Path], clock: FakeClock) -> None:
    db = seed()

    async def scenario() -> None:
        app = make_app(db, clock=clock, start_engine=False)
        async with app.run_test(size=(100, 30)) as pilot:
            await loaded(pilot)
            await select(pilot, "publish")
            await pilot.press("ctrl+p")
            await pilot.pause(0.2)
            await pilot.press(*"hold the event")
            await pilot.pause(0.5)
            await pilot.press("enter")
            await wait_until(pilot, lambda: requests(db), "the hold request")
            [req] = requests(db)
            assert (req["verb"], req["target"]) == ("hold", "publish")

    run(scenario())


def test_quit_stops_the_engine_after_its_running_command(seed: Callable[..., Path], clock: FakeClock) -> None:
    db = seed("""
        [defaults]
        timezone = "UTC"
        [[event]]
        name = "nap"
        shell = "sleep 0.6; echo rested"
    """)

    async def scenario() -> None:
        import asyncio

        app = make_app(db, clock=clock)
        async with app.run_test(size=(100, 30)) as pilot:
            await loaded(pilot)
            await engine_running(pilot)
            await pilot.press("t")
            await wait_until(pilot, lambda: [r["state"] for r in _runs(db, "nap")] == ["running"], "nap to run")
            await pilot.press("q")
            assert app.mode == "stopping"
            for _ in range(200):
                if app.return_value is not None:
                    break
                await asyncio.sleep(0.02)
        assert app.return_value == 0

    run(scenario())
    assert [(r["state"], r["exit_code"]) for r in _runs(db, "nap")] == [("succeeded", 0)]
    assert query(db, "SELECT stopped_at FROM engine")[0]["stopped_at"] is not None
