"""On completion: on_success chains, condition-started events, and what started every run."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from evman.engine.clock import FakeClock
from evman.engine.store import Store, open_store
from tests.outside import found
from tests.stages.stage_helpers import ask, evman, runs, trigger

pytestmark = pytest.mark.backends


CHAIN = """
    [defaults]
    timezone = "UTC"
    [[event]]
    name = "fetch"
    run = "true"
    schedule = "every 1 hours"
    on_success = ["build"]
    [[event]]
    name = "build"
    shell = "test ! -e broken"
    on_success = ["promote-test"]
    [[event]]
    name = "promote-test"
    run = "true"
    on_success = ["promote-prod"]
    [[event]]
    name = "promote-prod"
    run = "true"
    requires = "success(promote-test) and notrunning(build)"
    window = { earliest = "01:30", latest = "23:00" }
    [[event]]
    name = "notify"
    run = "true"
    requires = "success(promote-prod) and success(fetch)"
"""


def test_an_on_success_chain_runs_in_order_and_records_who_started_each_run(
    engine_factory, clock: FakeClock, store: Store
) -> None:
    engine = engine_factory(CHAIN)
    clock.advance(timedelta(hours=1))
    engine.settle(clock.now())
    (fetch,) = runs(store, "fetch")
    (build,) = runs(store, "build")
    (test,) = runs(store, "promote-test")
    (prod,) = runs(store, "promote-prod")
    assert (fetch["trigger"], fetch["state"]) == ("schedule", "succeeded")
    assert (build["trigger"], build["triggered_by"], build["state"]) == (
        "on_success",
        f"run:{fetch['id']}",
        "succeeded",
    )
    assert (test["trigger"], test["triggered_by"], test["state"]) == ("on_success", f"run:{build['id']}", "succeeded")
    assert fetch["id"] < build["id"] < test["id"] < prod["id"]
    assert build["started_at"] >= fetch["ended_at"] and test["started_at"] >= build["ended_at"]
    assert (prod["trigger"], prod["triggered_by"]) == ("on_success", f"run:{test['id']}")
    assert (prod["state"], prod["waiting_reason"]) == ("waiting", "window opens at 01:30 UTC"), (
        "a follower obeys its own window"
    )
    assert runs(store, "notify") == []
    clock.advance(timedelta(minutes=30))
    engine.settle(clock.now())
    (prod,) = runs(store, "promote-prod")
    assert prod["state"] == "succeeded" and prod["started_at"] >= test["ended_at"]
    (notify,) = runs(store, "notify")
    assert (notify["trigger"], notify["triggered_by"], notify["state"]) == (
        "condition",
        f"run:{prod['id']}",
        "succeeded",
    )


def test_a_failed_run_starts_no_followers(engine_factory, clock: FakeClock, store: Store, tmp_path: Path) -> None:
    engine = engine_factory(CHAIN)
    (tmp_path / "broken").touch()
    clock.advance(timedelta(hours=1))
    engine.settle(clock.now())
    assert [r["state"] for r in runs(store, "build")] == ["failed"]
    assert runs(store, "promote-test") == []


BOTH = """
    [defaults]
    timezone = "UTC"
    [[event]]
    name = "images"
    run = "true"
    [[event]]
    name = "texts"
    run = "true"
    [[event]]
    name = "bundle"
    run = "true"
    requires = "success(images) and success(texts)"
"""


def test_an_unscheduled_event_starts_only_when_its_whole_condition_holds(
    engine_factory, clock: FakeClock, store: Store
) -> None:
    engine = engine_factory(BOTH)
    trigger(engine, "images", now=clock.now())
    engine.settle(clock.now())
    assert runs(store, "bundle") == [], "success(texts) is still false"
    clock.advance(timedelta(minutes=1))
    texts = trigger(engine, "texts", now=clock.now())
    engine.settle(clock.now())
    (bundle,) = runs(store, "bundle")
    assert (bundle["trigger"], bundle["triggered_by"], bundle["state"]) == ("condition", f"run:{texts}", "succeeded")


def test_two_requests_in_one_tick_make_two_queued_runs(
    engine_factory, clock: FakeClock, store: Store, db_path: Path
) -> None:
    engine = engine_factory(BOTH.replace('name = "images"', 'name = "images"\n    concurrency = "queue"'))
    other = open_store(db_path)
    first = other.add_request("trigger", "images", requested_by="a")
    second = other.add_request("trigger", "images", requested_by="b")
    other.close()
    engine.tick(clock.now())
    details = [found(store.request(i))["detail"] for i in (first, second)]
    engine.settle(clock.now())
    made = runs(store, "images")
    assert [f"run {r['id']}" for r in made] == details
    assert [r["state"] for r in made] == ["succeeded", "succeeded"]


EVERY_TRIGGER = """
    [defaults]
    timezone = "UTC"
    [[event]]
    name = "warm-cache"
    run = "true"
    schedule = "@reboot"
    [[event]]
    name = "hourly"
    run = "true"
    schedule = "every 1 hours"
    [[event]]
    name = "upload"
    shell = "test $EVMAN_ATTEMPT -ge 3"
    on_failure = { retries = 1, backoff = "10s" }
"""


def test_every_run_records_what_started_it(engine_factory, clock: FakeClock, store: Store, db_path: Path) -> None:
    engine = engine_factory(EVERY_TRIGGER)
    engine.settle(clock.now())
    clock.advance(timedelta(hours=1))
    engine.settle(clock.now())
    trigger(engine, "upload", by="dave", now=clock.now())
    engine.settle(clock.now())
    clock.advance(timedelta(seconds=10))
    engine.settle(clock.now())
    first, retry = runs(store, "upload")
    assert ask(engine, "restart", "upload", by="erin", now=clock.now())["outcome"] == "ok"
    engine.settle(clock.now())
    seen = {(r["event"], r["trigger"], r["triggered_by"]) for r in runs(store)}
    assert seen == {
        ("warm-cache", "reboot", "engine start"),
        ("hourly", "schedule", None),
        ("upload", "trigger", "dave (request 1)"),
        ("upload", "retry", f"retry 1 of 1 after run {first['id']}"),
        ("upload", "restart", "erin (request 2)"),
    }
    restart = runs(store, "upload")[-1]
    assert (retry["repeats_run_id"], restart["repeats_run_id"]) == (first["id"], retry["id"])
    assert (restart["attempt"], restart["state"]) == (3, "succeeded")
    history = evman(db_path, "history", "upload", "--json")
    assert [(r["trigger"], r["triggered_by"]) for r in history] == [
        ("restart", "erin (request 2)"),
        ("retry", f"retry 1 of 1 after run {first['id']}"),
        ("trigger", "dave (request 1)"),
    ]
