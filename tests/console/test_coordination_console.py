"""The console's coordination: groups folded and unfolded with their state (and h/t/u on a
group's line name the whole group), the pools screen with holders and waiters in line order,
and the approve key with its comment."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from evman.console.app.evman_app import make_app
from evman.console.screens.decide import DecideScreen
from evman.console.screens.pools import PoolsScreen
from evman.console.widgets.line_table import LineTable
from evman.engine.clock import FakeClock
from tests.console.console_helpers import cells, engine_running, loaded, query, requests, run, select, shown, wait_until

GROUPED = """
    [defaults]
    timezone = "UTC"
    [pools]
    lock = 1
    [[event]]
    name = "extract"
    shell = "sleep 30"
    group = "nightly"
    uses = ["lock"]
    [[event]]
    name = "load"
    run = "true"
    group = "nightly"
    uses = ["lock"]
    [[event]]
    name = "promote"
    run = "true"
    approval = { timeout = "4h" }
"""


def test_a_group_is_one_line_that_folds_shows_its_state_and_holds_as_one(
    seed: Callable[..., Path], clock: FakeClock
) -> None:
    db = seed(GROUPED)

    async def scenario() -> None:
        app = make_app(db, clock=clock, operator="alice")
        async with app.run_test(size=(120, 30)) as pilot:
            await loaded(pilot, count=2)
            await engine_running(pilot)
            assert shown(app) == ["group:nightly", "promote"]
            assert cells(app, "group:nightly")[:2] == ["· idle", "▸ nightly (2)"]
            await select(pilot, "group:nightly")
            await pilot.press("g")
            assert shown(app) == ["group:nightly", "extract", "load", "promote"]
            assert cells(app, "group:nightly")[1] == "▾ nightly (2)"
            await select(pilot, "group:nightly")
            await pilot.press("h")
            await wait_until(
                pilot,
                lambda: all(r["held"] for r in query(db, "SELECT held FROM events WHERE group_name = 'nightly'")),
                "the engine to hold the group",
            )
            (req,) = requests(db)
            assert (req["verb"], req["target"], req["outcome"]) == ("hold", "group:nightly", "ok")
            await wait_until(pilot, lambda: cells(app, "group:nightly")[0] == "‖ held", "the group line to say held")
            await select(pilot, "extract")
            await pilot.press("g")  # on an event of the group: folds its group
            assert shown(app) == ["group:nightly", "promote"]

    run(scenario())


def test_the_pools_screen_shows_holders_and_the_line(seed: Callable[..., Path], clock: FakeClock) -> None:
    db = seed(GROUPED)

    async def scenario() -> None:
        app = make_app(db, clock=clock, operator="alice")
        async with app.run_test(size=(120, 30)) as pilot:
            await loaded(pilot, count=2)
            await engine_running(pilot)
            await select(pilot, "group:nightly")
            await pilot.press("t")  # the group's first events: both (neither follows the other)
            await wait_until(
                pilot,
                lambda: query(db, "SELECT count(*) AS n FROM runs WHERE state = 'running' AND pools = 'lock=1'")[0][
                    "n"
                ],
                "one of them to hold the lock",
            )
            await pilot.press("P")
            await wait_until(pilot, lambda: isinstance(app.screen, PoolsScreen) and app.screen.loaded, "the pools")
            pools = app.screen
            assert isinstance(pools, PoolsScreen)
            texts = [" ".join(c.plain for c in pools.query_one(LineTable).row_texts(k)) for k in pools.rows]
            holder, waiter = query(db, "SELECT id, event, state FROM runs ORDER BY state")
            assert texts[0].startswith("lock 1 of 1") and "1 waiting" in texts[0]
            assert f"holds run:{holder['id']} {holder['event']}" in texts[1]
            assert f"#1 in line run:{waiter['id']} {waiter['event']}" in texts[2]
            assert "waiting for pool lock (1 of 1 held by" in texts[2]

    run(scenario())


def test_the_approve_key_asks_for_a_comment_and_sends_it(seed: Callable[..., Path], clock: FakeClock) -> None:
    db = seed(GROUPED)

    async def scenario() -> None:
        app = make_app(db, clock=clock, operator="carol")
        async with app.run_test(size=(120, 30)) as pilot:
            await loaded(pilot, count=2)
            await engine_running(pilot)
            await select(pilot, "promote")
            await pilot.press("t")
            await wait_until(pilot, lambda: cells(app, "promote")[0] == "◷ waiting", "the run to await approval")
            await pilot.press("A")
            await wait_until(pilot, lambda: isinstance(app.screen, DecideScreen), "the question")
            await pilot.press(*"looks good")
            await pilot.press("enter")
            await wait_until(
                pilot,
                lambda: query(db, "SELECT state FROM runs WHERE event = 'promote'")[0]["state"] == "succeeded",
                "the approved run to run",
            )
            approve = requests(db)[-1]
            assert (approve["verb"], approve["target"], approve["requested_by"]) == ("approve", "promote", "carol")
            assert approve["args"] == '{"comment": "looks good"}' and approve["outcome"] == "ok"
            (row,) = query(db, "SELECT approval FROM runs WHERE event = 'promote'")
            assert '"by": "carol (request' in row["approval"] and '"comment": "looks good"' in row["approval"]

    run(scenario())
