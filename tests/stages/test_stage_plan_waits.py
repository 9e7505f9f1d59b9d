"""The plan counts what coordination makes a run wait for (issue 22): a run in a pool's line
starts no earlier than the run holding its slot is projected to finish, and a run awaiting
approval no earlier than now, so the slack each loses shows, with the reason, in `evman plan`
(text and --json) — the real engine on a fake clock over a real SQLite file."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, timedelta
from typing import Any

import pytest

from evman.console.views.plan import plan_json, render_plan
from evman.engine.clock import FakeClock, parse_iso
from evman.engine.foresight.reading import read_tonight
from evman.engine.foresight.waits import NO_WAITS
from evman.engine.store import Store
from tests.outside import found
from tests.stages.stage_helpers import evman, trigger

EXPECT_HOLDER = timedelta(hours=1)
EXPECT_LOAD = timedelta(minutes=20)

LOCK = """
    [defaults]
    timezone = "UTC"
    [pools]
    lock = 1
    [[event]]
    name = "extract"
    run = "sleep 600"
    uses = ["lock"]
    expect = "1h"
    runtime = { max = "1h" }
    [[event]]
    name = "load"
    call = "builtins:print"
    uses = ["lock"]
    expect = "20m"
    runtime = { max = "20m" }
    deadline = "+3h"
"""
"""expect = runtime.max: both run times are known exactly (no history: p50 = expect, p90 = max)."""


def rows(view: Any) -> dict[str, dict[str, Any]]:
    return {row["event"]: row for row in plan_json(view)}


def ts(stamp: str | None) -> float:
    at = parse_iso(stamp)
    assert at is not None
    return at.timestamp()


def test_a_run_in_a_pools_line_starts_after_its_holder_and_the_plan_says_so(
    engine_factory, clock: FakeClock, store: Store
) -> None:
    engine = engine_factory(LOCK)
    holder = trigger(engine, "extract")
    engine.tick(clock.now())
    assert found(store.run(holder))["state"] == "running"
    clock.advance(timedelta(minutes=10))
    waiter = trigger(engine, "load")
    engine.tick(clock.now())
    run = found(store.run(waiter))
    assert run["state"] == "waiting" and run["pools"] == "lock=1"
    assert run["waiting_reason"] == f"waiting for pool lock (1 of 1 held by extract run {holder})"

    now = clock.now()
    tonight = read_tonight(store, now)
    gated = rows(tonight.project())
    free = rows(replace(tonight, waits=NO_WAITS).project())  # the same facts, as if no pool counted
    load, extract = gated["load"], gated["extract"]
    holder_ends = ts(extract["finish_p50"])
    assert holder_ends == pytest.approx((now + EXPECT_HOLDER - timedelta(minutes=10)).timestamp(), abs=2)
    # without the pool it would start now; with it, once extract is projected to end
    assert ts(free["load"]["projected_start"]) == pytest.approx(now.timestamp(), abs=2)
    assert ts(load["projected_start"]) >= holder_ends - 1
    assert ts(load["finish_p50"]) == pytest.approx(holder_ends + EXPECT_LOAD.total_seconds(), abs=2)
    # the slack it loses is the holder's remaining time (50 minutes), no more, no less
    remaining = holder_ends - now.timestamp()
    assert free["load"]["slack_s"] - load["slack_s"] == pytest.approx(remaining, abs=5)
    assert load["slack_s"] == pytest.approx(
        (timedelta(hours=3) - timedelta(minutes=50) - EXPECT_LOAD).total_seconds(), abs=5
    )
    assert load["waiting_on"] == f"pool lock: behind run {holder} extract (p50 ends 01:00); 50m of slack lost"
    assert free["load"]["waiting_on"] is None and extract["waiting_on"] is None

    text = render_plan(tonight.project(), UTC)
    assert f"  load: pool lock: behind run {holder} extract (p50 ends 01:00); 50m of slack lost" in text.splitlines()
    assert evman(store.target, "plan", "--json", "--at", now.isoformat()) == plan_json(tonight.project())


APPROVAL = """
    [defaults]
    timezone = "UTC"
    driver = "ops"
    [routes]
    ops = ["json://127.0.0.1:9/ops"]
    [[event]]
    name = "promote"
    call = "builtins:print"
    expect = "20m"
    runtime = {{ max = "20m" }}
    deadline = "+2h"
    approval = {{ timeout = "4h", on_timeout = "{on_timeout}" }}
"""


@pytest.mark.parametrize(("on_timeout", "then"), [("skip", "then it is skipped"), ("fail", "then it fails")])
def test_a_pending_approval_costs_slack_minute_by_minute_and_the_plan_says_so(
    engine_factory, clock: FakeClock, store: Store, on_timeout: str, then: str
) -> None:
    engine = engine_factory(APPROVAL.format(on_timeout=on_timeout))
    asked_at = clock.now()
    run_id = trigger(engine, "promote")
    engine.tick(clock.now())
    assert found(store.run(run_id))["waiting_reason"].startswith("awaiting approval from ops since ")

    before = rows(read_tonight(store, clock.now()).project())["promote"]
    assert before["state"] == "waiting"
    assert before["slack_s"] == pytest.approx((timedelta(hours=2) - timedelta(minutes=20)).total_seconds(), abs=2)
    said = f"awaiting approval since 00:00 (timeout 4h, at 04:00; {then})"
    assert before["waiting_on"] == said

    clock.advance(timedelta(minutes=30))
    engine.tick(clock.now())
    assert found(store.run(run_id))["state"] == "waiting"  # nobody decided, the timeout is hours off
    view = read_tonight(store, clock.now()).project()
    after = rows(view)["promote"]
    assert before["slack_s"] - after["slack_s"] == pytest.approx(30 * 60, abs=2)
    assert ts(after["projected_start"]) == pytest.approx(clock.now().timestamp(), abs=2)
    assert ts(after["projected_start"]) - asked_at.timestamp() == pytest.approx(30 * 60, abs=2)
    assert after["waiting_on"] == f"{said}; 30m of slack lost"
    assert f"  promote: {said}; 30m of slack lost" in render_plan(view, UTC).splitlines()
