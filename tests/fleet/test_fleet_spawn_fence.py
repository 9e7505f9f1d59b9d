"""An engine that stops between its tick's commit and its spawn (SIGSTOP, a frozen VM) for
longer than its lease is taken over; the survivor finds no process for the run it had recorded
running and judges it lost, so its pool slot goes to another run. When the stopped engine goes
on, it must start nothing: its command would hold the pool without a slot (the fleet drill saw
3 holders of a pool of 2). Real engines on the real PostgreSQL; the stop is placed exactly
where it hurts, between the flush stage's commit and its spawn, by wrapping that spawn."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from evman.engine.clock import FakeClock
from evman.engine.stages import flush as flush_stage
from tests.fleet.common import LEASE_S, Make, engine_id, load
from tests.outside import rows

pytest.importorskip("psycopg")

POOL = """
[defaults]
timezone = "UTC"
[pools]
warehouse = 1
[[event]]
name = "p0"
shell = "touch {marks}/started-$EVMAN_RUN_ID; sleep 30"
schedule = "every 10 seconds"
uses = ["warehouse"]
"""


def test_an_engine_taken_over_between_its_commit_and_its_spawn_starts_nothing(
    make: Make, pg_dsn: str, clock: FakeClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    load(pg_dsn, POOL.format(marks=marks), tmp_path, clock)
    a, b = make(), make()
    real_spawn = flush_stage.spawn
    judged: list[dict[str, Any]] = []

    def stopped_before_spawn(tick: Any, store: Any, executors: Any, report: Any, **kwargs: Any) -> None:
        if executors is a.executors and tick.to_spawn and not judged:
            time.sleep(LEASE_S + 0.3)  # a stopped: no tick, no renewal, past its lease
            b.tick()  # b takes a over and judges the run a recorded running
            judged.extend(rows(pg_dsn, "SELECT id, state, engine_id, reason FROM runs"))
        real_spawn(tick, store, executors, report, **kwargs)

    monkeypatch.setattr(flush_stage, "spawn", stopped_before_spawn)
    clock.advance(timedelta(seconds=10))
    a.tick()  # a goes on: it must find itself fenced before it starts the command
    assert [(r["state"], r["engine_id"]) for r in judged] == [("lost", engine_id(b))], judged
    assert "before it recorded the process" in judged[0]["reason"]
    assert a.fenced is not None and "taken over by engine" in a.fenced
    time.sleep(0.3)  # a command started by a would have touched its mark by now
    assert list(marks.iterdir()) == [], "a started the command of a run judged lost, its slot given back"
    assert a.executors.running_count() == 0
