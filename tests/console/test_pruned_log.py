"""A run whose log retention deleted: the details say so and show the stored tail."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from console_helpers import loaded, run, screen_text, select, wait_until
from textual.widgets import Log

from evman.console.app.evman_app import make_app
from evman.console.screens.run_detail import RunDetailScreen
from evman.engine.clock import FakeClock


def test_details_of_a_run_whose_log_was_pruned(snapshot_db: Path, clock: FakeClock) -> None:
    with sqlite3.connect(snapshot_db) as conn:
        conn.execute(
            "UPDATE runs SET log_pruned_at = '2026-01-01T00:00:00.000000+00:00', log_path = ? "
            "WHERE event = 'nightly-report'",
            (str(snapshot_db.parent / "gone" / "3.log"),),
        )

    async def scenario() -> None:
        app = make_app(snapshot_db, clock=clock, start_engine=False)
        async with app.run_test(size=(120, 40)) as pilot:
            await loaded(pilot)
            await select(pilot, "nightly-report")
            await pilot.press("enter")
            await wait_until(
                pilot, lambda: isinstance(app.screen, RunDetailScreen) and app.screen.shown_run, "the details"
            )
            log = app.screen.query_one(Log)
            await wait_until(pilot, lambda: "report: no data" in "\n".join(log.lines), "the stored tail")
            assert "the log file was pruned" in "\n".join(log.lines)
            assert "log pruned" in screen_text(app)
            assert "cannot read" not in "\n".join(log.lines)

    run(scenario())
