"""The loop's pace: garbage the next tick would collect is collected while the loop waits."""

from __future__ import annotations

import gc
from datetime import UTC, datetime, timedelta

from evman.engine.clock import FakeClock
from evman.engine.tick.pace import YOUNG_AHEAD_S, Pace

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def young_collections_pending_to(count: int) -> None:
    """Run generation-0 collections until CPython's counter of them (since the last collection of
    generation 1) reads `count`."""
    gc.collect(1)
    while gc.get_count()[1] < count:
        gc.collect(0)


def pace_due_in(seconds: float) -> Pace:
    pace = Pace(FakeClock(NOW), tick_s=1.0)
    pace.next_due = NOW + timedelta(seconds=seconds)
    return pace


def test_the_middle_generation_is_collected_between_ticks_before_a_tick_would() -> None:
    threshold = gc.get_threshold()[1]
    young_collections_pending_to(threshold - 1)
    pace_due_in(1.0).between_ticks()
    assert gc.get_count()[1] == 0


def test_nothing_is_collected_early_while_the_middle_generation_is_far_from_due() -> None:
    young_collections_pending_to(2)
    pace_due_in(1.0).between_ticks()
    assert gc.get_count()[1] == 2


def test_no_collection_when_the_next_tick_is_due_at_once() -> None:
    threshold = gc.get_threshold()[1]
    young_collections_pending_to(threshold - 1)
    pace_due_in(YOUNG_AHEAD_S / 10).between_ticks()
    assert gc.get_count()[1] == threshold - 1
