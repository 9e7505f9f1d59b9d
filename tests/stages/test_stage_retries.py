"""On error: retries with doubling backoff, prepare before each retry and restart, error events,
failed and recovered alerts."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from evman.engine.clock import FakeClock, parse_iso
from evman.engine.store import Store
from tests.outside import found
from tests.stages.stage_helpers import alerts, ask, runs, trigger

pytestmark = pytest.mark.backends


FLAKY = """
    [defaults]
    timezone = "UTC"
    [[event]]
    name = "upload"
    shell = "test -e ok"
    on_failure = {{ retries = 3, backoff = "30s"{extra} }}
"""


def _backoffs(store: Store) -> list[float]:
    """For each retry: not_before minus the end of the run it repeats, in seconds."""
    by_id = {r["id"]: r for r in runs(store, "upload")}
    return [
        (parse_iso(r["not_before"]) - parse_iso(by_id[r["repeats_run_id"]]["ended_at"])).total_seconds()
        for r in by_id.values()
        if r["trigger"] == "retry"
    ]


def _fail_through(engine, clock: FakeClock, store: Store, count: int) -> None:
    """Let `count` retries come due one after another, checking none starts a second early."""
    for _ in range(count):
        waiting = [r for r in runs(store, "upload") if r["state"] == "waiting"][-1]
        due = parse_iso(waiting["not_before"])
        clock.set(due - timedelta(seconds=1))
        engine.settle(clock.now())
        assert found(store.run(waiting["id"]))["state"] == "waiting"
        assert found(store.run(waiting["id"]))["waiting_reason"].startswith("retry backoff until ")
        clock.set(due)
        engine.settle(clock.now())
        assert found(store.run(waiting["id"]))["state"] == "failed"


def test_retry_backoff_doubles_from_backoff(engine_factory, clock: FakeClock, store: Store, tmp_path: Path) -> None:
    engine = engine_factory(FLAKY.format(extra=""))
    trigger(engine, "upload", now=clock.now())
    engine.settle(clock.now())
    _fail_through(engine, clock, store, 3)
    assert _backoffs(store) == [30, 60, 120]
    assert [(r["attempt"], r["state"]) for r in runs(store, "upload")] == [
        (1, "failed"),
        (2, "failed"),
        (3, "failed"),
        (4, "failed"),
    ]
    (failed,) = alerts(store, "upload", "failed")
    assert "after 4 attempt(s)" in failed["message"]


def test_backoff_is_capped_by_backoff_max(engine_factory, clock: FakeClock, store: Store) -> None:
    engine = engine_factory(FLAKY.format(extra=', backoff_max = "45s"'))
    trigger(engine, "upload", now=clock.now())
    engine.settle(clock.now())
    _fail_through(engine, clock, store, 3)
    assert _backoffs(store) == [30, 45, 45]


def test_a_retry_that_succeeds_ends_the_chain_without_a_failed_alert(
    engine_factory, clock: FakeClock, store: Store, tmp_path: Path
) -> None:
    engine = engine_factory(FLAKY.format(extra=""))
    trigger(engine, "upload", now=clock.now())
    engine.settle(clock.now())
    (tmp_path / "ok").touch()
    clock.advance(timedelta(seconds=30))
    engine.settle(clock.now())
    assert [(r["attempt"], r["state"], r["trigger"]) for r in runs(store, "upload")] == [
        (1, "failed", "trigger"),
        (2, "succeeded", "retry"),
    ]
    assert alerts(store, "upload") == []


PREPARED = """
    [defaults]
    timezone = "UTC"
    [[event]]
    name = "build"
    shell = "test -e ok"
    on_failure = {{ retries = 2, backoff = "10s", prepare = "{prepare}" }}
"""


def test_prepare_runs_before_each_retry(engine_factory, clock: FakeClock, store: Store, tmp_path: Path) -> None:
    engine = engine_factory(PREPARED.format(prepare="echo $EVMAN_ATTEMPT >> prepared.txt"))
    marker = tmp_path / "prepared.txt"
    trigger(engine, "build", now=clock.now())
    engine.settle(clock.now())
    assert not marker.exists(), "no prepare before the first attempt"
    clock.advance(timedelta(seconds=10))
    engine.settle(clock.now())
    assert marker.read_text().split() == ["2"]
    clock.advance(timedelta(seconds=20))
    engine.settle(clock.now())
    assert marker.read_text().split() == ["2", "3"]
    assert [r["state"] for r in runs(store, "build")] == ["failed"] * 3


def test_prepare_runs_before_an_operator_restart(
    engine_factory, clock: FakeClock, store: Store, tmp_path: Path
) -> None:
    engine = engine_factory(
        PREPARED.format(prepare="touch ok; echo restart >> prepared.txt").replace("retries = 2", "retries = 0")
    )
    trigger(engine, "build", now=clock.now())
    engine.settle(clock.now())
    (first,) = runs(store, "build")
    assert first["state"] == "failed"
    row = ask(engine, "restart", f"run:{first['id']}", by="bob", now=clock.now())
    assert row["outcome"] == "ok"
    engine.settle(clock.now())
    assert (tmp_path / "prepared.txt").read_text() == "restart\n"
    first, again = runs(store, "build")
    assert (again["trigger"], again["state"], again["repeats_run_id"]) == ("restart", "succeeded", first["id"])
    assert again["triggered_by"].startswith("bob")
    assert again["attempt"] == 2


def test_a_failing_prepare_stops_the_retries_and_raises_a_failed_alert(
    engine_factory, clock: FakeClock, store: Store, tmp_path: Path
) -> None:
    engine = engine_factory(PREPARED.format(prepare="echo tried >> prepared.txt; exit 3"))
    trigger(engine, "build", now=clock.now())
    engine.settle(clock.now())
    clock.advance(timedelta(seconds=10))
    engine.settle(clock.now())
    clock.advance(timedelta(hours=1))
    engine.settle(clock.now())
    first, retry = runs(store, "build")
    assert retry["state"] == "failed" and retry["started_at"] is None
    assert retry["reason"] == "prepare failed (exit 3); retries stopped"
    assert (tmp_path / "prepared.txt").read_text() == "tried\n"
    (failed,) = alerts(store, "build", "failed")
    assert "prepare failed" in failed["message"] and failed["run_id"] == retry["id"]


ERRORS = """
    [defaults]
    timezone = "UTC"
    [[event]]
    name = "publish"
    run = "false"
    on_failure = { retries = 1, backoff = "5s", trigger = ["page-editor", "roll-back"] }
    [[event]]
    name = "page-editor"
    shell = "echo paged >> paged.txt"
    [[event]]
    name = "roll-back"
    run = "true"
"""


def test_error_events_start_once_the_retries_are_exhausted(
    engine_factory, clock: FakeClock, store: Store, tmp_path: Path
) -> None:
    engine = engine_factory(ERRORS)
    trigger(engine, "publish", now=clock.now())
    engine.settle(clock.now())
    assert runs(store, "page-editor") == [], "not while a retry is still to come"
    clock.advance(timedelta(seconds=5))
    engine.settle(clock.now())
    last = runs(store, "publish")[-1]
    assert (last["attempt"], last["state"]) == (2, "failed")
    for name in ("page-editor", "roll-back"):
        (run,) = runs(store, name)
        assert (run["trigger"], run["triggered_by"], run["state"]) == ("on_failure", f"run:{last['id']}", "succeeded")
    assert (tmp_path / "paged.txt").read_text() == "paged\n"


RECOVERS = """
    [defaults]
    timezone = "UTC"
    [[event]]
    name = "sync"
    shell = "test -e ok"
    schedule = "every 1 hours"
    window = { latest = "23:00" }
"""


def test_success_after_a_failure_raises_recovered_and_resolves_open_alerts(
    engine_factory, clock: FakeClock, store: Store, tmp_path: Path
) -> None:
    engine = engine_factory(RECOVERS)
    clock.advance(timedelta(hours=1))
    engine.settle(clock.now())
    (failed,) = alerts(store, "sync", "failed")
    assert failed["status"] == "open"
    clock.advance(timedelta(hours=1))
    engine.settle(clock.now())
    assert alerts(store, "sync", "failed")[0]["count"] == 2, "one open alert per (event, kind)"
    (tmp_path / "ok").touch()
    clock.advance(timedelta(hours=1))
    engine.settle(clock.now())
    (failed,) = alerts(store, "sync", "failed")
    assert failed["status"] == "resolved" and failed["resolved_at"] is not None
    (recovered,) = alerts(store, "sync", "recovered")
    assert recovered["run_id"] == runs(store, "sync")[-1]["id"]
    assert "succeeded again" in recovered["message"]
    clock.advance(timedelta(hours=1))
    engine.settle(clock.now())
    assert len(alerts(store, "sync", "recovered")) == 1, "recovered only after a failure"
