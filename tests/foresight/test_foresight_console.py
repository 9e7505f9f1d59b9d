"""The plan view (`p`) and the main table's slack column, driven with the Pilot on the
nightly database (examples/make_nightly_db.py), the clock fixed at tonight's 01:55."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from evman.console.app.evman_app import make_app
from evman.console.screens.events import EventsScreen
from evman.console.screens.plan import PlanScreen
from evman.console.screens.run_detail import RunDetailScreen
from evman.console.views import plan
from evman.console.widgets.event_table import EventTable
from evman.console.widgets.line_table import LineTable
from evman.engine.clock import FakeClock
from evman.engine.store import open_store

AT = datetime.fromisoformat("2026-03-21T01:55:00+00:00")


@pytest.fixture(scope="module")
def nightly(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from examples import make_nightly_db

    out = tmp_path_factory.mktemp("nightly-console") / "nightly.db"
    make_nightly_db.build(out)
    return out


async def until(pilot: Pilot[Any], ready: Callable[[], Any], what: str, timeout_s: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while not (value := ready()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.02)
    return value


def texts(table: LineTable, name: str) -> list[str]:
    return [t.plain for t in table.row_texts(name)]


async def slack_shown(pilot: Pilot[Any], app: Any) -> Any:
    """The events screen, once its rows and its slack column are in."""
    await until(pilot, lambda: isinstance(app.screen, EventsScreen) and app.screen.loaded, "the events table")
    screen = app.screen
    await until(pilot, lambda: screen.slack, "the slack column")
    return screen


def expected(db: Path, event: str) -> tuple[str, str, str]:
    """(slack, miss, tone) of `event` as `evman plan` computes them at AT."""
    store = open_store(db)
    try:
        view = plan.plan_view(store, AT)
    finally:
        store.close()
    row = view.plan[event]
    return plan.slack_text(row.slack_s, bounded=not row.is_unbounded), plan.miss_text(row), plan.tone(row)


def test_the_plan_view_sorts_by_probability_draws_the_axis_and_opens_the_event(nightly: Path) -> None:
    async def scenario() -> None:
        app = make_app(nightly, clock=FakeClock(AT), start_engine=False)
        async with app.run_test(size=(160, 30)) as pilot:
            await until(pilot, lambda: isinstance(app.screen, EventsScreen) and app.screen.loaded, "the events table")
            await pilot.press("p")
            await until(pilot, lambda: isinstance(app.screen, PlanScreen) and app.screen.loaded, "the plan")
            screen = app.screen
            assert isinstance(screen, PlanScreen)
            table = screen.query_one(LineTable)
            order = table.shown_names()
            assert order[:4] == ["publish-reports", "new-report", "refresh-dashboards", "backup"]
            publish = texts(table, "publish-reports")
            slack, miss, tone = expected(nightly, "publish-reports")
            assert publish[0] == "publish-reports" and publish[2] == slack and publish[3] == miss
            assert publish[5] == "03:30" and miss.endswith(" %") and 20 <= int(miss.split()[0]) <= 90
            bar = publish[4]
            assert bar.startswith("│") and "━" in bar and "┃" in bar
            late = slack.startswith("-")
            assert (bar.index("━") > bar.index("┃")) == late  # the p50 on the deadline's side the slack says
            assert bar.rstrip("·").endswith("━")  # ...and the p90 past the deadline
            assert screen.rows["publish-reports"]["tone"] == tone
            assert screen.rows["backup"]["tone"] == "ok" and screen.rows["transform"]["tone"] == "muted"
            assert "axis 01:55 to" in str(screen.query_one("#title").render())
            await pilot.press("enter")
            await until(pilot, lambda: isinstance(app.screen, RunDetailScreen), "the event's details")
            details = app.screen
            assert isinstance(details, RunDetailScreen) and details.event == "publish-reports"

    asyncio.run(scenario())


def test_the_main_table_shows_the_slack_of_events_with_a_deadline(nightly: Path) -> None:
    async def scenario() -> None:
        app = make_app(nightly, clock=FakeClock(AT), start_engine=False)
        async with app.run_test(size=(160, 30)) as pilot:
            screen = await slack_shown(pilot, app)
            slack, miss, tone = expected(nightly, "publish-reports")
            assert screen.slack["publish-reports"] == (f"{slack} {miss}", tone)
            assert screen.slack["backup"] == ("+2h33m 0 %", "ok") and "transform" not in screen.slack
            table = screen.query_one(EventTable)
            labels = [c.label for c in table.columns]
            row = dict(zip(labels, texts(table, "publish-reports"), strict=False))
            assert row["Slack"] == f"{slack} {miss}" and row["Event"] == "publish-reports"
            assert dict(zip(labels, texts(table, "transform"), strict=False))["Slack"] == ""

    asyncio.run(scenario())


def test_the_slack_column_follows_a_change_without_waiting_for_the_next_round(nightly: Path, tmp_path: Path) -> None:
    """A driver holds publish-reports from another program: within seconds (not the 30 s
    round) its slack says it will not make it unless someone acts."""
    db = tmp_path / "nightly.db"
    shutil.copy(nightly, db)

    async def scenario() -> None:
        app = make_app(db, clock=FakeClock(AT), start_engine=False)
        async with app.run_test(size=(160, 30)) as pilot:
            screen = await slack_shown(pilot, app)
            slack, miss, tone = expected(db, "publish-reports")
            assert screen.slack["publish-reports"] == (f"{slack} {miss}", tone)
            with sqlite3.connect(db) as conn:
                conn.execute("UPDATE events SET held = 1 WHERE name = 'publish-reports'")
            await until(
                pilot,
                lambda: screen.slack["publish-reports"] != (f"{slack} {miss}", tone),
                "the slack after the hold",
                timeout_s=15.0,
            )
            assert screen.slack["publish-reports"] == (f"{plan.slack_text(None, bounded=False)} 100 %", "bad")

    asyncio.run(scenario())
