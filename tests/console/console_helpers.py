"""Driving the console in tests: run a scenario, wait for a condition, read the database."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

from textual.pilot import Pilot

from evman.console.app.evman_app import EvmanApp
from evman.console.screens.events import EventsScreen
from evman.console.widgets.event_table import EventTable

T = TypeVar("T")


def run(scenario: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(scenario)


async def wait_until(pilot: Pilot[Any], ready: Callable[[], Any], what: str, timeout_s: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = ready()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        await pilot.pause(0.02)


def query(db: Path, sql: str, *params: Any) -> list[dict[str, Any]]:
    """Read the database through a connection of its own, as another program would."""
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute(sql, params)]
    finally:
        conn.close()


def requests(db: Path) -> list[dict[str, Any]]:
    return query(db, "SELECT * FROM requests ORDER BY id")


def table(app: Any) -> EventTable:
    return app.screen.query_one(EventTable)


def shown(app: Any) -> list[str]:
    """The event names in the main table, in screen order."""
    return table(app).shown_names()


def cells(app: Any, name: str) -> list[str]:
    return [c.plain for c in table(app).row_texts(name)]


async def loaded(pilot: Pilot[Any], count: int | None = None) -> None:
    """Wait for the first screen: every event in the table (or `count` of them)."""
    app = pilot.app

    def ready() -> bool:
        screen = app.screen
        if not isinstance(screen, EventsScreen) or not screen.loaded:
            return False
        t = table(app)
        want = len(screen.rows) if count is None else count
        return t.row_count == want

    await wait_until(pilot, ready, "the events table to fill")


async def engine_running(pilot: Pilot[Any]) -> None:
    await wait_until(
        pilot, lambda: isinstance(pilot.app, EvmanApp) and pilot.app.mode == "engine", "the in-process engine to start"
    )


async def select(pilot: Pilot[Any], name: str) -> None:
    assert table(pilot.app).move_to(name), f"{name} is not in the table"
    await pilot.pause()


def screen_text(app: Any) -> str:
    update = app.screen._compositor.render_update(full=True)
    return "\n".join("".join(seg.text for seg in strip) for strip in update.strips)
