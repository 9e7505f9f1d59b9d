from __future__ import annotations

from datetime import timedelta

import pytest

from engine.clock import FakeClock
from engine.store import Store

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
        (1, "waiting"), (1, "running"), (1, "succeeded")]
    assert store.run(1)["state"] == "succeeded"
