"""After months without an engine, catch-up reaches now in one step, whatever the backlog."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from evman.engine.timing import schedules

pytestmark = pytest.mark.backends


def test_latest_fire_of_an_interval_keeps_its_phase() -> None:
    due = datetime(2026, 3, 2, 0, 0, 7, tzinfo=UTC)
    until = due + timedelta(days=270, seconds=5)
    last = schedules.latest_fire("every 20 minutes", due, until, "UTC")
    assert last <= until < last + timedelta(minutes=20)
    assert (last - due) % timedelta(minutes=20) == timedelta(0)


def test_latest_fire_of_a_cron_looks_back_far_enough() -> None:
    due = datetime(2026, 1, 1, tzinfo=UTC)
    until = datetime(2026, 9, 15, 12, 0, tzinfo=UTC)
    assert schedules.latest_fire("*/5 * * * *", due, until, "UTC") == until
    assert schedules.latest_fire("0 0 1 * *", due, until, "UTC") == datetime(2026, 9, 1, tzinfo=UTC)


def test_engine_catches_up_once_after_months(engine_factory, clock, store) -> None:
    engine = engine_factory("""
        [[event]]
        name = "often"
        run = "true"
        schedule = "every 20 minutes"
    """)
    clock.advance(timedelta(days=200))
    changes = engine.settle(clock.now())
    created = [c for c in changes if c.kind == "run" and c.state == "waiting"]
    assert len(created) == 1
    assert "catch-up once" in store.run(created[0].run_id)["triggered_by"]
    nxt = datetime.fromisoformat(store.event_row("often")["next_fire_at"])
    assert clock.now() < nxt <= clock.now() + timedelta(minutes=20)
    assert [c for c in engine.settle(clock.now()) if c.kind == "run"] == []
