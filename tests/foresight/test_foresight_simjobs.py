"""The simulated jobs on a fake clock (bench/simjobs.py), with the real engine, and the
callable workers they showed waiting behind one another."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from bench.simjobs import Driver, SimJobs
from evman.engine.clock import FakeClock, parse_iso
from evman.engine.engine import Engine
from evman.engine.store import Store, open_store


def store_states(store: Store) -> list[str]:
    return [r["state"] for r in store.runs_of(None)]


TWO = """
[[event]]
name = "a"
call = "bench.simjobs:job"
cwd = "{root}"
[[event]]
name = "b"
call = "bench.simjobs:job"
cwd = "{root}"
"""


def test_runs_take_the_simulated_time_exactly(
    engine_factory: Callable[..., Engine], clock: FakeClock, store: Store
) -> None:
    from tests.outside import ROOT

    engine = engine_factory(TWO.format(root=ROOT))
    took = {"a": 600.0, "b": 90.0}
    with SimJobs(clock, lambda event, _attempt: took[event]) as sim:
        store.add_request("trigger", "a", requested_by="t")
        store.add_request("trigger", "b", requested_by="t")
        start = clock.now()
        Driver(engine, sim, step_s=None).run_until(start + timedelta(minutes=20))
    runs = {r["event"]: r for r in store.runs_of(None)}
    for event, seconds in took.items():
        run = runs[event]
        assert run["state"] == "succeeded"
        ended, began = parse_iso(run["ended_at"]), parse_iso(run["started_at"])
        assert ended is not None and began is not None and (ended - began).total_seconds() == seconds


def test_callables_started_together_run_together_after_a_worker_went_idle(
    engine_factory: Callable[..., Engine], clock: FakeClock, db_path: Path
) -> None:
    """Two callables submitted back to back once a worker had gone idle both counted that one
    idle worker, and the second waited for the first to end (fixed in executors._Workers)."""
    from tests.outside import ROOT

    engine = engine_factory(TWO.format(root=ROOT))
    took = {"a": 1.0, "b": 1.0}
    with SimJobs(clock, lambda event, _attempt: took[event]) as sim:
        driver = Driver(engine, sim, step_s=None)
        other = open_store(db_path)  # asked as another program would: the engine notices its commits
        other.add_request("trigger", "a", requested_by="t")
        driver.run_until(clock.now() + timedelta(seconds=5))  # one worker thread, idle again
        assert store_states(other) == ["succeeded"]
        took.update(a=3600.0, b=3600.0)
        other.add_request("trigger", "a", requested_by="t")
        other.add_request("trigger", "b", requested_by="t")
        driver.run_until(clock.now() + timedelta(seconds=5))
        other.close()
        with sim.cond:
            assert len(sim.ends) == 2, "both callables are running"
