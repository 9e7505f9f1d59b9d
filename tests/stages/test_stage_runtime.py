"""Runtime length: overrun (alert; kill=true kills and fails, then retries), too_fast."""

from __future__ import annotations

from datetime import timedelta

import pytest

from evman.engine.clock import FakeClock
from evman.engine.store import Store
from tests.stages.stage_helpers import alerts, runs, trigger, wait_running

pytestmark = pytest.mark.backends


SLOW = """
    [defaults]
    timezone = "UTC"
    [[event]]
    name = "render"
    run = "sleep 30"
    runtime = {{ max = "10m"{kill} }}
    {failure}
"""


def test_running_past_runtime_max_raises_overrun_once_and_keeps_running(
    engine_factory, clock: FakeClock, store: Store
) -> None:
    engine = engine_factory(SLOW.format(kill="", failure=""))
    run_id = trigger(engine, "render", now=clock.now())
    wait_running(engine, clock, run_id)
    clock.advance(timedelta(minutes=9, seconds=59))
    assert not [c for c in engine.tick(clock.now()) if c.kind == "alert"]
    clock.advance(timedelta(seconds=1))
    assert [c.state for c in engine.tick(clock.now()) if c.kind == "alert"] == ["overrun"]
    clock.advance(timedelta(minutes=5))
    assert not [c for c in engine.tick(clock.now()) if c.kind == "alert"]
    (overrun,) = alerts(store, "render", "overrun")
    assert overrun["count"] == 1
    assert "longer than its normal maximum of 10m" in overrun["message"]
    assert "killing" not in overrun["message"]
    assert runs(store, "render")[0]["state"] == "running"


def test_overrun_with_kill_kills_the_run_which_counts_as_failed_and_retries(
    engine_factory, clock: FakeClock, store: Store
) -> None:
    engine = engine_factory(SLOW.format(kill=", kill = true", failure='on_failure = { retries = 1, backoff = "1m" }'))
    run_id = trigger(engine, "render", now=clock.now())
    wait_running(engine, clock, run_id)
    clock.advance(timedelta(minutes=10))
    engine.settle(clock.now())
    first, retry = runs(store, "render")
    assert first["state"] == "failed"
    assert first["reason"] == "killed: runtime max 10m exceeded"
    (overrun,) = alerts(store, "render", "overrun")
    assert "killing it (runtime.kill = true)" in overrun["message"]
    assert (retry["state"], retry["trigger"], retry["attempt"]) == ("waiting", "retry", 2)
    assert retry["repeats_run_id"] == first["id"]
    assert alerts(store, "render", "failed") == [], "a retry is still to come"


def test_overrun_kill_without_retries_raises_a_failed_alert(engine_factory, clock: FakeClock, store: Store) -> None:
    engine = engine_factory(SLOW.format(kill=", kill = true", failure=""))
    run_id = trigger(engine, "render", now=clock.now())
    wait_running(engine, clock, run_id)
    clock.advance(timedelta(minutes=11))
    engine.settle(clock.now())
    assert [r["state"] for r in runs(store, "render")] == ["failed"]
    (failed,) = alerts(store, "render", "failed")
    assert "runtime max 10m exceeded" in failed["message"]


FAST = """
    [defaults]
    timezone = "UTC"
    [[event]]
    name = "export"
    run = "true"
    runtime = { min = "2m" }
"""


def test_too_fast_stays_succeeded_and_the_alert_says_how_fast(engine_factory, clock: FakeClock, store: Store) -> None:
    engine = engine_factory(FAST)
    trigger(engine, "export", now=clock.now())
    engine.settle(clock.now())
    (run,) = runs(store, "export")
    assert run["state"] == "succeeded"
    assert "too_fast" in run["flags"]
    (alert,) = alerts(store, "export", "too_fast")
    assert "succeeded in 0s" in alert["message"]
    assert "normal minimum of 2m" in alert["message"]


def test_a_run_that_takes_its_minimum_is_not_too_fast(engine_factory, clock: FakeClock, store: Store) -> None:
    engine = engine_factory(FAST.replace('run = "true"', 'run = "sleep 1"'))
    run_id = trigger(engine, "export", now=clock.now())
    wait_running(engine, clock, run_id)
    clock.advance(timedelta(minutes=2))  # the fake clock says two minutes passed while it ran
    engine.settle(clock.now())
    (run,) = runs(store, "export")
    assert run["state"] == "succeeded" and not run["flags"]
    assert alerts(store, "export") == []
