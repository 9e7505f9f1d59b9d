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


def test_settle_heap_freezes_what_survives_and_new_cycles_are_still_collected() -> None:
    from evman.engine.tick.pace import settle_heap

    class Node:
        def __init__(self) -> None:
            self.other: Node | None = None

    kept = Node()  # lives on: frozen with the start-up heap
    try:
        settle_heap()
        assert gc.get_freeze_count() > 0
        assert gc.is_tracked(kept) and not any(kept is o for o in gc.get_objects())  # out of the collector's reach
        a, b = Node(), Node()
        a.other, b.other = b, a  # a new cycle, garbage once dropped
        del a, b
        assert gc.collect() >= 2  # the collector still frees what came after
    finally:
        gc.unfreeze()
