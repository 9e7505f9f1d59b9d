"""Resource pools in the engine, on both backends: a pool of 2 never has 3 holders under a burst
of 50 due runs, a waiting run says which pool and who holds it, the line is priority then due
time, a run keeps its place (no overtaking by smaller runs), and slots free when a run ends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from evman.engine.clock import FakeClock
from evman.engine.coordination.pools import Claimant, arbitrate
from evman.engine.store import Store
from tests.outside import found
from tests.stages import pool_jobs
from tests.stages.stage_helpers import ask, runs, wait_until

pytestmark = pytest.mark.backends


def burst(key: str, count: int = 50, slots: int = 2) -> str:
    events = "".join(
        f"""
    [[event]]
    name = "load-{i:02d}"
    call = "tests.stages.pool_jobs:hold"
    env = {{ POOL_KEY = "{key}" }}
    schedule = "0 2 * * *"
    uses = {{ warehouse = 1 }}
    """
        for i in range(count)
    )
    return f"""
    [pools]
    warehouse = {slots}
    {events}"""


def holders(store: Store) -> list[dict[str, object]]:
    return store.dicts("SELECT id, event FROM runs WHERE state = 'running' AND pools LIKE '%warehouse=%'")


def test_a_pool_of_2_never_has_3_holders_under_a_burst_of_50(
    engine_factory, clock: FakeClock, store: Store, backend: str
) -> None:
    key = f"burst-{backend}"
    pool_jobs.reset(key)
    engine = engine_factory(burst(key))
    clock.set(clock.now().replace(hour=2, minute=0, second=0))
    most = 0
    while True:
        engine.tick(clock.now())
        held = holders(store)
        most = max(most, len(held))
        assert len(held) <= 2, held
        assert sum(1 for r in engine.active_runs() if r.state.value == "running") <= 2
        if all(r["state"] == "succeeded" for r in runs(store)) and len(runs(store)) == 50:
            break
        wait_until(lambda: engine._outcomes.qsize() > 0 or not engine.active_runs(), 5, "an outcome")
    assert most == 2  # the pool was used to its size, never past it
    assert pool_jobs.peak[key] == 2  # nor did more than 2 of the callables ever execute at once
    assert store.dicts("SELECT count(*) AS n FROM runs WHERE pools = 'warehouse=1'")[0]["n"] == 50


LINE = """
    [pools]
    db = 1
    disk = 2
    [[event]]
    name = "holder"
    run = "sleep 30"
    uses = ["db"]
    [[event]]
    name = "low"
    call = "builtins:print"
    uses = { db = 1 }
    [[event]]
    name = "high"
    call = "builtins:print"
    uses = { db = 1 }
    priority = 10
    [[event]]
    name = "big"
    call = "builtins:print"
    uses = { db = 1, disk = 2 }
    [[event]]
    name = "small"
    call = "builtins:print"
    uses = { disk = 1 }
"""


def test_a_waiting_run_says_which_pool_and_who_holds_it_and_the_line_is_priority_then_due(
    engine_factory, clock: FakeClock, store: Store, tmp_path: Path
) -> None:
    engine = engine_factory(LINE)
    holder = int(ask(engine, "trigger", "holder")["detail"].split()[1])
    wait_until(lambda: (engine.tick(clock.now()) is not None) and found(store.run(holder))["pid"] is not None)
    clock.advance(timedelta(seconds=1))
    low = int(ask(engine, "trigger", "low")["detail"].split()[1])
    clock.advance(timedelta(seconds=1))
    high = int(ask(engine, "trigger", "high")["detail"].split()[1])
    engine.tick(clock.now())
    assert found(store.run(high))["waiting_reason"] == f"waiting for pool db (1 of 1 held by holder run {holder})"
    assert found(store.run(low))["waiting_reason"] == (
        f"waiting for pool db (1 of 1 held by holder run {holder}; next in line: high run {high})"
    )
    assert found(store.run(low))["pools"] == "db=1"  # in line: the console and the other engines see it
    ask(engine, "kill", "holder")
    engine.settle(clock.now())
    engine.settle(clock.now())
    high_row, low_row = found(store.run(high)), found(store.run(low))
    assert high_row["state"] == "succeeded" and low_row["state"] == "succeeded"
    assert high_row["started_at"] <= low_row["started_at"]  # priority 10 went first, though it fell due later
    assert high_row["ended_at"] <= low_row["started_at"]  # one at a time: a pool of 1 is a lock


def test_a_run_keeps_its_place_smaller_runs_behind_it_do_not_overtake(
    engine_factory, clock: FakeClock, store: Store
) -> None:
    engine = engine_factory(LINE)
    holder = int(ask(engine, "trigger", "holder")["detail"].split()[1])
    engine.tick(clock.now())
    clock.advance(timedelta(seconds=1))
    big = int(ask(engine, "trigger", "big")["detail"].split()[1])  # needs db (held) and both disk slots
    clock.advance(timedelta(seconds=1))
    small = int(ask(engine, "trigger", "small")["detail"].split()[1])  # disk has 2 free: it would fit
    engine.tick(clock.now())
    assert found(store.run(small))["state"] == "waiting"
    assert (
        found(store.run(small))["waiting_reason"] == f"waiting for pool disk (0 of 2 held; next in line: big run {big})"
    )
    assert found(store.run(big))["waiting_reason"] == f"waiting for pool db (1 of 1 held by holder run {holder})"
    ask(engine, "kill", "holder")
    engine.settle(clock.now())
    engine.settle(clock.now())
    assert found(store.run(big))["started_at"] <= found(store.run(small))["started_at"]
    assert [found(store.run(i))["state"] for i in (big, small)] == ["succeeded", "succeeded"]


def test_a_long_wait_ages_a_low_priority_run_past_newer_high_priority_ones(
    engine_factory, clock: FakeClock, store: Store
) -> None:
    engine = engine_factory(LINE)
    ask(engine, "trigger", "holder")
    engine.tick(clock.now())
    low = int(ask(engine, "trigger", "low")["detail"].split()[1])
    clock.advance(timedelta(hours=2))  # 12 steps of aging: priority 0 + 12 > 10
    high = int(ask(engine, "trigger", "high")["detail"].split()[1])
    ask(engine, "kill", "holder")
    engine.settle(clock.now())
    engine.settle(clock.now())
    assert found(store.run(low))["started_at"] <= found(store.run(high))["started_at"]


def test_a_run_behind_one_given_the_last_slot_in_the_same_decision_names_it_as_the_holder() -> None:
    """Two runs ready for a pool of 1 in one tick: the second's reason names the first, which got
    the slot a moment before, not "0 of 1 held" (what a reader of runs.waiting_reason sees)."""
    at = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
    first = Claimant(1, "extract", {"lock": 1}, holding=False, due_at=at)
    second = Claimant(2, "load", {"lock": 1}, holding=False, due_at=at + timedelta(seconds=1))
    decision = arbitrate({"lock": 1}, [first, second], at + timedelta(seconds=5))
    assert decision.start == [1]
    assert decision.why[2].startswith("waiting for pool lock (1 of 1 held by extract run 1")
