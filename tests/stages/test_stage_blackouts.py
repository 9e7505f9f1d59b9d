"""Blackouts (one-off and recurring; by name, pattern or tag; wait or skip) in the engine and in
foresight, and the AutoSys trap: a calendar that leaves an event no occurrence in 30 days."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from evman.console.cli.main import main
from evman.console.views.plan import plan_json, plan_view
from evman.engine.clock import FakeClock
from evman.engine.store import Store
from tests.stages.stage_helpers import alerts, runs

pytestmark = pytest.mark.backends

FREEZE = """
    [defaults]
    timezone = "UTC"

    [blackouts.freeze]
    from = "2026-01-05T02:00"
    to = "2026-01-05T04:00"
    events = ["etl-*"]
    description = "database upgrade"

    [blackouts.sundays]
    schedule = "every sunday at 01:00"
    duration = "2h"
    tags = ["db"]

    [[event]]
    name = "etl-load"
    call = "builtins:print"
    schedule = "0 3 * * *"
    deadline = "05:00"

    [[event]]
    name = "etl-skip"
    call = "builtins:print"
    schedule = "0 3 * * *"
    on_blackout = "skip"

    [[event]]
    name = "vacuum"
    call = "builtins:print"
    schedule = "30 1 * * *"
    tags = ["db"]

    [[event]]
    name = "free"
    call = "builtins:print"
    schedule = "0 3 * * *"
"""


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 1, day, hour, minute, tzinfo=UTC)


def walk(engine, clock: FakeClock, until: datetime, step: timedelta = timedelta(minutes=30)) -> None:
    while clock.now() < until:
        clock.advance(step)
        engine.settle(clock.now())


def test_a_one_off_blackout_holds_named_runs_until_it_ends(engine_factory, clock: FakeClock, store: Store) -> None:
    clock.set(at(5, 0, 1))
    engine = engine_factory(FREEZE)
    walk(engine, clock, at(5, 3, 30))
    (waiting,) = runs(store, "etl-load")
    assert waiting["state"] == "waiting"
    assert waiting["waiting_reason"] == "blackout freeze (database upgrade) until 04:00 UTC"
    assert [r["state"] for r in runs(store, "free")] == ["succeeded"]  # not named: runs at 03:00
    walk(engine, clock, at(5, 4, 30))
    (done,) = runs(store, "etl-load")
    assert done["state"] == "succeeded" and done["started_at"] >= "2026-01-05T04:00"


def test_on_blackout_skip_skips_a_run_that_falls_due_inside(engine_factory, clock: FakeClock, store: Store) -> None:
    clock.set(at(5, 0, 1))
    engine = engine_factory(FREEZE)
    walk(engine, clock, at(6, 4))
    first, second = runs(store, "etl-skip")
    assert first["state"] == "skipped"
    assert first["reason"] == "fell due inside blackout freeze (database upgrade) (on_blackout = skip)"
    assert second["state"] == "succeeded"  # the next night is clear


@pytest.mark.sqlite_only  # on PostgreSQL tags also choose the engine, and no test engine has the tag "db"
def test_a_recurring_blackout_by_tag(engine_factory, clock: FakeClock, store: Store) -> None:
    clock.set(at(10, 12))  # Saturday
    engine = engine_factory(FREEZE)
    walk(engine, clock, at(11, 2))  # Sunday 01:30 falls inside the 01:00-03:00 window
    (run,) = runs(store, "vacuum")
    assert run["state"] == "waiting" and run["waiting_reason"].startswith("blackout sundays until 03:00")
    walk(engine, clock, at(12, 2))
    assert [r["state"] for r in runs(store, "vacuum")] == ["succeeded", "succeeded"]


def test_foresight_counts_the_blackout(engine_factory, clock: FakeClock, store: Store) -> None:
    clock.set(at(5, 0, 1))
    engine_factory(FREEZE)
    rows = {row["event"]: row for row in plan_json(plan_view(store, at(5, 1)))}
    assert rows["etl-load"]["projected_start"][:19] == "2026-01-05T04:00:00"  # not 03:00: the freeze ends at 04:00


BUSY_DECEMBER = """
    [calendars.closed]
    dates = [{dates}]
    [[event]]
    name = "weekday"
    call = "builtins:print"
    schedule = "0 6 * * mon-fri"
    timezone = "UTC"
    calendar = "closed"
"""


def closed_days(start: date, days: int) -> str:
    return ", ".join(f'"{start + timedelta(days=i)}"' for i in range(days))


def test_a_loaded_event_left_without_occurrence_raises_an_alert_then_resolves(
    engine_factory, clock: FakeClock, store: Store, tmp_path: Path
) -> None:
    clock.set(at(5, 12))
    engine = engine_factory(BUSY_DECEMBER.format(dates=closed_days(date(2026, 1, 6), 35)))
    engine.tick(clock.now())
    (alert,) = alerts(store, "weekday", "no_occurrence")
    assert "no occurrence in the next 30 days (not before 2026-02-10" in alert["message"]
    clock.advance(timedelta(days=6))  # the watch looks hourly: the free day is 29 days away now
    engine.tick(clock.now())
    (alert,) = alerts(store, "weekday", "no_occurrence")
    assert alert["status"] == "resolved"


@pytest.mark.sqlite_only
def test_load_warns_of_the_autosys_trap(tmp_path: Path) -> None:
    today = datetime.now(UTC).date()
    defs = tmp_path / "defs.toml"
    defs.write_text(BUSY_DECEMBER.format(dates=closed_days(today, 60)))
    result = CliRunner().invoke(main, ["validate", str(defs)])
    assert result.exit_code == 0, result.output
    assert "warning: event 'weekday': calendar 'closed' leaves it no occurrence in the next 30 days" in result.output
    defs.write_text(BUSY_DECEMBER.format(dates=closed_days(today, 3)))
    result = CliRunner().invoke(main, ["validate", str(defs)])
    assert "warning" not in result.output
