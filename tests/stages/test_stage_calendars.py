"""Calendars in the engine: occurrences are made only on business days (or moved), `evman next`
lists what the calendar removed or moved and why, and the plan does not project removed days."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from evman.console.views.plan import plan_json, plan_view
from evman.engine.clock import FakeClock
from evman.engine.store import Store
from tests.conftest import load_text
from tests.stages.stage_helpers import evman, runs

pytestmark = pytest.mark.backends

CHRISTMAS = """
    [defaults]
    timezone = "Europe/London"

    [calendars.uk]
    holidays = {{ country = "GB", subdiv = "ENG" }}
    dates = [{{ date = "2026-12-24", name = "Christmas Eve (office closed)" }}]

    [[event]]
    name = "report"
    call = "builtins:print"
    schedule = "0 6 * * *"
    calendar = "uk"
    on_holiday = "{on_holiday}"
    deadline = "07:00"

    [[event]]
    name = "plain"
    call = "builtins:print"
    schedule = "0 6 * * *"
    deadline = "07:00"
"""


def day_of(run: dict) -> str:
    return run["scheduled_for"][5:10]


def tick_daily(engine, clock: FakeClock, until: datetime) -> None:
    while clock.now() < until:
        clock.advance(timedelta(hours=6))
        engine.settle(clock.now())


@pytest.mark.parametrize(
    ("on_holiday", "days"),
    [
        ("skip", ["12-22", "12-23", "12-29", "12-30", "12-31", "01-04"]),
        ("next", ["12-22", "12-23", "12-29", "12-30", "12-31", "01-04"]),
        ("previous", ["12-22", "12-23", "12-29", "12-30", "12-31", "01-04"]),
    ],
)
def test_the_engine_runs_a_calendar_event_only_on_business_days(
    engine_factory, clock: FakeClock, store: Store, on_holiday: str, days: list[str]
) -> None:
    clock.set(datetime(2026, 12, 21, 12, tzinfo=UTC))
    engine = engine_factory(CHRISTMAS.format(on_holiday=on_holiday))
    tick_daily(engine, clock, datetime(2027, 1, 4, 12, tzinfo=UTC))
    assert [day_of(r) for r in runs(store, "report")] == days
    assert len(runs(store, "plain")) == 14  # the same schedule without a calendar: every day
    assert all(r["state"] == "succeeded" for r in runs(store, "report"))


def test_previous_runs_a_saturday_fire_on_friday(engine_factory, clock: FakeClock, store: Store) -> None:
    text = """
        [calendars.std]
        weekend = ["sat", "sun"]
        [[event]]
        name = "weekly"
        call = "builtins:print"
        schedule = "0 6 * * sat"
        timezone = "UTC"
        calendar = "std"
        on_holiday = "previous"
    """
    clock.set(datetime(2026, 1, 5, 12, tzinfo=UTC))
    engine = engine_factory(text)
    tick_daily(engine, clock, datetime(2026, 1, 20, tzinfo=UTC))
    assert [r["scheduled_for"][:19] for r in runs(store, "weekly")] == ["2026-01-09T06:00:00", "2026-01-16T06:00:00"]


def test_evman_next_lists_removed_and_moved_days_with_their_reasons(
    store: Store, db_path: Path, tmp_path: Path
) -> None:
    load_text(store, CHRISTMAS.format(on_holiday="next"), tmp_path, datetime(2026, 12, 1, tzinfo=UTC))
    data = evman(db_path, "next", "report", "-n", "20", "--after", "2026-12-20T00:00:00+00:00", "--json")
    assert data["calendar"] == "uk" and data["on_holiday"] == "next"
    assert len(data["fires"]) == 20
    removed = {r["local"][:10]: (r["reason"], r["merged_into"][:10]) for r in data["removed"]}
    assert removed["2026-12-24"] == ("Christmas Eve (office closed)", "2026-12-29")
    assert removed["2026-12-25"] == ("Christmas Day", "2026-12-29")
    assert removed["2026-12-28"] == ("Boxing Day (observed)", "2026-12-29")
    assert removed["2027-01-01"] == ("New Year's Day", "2027-01-04")
    assert all(r["calendar"] == "uk" for r in data["removed"])
    text = evman(db_path, "next", "report", "-n", "20", "--after", "2026-12-20T00:00:00+00:00")
    assert "2026-12-25T06:00:00+00:00   moved to 2026-12-29T06:00:00+00:00, which runs anyway: Christmas Day" in text
    assert "calendar uk, on_holiday next" in text.splitlines()[0]


def test_evman_next_says_removed_for_skip_and_moved_from_for_a_weekly_job(
    store: Store, db_path: Path, tmp_path: Path
) -> None:
    load_text(
        store,
        """
        [calendars.uk]
        holidays = { country = "GB", subdiv = "ENG" }
        [[event]]
        name = "fri"
        call = "builtins:print"
        schedule = "0 9 * * fri"
        timezone = "Europe/London"
        calendar = "uk"
        on_holiday = "next"
        [[event]]
        name = "daily"
        call = "builtins:print"
        schedule = "0 9 * * *"
        timezone = "Europe/London"
        calendar = "uk"
        """,
        tmp_path,
        datetime(2026, 3, 1, tzinfo=UTC),
    )
    data = evman(db_path, "next", "fri", "-n", "3", "--after", "2026-03-28T00:00:00+00:00", "--json")
    moved = [f for f in data["fires"] if f.get("moved_from")]
    assert [(f["local"], f["moved_from"], f["reason"]) for f in moved] == [
        ("2026-04-07T09:00:00+01:00", "2026-04-03T09:00:00+01:00", "Good Friday")  # Monday is Easter Monday
    ]
    text = evman(db_path, "next", "daily", "-n", "3", "--after", "2026-04-02T12:00:00+00:00")
    assert "2026-04-03T09:00:00+01:00   removed: Good Friday, calendar uk" in text
    assert "2026-04-06T09:00:00+01:00   removed: Easter Monday, calendar uk" in text


def test_the_plan_does_not_project_a_removed_day(engine_factory, clock: FakeClock, store: Store) -> None:
    clock.set(datetime(2026, 12, 24, 20, tzinfo=UTC))
    engine_factory(CHRISTMAS.format(on_holiday="skip"))
    rows = {row["event"]: row for row in plan_json(plan_view(store, clock.now()))}
    assert rows["plain"]["projected_start"][:19] == "2026-12-25T06:00:00"
    assert "report" not in rows or not (rows["report"]["projected_start"] or "").startswith("2026-12-25")
    assert store.event_row("report")["next_fire_at"][:19] == "2026-12-29T06:00:00"
