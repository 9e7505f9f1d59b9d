"""Backfill (once per slot, with the live runs' unique key; paced by --max-parallel; never holding
up a live run) and holds until a time, by pattern and by tag."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from evman.engine.clock import FakeClock
from evman.engine.store import Store
from tests.stages.stage_helpers import ask, runs

pytestmark = pytest.mark.backends

DAILY = """
    [calendars.std]
    weekend = ["sat", "sun"]

    [[event]]
    name = "report"
    shell = "sleep 0.2"
    schedule = "0 6 * * *"
    timezone = "UTC"
    calendar = "std"

    [[event]]
    name = "etl-a"
    call = "builtins:print"
    schedule = "0 * * * *"

    [[event]]
    name = "etl-b"
    call = "builtins:print"
    schedule = "0 * * * *"
"""


def at(day: int, hour: int = 0) -> datetime:
    return datetime(2026, 1, day, hour, tzinfo=UTC)


def test_backfill_makes_only_the_missing_business_day_slots(engine_factory, clock: FakeClock, store: Store) -> None:
    clock.set(at(7, 5))  # Wednesday
    engine = engine_factory(DAILY)
    clock.set(at(7, 6))
    engine.settle(clock.now())  # the live run of Wednesday 7th
    args = {"from": at(1).isoformat(), "to": at(7, 23).isoformat(), "max_parallel": 2}
    row = ask(engine, "backfill", "report", args=args, now=clock.now())
    assert row["outcome"] == "ok" and row["detail"].startswith("4 occurrence(s) queued"), row
    for _ in range(60):
        clock.advance(timedelta(seconds=1))
        engine.settle(clock.now())
        if all(r["state"] not in ("waiting", "running") for r in runs(store, "report")):
            break
    done = runs(store, "report")
    slots = sorted(r["scheduled_for"][:10] for r in done)
    # 1-2 Jan Thu/Fri, 5-6 Mon/Tue, the live 7th: weekend days 3-4 are not business days
    assert slots == ["2026-01-01", "2026-01-02", "2026-01-05", "2026-01-06", "2026-01-07"]
    assert {r["trigger"] for r in done if r["scheduled_for"][:10] != "2026-01-07"} == {"backfill"}
    assert all(r["state"] == "succeeded" for r in done)
    again = ask(engine, "backfill", "report", args=args, now=clock.now())
    assert again["detail"] == "0 occurrence(s) queued; every slot already has a run"
    assert len(runs(store, "report")) == 5


def test_backfill_runs_at_most_max_parallel_at_once(engine_factory, clock: FakeClock, store: Store) -> None:
    clock.set(at(12, 5))
    engine = engine_factory(DAILY)
    ask(engine, "backfill", "report", args={"from": at(5).isoformat(), "to": at(9, 23).isoformat(), "max_parallel": 2})
    running = [r for r in runs(store, "report") if r["state"] == "running"]
    waiting = [r for r in runs(store, "report") if r["state"] == "waiting"]
    assert len(running) == 2 and len(waiting) == 3
    assert waiting[0]["waiting_reason"].startswith("queued behind run")


def test_a_bad_backfill_says_why(engine_factory, clock: FakeClock) -> None:
    engine = engine_factory(DAILY)
    row = ask(engine, "backfill", "report", args={"from": at(9).isoformat(), "to": at(5).isoformat()})
    assert "is before from" in row["outcome"]


def test_hold_until_releases_by_itself(engine_factory, clock: FakeClock, store: Store) -> None:
    clock.set(at(5, 0))
    engine = engine_factory(DAILY)
    row = ask(engine, "hold", "etl-*", args={"until": at(5, 2).isoformat()})
    assert row["outcome"] == "ok" and row["detail"].startswith("2 events (etl-a, etl-b) held until 2026-01-05T02:00:00")
    clock.set(at(5, 1))
    engine.settle(clock.now())
    assert [r["waiting_reason"] for r in runs(store, "etl-a")] == ["held"]
    clock.set(at(5, 2))
    engine.settle(clock.now())
    engine.settle(clock.now())
    assert store.event_row("etl-a")["held"] == 0 and store.event_row("etl-b")["held_until"] is None
    assert [r["state"] for r in runs(store, "etl-a")][0] in ("succeeded", "skipped")


@pytest.mark.sqlite_only  # on PostgreSQL tags also choose the engine
def test_hold_and_release_by_tag(engine_factory, clock: FakeClock, store: Store) -> None:
    engine = engine_factory(DAILY.replace('name = "etl-b"', 'name = "etl-b"\n    tags = ["night"]'))
    assert ask(engine, "hold", "tag:night")["detail"] == "etl-b held"
    assert store.event_row("etl-b")["held"] == 1 and store.event_row("etl-a")["held"] == 0
    assert ask(engine, "release", "tag:night")["detail"] == "etl-b released"
    assert "no event has the tag 'day'" in ask(engine, "hold", "tag:day")["outcome"]
    assert "until" in ask(engine, "hold", "etl-a", args={"until": "2000-01-01T00:00:00+00:00"})["outcome"]
