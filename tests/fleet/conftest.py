"""Fixtures of the fleet tests: a clock near the real time, and engines on the shared database."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from evman.engine.clock import FakeClock
from evman.engine.engine import Engine
from evman.engine.store import open_store
from tests.fleet.common import TICK_S, Make, membership


@pytest.fixture
def clock() -> FakeClock:
    """Near the real time: adopting a command checks that it started near its run's start."""
    return FakeClock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture
def make(pg_dsn: str, clock: FakeClock, tmp_path: Path) -> Iterator[Make]:
    """make(tags=..., host=..., logs_dir=..., pid=...) -> a started engine of its own (own connection) on the shared
    database; the children its runs still have are killed at the end."""
    made: list[Engine] = []

    def engine(**kwargs: Any) -> Engine:
        kwargs.setdefault("logs_dir", tmp_path / "logs")
        made.append(Engine(open_store(pg_dsn), clock=clock, tick_s=TICK_S, **kwargs))
        made[-1].start()
        return made[-1]

    yield engine
    for e in made:
        for run in e.active_runs():
            e.executors.kill(run.id, by="test end")
        e.executors.shutdown(wait_s=0)
        membership(e).stop_listening()
