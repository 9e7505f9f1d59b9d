from __future__ import annotations

from datetime import timedelta

import pytest

from evman.engine.clock import FakeClock
from evman.engine.store import Store
from tests.outside import found

pytestmark = pytest.mark.backends


def test_quarter_hour_event_runs_exactly_at_its_time(engine_factory, clock: FakeClock, store: Store) -> None:
    engine = engine_factory("""
        [defaults]
        timezone = "UTC"
        [[event]]
        name = "q"
        run = "true"
        schedule = "*/15 * * * *"
    """)
    assert engine.tick(clock.now()) == []
    clock.advance(timedelta(minutes=14, seconds=58))
    assert engine.tick(clock.now()) == []
    clock.advance(timedelta(seconds=1))
    changes = engine.settle(clock.now())
    assert [(c.run_id, c.state) for c in changes if c.kind == "run"] == [
        (1, "waiting"),
        (1, "running"),
        (1, "succeeded"),
    ]
    assert found(store.run(1))["state"] == "succeeded"


@pytest.mark.sqlite_only
def test_one_engine_makes_a_burst_of_due_occurrences_in_one_tick(
    engine_factory, clock: FakeClock, store: Store
) -> None:
    """2,000 events due together: one engine materialises them all in the tick they fall due
    (a cap of 1,000 per tick made it two ticks and two transactions: W1 lost a fifth of its
    throughput). Several engines claim 1,000 at a time, to share a burst (tests/fleet)."""
    due = (clock.now() + timedelta(seconds=5)).isoformat()
    engine = engine_factory(
        '[defaults]\ntimezone = "UTC"\n'
        + "".join(f'[[event]]\nname = "e{i}"\ncall = "builtins:len"\nschedule = "at {due}"\n' for i in range(2000))
    )
    clock.advance(timedelta(seconds=5))
    changes = engine.tick(clock.now())
    assert len({c.run_id for c in changes if c.kind == "run"}) == 2000
    assert store.value("SELECT count(*) FROM runs") == 2000
