"""Snapshots of the console on a fixed batch and a fixed clock (review SVG diffs like code;
update with --snapshot-update)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from textual.pilot import Pilot

from evman.console.app.evman_app import EvmanApp, make_app
from evman.console.screens.overdue import OverdueScreen
from evman.console.screens.run_detail import RunDetailScreen
from evman.console.screens.tree import TreeScreen
from evman.engine.clock import FakeClock
from tests.console.console_helpers import loaded, select, wait_until

SnapCompare = Callable[..., bool]


def _app(db: Path, clock: FakeClock, theme: str | None = None) -> EvmanApp:
    app = make_app(db, clock=clock, start_engine=False, operator="night-shift")
    if theme is not None:
        app.theme = theme
    return app


def _then(*steps: Callable[[Pilot[Any]], Awaitable[None]]) -> Callable[[Pilot[Any]], Awaitable[None]]:
    async def run_before(pilot: Pilot[Any]) -> None:
        await loaded(pilot)
        await wait_until(
            pilot, lambda: isinstance(pilot.app, EvmanApp) and pilot.app.mode == "none", "the console to settle"
        )
        for step in steps:
            await step(pilot)
        await pilot.pause(0.2)

    return run_before


def _open(key: str, event: str | None, screen: type, ready: str) -> Callable[[Pilot[Any]], Awaitable[None]]:
    async def step(pilot: Pilot[Any]) -> None:
        if event is not None:
            await select(pilot, event)
        await pilot.press(key)
        await wait_until(
            pilot,
            lambda: isinstance(pilot.app.screen, screen) and getattr(pilot.app.screen, ready),
            f"the {screen.__name__}",
        )

    return step


def test_main_screen(snap_compare: SnapCompare, snapshot_db: Path, clock: FakeClock) -> None:
    assert snap_compare(_app(snapshot_db, clock), terminal_size=(100, 30), run_before=_then())


def test_main_screen_80x24_light(snap_compare: SnapCompare, snapshot_db: Path, clock: FakeClock) -> None:
    assert snap_compare(_app(snapshot_db, clock, theme="textual-light"), terminal_size=(80, 24), run_before=_then())


def test_dependency_tree(snap_compare: SnapCompare, snapshot_db: Path, clock: FakeClock) -> None:
    assert snap_compare(
        _app(snapshot_db, clock),
        terminal_size=(100, 30),
        run_before=_then(_open("d", "fetch-feeds", TreeScreen, "tree_data")),
    )


def test_overdue_view(snap_compare: SnapCompare, snapshot_db: Path, clock: FakeClock) -> None:
    assert snap_compare(
        _app(snapshot_db, clock), terminal_size=(100, 30), run_before=_then(_open("o", None, OverdueScreen, "loaded"))
    )


def test_run_details(snap_compare: SnapCompare, snapshot_db: Path, clock: FakeClock) -> None:
    async def log_shown(pilot: Pilot[Any]) -> None:
        from textual.widgets import Log

        await wait_until(pilot, lambda: pilot.app.screen.query_one(Log).line_count >= 3, "the log")

    assert snap_compare(
        _app(snapshot_db, clock),
        terminal_size=(100, 30),
        run_before=_then(_open("enter", "fetch-feeds", RunDetailScreen, "shown_run"), log_shown),
    )
