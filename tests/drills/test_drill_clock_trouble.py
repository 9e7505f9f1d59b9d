"""Clock trouble drill: the wall clock jumps forward an hour, then back ten minutes (a fake
clock, as a badly set NTP step would). No burst of duplicate runs, each event's misfire policy
applied once, windows judged on the right side of the jump."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from evman.engine.clock import FakeClock
from evman.engine.engine import Engine
from evman.engine.store import Store
from tests.drills.common import REPORTS, connect, insert_request
from tests.outside import found

DEFS = """
    [defaults]
    timezone = "UTC"

    [[event]]
    name = "once"
    run = "true"
    schedule = "*/5 * * * *"

    [[event]]
    name = "all"
    run = "true"
    schedule = "*/5 * * * *"
    misfire = "all"
    concurrency = "queue"

    [[event]]
    name = "skip"
    run = "true"
    schedule = "*/5 * * * *"
    misfire = "skip"

    [[event]]
    name = "interval"
    run = "true"
    schedule = "every 1 minutes"

    [[event]]
    name = "windowed"
    run = "true"
    schedule = "5 0 * * *"
    window = { earliest = "00:40", latest = "01:00" }

    [[event]]
    name = "tomorrow"
    run = "true"
    window = { earliest = "00:40", latest = "01:00" }
"""

SCHEDULED = ("once", "all", "skip", "interval")


def _runs(store: Store) -> list[dict]:
    return [dict(r) for r in store.execute("SELECT * FROM runs ORDER BY id")]


def _walk(engine: Engine, clock: FakeClock, until: datetime, step: timedelta = timedelta(seconds=30)) -> None:
    """Let time pass in steps, ticking (and letting commands finish) at each."""
    while clock.now() < until:
        clock.advance(min(step, until - clock.now()))
        engine.settle(clock.now())


def _by_event(runs: list[dict]) -> Counter[str]:
    return Counter(r["event"] for r in runs)


def _at(hhmm: str) -> datetime:
    hour, minute = (int(p) for p in hhmm.split(":"))
    return datetime(2026, 1, 5, hour, minute, tzinfo=UTC)


@pytest.mark.parametrize("ticks_after_jump", [1, 20])
def test_the_clock_jumps_forward_an_hour_then_back_ten_minutes(
    engine_factory, store: Store, clock: FakeClock, db_path: Path, ticks_after_jump: int
) -> None:
    engine = engine_factory(DEFS)
    _walk(engine, clock, _at("00:20"))
    before = _runs(store)
    assert _by_event(before)["once"] == 4  # 00:05 .. 00:20
    windowed = [r for r in before if r["event"] == "windowed"]
    assert [r["state"] for r in windowed] == ["waiting"]  # created at 00:05, its window opens at 00:40

    # forward an hour: 00:20 -> 01:20
    clock.set(_at("01:20"))
    for _ in range(ticks_after_jump):  # however often it ticks at the new time, the catch-up happens once
        engine.settle(clock.now())
    jumped = [r for r in _runs(store) if r["id"] > before[-1]["id"]]
    made = _by_event(jumped)
    assert made["once"] == 1, "misfire=once: one catch-up run for the twelve missed occurrences"
    assert made["all"] == 12, "misfire=all: each missed occurrence, 00:25 to 01:20"
    assert made["skip"] == 0, "misfire=skip: none"
    assert made["interval"] == 1, "an interval schedule catches up once"
    assert [r["scheduled_for"] for r in jumped if r["event"] == "once"] == ["2026-01-05T01:20:00.000000+00:00"]
    catch_up = [r["triggered_by"] for r in jumped if r["event"] == "once"]
    assert catch_up and "catch-up once for 12" in catch_up[0]
    # the window closed during the jump: the waiting run is missed, once, with one alert
    windowed_run = found(store.run(windowed[0]["id"]))
    assert windowed_run["state"] == "missed"
    missed_alerts = store.execute("SELECT count, kind FROM alerts WHERE event = 'windowed'").fetchall()
    assert [(a["kind"], a["count"]) for a in missed_alerts] == [("missed", 1)]
    # asked for now, after today's window closed, a run waits for tomorrow's window, not missed
    conn = connect(db_path)  # another program's connection: the engine notices its commits
    insert_request(conn, "trigger", "tomorrow", by="drill")
    conn.close()
    engine.settle(clock.now())
    tomorrow = [r for r in _runs(store) if r["event"] == "tomorrow"]
    assert [r["state"] for r in tomorrow] == ["waiting"]
    assert tomorrow[0]["window_open"] == "2026-01-06T00:40:00.000000+00:00"
    assert tomorrow[0]["due_by"] == "2026-01-06T01:00:00.000000+00:00"

    # back ten minutes: 01:20 -> 01:10, then ten minutes pass again up to 01:24:59
    after_jump = _runs(store)
    clock.set(_at("01:10"))
    for _ in range(ticks_after_jump):
        engine.settle(clock.now())
    _walk(engine, clock, _at("01:24") + timedelta(seconds=59))
    replay = [r for r in _runs(store) if r["id"] > after_jump[-1]["id"]]
    made = _by_event(replay)
    for event in ("once", "all", "skip"):
        assert made[event] == 0, f"{event}: the ten minutes lived twice must not fire again"
    interval_fires = sorted(r["scheduled_for"] for r in replay if r["event"] == "interval")
    assert all(f > "2026-01-05T01:20:00" for f in interval_fires), (
        f"interval occurrences before the last one again: {interval_fires}"
    )
    assert found(store.run(windowed_run["id"]))["state"] == "missed"
    assert [r["state"] for r in _runs(store) if r["event"] == "tomorrow"] == ["waiting"]

    # time catches up with the schedule: each event fires once at 01:25
    _walk(engine, clock, _at("01:25") + timedelta(seconds=5))
    final = _runs(store)
    at_0125 = [r["event"] for r in final if r["scheduled_for"] == "2026-01-05T01:25:00.000000+00:00"]
    assert sorted(at_0125) == ["all", "once", "skip"]
    keys = Counter((r["event"], r["scheduled_for"], r["attempt"]) for r in final)
    assert max(keys.values()) == 1
    if ticks_after_jump == 20:
        REPORTS.append(
            f"clock trouble: forward 1 h then back 10 min, {ticks_after_jump} ticks at each new time: "
            f"{len(final)} runs in all; catch-up runs once=1 all=12 skip=0; "
            f"0 runs repeated for the ten minutes lived twice; 1 missed alert"
        )


def test_a_window_that_closed_while_no_engine_ran_is_missed_not_started(
    engine_factory, store: Store, clock: FakeClock
) -> None:
    """The first tick of a restarted engine judges a waiting run's window before starting it."""
    first = engine_factory(DEFS, pid=2**22 + 11)  # a pid that is not alive: the next engine takes over
    _walk(first, clock, _at("00:10"))
    waiting = [r for r in _runs(store) if r["event"] == "windowed"]
    assert [r["state"] for r in waiting] == ["waiting"]
    first.executors.shutdown(wait_s=0)  # the engine dies; its window (00:40-01:00) passes
    clock.set(_at("01:05"))
    second = engine_factory()
    second.settle(clock.now())
    run = found(store.run(waiting[0]["id"]))
    assert run["state"] == "missed" and run["started_at"] is None, run
