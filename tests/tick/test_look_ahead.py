"""Between ticks the engine reads and works out what the next due tick would (the specs of the
events due then, their timings, each one's first fire after its due time), however far off it
is: the tick that makes their runs then decodes nothing and walks no schedule, and writes the
same next fire times as a tick that did it all itself."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from evman.engine.clock import FakeClock, iso
from evman.engine.engine import Engine
from evman.engine.store import Store
from evman.engine.tick import readview
from evman.engine.timing import occurrences

N = 5
NIGHT = datetime(2026, 1, 6, tzinfo=UTC)
DEFS = "".join(
    f'[[event]]\nname = "n{i}"\ncall = "tests.stages.pool_jobs:record"\nschedule = "0 0 * * *"\n' for i in range(N)
)


def _counting(monkeypatch: pytest.MonkeyPatch, owner: Any, name: str) -> list[int]:
    """Count the calls of owner.name (the real function still runs)."""
    calls: list[int] = []
    real = getattr(owner, name)

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, counted)
    return calls


def _due_tick(engine: Engine, clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> tuple[int, int]:
    """The tick at midnight: (specs it decoded, schedule walks it made); its runs started."""
    decoded = _counting(monkeypatch, readview, "spec_from_json")
    walks = [_counting(monkeypatch, occurrences, name) for name in ("plain_fires_after", "fires_between", "next_fire")]
    clock.set(NIGHT)
    changes = engine.tick(clock.now())
    assert sorted(c.event for c in changes if c.kind == "run" and c.state == "running") == [f"n{i}" for i in range(N)]
    engine.settle(clock.now())
    return len(decoded), sum(len(w) for w in walks)


def _next_fires(store: Store) -> set[str]:
    return {str(r[0]) for r in store.rows("SELECT next_fire_at FROM events")}


@pytest.mark.parametrize("looked_ahead", [True, False], ids=["looked ahead", "tick alone"])
def test_the_due_tick_finds_its_reading_and_arithmetic_done_between_ticks(
    engine_factory: Callable[..., Engine],
    clock: FakeClock,
    store: Store,
    monkeypatch: pytest.MonkeyPatch,
    looked_ahead: bool,
) -> None:
    clock.set(datetime(2026, 1, 5, 9, 0, tzinfo=UTC))  # midnight is 15 hours off, 54,000 ticks
    engine = engine_factory(DEFS)
    engine.tick(clock.now())
    if looked_ahead:
        engine.between_ticks()  # as the loop does after every tick
    decoded, walks = _due_tick(engine, clock, monkeypatch)
    assert (decoded, walks) == ((0, 0) if looked_ahead else (N, 1))  # events sharing a timing share a walk
    assert _next_fires(store) == {iso(datetime(2026, 1, 7, tzinfo=UTC))}
