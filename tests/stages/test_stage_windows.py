"""Runtime windows: across midnight, late, overdue (once), missed."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from evman.engine.clock import FakeClock, parse_iso
from evman.engine.model import EventSpec, Window
from evman.engine.store import Store
from evman.engine.timing.windows import bounds_for
from tests.outside import found
from tests.stages.stage_helpers import alerts, ask, runs, wait_running, wait_until

pytestmark = pytest.mark.backends


NIGHT = """
    [defaults]
    timezone = "UTC"
    [[event]]
    name = "nightly"
    run = "true"
    schedule = "every day at {at}"
    window = {{ earliest = "22:00", latest = "02:00" }}
"""


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 1, day, hour, minute, tzinfo=UTC)


def test_a_window_across_midnight_belongs_to_the_night_it_covers() -> None:
    spec = EventSpec(name="n", run=("true",), window=Window("22:00", "02:00"))
    evening, late_night, early, after = (bounds_for(spec, t) for t in (at(5, 21), at(5, 23), at(6, 1), at(6, 3)))
    assert (evening.open_at, evening.due_by) == (at(5, 22), at(6, 2))
    assert (late_night.open_at, late_night.due_by) == (at(5, 22), at(6, 2))
    assert (early.open_at, early.due_by) == (at(5, 22), at(6, 2))
    assert (after.open_at, after.due_by) == (at(6, 22), at(7, 2))


def test_a_run_scheduled_before_a_midnight_window_waits_for_it_to_open(
    engine_factory, clock: FakeClock, store: Store
) -> None:
    engine = engine_factory(NIGHT.format(at="21:00"))
    clock.set(at(5, 21))
    engine.settle(clock.now())
    (run,) = runs(store, "nightly")
    assert run["state"] == "waiting"
    assert run["waiting_reason"] == "window opens at 22:00 UTC"
    clock.set(at(5, 21, 59))
    engine.settle(clock.now())
    assert runs(store, "nightly")[0]["state"] == "waiting"
    clock.set(at(5, 22))
    engine.settle(clock.now())
    (run,) = runs(store, "nightly")
    assert run["state"] == "succeeded"
    assert parse_iso(run["started_at"]) == at(5, 22)


def test_a_run_scheduled_after_midnight_inside_the_window_starts_at_once(
    engine_factory, clock: FakeClock, store: Store
) -> None:
    engine = engine_factory(NIGHT.format(at="01:00"))
    clock.set(at(5, 1))
    engine.settle(clock.now())
    (run,) = runs(store, "nightly")
    assert run["state"] == "succeeded"
    assert parse_iso(run["due_by"]) == at(5, 2)


LATE = """
    [defaults]
    timezone = "UTC"
    [[event]]
    name = "sign-off"
    run = "true"
    [[event]]
    name = "publish"
    run = "true"
    schedule = "every day at 05:00"
    requires = "success(sign-off)"
    window = { earliest = "06:00", latest = "08:00" }
    late_after = "06:30"
"""


def test_late_then_missed_when_the_condition_never_holds(engine_factory, clock: FakeClock, store: Store) -> None:
    engine = engine_factory(LATE)
    clock.set(at(5, 5))
    engine.settle(clock.now())
    assert runs(store, "publish")[0]["waiting_reason"] == "window opens at 06:00 UTC"
    clock.set(at(5, 6, 29))
    engine.settle(clock.now())
    assert alerts(store, "publish") == []
    clock.set(at(5, 6, 30))
    changes = engine.settle(clock.now())
    assert [c.state for c in changes if c.kind == "alert"] == ["late"]
    (late,) = alerts(store, "publish", "late")
    assert "not started by 06:30" in late["message"]
    clock.set(at(5, 7, 0))
    changes = engine.settle(clock.now())
    assert not [c for c in changes if c.kind == "alert"], "late alerts once per run"
    assert alerts(store, "publish", "late")[0]["count"] == 1
    clock.set(at(5, 7, 59))
    engine.settle(clock.now())
    assert runs(store, "publish")[0]["state"] == "waiting"
    clock.set(at(5, 8, 0))
    engine.settle(clock.now())
    (run,) = runs(store, "publish")
    assert run["state"] == "missed"
    assert "window closed at 08:00" in run["reason"]
    assert "success(sign-off) is false" in run["reason"]
    (missed,) = alerts(store, "publish", "missed")
    assert missed["run_id"] == run["id"] and missed["status"] == "open"


def test_a_run_started_inside_its_window_is_not_late(engine_factory, clock: FakeClock, store: Store) -> None:
    engine = engine_factory(LATE.replace('requires = "success(sign-off)"\n', ""))
    clock.set(at(5, 6, 0))
    engine.settle(clock.now())
    clock.set(at(5, 9, 0))
    engine.settle(clock.now())
    assert runs(store, "publish")[0]["state"] == "succeeded"
    assert alerts(store, "publish") == []


OVERDUE = """
    [defaults]
    timezone = "UTC"
    [[event]]
    name = "reindex"
    run = "sleep 30"
    schedule = "every day at 01:55"
    window = { earliest = "22:00", latest = "02:00" }
"""


def test_still_running_at_the_window_end_is_overdue_once(engine_factory, clock: FakeClock, store: Store) -> None:
    engine = engine_factory(OVERDUE)
    clock.set(at(5, 1, 55))
    engine.tick(clock.now())
    (run,) = runs(store, "reindex")
    wait_running(engine, clock, run["id"])
    clock.set(at(5, 1, 59))
    assert not [c for c in engine.tick(clock.now()) if c.kind == "alert"]
    clock.set(at(5, 2, 0))
    first = [c for c in engine.tick(clock.now()) if c.kind == "alert"]
    assert [c.state for c in first] == ["overdue"]
    clock.set(at(5, 2, 30))
    again = engine.tick(clock.now()) + engine.tick(clock.now())
    assert not [c for c in again if c.kind == "alert"]
    (overdue,) = alerts(store, "reindex", "overdue")
    assert overdue["count"] == 1 and "still running at 02:00" in overdue["message"]
    assert runs(store, "reindex")[0]["state"] == "running"
    assert "overdue" in (runs(store, "reindex")[0]["flags"] or "")
    ask(engine, "kill", "reindex", now=clock.now())
    engine.settle(clock.now())
    assert runs(store, "reindex")[0]["state"] == "killed"


def test_a_run_whose_window_closes_during_its_prepare_is_missed_and_the_prepare_stopped(
    engine_factory, clock: FakeClock, store: Store, tmp_path
) -> None:
    engine = engine_factory("""
        [defaults]
        timezone = "UTC"
        [[event]]
        name = "load"
        run = "false"
        window = { latest = "01:00" }
        on_failure = { retries = 1, backoff = "1m", prepare = "echo $$ > prepare.pid; exec sleep 30" }
    """)
    ask(engine, "trigger", "load", now=clock.now())
    engine.settle(clock.now())
    clock.set(at(5, 0, 59))
    engine.tick(clock.now())
    retry = runs(store, "load")[-1]
    marker = tmp_path / "prepare.pid"
    wait_until(lambda: marker.exists() and marker.read_text().strip() != "", what="prepare to start")
    clock.set(at(5, 1, 0))
    engine.settle(clock.now())
    assert found(store.run(retry["id"]))["state"] == "missed"
    pid = int(marker.read_text())
    wait_until(lambda: not _alive(pid), what="the prepare process to end")


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
