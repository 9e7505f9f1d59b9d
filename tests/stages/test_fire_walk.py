"""Materialising a schedule alone (no calendar) walks its fires once: the fires after the due
time up to now and the next one after them, where it walked twice before (fires_between from
the due time, then next_fire from now). Both must give the same answer, DST and backlogs too."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from evman.engine.stages.materialise import MAX_CATCH_UP, _fire_times
from evman.engine.timing import occurrences
from evman.engine.timing.occurrences import Timing, walk_key

SCHEDULES = (
    "0 0 * * *",
    "30 2 * * *",
    "*/15 * * * *",
    "15 1,2,3 * * *",
    "0 0 1 * *",
    "0 9 15W * *",
    "every 15 minutes",
    "every 2 days",
    "every day at 02:30",
    "every monday at 01:30",
    "at 2026-03-29T02:30:00",
)
ZONES = ("UTC", "Europe/Paris", "America/New_York", "Australia/Lord_Howe", "America/Santiago")
NEAR = (  # DST changes of 2026 in those zones, and an ordinary day
    datetime(2026, 3, 29, 1, 0, tzinfo=UTC),
    datetime(2026, 10, 25, 1, 0, tzinfo=UTC),
    datetime(2026, 3, 8, 7, 0, tzinfo=UTC),
    datetime(2026, 11, 1, 6, 0, tzinfo=UTC),
    datetime(2026, 4, 5, 14, 0, tzinfo=UTC),
    datetime(2026, 9, 6, 3, 0, tzinfo=UTC),
    datetime(2026, 6, 10, 12, 0, tzinfo=UTC),
)
LATE_S = (0, 0.001, 1, 59, 600, 3600, 5400, 86_400 * 3, 86_400 * 40)


def _two_walks(timing: Timing, due: datetime, now: datetime) -> tuple[list[datetime], datetime | None]:
    """What materialise did before: fires_between from `due`, then next_fire from now (an
    interval schedule: from its last fire)."""
    fires = [due] + occurrences.fires_between(timing, due, now, limit=MAX_CATCH_UP)
    if len(fires) > MAX_CATCH_UP:
        last = occurrences.latest_fire(timing, due, now)
        fires += [last] if last > fires[-1] else []
    after = fires[-1] if occurrences.is_interval(timing) else max(fires[-1], now)
    return fires, occurrences.next_fire(timing, after)


@pytest.mark.parametrize("schedule", SCHEDULES)
def test_one_walk_finds_what_two_did(schedule: str) -> None:
    rng = random.Random(schedule)
    for zone in ZONES:
        timing = Timing(schedule, zone)
        for _ in range(15):
            base = rng.choice(NEAR) + timedelta(minutes=rng.uniform(-300, 300))
            fire = occurrences.next_fire(timing, base - timedelta(hours=rng.choice((0, 1, 5, 30))))
            due = fire if fire is not None and rng.random() < 0.8 else base  # next_fire_at is a fire
            now = due + timedelta(seconds=rng.choice(LATE_S) * rng.random())
            assert _fire_times(timing, due, now, {}, {}) == _two_walks(timing, due, now), (zone, due, now)


def test_a_first_fire_worked_out_ahead_is_taken_while_it_is_still_to_come() -> None:
    timing = Timing("0 0 * * *", "UTC")
    due = datetime(2026, 1, 5, 7, 30, tzinfo=UTC)
    tomorrow, after = datetime(2026, 1, 6, tzinfo=UTC), datetime(2026, 1, 7, tzinfo=UTC)
    planted = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)  # not the schedule's: shows which answer is taken
    ahead = {walk_key(timing, due): planted}
    assert _fire_times(timing, due, due, {}, ahead) == ([due], planted)
    # once now has reached it, materialise walks itself (a late tick finds the fires it missed)
    assert _fire_times(timing, due, planted, {}, ahead) == ([due], tomorrow)
    assert _fire_times(timing, due, tomorrow + timedelta(seconds=1), {}, ahead) == ([due, tomorrow], after)
    assert _fire_times(timing, due, due, {}, {walk_key(timing, due): None}) == ([due], None)  # no fire after
