"""Console habits and details a new user hit (issue 13, items 6 and 7): vi keys, Kill on K,
the way back from any depth, and screens that agree with each other and with the clock."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from textual.widgets import Tree

from evman.console.app.evman_app import make_app
from evman.console.screens.alerts import AlertsScreen
from evman.console.screens.confirm import ConfirmScreen
from evman.console.screens.events import EventsScreen
from evman.console.screens.help import HelpScreen
from evman.console.screens.overdue import OverdueScreen
from evman.console.screens.run_detail import RunDetailScreen
from evman.console.screens.tree import TreeScreen
from evman.console.widgets.key_bar import KeyBar
from evman.console.widgets.line_table import LineTable
from evman.engine.clock import FakeClock, iso
from evman.engine.paging.notifier import Notifier
from evman.engine.store import RUN_COLUMNS, Store
from tests.console.console_helpers import loaded, requests, run, screen_text, select, table, wait_until


async def _open(pilot: Any, key: str, screen: type, ready: Callable[[Any], object] = lambda s: True) -> Any:
    await pilot.press(key)
    return await wait_until(
        pilot,
        lambda: isinstance(pilot.app.screen, screen) and ready(pilot.app.screen) and pilot.app.screen,
        f"{screen.__name__} after {key}",
    )


def _messages(app: Any) -> list[str]:
    return [n.message for n in app._notifications]


def test_j_and_k_move_the_cursor_like_the_arrows(snapshot_db: Path, clock: FakeClock) -> None:
    async def scenario() -> None:
        app = make_app(snapshot_db, clock=clock, start_engine=False)
        async with app.run_test(size=(100, 30)) as pilot:
            await loaded(pilot)
            events = table(app)
            await pilot.press("j", "j")
            assert events.cursor_row == 2
            await pilot.press("k")
            assert events.cursor_row == 1
            await select(pilot, "fetch-feeds")
            detail = await _open(pilot, "enter", RunDetailScreen, lambda s: s.shown_run == 4)
            await pilot.press("j")
            await wait_until(pilot, lambda: detail.shown_run == 2, "j to select the older run")
            await pilot.press("k")
            await wait_until(pilot, lambda: detail.shown_run == 4, "k to select the newer run again")
            await pilot.press("escape")
            tree = await _open(pilot, "d", TreeScreen, lambda s: s.tree_data)
            widget = tree.query_one(Tree)
            await pilot.press("j")
            assert widget.cursor_line == 1
            await pilot.press("k")
            assert widget.cursor_line == 0

    run(scenario())


def test_kill_is_capital_k_confirmed_and_listed_so(snapshot_db: Path, clock: FakeClock) -> None:
    async def scenario() -> None:
        app = make_app(snapshot_db, clock=clock, start_engine=False)
        async with app.run_test(size=(200, 30)) as pilot:
            await loaded(pilot)
            await select(pilot, "fetch-feeds")  # run 4 is running
            row = table(app).cursor_row
            await pilot.press("k")
            assert not isinstance(app.screen, ConfirmScreen) and table(app).cursor_row == row - 1
            await select(pilot, "fetch-feeds")
            await _open(pilot, "K", ConfirmScreen)
            await pilot.press("y")
            await wait_until(pilot, lambda: requests(snapshot_db), "the kill request")
            assert [(r["verb"], r["target"]) for r in requests(snapshot_db)] == [("kill", "fetch-feeds")]
            assert " K Kill " in app.screen.query_one(KeyBar).render().plain
            await _open(pilot, "question_mark", HelpScreen)
            await pilot.pause(0.1)
            line = next(line for line in screen_text(app).splitlines() if "Kill the selected" in line)
            assert line.split("Kill the selected")[0].split()[-1] == "K", line

    run(scenario())


def test_kill_with_nothing_running_says_so_without_asking(snapshot_db: Path, clock: FakeClock) -> None:
    async def scenario() -> None:
        app = make_app(snapshot_db, clock=clock, start_engine=False)
        async with app.run_test(size=(100, 30), notifications=True) as pilot:
            await loaded(pilot)
            await select(pilot, "build-index")  # idle: never ran
            await pilot.press("K")
            await wait_until(pilot, lambda: any("nothing to kill" in m for m in _messages(app)), "the answer")
            assert not isinstance(app.screen, ConfirmScreen)
            await select(pilot, "nightly-report")  # its only run failed
            detail = await _open(pilot, "enter", RunDetailScreen, lambda s: s.shown_run == 3)
            await pilot.press("K")
            await wait_until(
                pilot,
                lambda: sum("nothing to kill" in m for m in _messages(app)) == 2,
                "the answer on the details screen",
            )
            assert app.screen is detail
            await pilot.pause(0.1)
            assert requests(snapshot_db) == []

    run(scenario())


def test_q_and_escape_go_back_one_and_0_or_home_go_home(snapshot_db: Path, clock: FakeClock) -> None:
    async def scenario() -> None:
        app = make_app(snapshot_db, clock=clock, start_engine=False)
        async with app.run_test(size=(100, 30)) as pilot:
            await loaded(pilot)
            await select(pilot, "fetch-feeds")
            for home_key in ("0", "home"):
                tree = await _open(pilot, "d", TreeScreen, lambda s: s.tree_data)
                await _open(pilot, "enter", RunDetailScreen)
                await pilot.press("q")
                assert app.screen is tree
                await _open(pilot, "enter", RunDetailScreen)
                await _open(pilot, "o", OverdueScreen)
                await _open(pilot, "l", AlertsScreen)
                assert len(app.screen_stack) == 5
                await pilot.press(home_key)
                assert isinstance(app.screen, EventsScreen) and len(app.screen_stack) == 1
                assert app.is_running
            await pilot.press("q")
        assert app.return_value == 0

    run(scenario())


def test_a_missed_run_reads_the_same_in_the_table_and_the_pane(snapshot_db: Path, clock: FakeClock) -> None:
    async def scenario() -> None:
        app = make_app(snapshot_db, clock=clock, start_engine=False)
        async with app.run_test(size=(160, 40)) as pilot:
            await loaded(pilot)
            await select(pilot, "archive")  # run 6: missed, never started
            detail = await _open(pilot, "enter", RunDetailScreen, lambda s: s.shown_run == 6)
            started_cell = detail.query_one(LineTable).row_texts("6")[4].plain
            text = screen_text(app)
            assert started_cell == "not started"
            assert "started -" not in text and "· not started ·" in text, text

    run(scenario())


def test_the_bounds_line_shows_resolved_times(seed: Callable[..., Path], store: Store, clock: FakeClock) -> None:
    db = seed("""
        [defaults]
        timezone = "UTC"
        [[event]]
        name = "announce"
        run = "true"
        schedule = "@reboot"
        window = { latest = "+8s" }
        late_after = "+3s"
    """)
    clock.set(clock.now().replace(hour=12))
    slot = clock.now() - timedelta(hours=1)
    row = dict(
        id=1,
        event="announce",
        state="missed",
        trigger="schedule",
        attempt=1,
        scheduled_for=iso(slot),
        created_at=iso(slot),
        due_by=iso(slot + timedelta(seconds=8)),
        ended_at=iso(slot + timedelta(seconds=8)),
        reason="missed: window closed",
        needs_prepare=0,
    )
    store.insert_runs([{c: row.get(c) for c in RUN_COLUMNS}])
    due = (slot + timedelta(seconds=8)).strftime("%H:%M:%S")
    late = (slot + timedelta(seconds=3)).strftime("%H:%M:%S")

    async def scenario() -> None:
        app = make_app(db, clock=clock, start_engine=False)
        async with app.run_test(size=(160, 40)) as pilot:
            await loaded(pilot)
            await _open(pilot, "enter", RunDetailScreen, lambda s: s.shown_run == 1)
            text = screen_text(app)
            bounds = next(line for line in text.splitlines() if "bounds" in line)
            assert f"window …–{due}" in bounds and f"late after {late}" in bounds, bounds
            assert "+8s" not in bounds.split("(")[0], bounds

    run(scenario())


def test_overdue_lists_only_what_was_missed_in_the_last_24_h(snapshot_db: Path, store: Store, clock: FakeClock) -> None:
    now = clock.now()
    long_ago = now - timedelta(days=273)
    row = dict(
        id=7,
        event="nightly-report",
        state="missed",
        trigger="schedule",
        attempt=1,
        scheduled_for=iso(long_ago),
        created_at=iso(long_ago),
        due_by=iso(long_ago + timedelta(minutes=30)),
        ended_at=iso(now - timedelta(minutes=5)),
        reason="missed: window closed",
        needs_prepare=0,
    )
    store.insert_runs([{c: row.get(c) for c in RUN_COLUMNS}])  # noticed 5 min ago, due 273 days ago

    async def scenario() -> None:
        app = make_app(snapshot_db, clock=clock, start_engine=False)
        async with app.run_test(size=(100, 30)) as pilot:
            await loaded(pilot)
            screen = await _open(pilot, "o", OverdueScreen, lambda s: s.loaded)
            assert "last 24 h" in screen_text(app)
            assert sorted(r["id"] for r in screen.rows.values()) == [4, 5, 6]
            clock.advance(timedelta(hours=22))  # archive's run 6 was due 24.4 h ago now
            screen.load()
            await wait_until(pilot, lambda: 6 not in [r["id"] for r in screen.rows.values()], "run 6 to age out")

    run(scenario())


def test_alert_delivery_without_a_route_says_no_route(snapshot_db: Path, store: Store, clock: FakeClock) -> None:
    """The snapshot batch defines no [routes]: the real notifier records why it cannot send."""
    notifier = Notifier(store, clock, retry_base_s=1)
    for _ in range(3):
        notifier.run_once(clock.now())
        clock.advance(timedelta(minutes=5))
    assert all("no route" in (d["error"] or "") for d in store.deliveries_of([1, 2])[1])

    async def scenario() -> None:
        app = make_app(snapshot_db, clock=clock, start_engine=False)
        async with app.run_test(size=(120, 30)) as pilot:
            await loaded(pilot)
            screen = await _open(pilot, "l", AlertsScreen, lambda s: s.rows)
            shown = [screen.query_one(LineTable).row_texts(key)[6].plain for key in ("1", "2")]
            assert shown == ["no route", "no route"]
            await pilot.pause(0.1)
            assert "[routes]" in screen_text(app), screen_text(app)
            assert "failing" not in screen_text(app)

    run(scenario())
    from evman.console.views import contract

    rows = contract.alert_list(store, event=None, open_only=False, limit=10)
    text = contract.render_alert_list(rows)
    assert "no route" in text and "failing" not in text
    assert set(rows[0]) >= {"outcome", "deliveries", "route"}


def test_a_failing_delivery_fits_its_column(snapshot_db: Path, store: Store, clock: FakeClock) -> None:
    """A route whose target refuses (port 9 on 127.0.0.1, nothing listens) fails for real."""
    from evman.console.views import contract
    from evman.engine.definitions import catalog, parse_definitions

    text = (
        contract.export_text(store, include_secrets=True)
        + "\n[routes]\n"
        + "".join(f'{d} = ["json://127.0.0.1:9/"]\n' for d in ("ops", "night", "lead"))
    )
    catalog.save(
        store,
        parse_definitions(text, source="defs.toml", base_dir=snapshot_db.parent, known_events=store.event_names()),
        now=clock.now(),
    )
    notifier = Notifier(store, clock, retry_base_s=1, timeout_s=2)
    notifier.run_once(clock.now())
    attempts = store.deliveries_of([1])[1]
    assert attempts and "no route" not in (attempts[0]["error"] or ""), attempts

    async def scenario() -> None:
        app = make_app(snapshot_db, clock=clock, start_engine=False)
        async with app.run_test(size=(120, 30)) as pilot:
            await loaded(pilot)
            await _open(pilot, "l", AlertsScreen, lambda s: s.rows)
            await pilot.pause(0.1)
            line = next(line for line in screen_text(app).splitlines() if "alert:1 " in line)
            assert "failing ×1" in line and "…" not in line.split("failing")[1][:4], line

    run(scenario())
