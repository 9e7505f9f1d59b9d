"""The other screens: tree, overdue, alerts, run details (with a live log), help."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from textual.widgets import Log, Tree
from textual.widgets.tree import TreeNode

from evman.console.app.evman_app import make_app
from evman.console.screens.alerts import AlertsScreen
from evman.console.screens.events import EventsScreen
from evman.console.screens.help import HelpScreen
from evman.console.screens.overdue import OverdueScreen
from evman.console.screens.run_detail import RunDetailScreen
from evman.console.screens.tree import REPEAT_MARK, TreeScreen
from evman.console.widgets.event_table import EventTable
from evman.console.widgets.line_table import LineTable
from evman.engine.clock import FakeClock
from tests.console.console_helpers import engine_running, loaded, query, requests, run, screen_text, select, wait_until


def _labels(tree: Tree[str]) -> list[str]:
    out: list[str] = []

    def walk(node: TreeNode[str]) -> None:
        out.append(str(node.label))
        for child in node.children:
            walk(child)

    walk(tree.root)
    return out


def test_tree_shows_upstream_downstream_and_a_diamond_once(snapshot_db: Path, clock: FakeClock) -> None:
    async def scenario() -> None:
        app = make_app(snapshot_db, clock=clock, start_engine=False)
        async with app.run_test(size=(100, 30)) as pilot:
            await loaded(pilot)
            await select(pilot, "fetch-feeds")
            await pilot.press("d")
            await wait_until(pilot, lambda: isinstance(app.screen, TreeScreen) and app.screen.tree_data, "the tree")
            labels = _labels(app.screen.query_one(Tree))
            assert labels[0].startswith("▶ fetch-feeds  running")
            assert labels[1] == "needs: success(collect-garbage)"
            assert labels[2].startswith("✔ collect-garbage  succeeded")
            publish = [label for label in labels if "publish" in label]
            assert len(publish) == 2, publish  # reached through promote-to-test and build-index
            assert sum(label.endswith(REPEAT_MARK) for label in publish) == 1
            assert any("waiting — success(promote-to-test) is false" in label for label in publish)
            await pilot.press("escape")
            assert isinstance(app.screen, EventsScreen)

    run(scenario())


def test_overdue_lists_what_is_late_most_late_first(snapshot_db: Path, clock: FakeClock) -> None:
    async def scenario() -> None:
        app = make_app(snapshot_db, clock=clock, start_engine=False)
        async with app.run_test(size=(100, 30)) as pilot:
            await loaded(pilot)
            await pilot.press("o")
            await wait_until(
                pilot, lambda: isinstance(app.screen, OverdueScreen) and app.screen.loaded, "the overdue screen"
            )
            screen = app.screen
            assert isinstance(screen, OverdueScreen)
            rows = [(r["kind"], r["event"], r["id"]) for r in screen.rows.values()]
            assert rows == [("missed", "archive", 6), ("late", "publish", 5), ("overdue", "fetch-feeds", 4)]
            text = screen_text(app)
            assert "2h6m" in text or "2h" in text  # archive's window closed at 04:06

    run(scenario())


def test_alerts_ack_the_selected_alert(snapshot_db: Path, clock: FakeClock) -> None:
    async def scenario() -> None:
        app = make_app(snapshot_db, clock=clock, start_engine=False, operator="erin")
        async with app.run_test(size=(100, 30)) as pilot:
            await loaded(pilot)
            await pilot.press("l")
            await wait_until(pilot, lambda: isinstance(app.screen, AlertsScreen) and app.screen.rows, "the alerts")
            assert app.screen.query_one(LineTable).selected_key() == "2"  # newest unacked first
            await pilot.press("down", "a")
            await wait_until(pilot, lambda: requests(snapshot_db), "the ack request")
            await pilot.press("A")
            await wait_until(pilot, lambda: len(requests(snapshot_db)) == 2, "the ack-all request")
            assert [(r["verb"], r["target"], r["requested_by"]) for r in requests(snapshot_db)] == [
                ("ack", "alert:1", "erin"),
                ("ack", "nightly-report", "erin"),
            ]

    run(scenario())


def test_details_follow_a_running_commands_output(seed: Callable[..., Path], clock: FakeClock) -> None:
    db = seed("""
        [defaults]
        timezone = "UTC"
        [[event]]
        name = "chatty"
        shell = "echo first line; sleep 0.6; echo second line; sleep 0.6; echo last line"
    """)

    async def scenario() -> None:
        app = make_app(db, clock=clock)
        async with app.run_test(size=(100, 30)) as pilot:
            await loaded(pilot)
            await engine_running(pilot)
            await select(pilot, "chatty")
            await pilot.press("t")
            await wait_until(
                pilot, lambda: query(db, "SELECT state FROM runs WHERE state = 'running'"), "chatty to start"
            )
            await pilot.press("enter")
            await wait_until(pilot, lambda: isinstance(app.screen, RunDetailScreen), "the details")
            log = app.screen.query_one(Log)
            await wait_until(pilot, lambda: "first line" in "\n".join(log.lines), "the first line")
            assert "last line" not in "\n".join(log.lines)
            await wait_until(pilot, lambda: "second line" in "\n".join(log.lines), "the second line, live")
            await wait_until(pilot, lambda: "last line" in "\n".join(log.lines), "the last line")
            await wait_until(pilot, lambda: "✔ succeeded" in screen_text(app), "the run to finish on screen")
            assert "\n".join(log.lines).count("first line") == 1
            assert "· following" not in screen_text(app)

    run(scenario())


def test_details_of_a_finished_run_show_checks_and_stored_output(snapshot_db: Path, clock: FakeClock) -> None:
    async def scenario() -> None:
        app = make_app(snapshot_db, clock=clock, start_engine=False)
        async with app.run_test(size=(120, 40)) as pilot:
            await loaded(pilot)
            await select(pilot, "nightly-report")
            await pilot.press("enter")
            await wait_until(
                pilot, lambda: isinstance(app.screen, RunDetailScreen) and app.screen.shown_run, "the details"
            )
            text = screen_text(app)
            assert "3 · exit code 3" in text
            log = app.screen.query_one(Log)
            await wait_until(pilot, lambda: "report: no data" in "\n".join(log.lines), "the stored tail")
            await pilot.press("escape")
            await select(pilot, "fetch-feeds")
            await pilot.press("enter")
            await wait_until(
                pilot,
                lambda: isinstance(app.screen, RunDetailScreen) and app.screen.shown_run == 4,
                "fetch-feeds' running run",
            )
            await pilot.press("down")
            await wait_until(pilot, lambda: "✔ feeds/today.json" in screen_text(app), "run 2's output check")

    run(scenario())


def test_help_opens_and_closes(seed: Callable[..., Path], clock: FakeClock) -> None:
    db = seed()

    async def scenario() -> None:
        app = make_app(db, clock=clock, start_engine=False)
        async with app.run_test(size=(80, 24)) as pilot:
            await loaded(pilot)
            await pilot.press("question_mark")
            assert isinstance(app.screen, HelpScreen)
            assert "Kill the selected event's active run" in screen_text(app)
            await pilot.press("escape")
            assert isinstance(app.screen, EventsScreen)
            await pilot.press("q")
        assert app.return_value == 0

    run(scenario())


def test_theme_switch_recolours_the_rows(snapshot_db: Path, clock: FakeClock) -> None:
    async def scenario() -> None:
        app = make_app(snapshot_db, clock=clock, start_engine=False)
        async with app.run_test(size=(100, 30)) as pilot:
            await loaded(pilot)
            dark = dict(app.palette)
            app.theme = "textual-light"
            await pilot.pause(0.2)
            assert app.palette["ok"] != dark["ok"]
            row = app.screen.query_one(EventTable).row_texts("collect-garbage")
            assert row[0].style == app.palette["ok"]

    run(scenario())


def test_every_registered_screen_opens_by_its_key_and_is_listed(snapshot_db: Path, clock: FakeClock) -> None:
    """The registry is the one way to a screen: each key opens what its line names, from the
    events table and from a screen above it, and help and footer list every shared key."""
    from evman.console.screens.registry import KEYS, Chosen
    from evman.console.widgets.key_bar import KeyBar

    openers = [k for k in KEYS if k.opens is not None]
    assert {k.action for k in openers} >= {"details", "tree", "overdue", "alerts", "help"}

    async def scenario() -> None:
        app = make_app(snapshot_db, clock=clock, start_engine=False)
        async with app.run_test(size=(200, 40)) as pilot:
            await loaded(pilot)
            footer = app.screen.query_one(KeyBar).render().plain
            assert all(f"{k.label} " in footer for k in KEYS if k.key != "enter"), footer
            for key in openers:
                for depth in (1, 2):
                    await select(pilot, "fetch-feeds")
                    if depth == 2:
                        await pilot.press("d")
                        await wait_until(pilot, lambda: isinstance(app.screen, TreeScreen), "the tree")
                    assert key.opens is not None
                    want = type(key.opens(Chosen("fetch-feeds", None)))
                    await pilot.press(key.key)
                    await wait_until(
                        pilot,
                        lambda: isinstance(app.screen, want),  # noqa: B023
                        f"{key.key} to open {want.__name__}",
                    )
                    assert len(app.screen_stack) == depth + 1
                    if want is HelpScreen:
                        text = screen_text(app)
                        assert all(k.what[:30] in text for k in KEYS), text
                    while len(app.screen_stack) > 1:
                        await pilot.press("escape")

    run(scenario())
